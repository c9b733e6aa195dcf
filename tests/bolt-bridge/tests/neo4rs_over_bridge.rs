//! neo4rs 0.8 (Bolt 4.1) against a real FalkorDB server through the bridge: what the
//! Neo4j graph backend will do, end to end.

mod common;

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset};
use common::{start, within, Servers};
use neo4rs::{query, BoltType, ConfigBuilder, Graph, Node, Path, Point2D, Relation};

/// A neo4rs pool through the bridge on database `db`.
async fn connect(
    servers: &Servers,
    db: &str,
    tweak: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> Graph {
    let config = tweak(
        ConfigBuilder::default()
            .uri(servers.bridge.uri())
            .user("x")
            .password("x")
            .db(db),
    )
    .build()
    .expect("a neo4rs config");
    within("neo4rs to connect", Graph::connect(config))
        .await
        .expect("neo4rs connects")
}

/// Runs `q` and returns every row.
async fn rows(graph: &Graph, q: neo4rs::Query) -> Vec<neo4rs::Row> {
    within("a query's rows", async {
        let mut stream = graph.execute(q).await.expect("the query runs");
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await.expect("a row") {
            rows.push(row);
        }
        rows
    })
    .await
}

#[tokio::test]
async fn strings_with_quotes_backslashes_and_unicode_go_there_and_back() {
    let servers = start().await;
    let graph = connect(&servers, "g_strings", |c| c).await;
    let tricky = [
        "it's",
        "say \"hi\"",
        "back\\slash and \\' and \\\\",
        "é 日本語 🎉",
        "line\nbreak\ttab\r",
        "${not a param} `tick` /* comment */ // and more",
        "",
    ];
    for s in tricky {
        within(
            "a write",
            graph.run(query("CREATE (:S {v: $s})").param("s", s)),
        )
        .await
        .expect("the string is stored");
        let found = rows(
            &graph,
            query("MATCH (n:S) WHERE n.v = $s RETURN n.v AS v, size($s) AS n").param("s", s),
        )
        .await;
        assert_eq!(found.len(), 1, "exactly the node holding {s:?}");
        assert_eq!(found[0].get::<String>("v").unwrap(), s);
        assert_eq!(found[0].get::<i64>("n").unwrap(), s.chars().count() as i64);
    }
    // Longer than a Bolt chunk both ways: FalkorDB frames the answer wrongly.
    let long = "ab'\\c".repeat(30_000);
    let back = rows(&graph, query("RETURN $s AS s").param("s", long.as_str())).await;
    assert_eq!(back[0].get::<String>("s").unwrap(), long);
}

#[tokio::test]
async fn numbers_lists_maps_and_null_keep_their_values() {
    let servers = start().await;
    let graph = connect(&servers, "g_values", |c| c).await;
    let found = rows(
        &graph,
        query(
            "RETURN $i AS i, $min AS min, $f AS f, $whole AS whole, $l AS l, $m AS m, \
             $nothing AS nothing, $yes AS yes, 42 AS lit, 2.5 AS flit, [1, 'a', null] AS mixed, \
             {a: 1, b: 2} AS litmap, null AS n",
        )
        .param("i", 1_234_567_890_123_i64)
        .param("min", i64::MIN)
        .param("f", 0.1234567891234_f64)
        .param("whole", 3.0_f64)
        .param("l", vec![1_i64, -2, 300])
        .param(
            "m",
            HashMap::from([("k y".to_string(), 7_i64), ("z".to_string(), -8)]),
        )
        .param("nothing", Option::<i64>::None)
        .param("yes", true),
    )
    .await;
    let row = &found[0];
    assert_eq!(row.get::<i64>("i").unwrap(), 1_234_567_890_123);
    assert_eq!(row.get::<i64>("min").unwrap(), i64::MIN);
    assert_eq!(row.get::<f64>("f").unwrap(), 0.1234567891234);
    assert_eq!(row.get::<f64>("whole").unwrap(), 3.0);
    assert_eq!(row.get::<Vec<i64>>("l").unwrap(), vec![1, -2, 300]);
    assert_eq!(
        row.get::<HashMap<String, i64>>("m").unwrap(),
        HashMap::from([("k y".to_string(), 7), ("z".to_string(), -8)])
    );
    assert_eq!(row.get::<Option<i64>>("nothing").unwrap(), None);
    assert!(row.get::<bool>("yes").unwrap());
    assert_eq!(row.get::<i64>("lit").unwrap(), 42);
    assert_eq!(row.get::<f64>("flit").unwrap(), 2.5);
    let mixed = row.get::<Vec<BoltType>>("mixed").unwrap();
    assert_eq!(mixed.len(), 3);
    assert!(matches!(mixed[2], BoltType::Null(_)));
    assert_eq!(
        row.get::<HashMap<String, i64>>("litmap").unwrap(),
        HashMap::from([("a".to_string(), 1), ("b".to_string(), 2)])
    );
    assert_eq!(row.get::<Option<String>>("n").unwrap(), None);
}

#[tokio::test]
async fn nodes_relationships_and_paths_come_back_in_bolt_4_shape() {
    let servers = start().await;
    let graph = connect(&servers, "g_graph", |c| c).await;
    let found = rows(
        &graph,
        query(
            "CREATE (a:Person:Author {name: $a, age: 41})-[r:KNOWS {since: 2020, how: 'work'}]->\
             (b:Person {name: $b}) RETURN a, r, b",
        )
        .param("a", "Ada")
        .param("b", "Bob"),
    )
    .await;
    let row = &found[0];
    let a: Node = row.get("a").unwrap();
    let b: Node = row.get("b").unwrap();
    let r: Relation = row.get("r").unwrap();
    let mut labels = a.labels();
    labels.sort_unstable();
    assert_eq!(labels, ["Author", "Person"]);
    assert_eq!(a.get::<String>("name").unwrap(), "Ada");
    assert_eq!(a.get::<i64>("age").unwrap(), 41);
    assert_eq!(b.labels(), ["Person"]);
    assert_eq!(r.typ(), "KNOWS");
    assert_eq!(r.get::<i64>("since").unwrap(), 2020);
    assert_eq!(r.get::<String>("how").unwrap(), "work");
    assert_eq!((r.start_node_id(), r.end_node_id()), (a.id(), b.id()));

    let found = rows(
        &graph,
        query("MATCH p = (:Person {name: 'Ada'})-[:KNOWS]->(:Person) RETURN p"),
    )
    .await;
    let path: Path = found[0].get("p").unwrap();
    let names: Vec<String> = path
        .nodes()
        .iter()
        .map(|n| n.get::<String>("name").unwrap())
        .collect();
    assert_eq!(names, ["Ada", "Bob"]);
    assert_eq!(path.rels()[0].typ(), "KNOWS");

    // FalkorDB writes a Point2D with a stray value after it; the row must still be whole.
    let found = rows(
        &graph,
        query("RETURN point({latitude: 1.5, longitude: 2.5}) AS p, 7 AS x"),
    )
    .await;
    let p: Point2D = found[0].get("p").unwrap();
    assert_eq!((p.x(), p.y()), (2.5, 1.5));
    assert_eq!(found[0].get::<i64>("x").unwrap(), 7);
}

#[tokio::test]
async fn merge_and_unwind_over_a_list_of_maps_then_fetch_more_than_one_batch() {
    let servers = start().await;
    let graph = connect(&servers, "g_bulk", |c| c).await;
    let items: Vec<HashMap<String, BoltType>> = (0..1_500_i64)
        .map(|i| {
            HashMap::from([
                ("id".to_string(), BoltType::from(i)),
                ("name".to_string(), BoltType::from(format!("item '{i}'"))),
            ])
        })
        .collect();
    within(
        "UNWIND of 1,500 maps",
        graph.run(
            query("UNWIND $items AS it CREATE (:Item {id: it.id, name: it.name})")
                .param("items", items),
        ),
    )
    .await
    .expect("the items are stored");
    for _ in 0..2 {
        within(
            "a MERGE",
            graph.run(
                query("MERGE (u:User {id: $id}) ON CREATE SET u.n = 1 ON MATCH SET u.n = u.n + 1")
                    .param("id", "u-1"),
            ),
        )
        .await
        .expect("MERGE runs");
    }
    let users = rows(&graph, query("MATCH (u:User) RETURN u.id AS id, u.n AS n")).await;
    assert_eq!(users.len(), 1, "MERGE made one node");
    assert_eq!(users[0].get::<i64>("n").unwrap(), 2);

    // neo4rs pulls 200 at a time by default: 1,500 rows take eight PULLs.
    let all = rows(
        &graph,
        query("MATCH (i:Item) RETURN i.id AS id, i.name AS name ORDER BY i.id"),
    )
    .await;
    assert_eq!(all.len(), 1_500);
    for (i, row) in all.iter().enumerate() {
        assert_eq!(row.get::<i64>("id").unwrap(), i as i64);
        assert_eq!(row.get::<String>("name").unwrap(), format!("item '{i}'"));
    }

    // A small fetch size, and a stream dropped half-way: the connection goes back to
    // the pool and the next query on it (after neo4rs's RESET) sees a clean session.
    let small = connect(&servers, "g_bulk", |c| c.fetch_size(7).max_connections(1)).await;
    let ids = rows(&small, query("UNWIND range(1, 100) AS x RETURN x")).await;
    assert_eq!(ids.len(), 100);
    within("a half-read stream", async {
        let mut stream = small
            .execute(query("UNWIND range(1, 100) AS x RETURN x"))
            .await
            .expect("the query runs");
        for expected in 1..=10_i64 {
            let row = stream.next().await.expect("a row").expect("more rows");
            assert_eq!(row.get::<i64>("x").unwrap(), expected);
        }
    })
    .await;
    let again = rows(&small, query("RETURN 5 AS five")).await;
    assert_eq!(again[0].get::<i64>("five").unwrap(), 5);
}

#[tokio::test]
async fn an_explicit_transaction_runs_its_queries_and_commits() {
    let servers = start().await;
    let graph = connect(&servers, "g_txn", |c| c).await;
    within("a transaction", async {
        let mut txn = graph.start_txn().await.expect("BEGIN");
        txn.run_queries([
            query("CREATE (:Account {id: 1, balance: 100})"),
            query("CREATE (:Account {id: $id, balance: 50})").param("id", 2),
            query("MATCH (a:Account {id: 1}), (b:Account {id: 2}) CREATE (a)-[:PAID {amount: 10}]->(b)"),
        ])
        .await
        .expect("the transaction's queries run");
        // A result read inside the transaction (Bolt 4 numbers it with a qid).
        let mut stream = txn
            .execute(query("MATCH (a:Account) RETURN a.id AS id ORDER BY id"))
            .await
            .expect("a query in the transaction");
        let mut ids = Vec::new();
        while let Some(row) = stream.next(txn.handle()).await.expect("a row") {
            ids.push(row.get::<i64>("id").unwrap());
        }
        assert_eq!(ids, [1, 2]);
        txn.commit().await.expect("COMMIT");
    })
    .await;
    let paid = rows(
        &graph,
        query("MATCH (:Account {id: 1})-[p:PAID]->(:Account {id: 2}) RETURN p.amount AS amount"),
    )
    .await;
    assert_eq!(paid[0].get::<i64>("amount").unwrap(), 10);
}

#[tokio::test]
async fn a_rollback_answers_but_cannot_undo_on_falkordb() {
    let servers = start().await;
    let graph = connect(&servers, "g_rollback", |c| c).await;
    within("a rolled-back transaction", async {
        let mut txn = graph.start_txn().await.expect("BEGIN");
        txn.run(query("CREATE (:Kept)")).await.expect("a write");
        txn.rollback().await.expect("ROLLBACK is answered");
    })
    .await;
    // This pins the documented limit: FalkorDB committed the write when it ran.
    let kept = rows(&graph, query("MATCH (k:Kept) RETURN count(k) AS n")).await;
    assert_eq!(kept[0].get::<i64>("n").unwrap(), 1);
}

#[tokio::test]
async fn a_failing_query_does_not_spoil_the_connection_for_the_next() {
    let servers = start().await;
    // One connection, so every query below shares it.
    let graph = connect(&servers, "g_fail", |c| c.max_connections(1)).await;
    for _ in 0..3 {
        let err = within("a failing query", graph.run(query("RETURN nosuchfn(1)")))
            .await
            .expect_err("an unknown function fails");
        match err {
            neo4rs::Error::Neo4j(e) => {
                assert_eq!(e.code(), "Neo.ClientError.Statement.SyntaxError");
                assert!(e.message().contains("nosuchfn"), "{}", e.message());
            }
            other => panic!("a server error, not {other:?}"),
        }
        let err = within(
            "a failing query's stream",
            graph.execute(query("UNWIND [1, 0] AS x RETURN 1 / x")),
        )
        .await;
        assert!(err.is_err(), "division by zero fails");
        let ok = rows(&graph, query("RETURN 1 AS one")).await;
        assert_eq!(ok[0].get::<i64>("one").unwrap(), 1);
    }
    // A failure inside a transaction, then the pool's next user.
    within("a transaction that fails", async {
        let mut txn = graph.start_txn().await.expect("BEGIN");
        assert!(txn.run(query("RETURN nosuchfn(2)")).await.is_err());
    })
    .await;
    let ok = rows(&graph, query("RETURN 2 AS two")).await;
    assert_eq!(ok[0].get::<i64>("two").unwrap(), 2);
}

#[tokio::test]
async fn date_time_parameters_are_refused_with_a_reason_not_a_hang() {
    let servers = start().await;
    let graph = connect(&servers, "g_time", |c| c.max_connections(1)).await;
    let when: DateTime<FixedOffset> =
        DateTime::parse_from_rfc3339("2026-11-22T10:00:00+02:00").unwrap();
    // FalkorDB has no zoned date-time type and reads Bolt parameters as literals only.
    let err = within(
        "a date-time parameter",
        graph.run(query("CREATE (:Event {at: $at})").param("at", when)),
    )
    .await
    .expect_err("FalkorDB cannot take a date-time parameter");
    match err {
        neo4rs::Error::Neo4j(e) => {
            assert_eq!(e.code(), "Neo.ClientError.Statement.ArgumentError");
            assert!(
                e.message().contains("$at") && e.message().contains("temporal"),
                "{}",
                e.message()
            );
        }
        other => panic!("a server error, not {other:?}"),
    }
    // The usual way round: the instant as a number.
    within(
        "an epoch parameter",
        graph.run(query("CREATE (:Event {at: $at})").param("at", when.timestamp())),
    )
    .await
    .expect("an epoch integer is stored");
    let at = rows(&graph, query("MATCH (e:Event) RETURN e.at AS at")).await;
    assert_eq!(at[0].get::<i64>("at").unwrap(), when.timestamp());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_queries_share_a_pool() {
    let servers = start().await;
    let graph = connect(&servers, "g_pool", |c| c.max_connections(8)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64_i64 {
        let graph = graph.clone();
        tasks.spawn(async move {
            graph
                .run(query("CREATE (:Hit {i: $i})").param("i", i))
                .await
                .expect("a concurrent write");
            let mut stream = graph
                .execute(query("UNWIND range(1, $n) AS x RETURN sum(x) AS s").param("n", i + 1))
                .await
                .expect("a concurrent read");
            let row = stream.next().await.expect("a row").expect("one row");
            // FalkorDB's sum() is a float.
            assert_eq!(row.get::<f64>("s").unwrap(), ((i + 1) * (i + 2) / 2) as f64);
        });
    }
    within("64 concurrent queries", async {
        while let Some(done) = tasks.join_next().await {
            done.expect("a task ends well");
        }
    })
    .await;
    let hits = rows(&graph, query("MATCH (h:Hit) RETURN count(h) AS n")).await;
    assert_eq!(hits[0].get::<i64>("n").unwrap(), 64);
}

#[tokio::test]
async fn two_database_names_are_two_separate_graphs() {
    let servers = start().await;
    let left = connect(&servers, "g_left", |c| c).await;
    let right = connect(&servers, "g_right", |c| c).await;
    within("writes to two graphs", async {
        left.run(query("CREATE (:Thing {side: 'left'})"))
            .await
            .expect("left write");
        right
            .run(query(
                "CREATE (:Thing {side: 'right'}), (:Thing {side: 'right'})",
            ))
            .await
            .expect("right write");
    })
    .await;
    let count = |rows: Vec<neo4rs::Row>| rows[0].get::<i64>("n").unwrap();
    assert_eq!(
        count(rows(&left, query("MATCH (t:Thing) RETURN count(t) AS n")).await),
        1
    );
    assert_eq!(
        count(rows(&right, query("MATCH (t:Thing) RETURN count(t) AS n")).await),
        2
    );
    // The other graph, named per query.
    let other = within("a query on the other graph", async {
        let mut stream = left
            .execute_on("g_right", query("MATCH (t:Thing) RETURN t.side AS side"))
            .await
            .expect("the query runs");
        let row = stream.next().await.expect("a row").expect("one row");
        row.get::<String>("side").unwrap()
    })
    .await;
    assert_eq!(other, "right");
    // Each database is a FalkorDB graph of that name (and no other was made).
    let mut graphs = common::graph_list(servers.falkor.redis_port());
    graphs.sort();
    assert_eq!(graphs, ["g_left", "g_right"]);
}
