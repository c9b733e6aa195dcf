//! One turn as a line of JSON: the format `mnemo import` reads and `mnemo export`
//! writes.
//!
//! ```json
//! {"tenant":"acme","user_id":"alice","session_id":"s1","role":"user","speaker":"Alice",
//!  "content":"Hello","event_time":"2023-05-08T13:56:00Z","metadata":{},"external_id":"a-1"}
//! ```
//!
//! `tenant` defaults to the import's `--tenant`; `speaker`, `event_time` (RFC 3339; the
//! ingest time when missing), `metadata` (an object) and `external_id` (storing the same
//! one twice stores one turn) are optional. An export also writes `id` and
//! `ingest_time`; an import reads and ignores them (ids and ingest times are assigned by
//! the store).

use mnemo_storage::limits::InputLimits;
use mnemo_storage::model::{ExternalId, NewTurn, Role, Scope, SessionId, Timestamp, Turn};
use serde::{Deserialize, Serialize};

/// A turn as one line of JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnRecord {
    /// The turn's id in the store it was exported from (ignored by imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The tenant; the import's default tenant when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The user.
    pub user_id: String,
    /// The session.
    pub session_id: String,
    /// `user`, `assistant` or `system`.
    pub role: Role,
    /// The speaker's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// What was said.
    pub content: String,
    /// When it was said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<Timestamp>,
    /// When the exporting store took it (ignored by imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_time: Option<Timestamp>,
    /// Free-form metadata, a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

impl TurnRecord {
    /// The turn to store, in `default_tenant` unless the record names its tenant;
    /// refused when a field is invalid or breaks `limits`.
    pub fn into_new_turn(
        self,
        default_tenant: &str,
        limits: &InputLimits,
    ) -> mnemo_storage::Result<NewTurn> {
        let tenant = self.tenant.as_deref().unwrap_or(default_tenant);
        let scope = Scope::parse(tenant, &self.user_id)?;
        let mut turn = NewTurn::new(
            scope,
            SessionId::new(self.session_id)?,
            self.role,
            self.content,
        );
        turn.speaker = self.speaker;
        turn.event_time = self.event_time;
        if let Some(metadata) = self.metadata {
            turn.metadata = metadata;
        }
        turn.external_id = self.external_id.map(ExternalId::new).transpose()?;
        turn.validate(limits)?;
        Ok(turn)
    }
}

impl From<&Turn> for TurnRecord {
    fn from(turn: &Turn) -> Self {
        Self {
            id: Some(turn.id.0),
            tenant: Some(turn.scope.tenant.to_string()),
            user_id: turn.scope.user.to_string(),
            session_id: turn.session_id.to_string(),
            role: turn.role,
            speaker: turn.speaker.clone(),
            content: turn.content.clone(),
            event_time: Some(turn.event_time),
            ingest_time: Some(turn.ingest_time),
            metadata: Some(turn.metadata.clone()),
            external_id: Some(turn.external_id.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_line_takes_the_default_tenant() {
        let record: TurnRecord = serde_json::from_str(
            r#"{"user_id":"u","session_id":"s","role":"assistant","content":"hi"}"#,
        )
        .unwrap();
        let turn = record
            .into_new_turn("acme", &InputLimits::default())
            .unwrap();
        assert_eq!(turn.scope, Scope::parse("acme", "u").unwrap());
        assert_eq!(turn.role, Role::Assistant);
        assert!(turn.metadata.is_object());
        assert!(turn.event_time.is_none() && turn.external_id.is_none());
    }

    #[test]
    fn bad_fields_are_refused_by_name() {
        let bad = |line: &str| -> String {
            match serde_json::from_str::<TurnRecord>(line) {
                Err(e) => e.to_string(),
                Ok(r) => r
                    .into_new_turn("t", &InputLimits::default())
                    .unwrap_err()
                    .to_string(),
            }
        };
        assert!(
            bad(r#"{"user_id":"u","session_id":"s","role":"bot","content":"x"}"#).contains("bot")
        );
        assert!(
            bad(r#"{"user_id":"u","session_id":"s","role":"user","content":"x","colour":1}"#)
                .contains("colour")
        );
        assert!(
            bad(r#"{"user_id":"","session_id":"s","role":"user","content":"x"}"#)
                .contains("user_id")
        );
        assert!(bad(
            r#"{"user_id":"u","session_id":"s","role":"user","content":"x","metadata":[1]}"#
        )
        .contains("metadata"));
        assert!(!bad(
            r#"{"user_id":"u","session_id":"s","role":"user","content":"x","event_time":"May 8"}"#
        )
        .is_empty());
    }
}
