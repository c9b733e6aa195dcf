//! The HTTP service end to end: an embedded engine served on port 0 and driven with a
//! real HTTP client.

use mnemo_engine::http::key_hash;
use mnemo_engine::storage::archive::HistoryPage;
use mnemo_tests::served::{Served, ACME_KEY, GLOBEX_KEY};
use mnemo_tests::{scope, session, within, Backend};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn turn(user: &str, session: &str, content: &str) -> Value {
    json!({ "user_id": user, "session_id": session, "role": "user", "content": content })
}

fn ids(body: &Value) -> Vec<i64> {
    body["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_i64().expect("an id"))
        .collect()
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_works() {
    let s = Served::start(|_| {}).await;

    let (status, body) = s.send(s.request(Method::GET, "/healthz", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (status, body) = s.send(s.request(Method::GET, "/readyz", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);
    assert!(body["actors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "archive" && a["state"] == "up"));

    // One turn.
    let (status, body) = s
        .post(
            "/v1/turns",
            ACME_KEY,
            turn(
                "maya",
                "s1",
                "I adopted a golden retriever named Biscuit last spring.",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body).len(), 1);
    assert_eq!(body["turns"][0]["created"], true);

    // A batch, with every optional field.
    let batch = json!({ "turns": [
        {
            "user_id": "maya", "session_id": "s1", "role": "assistant",
            "content": "Biscuit sounds lovely! How is he settling in?",
            "speaker": "Mnemo", "event_time": "2026-10-27T10:00:00Z",
            "metadata": { "channel": "web" }, "external_id": "msg-2"
        },
        turn("maya", "s1", "My sister Lena is getting married at Crescent Lake Lodge in June."),
        turn("maya", "s1", "Biscuit chewed my sister Lena's wedding invitation."),
    ]});
    let (status, body) = s.post("/v1/turns", ACME_KEY, batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let batch_ids = ids(&body);
    assert_eq!(batch_ids.len(), 3);
    assert_eq!(body["turns"][0]["external_id"], "msg-2");

    s.processed().await;

    // The same external id again stores nothing new. (After waiting for the processors:
    // a repeated external id uses up an archive sequence number, and `wait_processed` then
    // waits for a turn that never comes; reported.)
    let again = json!({
        "user_id": "maya", "session_id": "s1", "role": "assistant",
        "content": "Biscuit sounds lovely! How is he settling in?", "external_id": "msg-2"
    });
    let (status, body) = s.post("/v1/turns", ACME_KEY, again).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), vec![batch_ids[0]]);
    assert_eq!(body["turns"][0]["created"], false);

    // Context.
    let (status, body) = s
        .post(
            "/v1/context",
            ACME_KEY,
            json!({
                "user_id": "maya", "session_id": "s1", "query": "How is my dog Biscuit?",
                "max_recent": 2, "max_items": 5, "token_budget": 400, "deadline_ms": 5000
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recent"].as_array().unwrap().len(), 2);
    let items = body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for item in items {
        assert!(["turn", "summary", "entity"].contains(&item["kind"].as_str().unwrap()));
        assert!(item["id"].is_i64() && item["text"].is_string() && item["score"].is_number());
    }
    assert!(body["prompt"].as_str().unwrap().contains("Biscuit"));
    assert!(body["tokens"].as_u64().unwrap() > 0);
    assert!(body["tokens"].as_u64().unwrap() <= 400);
    assert!(body["degraded"].as_array().unwrap().is_empty(), "{body}");
    assert!(body["timings_ms"]
        .as_object()
        .unwrap()
        .contains_key("total"));
    assert!(body["entities"].is_array());
    assert!(body["emotion"].is_object() || body["emotion"].is_null());

    // Search, with a time range and paging.
    let (status, body) = s.get("/v1/search?user_id=maya&q=Biscuit", ACME_KEY).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits.iter().filter(|h| h["kind"] == "turn").count(), 3);
    let (status, body) = s
        .get(
            "/v1/search?user_id=maya&q=Biscuit&limit=1&offset=1",
            ACME_KEY,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hits"].as_array().unwrap().len(), 1);
    let (status, body) = s
        .get(
            "/v1/search?user_id=maya&q=Biscuit&from=2026-10-27T00:00:00Z&to=2026-10-28T00:00:00Z",
            ACME_KEY,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{body}");
    assert_eq!(hits[0]["id"], batch_ids[0]);

    // History, paged.
    let (status, body) = s.get("/v1/users/maya/sessions/s1/turns", ACME_KEY).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let turns = body["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 4);
    let turn_ids: Vec<i64> = turns.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert!(turn_ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let with_meta = turns.iter().find(|t| t["id"] == batch_ids[0]).unwrap();
    assert_eq!(with_meta["metadata"]["channel"], "web");
    assert_eq!(with_meta["speaker"], "Mnemo");
    assert_eq!(with_meta["role"], "assistant");
    let (status, body) = s
        .get("/v1/users/maya/sessions/s1/turns?limit=3", ACME_KEY)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let next = body["next_before"].as_i64().expect("a next page");
    let (_, body) = s
        .get(
            &format!("/v1/users/maya/sessions/s1/turns?limit=3&before={next}"),
            ACME_KEY,
        )
        .await;
    assert_eq!(body["turns"].as_array().unwrap().len(), 1);
    assert_eq!(body["next_before"], Value::Null);

    // Graph.
    let (status, body) = s
        .get("/v1/users/maya/graph?entity=Biscuit&depth=2", ACME_KEY)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["center"]["name"], "Biscuit");
    assert!(body["edges"].is_array() && body["entities"].is_array());
    let (status, body) = s.get("/v1/users/maya/graph?entity=Nobody", ACME_KEY).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(code(&body), "not_found");

    // Forget a turn, then the user.
    let (status, body) = s
        .delete(
            &format!("/v1/turns/{}?user_id=maya", batch_ids[2]),
            ACME_KEY,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["turns"], 1);
    let (status, body) = s
        .delete(
            &format!("/v1/turns/{}?user_id=maya", batch_ids[2]),
            ACME_KEY,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, body) = s.get("/v1/users/maya/sessions/s1/turns", ACME_KEY).await;
    assert_eq!(body["turns"].as_array().unwrap().len(), 3);
    let (status, body) = s.delete("/v1/users/maya", ACME_KEY).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["turns"], 3);
    let (_, body) = s.get("/v1/users/maya/sessions/s1/turns", ACME_KEY).await;
    assert!(body["turns"].as_array().unwrap().is_empty());
    let (_, body) = s.get("/v1/search?user_id=maya&q=Biscuit", ACME_KEY).await;
    assert!(body["hits"].as_array().unwrap().is_empty());

    // Unknown routes and methods answer JSON too.
    let (status, body) = s.get("/v1/nothing", ACME_KEY).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "not_found");
    let (status, body) = s.get("/v1/turns", ACME_KEY).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&body), "method_not_allowed");
    // A 405 names what the resource serves (RFC 9110).
    for (method, path, allow) in [
        (Method::GET, "/v1/turns", "POST"),
        (Method::PUT, "/v1/context", "POST"),
        (Method::POST, "/v1/search", "GET"),
        (Method::GET, "/v1/users/maya", "DELETE"),
        (Method::POST, "/readyz", "GET"),
    ] {
        let response = s
            .request(method.clone(), path, Some(ACME_KEY))
            .send()
            .await
            .expect("an answer");
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(
            response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let s = Served::start(|_| {}).await;
    let (status, doc) = s.send(s.request(Method::GET, "/openapi.json", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/v1/turns", "post"),
        ("/v1/turns/{id}", "delete"),
        ("/v1/context", "post"),
        ("/v1/search", "get"),
        ("/v1/users/{user_id}/sessions/{session_id}/turns", "get"),
        ("/v1/users/{user_id}/graph", "get"),
        ("/v1/users/{user_id}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/openapi.json", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is missing"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "TurnIn",
        "ContextIn",
        "ContextOut",
        "ErrorBody",
        "SearchOut",
    ] {
        assert!(schemas.contains_key(name), "schema {name} is missing");
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_key_get_401() {
    let s = Served::start(|c| c.auth.healthz_open = false).await;
    let requests: Vec<(Method, &str, Option<Value>)> = vec![
        (
            Method::POST,
            "/v1/turns",
            Some(turn("maya", "s1", "hello there")),
        ),
        (
            Method::POST,
            "/v1/context",
            Some(json!({ "user_id": "maya", "query": "hello" })),
        ),
        (Method::GET, "/v1/search?user_id=maya&q=hello", None),
        (Method::GET, "/v1/users/maya/sessions/s1/turns", None),
        (Method::GET, "/v1/users/maya/graph?entity=x", None),
        (Method::DELETE, "/v1/users/maya", None),
        (Method::DELETE, "/v1/turns/1?user_id=maya", None),
        (Method::GET, "/healthz", None),
        (Method::GET, "/readyz", None),
    ];
    for (method, path, body) in &requests {
        for auth in [
            None,
            Some("Bearer not-a-key"),
            Some("Bearer "),
            Some(&*format!("Basic {ACME_KEY}")),
            Some(&*format!("Bearer {}", key_hash(ACME_KEY))),
        ] {
            let mut builder = s.request(method.clone(), path, None);
            if let Some(auth) = auth {
                builder = builder.header("authorization", auth);
            }
            if let Some(body) = body {
                builder = builder.json(body);
            }
            let (status, answer) = s.send(builder).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} {auth:?}");
            assert_eq!(code(&answer), "unauthorized");
        }
    }
    // With a key, health answers.
    let (status, _) = s.get("/healthz", ACME_KEY).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.engine.health().head, 0, "nothing was stored");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_reach_another_tenants_users() {
    let s = Served::start(|_| {}).await;
    let (_, acme) = s
        .post(
            "/v1/turns",
            ACME_KEY,
            turn("maya", "s1", "Our parrot Kiwi learned to whistle."),
        )
        .await;
    let (_, globex) = s
        .post(
            "/v1/turns",
            GLOBEX_KEY,
            turn("maya", "s1", "My tortoise Sheldon escaped the garden."),
        )
        .await;
    let acme_id = ids(&acme)[0];
    let globex_id = ids(&globex)[0];
    s.processed().await;

    for (key, mine, theirs, their_id) in [
        (ACME_KEY, "Kiwi", "Sheldon", globex_id),
        (GLOBEX_KEY, "Sheldon", "Kiwi", acme_id),
    ] {
        // History holds only the tenant's own turn.
        let (_, body) = s.get("/v1/users/maya/sessions/s1/turns", key).await;
        let turns = body["turns"].as_array().unwrap();
        assert_eq!(turns.len(), 1);
        assert!(turns[0]["content"].as_str().unwrap().contains(mine));
        // Search finds the tenant's own words only.
        let (_, body) = s
            .get(&format!("/v1/search?user_id=maya&q={theirs}"), key)
            .await;
        assert!(body["hits"].as_array().unwrap().is_empty(), "{body}");
        let (_, body) = s
            .get(&format!("/v1/search?user_id=maya&q={mine}"), key)
            .await;
        assert_eq!(body["hits"].as_array().unwrap().len(), 1, "{body}");
        // Context never shows the other tenant's memories.
        let (status, body) = s
            .post(
                "/v1/context",
                key,
                json!({ "user_id": "maya", "session_id": "s1", "query": format!("{mine} {theirs}") }),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let items = serde_json::to_string(&body["items"]).unwrap();
        let recent = serde_json::to_string(&body["recent"]).unwrap();
        assert!(
            !items.contains(theirs) && !recent.contains(theirs),
            "{body}"
        );
        assert!(recent.contains(mine));
        // The graph has only the tenant's own entities.
        let (status, _) = s
            .get(&format!("/v1/users/maya/graph?entity={theirs}"), key)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = s
            .get(&format!("/v1/users/maya/graph?entity={mine}"), key)
            .await;
        assert_eq!(status, StatusCode::OK);
        // The other tenant's turn cannot be forgotten.
        let (status, _) = s
            .delete(&format!("/v1/turns/{their_id}?user_id=maya"), key)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // A query parameter on a route that takes none is refused, not ignored: this
    // must not forget acme's own maya.
    let (status, body) = s.delete("/v1/users/maya?tenant=globex", ACME_KEY).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tenant"),
        "{body}"
    );
    let (_, body) = s.get("/v1/users/maya/sessions/s1/turns", ACME_KEY).await;
    assert_eq!(
        body["turns"].as_array().unwrap().len(),
        1,
        "nothing was forgotten"
    );
    for (path, body) in [
        (
            "/v1/turns?tenant=globex",
            turn("maya", "s1", "sent with a stray parameter"),
        ),
        (
            "/v1/context?user_id=zed",
            json!({ "user_id": "maya", "query": "Kiwi" }),
        ),
    ] {
        let (status, answer) = s.post(path, ACME_KEY, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request", "{answer}");
    }

    // Forgetting acme's maya leaves globex's maya whole.
    let (status, body) = s.delete("/v1/users/maya", ACME_KEY).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["turns"], 1);
    let (_, body) = s.get("/v1/users/maya/sessions/s1/turns", GLOBEX_KEY).await;
    assert_eq!(body["turns"].as_array().unwrap().len(), 1);
    let (_, body) = s.get("/v1/search?user_id=maya&q=Sheldon", GLOBEX_KEY).await;
    assert_eq!(body["hits"].as_array().unwrap().len(), 1);
    let (_, body) = s.get("/v1/users/maya/sessions/s1/turns", ACME_KEY).await;
    assert!(body["turns"].as_array().unwrap().is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_4xx_and_store_nothing() {
    let s = Served::start(|c| {
        c.server.max_body_bytes = 64 * 1024;
        c.storage.limits.max_content_bytes = 1024;
        c.storage.limits.max_metadata_bytes = 512;
    })
    .await;
    let ok = turn("maya", "s1", "a perfectly fine turn");
    let mut missing = ok.clone();
    missing.as_object_mut().unwrap().remove("content");
    let mut wrong_type = ok.clone();
    wrong_type["content"] = json!(5);
    let mut unknown = ok.clone();
    unknown["tenant"] = json!("globex");
    let mut bad_role = ok.clone();
    bad_role["role"] = json!("robot");
    let mut bad_time = ok.clone();
    bad_time["event_time"] = json!("yesterday");
    let mut list_metadata = ok.clone();
    list_metadata["metadata"] = json!([1, 2]);
    let mut huge_metadata = ok.clone();
    huge_metadata["metadata"] = json!({ "blob": "x".repeat(2000) });
    let mut oversize_content = ok.clone();
    oversize_content["content"] = json!("y".repeat(2000));
    let mut oversize_body = ok.clone();
    oversize_body["content"] = json!("z".repeat(100 * 1024));
    let mut empty_content = ok.clone();
    empty_content["content"] = json!("   ");
    let mut long_user = ok.clone();
    long_user["user_id"] = json!("u".repeat(300));
    let mut control_session = ok.clone();
    control_session["session_id"] = json!("s\u{7}1");

    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("truncated JSON", b"{\"user_id\": ".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
        ("not JSON", b"hello".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
        ("empty body", Vec::new(), StatusCode::BAD_REQUEST, "malformed_json"),
        (
            "invalid UTF-8",
            [&b"{\"user_id\":\"maya\",\"session_id\":\"s1\",\"role\":\"user\",\"content\":\""[..], &[0xff, 0xfe, 0x41], b"\"}"].concat(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        ("an array", b"[1,2]".to_vec(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("missing content", missing.to_string().into_bytes(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("content of the wrong type", wrong_type.to_string().into_bytes(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("an unknown field", unknown.to_string().into_bytes(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("an unknown role", bad_role.to_string().into_bytes(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("a bad event time", bad_time.to_string().into_bytes(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("metadata not an object", list_metadata.to_string().into_bytes(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("huge metadata", huge_metadata.to_string().into_bytes(), StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        ("oversize content", oversize_content.to_string().into_bytes(), StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        ("oversize body", oversize_body.to_string().into_bytes(), StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        ("empty content", empty_content.to_string().into_bytes(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        ("a 300-byte user id", long_user.to_string().into_bytes(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        ("a control character in an id", control_session.to_string().into_bytes(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        (
            "a batch with one turn missing a field",
            json!({ "turns": [ok, missing] }).to_string().into_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "a batch with one empty turn",
            json!({ "turns": [ok, empty_content] }).to_string().into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "a batch with one oversize turn",
            json!({ "turns": [ok, oversize_content] }).to_string().into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "a field beside turns",
            json!({ "turns": [ok], "user_id": "maya" }).to_string().into_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "turns not an array",
            json!({ "turns": ok }).to_string().into_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "an empty batch",
            json!({ "turns": [] }).to_string().into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
    ];
    for (what, body, status, expected) in cases {
        let (got, answer) = s.post_raw("/v1/turns", ACME_KEY, body).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(code(&answer), expected, "{what}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {answer}"
        );
    }

    // A value that does not fit names its field, in a batch with the turn's position.
    let mut no_offset = ok.clone();
    no_offset["event_time"] = json!("2026-01-01T00:00:00");
    for (body, field) in [
        (no_offset.clone(), "event_time: "),
        (json!({ "turns": [ok, no_offset] }), "turns[1].event_time: "),
        (wrong_type.clone(), "content: "),
        (
            json!({ "user_id": "maya", "query": "x", "deadline_ms": "soon" }),
            "deadline_ms: ",
        ),
    ] {
        let route = if body.get("query").is_some() {
            "/v1/context"
        } else {
            "/v1/turns"
        };
        let (status, answer) = s.post(route, ACME_KEY, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{field}: {answer}");
    }

    // Other routes refuse bad input the same way.
    let context_cases: Vec<(Value, StatusCode)> = vec![
        (json!({ "user_id": "maya" }), StatusCode::BAD_REQUEST),
        (
            json!({ "user_id": "maya", "query": "x", "colour": "red" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "user_id": "maya", "query": 7 }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "user_id": "maya", "query": "x", "deadline_ms": -1 }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "user_id": "maya", "query": "x", "deadline_ms": 0 }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "user_id": "maya", "query": "x", "token_budget": 0 }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "user_id": "", "query": "x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "user_id": "maya", "query": "q".repeat(5000) }),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (body, status) in context_cases {
        let (got, answer) = s.post("/v1/context", ACME_KEY, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    let (got, _) = s.post_raw("/v1/context", ACME_KEY, b"{oops".to_vec()).await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    for (path, status) in [
        ("/v1/search?user_id=maya", StatusCode::BAD_REQUEST),
        (
            "/v1/search?user_id=maya&q=x&limit=abc",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/search?user_id=maya&q=x&colour=red",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/search?user_id=maya&q=x&from=yesterday",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/search?user_id=maya&q=%20",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/search?user_id=maya&q=x&limit=100000",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/search?user_id=maya&q=x&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/users/maya/sessions/s1/turns?limit=-3",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/users/maya/sessions/s1/turns?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/v1/users/maya/graph", StatusCode::BAD_REQUEST),
        (
            "/v1/users/maya/graph?entity=x&depth=5",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (got, answer) = s.get(path, ACME_KEY).await;
        assert_eq!(got, status, "{path}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{path}: {answer}");
    }
    for (path, status) in [
        ("/v1/turns/abc?user_id=maya", StatusCode::BAD_REQUEST),
        ("/v1/turns/1", StatusCode::BAD_REQUEST),
        ("/v1/turns/1?user_id=maya", StatusCode::NOT_FOUND),
    ] {
        let (got, answer) = s.delete(path, ACME_KEY).await;
        assert_eq!(got, status, "{path}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{path}: {answer}");
    }

    // Nothing was stored by any of them.
    assert_eq!(s.engine.health().head, 0, "no turn was stored");
    let history = s
        .engine
        .history(
            &scope("acme", "maya"),
            &session("s1"),
            HistoryPage {
                before: None,
                limit: 100,
            },
        )
        .await
        .expect("history answers");
    assert!(history.is_empty());
    let (_, body) = s.get("/v1/users/maya/sessions/s1/turns", ACME_KEY).await;
    assert!(body["turns"].as_array().unwrap().is_empty());

    // A good turn is still taken.
    let (status, _) = s.post("/v1/turns", ACME_KEY, ok).await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_keeps_every_acknowledged_write() {
    let mut s = Served::start(|_| {}).await;
    let (acked_tx, mut acked) = tokio::sync::mpsc::unbounded_channel::<(usize, i64)>();
    let mut writers = Vec::new();
    for w in 0..6 {
        let client = s.client.clone();
        let url = format!("{}/v1/turns", s.base);
        let acked_tx = acked_tx.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..300 {
                let body = turn("maya", &format!("w{w}"), &format!("writer {w} turn {i}"));
                let Ok(response) = client
                    .post(&url)
                    .bearer_auth(ACME_KEY)
                    .json(&body)
                    .send()
                    .await
                else {
                    break;
                };
                if response.status() != StatusCode::OK {
                    break;
                }
                let Ok(answer) = response.json::<Value>().await else {
                    break;
                };
                let _ = acked_tx.send((w, ids(&answer)[0]));
            }
        }));
    }
    drop(acked_tx);
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 30 {
        let next = within("acknowledged writes", acked.recv()).await;
        acknowledged.push(next.expect("writers acknowledge before the stop"));
    }
    // Stop while the writers are still sending.
    s.signal_stop();
    while let Some(more) = within("the writers to finish", acked.recv()).await {
        acknowledged.push(more);
    }
    for writer in writers {
        within("a writer", writer).await.expect("the writer ends");
    }
    let harness = s.stop().await;

    let engine = harness.start().await;
    for w in 0..6 {
        let stored: Vec<i64> = engine
            .history(
                &scope("acme", "maya"),
                &session(&format!("w{w}")),
                HistoryPage {
                    before: None,
                    limit: 10_000,
                },
            )
            .await
            .expect("history answers")
            .iter()
            .map(|t| t.id.0)
            .collect();
        for (_, id) in acknowledged.iter().filter(|(writer, _)| *writer == w) {
            assert!(stored.contains(id), "acknowledged turn {id} was lost");
        }
    }
    engine.shutdown().await.expect("the engine shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_prometheus_format_after_traffic() {
    let s = Served::start(|_| {}).await;
    let (status, body) = s
        .post(
            "/v1/turns",
            ACME_KEY,
            turn("maya", "s1", "Biscuit ate a sock."),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.engine.wait_processed().await.unwrap();
    let (status, _) = s
        .post(
            "/v1/context",
            ACME_KEY,
            serde_json::json!({ "user_id": "maya", "session_id": "s1", "query": "sock" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = s
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    for family in [
        "mnemo_requests_total",
        "mnemo_request_duration_seconds",
        "mnemo_context_tier_duration_seconds",
        "mnemo_mailbox_depth",
        "mnemo_processor_lag_turns",
        "mnemo_ingest_batch_turns",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    mnemo_tests::promtool_check(&text);
    s.stop().await;

    // Keyed when health endpoints are not open.
    let keyed = Served::start(|c| c.auth.healthz_open = false).await;
    let (status, _) = keyed
        .send(keyed.request(Method::GET, "/metrics", None))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let with_key = keyed
        .request(Method::GET, "/metrics", Some(ACME_KEY))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(with_key.status(), StatusCode::OK);
    keyed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_asks_a_running_server_for_context_and_search() {
    use mnemo_engine::cli::query::{ContextArgs, SearchArgs};
    use mnemo_engine::cli::remote;
    let s = Served::start(|_| {}).await;
    let (status, _) = s
        .post(
            "/v1/turns",
            ACME_KEY,
            turn("maya", "s1", "Biscuit ate a whole sock yesterday."),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.engine.wait_processed().await.unwrap();
    let remote_args = mnemo_engine::cli::remote::RemoteArgs {
        url: Some(s.base.clone()),
        key: Some(ACME_KEY.into()),
    };
    let search_args = SearchArgs {
        user: "maya".into(),
        tenant: "ignored-in-remote-mode".into(),
        limit: 5,
        json: false,
        query: "sock".into(),
        store: Default::default(),
        remote: remote_args.clone(),
    };
    let mut out = Vec::new();
    remote::search(&s.base, Some(ACME_KEY), &search_args, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("Biscuit ate a whole sock"), "{text}");
    assert!(text.contains("1 hits"), "{text}");
    let context_args = ContextArgs {
        user: "maya".into(),
        tenant: "ignored-in-remote-mode".into(),
        session: Some("s2".into()),
        max_items: Some(5),
        token_budget: Some(300),
        json: false,
        query: "What did Biscuit eat?".into(),
        store: Default::default(),
        remote: remote_args,
    };
    let mut out = Vec::new();
    remote::context(&s.base, Some(ACME_KEY), &context_args, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("## Relevant memories") && text.contains("sock"),
        "{text}"
    );
    // Another tenant's key sees nothing of maya's.
    let mut out = Vec::new();
    remote::search(&s.base, Some(GLOBEX_KEY), &search_args, &mut out)
        .await
        .unwrap();
    assert!(String::from_utf8(out).unwrap().contains("0 hits"));
    // A wrong key is refused with the server's reason.
    let err = remote::search(&s.base, Some("nope"), &search_args, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_and_writes_fail_fast_while_the_archive_restarts() {
    let s = Served::start(|c| {
        // The archive stays down for the whole test once it fails.
        c.actors.supervisor.initial_backoff_ms = 600_000;
        c.actors.supervisor.max_backoff_ms = 600_000;
        // No processors: each reads the outbox once more after catching up, and that
        // read could take the injected panic meant for the store below.
        let processors = &mut c.actors.processors;
        processors.emotion.enabled = false;
        processors.indexer.enabled = false;
        processors.summarizer.enabled = false;
        processors.graph_sync.enabled = false;
    })
    .await;
    s.engine.faults().panic_next("archive", 1);
    let (status, body) = s
        .post("/v1/turns", ACME_KEY, turn("maya", "s1", "lost?"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let (status, body) = s.send(s.request(Method::GET, "/readyz", None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    let (status, body) = s
        .post("/v1/turns", ACME_KEY, turn("maya", "s1", "refused"))
        .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "fails fast while down: {body}"
    );
    let (status, _) = s.send(s.request(Method::GET, "/healthz", None)).await;
    assert_eq!(status, StatusCode::OK, "the process itself is alive");
    s.stop().await;
}

/// Asks for maya's context with a 100 ms deadline, checks the answer is a 504 timeout,
/// and returns its body.
async fn maya_context_times_out_within_100_ms(s: &Served) -> serde_json::Value {
    let (status, body) = s
        .post(
            "/v1/context",
            ACME_KEY,
            serde_json::json!({ "user_id": "maya", "session_id": "s1", "query": "hello", "deadline_ms": 100 }),
        )
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["error"]["code"], "timeout");
    body
}

/// A request the assembler does not get to in time (here: held before it starts) is
/// given up by the caller at twice its deadline, as a 504 saying why, instead of waiting
/// for the assembler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_request_stuck_in_the_assembler_is_given_up_at_twice_its_deadline() {
    let s = Served::start(|_| {}).await;
    s.engine
        .faults()
        .delay("context", std::time::Duration::from_secs(30));
    let body = maya_context_times_out_within_100_ms(&s).await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("twice the 100 ms deadline"), "{message}");
    s.engine.faults().clear();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_deadline_with_nothing_to_answer_is_504() {
    let s = Served::start(|_| {}).await;
    let (status, _) = s
        .post("/v1/turns", ACME_KEY, turn("maya", "s1", "hello"))
        .await;
    assert_eq!(status, StatusCode::OK);
    s.engine.wait_processed().await.unwrap();
    for tier in ["recent", "index", "graph", "archive"] {
        s.engine
            .faults()
            .delay(tier, std::time::Duration::from_secs(3));
    }
    maya_context_times_out_within_100_ms(&s).await;
    s.engine.faults().clear();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_gets_408_and_the_connection_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let s = Served::start(|c| c.server.body_timeout_ms = 200).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("the server accepts");
    // The head and the first bytes of a body that never comes whole.
    let head = format!(
        "POST /v1/turns HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ACME_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"user_id\""
    );
    conn.write_all(head.as_bytes()).await.expect("sent");
    // The server answers and closes: reading to the end finishes.
    let mut answer = Vec::new();
    within(
        "the server to give up on the body",
        conn.read_to_end(&mut answer),
    )
    .await
    .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    s.processed().await;
    let (_, body) = s.get("/v1/users/maya/sessions/s1/turns", ACME_KEY).await;
    assert!(
        body["turns"].as_array().unwrap().is_empty(),
        "nothing stored"
    );
    s.stop().await;
}

/// Text no store keeps (a NUL) is refused as invalid input before it reaches one, in
/// every place a request carries text: ids, content, speakers, queries, entity names;
/// on the embedded store and on PostgreSQL (whose error text never shows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_is_invalid_input_everywhere_on_every_backend() {
    for backend in [Backend::Embedded, Backend::Server] {
        let s = Served::on(backend, |_| {}).await;
        let ok = json!({"user_id": "maya", "session_id": "s1", "role": "user", "content": "hi"});
        let mut cases: Vec<(String, reqwest::RequestBuilder)> = Vec::new();
        for (field, value) in [
            ("content", "a\u{0}b"),
            ("speaker", "a\u{0}"),
            ("session_id", "s\u{0}"),
            ("user_id", "u\u{0}"),
            ("external_id", "x\u{0}"),
        ] {
            let mut body = ok.clone();
            body[field] = json!(value);
            cases.push((
                format!("store with NUL in {field}"),
                s.request(Method::POST, "/v1/turns", Some(ACME_KEY))
                    .json(&body),
            ));
        }
        cases.push((
            "context with NUL in the query".into(),
            s.request(Method::POST, "/v1/context", Some(ACME_KEY))
                .json(&json!({"user_id": "maya", "query": "where\u{0}"})),
        ));
        for path in [
            "/v1/search?user_id=maya&q=a%00b",
            "/v1/users/maya/graph?entity=%00",
            "/v1/users/maya/graph?entity=Lis%00bon",
            "/v1/users/ma%00ya/graph?entity=Lisbon",
            "/v1/users/maya/sessions/s%001/turns",
        ] {
            cases.push((
                format!("GET {path}"),
                s.request(Method::GET, path, Some(ACME_KEY)),
            ));
        }
        cases.push((
            "forget with NUL in the user".into(),
            s.request(Method::DELETE, "/v1/users/ma%00ya", Some(ACME_KEY)),
        ));
        for (what, request) in cases {
            let (status, body) = s.send(request).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{backend:?} {what}: {body}"
            );
            assert_eq!(
                body["error"]["code"], "invalid_input",
                "{backend:?} {what}: {body}"
            );
            let text = body.to_string();
            assert!(
                !text.contains("UTF8") && !text.contains("0x00"),
                "{backend:?} {what}: a backend's message: {text}"
            );
        }
        let (status, body) = s.get("/v1/search?user_id=maya&q=hi", ACME_KEY).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        s.stop().await;
    }
}

/// A URI or headers over Mnemo's limits get the documented JSON error (414, 431), not a
/// bare status; a head within them is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_json_errors() {
    let s = Served::start(|_| {}).await;
    let long_query = format!("/v1/search?user_id=maya&q={}", "a".repeat(9 * 1024));
    let (status, body) = s.get(&long_query, ACME_KEY).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG, "{body}");
    assert_eq!(body["error"]["code"], "uri_too_long", "{body}");
    let request = s
        .request(Method::GET, "/v1/search?user_id=maya&q=hi", Some(ACME_KEY))
        .header("x-padding", "p".repeat(17 * 1024));
    let (status, body) = s.send(request).await;
    assert_eq!(
        status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{body}"
    );
    assert_eq!(body["error"]["code"], "headers_too_large", "{body}");
    let within = format!("/v1/search?user_id=maya&q={}", "a".repeat(4 * 1024));
    let (status, body) = s.get(&within, ACME_KEY).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.stop().await;
}
