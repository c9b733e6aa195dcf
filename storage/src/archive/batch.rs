//! Preparing a batch of turns for any archive backend: validation (the whole batch is
//! refused on its first bad turn, naming its position), generated external ids and
//! event times, and the keys that make appends idempotent.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::limits::InputLimits;
use crate::model::{ExternalId, NewTurn, Scope, Timestamp, TimestampExt};
use crate::sql::Arg;

/// A validated turn with everything but its id decided.
#[derive(Debug, Clone)]
pub struct PreparedTurn {
    /// The turn as submitted.
    pub new: NewTurn,
    /// Its external id, generated when none was given.
    pub external_id: ExternalId,
    /// Its event time, now when none was given.
    pub event_time: Timestamp,
    /// Its metadata as JSON text.
    pub metadata: String,
}

/// What identifies a stored turn for idempotency: tenant, user, external id.
pub type TurnKey = (String, String, String);

/// The key of the turn `external_id` of `scope`.
pub fn key_of(scope: &Scope, external_id: &ExternalId) -> TurnKey {
    (
        scope.tenant.to_string(),
        scope.user.to_string(),
        external_id.to_string(),
    )
}

impl PreparedTurn {
    /// Its idempotency key.
    pub fn key(&self) -> TurnKey {
        key_of(&self.new.scope, &self.external_id)
    }

    /// The columns a backend inserts for `turns`, each as one array: `external_id,
    /// tenant, user_id, session_id, role, speaker, content, event_time, ingest_time,
    /// metadata`.
    pub fn columns<'a>(turns: &[&'a PreparedTurn], ingest_time: i64) -> Vec<Arg<'a>> {
        fn texts<'a>(
            turns: &[&'a PreparedTurn],
            field: impl Fn(&'a PreparedTurn) -> Option<&'a str>,
        ) -> Arg<'a> {
            Arg::Texts(turns.iter().map(|t| field(t).map(Cow::Borrowed)).collect())
        }
        vec![
            texts(turns, |t| Some(t.external_id.as_str())),
            texts(turns, |t| Some(t.new.scope.tenant.as_str())),
            texts(turns, |t| Some(t.new.scope.user.as_str())),
            texts(turns, |t| Some(t.new.session_id.as_str())),
            texts(turns, |t| Some(t.new.role.as_str())),
            texts(turns, |t| t.new.speaker.as_deref()),
            texts(turns, |t| Some(t.new.content.as_str())),
            Arg::Ints(
                turns
                    .iter()
                    .map(|t| Some(t.event_time.to_micros()))
                    .collect(),
            ),
            Arg::Ints(vec![Some(ingest_time); turns.len()]),
            texts(turns, |t| Some(t.metadata.as_str())),
        ]
    }
}

/// Validates a batch and fills in generated fields; refuses the whole batch on the first
/// bad turn, naming its position.
pub fn prepare_batch(
    turns: Vec<NewTurn>,
    limits: &InputLimits,
    now: Timestamp,
) -> Result<Vec<PreparedTurn>> {
    if turns.len() > limits.max_batch_turns {
        return Err(Error::invalid(
            "turns",
            format!(
                "a batch of {} turns is over the limit of {}",
                turns.len(),
                limits.max_batch_turns
            ),
        ));
    }
    let many = turns.len() > 1;
    let mut prepared = Vec::with_capacity(turns.len());
    for (i, turn) in turns.into_iter().enumerate() {
        turn.validate(limits).map_err(|e| match e {
            Error::InvalidInput { field, reason } if many => {
                Error::invalid(field, format!("{reason} (turn {i} of the batch)"))
            }
            other => other,
        })?;
        let external_id = match &turn.external_id {
            Some(id) => id.clone(),
            None => ExternalId::new(uuid::Uuid::new_v4().to_string())?,
        };
        let event_time = turn.event_time.unwrap_or(now);
        let metadata = serde_json::to_string(&turn.metadata)
            .map_err(|e| Error::invalid("metadata", e.to_string()))?;
        prepared.push(PreparedTurn {
            new: turn,
            external_id,
            event_time,
            metadata,
        });
    }
    Ok(prepared)
}
