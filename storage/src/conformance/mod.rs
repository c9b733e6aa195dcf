//! The conformance suites: one test body per behaviour of each tier trait, run against
//! every backend of that trait.
//!
//! A backend joins a suite by providing a factory (e.g. [`archive::ArchiveFactory`])
//! that opens it at one location, and by invoking the suite's macro (e.g.
//! [`archive_conformance!`](crate::archive_conformance)) inside a test module; the macro
//! expands to one `#[tokio::test]` per body. The embedded backends' factories are in
//! [`embedded`]; those of the server backends beside it ([`postgres`], [`redis`]).

pub mod archive;
pub mod embedded;
pub mod graph;
pub mod index;
pub mod neo4j;
pub mod postgres;
pub mod recent;
pub mod redis;

use chrono::TimeZone;

use crate::model::{NewTurn, Role, Scope, SessionId, Timestamp, Turn, TurnId};

/// A fixed instant the suites start their clocks at: 2026-01-01T00:00:00Z.
pub fn t0() -> Timestamp {
    chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// `t0()` plus `secs` seconds.
pub fn at(secs: i64) -> Timestamp {
    t0() + chrono::Duration::seconds(secs)
}

/// A scope from literal ids.
pub fn scope(tenant: &str, user: &str) -> Scope {
    Scope::parse(tenant, user).expect("valid test ids")
}

/// A session id from a literal.
pub fn session(id: &str) -> SessionId {
    SessionId::new(id).expect("valid test id")
}

/// A user turn with the given content.
pub fn new_turn(scope: &Scope, session_id: &str, content: &str) -> NewTurn {
    NewTurn::new(scope.clone(), session(session_id), Role::User, content)
}

/// A turn as the archive would have stored it, for tiers that take stored turns.
pub fn stored_turn(id: i64, scope: &Scope, session_id: &str, content: &str) -> Turn {
    Turn {
        id: TurnId(id),
        external_id: crate::model::ExternalId::new(format!("ext-{id}")).expect("valid id"),
        scope: scope.clone(),
        session_id: session(session_id),
        role: if id % 2 == 0 {
            Role::Assistant
        } else {
            Role::User
        },
        speaker: None,
        content: content.to_owned(),
        event_time: at(id),
        ingest_time: at(id),
        metadata: serde_json::json!({ "n": id }),
        emotion: None,
        importance: None,
    }
}

/// Text in scripts and symbols that storage must keep byte for byte.
pub const UNICODE_SAMPLES: &[&str] = &[
    "I ❤️ sushi 🍣 and 🇯🇵 trips",
    "我喜欢在东京吃寿司",
    "مرحبا، أنا أحب القهوة",
    "שלום עולם",
    "Zoë's café – naïve résumé",
    "e\u{301} composed vs é precomposed",
];

/// Text a store that spliced input into SQL, Cypher, a Lua script or a key would break
/// on: quotes, backslashes, SQL and Cypher fragments, parameter and template syntax.
/// None holds a control character, so each is also a valid id and entity name. Stores
/// must keep them byte for byte and never run them.
pub const HOSTILE_SAMPLES: &[&str] = &[
    "it's Zoë's \"quoted\" `word`",
    "back\\slash \\' \\\" \\\\ \\n end\\",
    "'; DROP TABLE turns; --",
    "\") DETACH DELETE n //",
    "$param $1 ${x} {} {name} %s ?1 :name @x",
    "Robert'); DELETE FROM graph_entities; --",
    "] } ) MATCH (n) RETURN n // */ /* \u{2028} ☃ 雪",
];

/// Content with line breaks, tabs and quotes (content may hold them; ids may not).
pub const MULTILINE_SAMPLE: &str = "first line\nsecond 'line'\r\n\tthird \"line\" \\ end";
