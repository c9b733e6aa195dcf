//! `mnemo migrate` as an operator runs it: an embedded store filled by `mnemo import`,
//! copied into PostgreSQL + Redis named by configuration files, the target's database
//! url coming from `MNEMO_TO__...`; `--dry-run`, the copy with `--verify`, a copy killed
//! with SIGKILL and run again, `--rollback`; and the refusals an operator can meet.

use std::path::PathBuf;
use std::process::{Command, Output};

use mnemo_engine::storage::conformance::postgres::TestDatabase;
use mnemo_engine::storage::conformance::redis::delete_keys;

const TURNS: usize = 3_000;

fn mnemo() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mnemo"));
    command.env("RUST_BACKTRACE", "0").env_remove("RUST_LOG");
    command
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

struct Stores {
    _dir: tempfile::TempDir,
    from: PathBuf,
    to: PathBuf,
    database: TestDatabase,
    prefix: String,
}

impl Drop for Stores {
    fn drop(&mut self) {
        delete_keys("redis://127.0.0.1:6379", &format!("{}:*", self.prefix));
    }
}

/// An embedded store of `TURNS` turns of 12 users (imported as JSON lines), and an
/// empty PostgreSQL database with a Redis key prefix of its own.
async fn stores() -> Stores {
    let dir = tempfile::TempDir::new().expect("dir");
    let database = TestDatabase::create().await;
    let prefix = format!(
        "mnemo-test-{}",
        database.url().rsplit('/').next().unwrap_or_default()
    );
    let from = dir.path().join("from.toml");
    let to = dir.path().join("to.toml");
    let data = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(
        &from,
        format!("[storage]\ndata_dir = {:?}\n", data("embedded")),
    )
    .expect("written");
    std::fs::write(
        &to,
        format!(
            "[storage]\ndata_dir = {:?}\n\n[storage.recent]\nbackend = \"redis\"\n\
             key_prefix = {prefix:?}\n\n[storage.archive]\n\
             url = \"postgres://nobody:wrong@127.0.0.1:1/none\"\n",
            data("server")
        ),
    )
    .expect("written");
    let lines: String = (0..TURNS)
        .map(|i| {
            serde_json::json!({
                "tenant": if i.is_multiple_of(2) { "acme" } else { "globex" },
                "user_id": format!("user{}", i % 12),
                "session_id": format!("s{}", i / 100),
                "role": if i.is_multiple_of(2) { "user" } else { "assistant" },
                "content": format!("Message {i}: we talked about Lisbon, the garden and Maria Lopez ({i})."),
                "event_time": format!("2026-03-{:02}T10:00:00Z", 1 + i % 28),
                "metadata": {"n": i},
                "external_id": format!("x{i}"),
            })
            .to_string()
                + "\n"
        })
        .collect();
    let file = dir.path().join("turns.jsonl");
    std::fs::write(&file, lines).expect("written");
    let imported = mnemo()
        .arg("--config")
        .arg(&from)
        .arg("import")
        .arg(&file)
        .output()
        .expect("mnemo runs");
    assert!(imported.status.success(), "{}", said(&imported));
    Stores {
        _dir: dir,
        from,
        to,
        database,
        prefix,
    }
}

fn migrate(stores: &Stores, args: &[&str]) -> Command {
    let mut command = mnemo();
    command
        .arg("migrate")
        .arg("--from")
        .arg(&stores.from)
        .arg("--to")
        .arg(&stores.to)
        .args(args)
        .env("MNEMO_TO__STORAGE__ARCHIVE__URL", stores.database.url());
    command
}

async fn count(stores: &Stores, sql: &str) -> i64 {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(&stores.database.url())
        .await
        .expect("connects");
    let row = sqlx::query(sql)
        .fetch_one(&mut conn)
        .await
        .expect("counted");
    row.try_get::<i64, _>(0).expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_dry_run_copy_kill_resume_verify_and_rollback() {
    let stores = stores().await;

    let dry = migrate(&stores, &["--dry-run"]).output().expect("runs");
    assert!(dry.status.success(), "{}", said(&dry));
    assert!(
        said(&dry).contains(&format!("would copy {TURNS} turns of 12 users")),
        "{}",
        said(&dry)
    );
    let tables = count(
        &stores,
        "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'",
    )
    .await;
    assert_eq!(tables, 0, "the dry run created tables");

    // A copy in small batches, killed once it has committed some of them.
    let mut child = migrate(&stores, &["--batch", "20"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runs");
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            panic!("the copy ended ({status}) before it could be interrupted");
        }
        let has_table = count(
            &stores,
            "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'migrations'",
        )
        .await;
        if has_table > 0
            && count(
                &stores,
                "SELECT COALESCE(MAX(copied_turns), 0) FROM migrations",
            )
            .await
                > 0
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    child.kill().expect("killed");
    child.wait().expect("reaped");
    let partial = count(&stores, "SELECT COUNT(*) FROM turns").await;
    assert!(partial < TURNS as i64, "the kill came after the whole copy");

    let resumed = migrate(&stores, &["--verify"]).output().expect("runs");
    let text = said(&resumed);
    assert!(resumed.status.success(), "{text}");
    assert!(text.contains("integrity 100.0%"), "{text}");
    assert_eq!(
        count(&stores, "SELECT COUNT(*) FROM turns").await,
        TURNS as i64
    );
    assert_eq!(
        count(&stores, "SELECT COUNT(DISTINCT external_id) FROM turns").await,
        TURNS as i64
    );

    // The target serves what was copied.
    let search = mnemo()
        .arg("--config")
        .arg(&stores.to)
        .args(["search", "--tenant", "acme", "--user", "user0", "garden"])
        .env("MNEMO__STORAGE__ARCHIVE__URL", stores.database.url())
        .output()
        .expect("runs");
    assert!(search.status.success(), "{}", said(&search));
    assert!(said(&search).contains("Lisbon"), "{}", said(&search));

    let undone = migrate(&stores, &["--rollback"]).output().expect("runs");
    assert!(undone.status.success(), "{}", said(&undone));
    assert!(
        said(&undone).contains(&format!("removed {TURNS} turns")),
        "{}",
        said(&undone)
    );
    assert_eq!(count(&stores, "SELECT COUNT(*) FROM turns").await, 0);
    assert_eq!(count(&stores, "SELECT COUNT(*) FROM summaries").await, 0);
    assert_eq!(
        count(&stores, "SELECT COUNT(*) FROM emotion_state").await,
        0
    );
    assert_eq!(
        count(&stores, "SELECT COUNT(*) FROM graph_entities").await,
        0
    );
    assert_eq!(count(&stores, "SELECT seq FROM archive_head").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_refuses_one_store_twice_and_a_rollback_of_nothing() {
    let stores = stores().await;
    let same = mnemo()
        .args(["migrate", "--from"])
        .arg(&stores.from)
        .arg("--to")
        .arg(&stores.from)
        .output()
        .expect("runs");
    assert!(!same.status.success());
    assert!(said(&same).contains("same archive"), "{}", said(&same));

    let nothing = migrate(&stores, &["--rollback"]).output().expect("runs");
    assert!(!nothing.status.success());
    assert!(
        said(&nothing).contains("nothing to roll back"),
        "{}",
        said(&nothing)
    );
    let missing = mnemo()
        .args(["migrate", "--from", "/nonexistent/mnemo.toml", "--to"])
        .arg(&stores.to)
        .output()
        .expect("runs");
    assert!(!missing.status.success());
    assert!(
        said(&missing).contains("/nonexistent/mnemo.toml"),
        "{}",
        said(&missing)
    );
}
