//! Preparing a batch of turns for any archive backend: validation (the whole batch is
//! refused on its first bad turn, naming its position), generated external ids and
//! event times, and the keys that make appends idempotent.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::limits::InputLimits;
use crate::model::{
    EmotionScores, ExternalId, NewTurn, Scope, ScoredTurn, Timestamp, TimestampExt,
};
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
    /// Its emotion scores, when scored before storing.
    pub emotion: Option<EmotionScores>,
    /// The same as JSON text.
    pub emotion_json: Option<String>,
    /// Its importance, when scored before storing.
    pub importance: Option<f32>,
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
    /// metadata, emotion, importance`.
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
            texts(turns, |t| t.emotion_json.as_deref()),
            Arg::Floats(turns.iter().map(|t| t.importance.map(f64::from)).collect()),
        ]
    }
}

/// Validates a batch and fills in generated fields; refuses the whole batch on the first
/// bad turn, naming its position.
pub fn prepare_batch(
    turns: Vec<ScoredTurn>,
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
    for (i, scored) in turns.into_iter().enumerate() {
        let ScoredTurn {
            turn,
            emotion,
            importance,
        } = scored;
        let checked = turn.validate(limits).and_then(|()| match importance {
            Some(v) if !(0.0..=1.0).contains(&v) => Err(Error::invalid(
                "importance",
                format!("{v} is not in [0, 1]"),
            )),
            _ => Ok(()),
        });
        checked.map_err(|e| match e {
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
        let emotion_json = emotion
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| Error::invalid("emotion", e.to_string()))?;
        prepared.push(PreparedTurn {
            new: turn,
            external_id,
            event_time,
            metadata,
            emotion,
            emotion_json,
            importance,
        });
    }
    refuse_conflicting_repeats(&prepared)?;
    Ok(prepared)
}

/// Two turns of one batch under one external id: the archive would store the first and
/// answer the second with it (`created: false`), silently dropping the second's content.
/// The same turn sent twice is a harmless repeat; a different one is refused.
fn refuse_conflicting_repeats(prepared: &[PreparedTurn]) -> Result<()> {
    if prepared.len() < 2 {
        return Ok(());
    }
    // Keys borrowed from the batch: this runs on every append.
    let mut first: std::collections::HashMap<(&str, &str, &str), usize> =
        std::collections::HashMap::with_capacity(prepared.len());
    for (i, turn) in prepared.iter().enumerate() {
        if turn.new.external_id.is_none() {
            continue; // a generated id is new
        }
        let key = (
            turn.new.scope.tenant.as_str(),
            turn.new.scope.user.as_str(),
            turn.external_id.as_str(),
        );
        match first.entry(key) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(seen) => {
                let j = *seen.get();
                if prepared[j].new != turn.new {
                    return Err(Error::invalid(
                        "external_id",
                        format!(
                            "turn {i} of the batch has the external id {:?} of turn {j} but \
                             not the same session, role, speaker, content, time or metadata",
                            turn.external_id.as_str()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Role, SessionId};

    fn turn(user: &str, external_id: Option<&str>, content: &str) -> NewTurn {
        NewTurn {
            scope: Scope::parse("t", user).unwrap(),
            session_id: SessionId::new("s").unwrap(),
            role: Role::User,
            speaker: None,
            content: content.into(),
            event_time: None,
            metadata: serde_json::json!({}),
            external_id: external_id.map(|id| ExternalId::new(id).unwrap()),
        }
    }

    fn prepare(turns: Vec<NewTurn>) -> Result<Vec<PreparedTurn>> {
        let turns = turns.into_iter().map(ScoredTurn::from).collect();
        prepare_batch(turns, &InputLimits::default(), chrono::Utc::now())
    }

    #[test]
    fn a_repeated_external_id_must_be_the_same_turn() {
        // The same turn twice: a harmless repeat, stored once by the archive.
        let same = vec![
            turn("u", Some("m1"), "hello"),
            turn("u", Some("m1"), "hello"),
        ];
        assert_eq!(prepare(same).unwrap().len(), 2);
        // Other content under the same id: refused, naming both positions.
        let other = vec![
            turn("u", Some("m0"), "first"),
            turn("u", Some("m1"), "hello"),
            turn("u", Some("m1"), "goodbye"),
        ];
        let err = prepare(other).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field: "external_id", reason } if reason.contains("turn 2") && reason.contains("turn 1")),
            "{err}"
        );
        // The same external id for two users, and turns without one: no conflict.
        let fine = vec![
            turn("u", Some("m1"), "hello"),
            turn("v", Some("m1"), "goodbye"),
            turn("u", None, "one"),
            turn("u", None, "two"),
        ];
        assert_eq!(prepare(fine).unwrap().len(), 4);
    }
}
