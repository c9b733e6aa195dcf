//! The LoCoMo JSON format (Maharana et al., ACL 2024) as turns to import.
//!
//! Each conversation becomes one user (`user_id` = its `sample_id`), each
//! `session_N` list one session (`session_N`), each turn a `user` turn spoken by its
//! `speaker`. A session's turns start at its `session_N_date_time` ("1:56 pm on 8 May,
//! 2023", read as UTC) and follow a minute apart. A shared photo's `blip_caption` is
//! folded into the content as ` [shares a photo: ...]`; `dia_id` and `img_url` go to the
//! metadata, and `<sample_id>:<dia_id>` is the external id, so importing twice stores
//! each turn once.
//!
//! [`questions`] reads the document's question-answer pairs with their evidence, for the
//! retrieval benchmark (`benches/src/bin/retrieval.rs`), normalised as the benchmark data's
//! README says.

use std::collections::HashSet;

use chrono::{Duration, NaiveDateTime};
use mnemo_storage::limits::InputLimits;
use mnemo_storage::model::{ExternalId, NewTurn, Role, Scope, SessionId, Timestamp};
use serde_json::{Map, Value};

use super::error::{CliError, Location};

/// The format's name, in messages.
pub const FORMAT: &str = "LoCoMo JSON";

/// One turn of the document: where it is, and the turn or why it was refused.
pub type Parsed = (Location, Result<NewTurn, String>);

/// Reads a session date such as `1:56 pm on 8 May, 2023` (as UTC).
pub fn parse_session_date(text: &str) -> Option<Timestamp> {
    let normalised = text.trim().to_uppercase();
    NaiveDateTime::parse_from_str(&normalised, "%I:%M %p ON %d %B, %Y")
        .ok()
        .map(|t| t.and_utc())
}

/// Every turn of the LoCoMo document `text`, in order (conversation, then session
/// number, then position), each ready to store in `tenant` or refused with a reason.
/// Fails only when the text is not a JSON array.
pub fn parse(text: &str, tenant: &str, limits: &InputLimits) -> Result<Vec<Parsed>, CliError> {
    let format_error = |message: String| CliError::Format {
        format: FORMAT,
        message,
    };
    let document: Value = serde_json::from_str(text).map_err(|e| format_error(e.to_string()))?;
    let Value::Array(conversations) = document else {
        return Err(format_error(
            "expected an array of conversations at the top level".into(),
        ));
    };
    let mut out = Vec::new();
    for (n, sample) in conversations.iter().enumerate() {
        let Some(sample_id) = sample.get("sample_id").and_then(Value::as_str) else {
            out.push((
                Location::Item(format!("conversation {}", n + 1)),
                Err("has no sample_id string".into()),
            ));
            continue;
        };
        let Some(conversation) = sample.get("conversation").and_then(Value::as_object) else {
            out.push((
                Location::Item(sample_id.to_owned()),
                Err("has no conversation object".into()),
            ));
            continue;
        };
        conversation_turns(sample_id, conversation, tenant, limits, &mut out);
    }
    Ok(out)
}

/// The sessions of a conversation in number order: `(N, turns)`.
fn sessions(conversation: &Map<String, Value>) -> Vec<(u32, &Vec<Value>)> {
    let mut sessions: Vec<(u32, &Vec<Value>)> = conversation
        .iter()
        .filter_map(|(key, value)| {
            let n = key.strip_prefix("session_")?.parse::<u32>().ok()?;
            Some((n, value.as_array()?))
        })
        .collect();
    sessions.sort_by_key(|(n, _)| *n);
    sessions
}

fn conversation_turns(
    sample_id: &str,
    conversation: &Map<String, Value>,
    tenant: &str,
    limits: &InputLimits,
    out: &mut Vec<Parsed>,
) {
    for (n, turns) in sessions(conversation) {
        let date_key = format!("session_{n}_date_time");
        let start = match conversation.get(&date_key).and_then(Value::as_str) {
            Some(text) => parse_session_date(text).ok_or_else(|| {
                format!("{date_key} {text:?} is not a date like \"1:56 pm on 8 May, 2023\"")
            }),
            None => Err(format!("{date_key} is missing")),
        };
        for (i, raw) in turns.iter().enumerate() {
            let dia_id = raw.get("dia_id").and_then(Value::as_str);
            let location = Location::Item(match dia_id {
                Some(dia_id) => format!("{sample_id} {dia_id}"),
                None => format!("{sample_id} session_{n} turn {}", i + 1),
            });
            let turn = start.clone().and_then(|start| {
                let minutes = i64::try_from(i).unwrap_or(i64::MAX);
                let event_time = start + Duration::minutes(minutes);
                turn(sample_id, n, raw, event_time, tenant, limits)
            });
            out.push((location, turn));
        }
    }
}

fn turn(
    sample_id: &str,
    session: u32,
    raw: &Value,
    event_time: Timestamp,
    tenant: &str,
    limits: &InputLimits,
) -> Result<NewTurn, String> {
    let field = |name: &str| -> Result<&str, String> {
        raw.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("has no {name} string"))
    };
    let speaker = field("speaker")?;
    let dia_id = field("dia_id")?;
    let text = field("text")?;
    let mut content = text.to_owned();
    if let Some(caption) = raw.get("blip_caption").and_then(Value::as_str) {
        content.push_str(&format!(" [shares a photo: {caption}]"));
    }
    let mut metadata = Map::new();
    metadata.insert("dia_id".into(), Value::String(dia_id.to_owned()));
    if let Some(img_url) = raw.get("img_url") {
        metadata.insert("img_url".into(), img_url.clone());
    }
    let build = || -> mnemo_storage::Result<NewTurn> {
        let mut turn = NewTurn::new(
            Scope::parse(tenant, sample_id)?,
            SessionId::new(format!("session_{session}"))?,
            Role::User,
            content,
        );
        turn.speaker = Some(speaker.to_owned());
        turn.event_time = Some(event_time);
        turn.metadata = Value::Object(metadata);
        turn.external_id = Some(ExternalId::new(format!("{sample_id}:{dia_id}"))?);
        turn.validate(limits)?;
        Ok(turn)
    };
    build().map_err(|e| e.to_string())
}

/// A question of a LoCoMo conversation, with the turns that hold its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The conversation (the user its turns were imported as).
    pub sample_id: String,
    /// Its position among the conversation's questions, from 0.
    pub index: usize,
    /// The question text.
    pub question: String,
    /// 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial.
    pub category: u8,
    /// The `dia_id`s of the evidence turns, normalised, each naming a turn of the
    /// conversation, without repeats.
    pub evidence: Vec<String>,
}

/// Normalises one evidence string into `dia_id`s: split on `;`, a stray colon after the
/// `D` dropped (`D:11:26`), leading zeros stripped (`D30:05`).
fn evidence_ids(raw: &str) -> Vec<String> {
    raw.split(';')
        .filter_map(|part| {
            let part = part.trim();
            let rest = part.strip_prefix('D')?;
            let rest = rest.strip_prefix(':').unwrap_or(rest);
            let (session, index) = rest.split_once(':')?;
            let number = |s: &str| s.trim().parse::<u32>().ok();
            Some(format!("D{}:{}", number(session)?, number(index)?))
        })
        .collect()
}

/// Every question of the LoCoMo document `text` that has evidence, in document order.
/// Evidence ids that still name no turn of their conversation after normalisation are
/// dropped, and a question left with none is skipped (the benchmark data's rules).
/// Fails only when the text is not a JSON array.
pub fn questions(text: &str) -> Result<Vec<Question>, CliError> {
    let document: Value = serde_json::from_str(text).map_err(|e| CliError::Format {
        format: FORMAT,
        message: e.to_string(),
    })?;
    let Value::Array(conversations) = document else {
        return Err(CliError::Format {
            format: FORMAT,
            message: "expected an array of conversations at the top level".into(),
        });
    };
    let mut out = Vec::new();
    for sample in &conversations {
        let (Some(sample_id), Some(conversation)) = (
            sample.get("sample_id").and_then(Value::as_str),
            sample.get("conversation").and_then(Value::as_object),
        ) else {
            continue;
        };
        let turns: HashSet<&str> = sessions(conversation)
            .into_iter()
            .flat_map(|(_, turns)| turns.iter())
            .filter_map(|t| t.get("dia_id").and_then(Value::as_str))
            .collect();
        let qa = sample.get("qa").and_then(Value::as_array);
        for (index, item) in qa.into_iter().flatten().enumerate() {
            let (Some(question), Some(category)) = (
                item.get("question").and_then(Value::as_str),
                item.get("category").and_then(Value::as_u64),
            ) else {
                continue;
            };
            let mut evidence: Vec<String> = Vec::new();
            let raw = item.get("evidence").and_then(Value::as_array);
            for id in raw.into_iter().flatten().filter_map(Value::as_str) {
                for id in evidence_ids(id) {
                    if turns.contains(id.as_str()) && !evidence.contains(&id) {
                        evidence.push(id);
                    }
                }
            }
            if evidence.is_empty() {
                continue;
            }
            out.push(Question {
                sample_id: sample_id.to_owned(),
                index,
                question: question.to_owned(),
                category: u8::try_from(category).unwrap_or(u8::MAX),
                evidence,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn session_dates_are_read() {
        let at = |y, mo, d, h, mi| chrono::Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap();
        assert_eq!(
            parse_session_date("1:56 pm on 8 May, 2023"),
            Some(at(2023, 5, 8, 13, 56))
        );
        assert_eq!(
            parse_session_date("12:24 am on 7 April, 2023"),
            Some(at(2023, 4, 7, 0, 24))
        );
        assert_eq!(
            parse_session_date("11:01 am on 17 December, 2022"),
            Some(at(2022, 12, 17, 11, 1))
        );
        assert_eq!(
            parse_session_date("12:05 pm on 30 June, 2023"),
            Some(at(2023, 6, 30, 12, 5))
        );
        assert_eq!(parse_session_date("yesterday"), None);
    }

    #[test]
    fn turns_follow_the_session_date_and_fold_in_captions() {
        let doc = serde_json::json!([{
            "sample_id": "c1",
            "conversation": {
                "speaker_a": "A", "speaker_b": "B",
                "session_2_date_time": "8:00 am on 2 May, 2023",
                "session_2": [{"speaker": "B", "dia_id": "D2:1", "text": "later"}],
                "session_1_date_time": "1:56 pm on 1 May, 2023",
                "session_1": [
                    {"speaker": "A", "dia_id": "D1:1", "text": "hi"},
                    {"speaker": "B", "dia_id": "D1:2", "text": "look", "blip_caption": "a dog",
                     "img_url": ["http://x/y.jpg"]},
                    {"speaker": "A", "text": "no id"}
                ],
                "session_3_date_time": "9:00 am on 3 May, 2023"
            }
        }]);
        let parsed = parse(&doc.to_string(), "t", &InputLimits::default()).unwrap();
        assert_eq!(parsed.len(), 4);
        let ok: Vec<&NewTurn> = parsed.iter().filter_map(|(_, t)| t.as_ref().ok()).collect();
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[0].content, "hi");
        assert_eq!(ok[1].content, "look [shares a photo: a dog]");
        assert_eq!(ok[1].metadata["img_url"][0], "http://x/y.jpg");
        assert_eq!(ok[1].external_id.as_ref().unwrap().as_str(), "c1:D1:2");
        assert_eq!(ok[1].speaker.as_deref(), Some("B"));
        assert_eq!(
            ok[1].event_time.unwrap() - ok[0].event_time.unwrap(),
            Duration::minutes(1)
        );
        assert_eq!(ok[2].session_id.as_str(), "session_2");
        assert_eq!(
            ok[2].event_time,
            parse_session_date("8:00 am on 2 May, 2023")
        );
        let (location, failed) = &parsed[2];
        assert_eq!(location, &Location::Item("c1 session_1 turn 3".into()));
        assert!(failed.as_ref().unwrap_err().contains("dia_id"));
        assert!(parse("{", "t", &InputLimits::default()).is_err());
    }
    #[test]
    fn evidence_is_normalised_and_checked_against_the_turns() {
        assert_eq!(evidence_ids("D8:6; D9:17"), vec!["D8:6", "D9:17"]);
        assert_eq!(evidence_ids("D:11:26"), vec!["D11:26"]);
        assert_eq!(evidence_ids("D30:05"), vec!["D30:5"]);
        assert!(evidence_ids("D9:1 D4:4").is_empty());
        let doc = serde_json::json!([{
            "sample_id": "c1",
            "conversation": {
                "session_1_date_time": "1:56 pm on 1 May, 2023",
                "session_1": [
                    {"speaker": "A", "dia_id": "D1:1", "text": "hi"},
                    {"speaker": "B", "dia_id": "D1:2", "text": "yo"}
                ]
            },
            "qa": [
                {"question": "q1", "answer": "a", "evidence": ["D1:2", "D1:02"], "category": 4},
                {"question": "q2", "evidence": ["D:1:1; D7:3"], "category": 5,
                 "adversarial_answer": "x"},
                {"question": "q3", "answer": "a", "evidence": ["D7:3"], "category": 1},
                {"question": "q4", "answer": "a", "evidence": [], "category": 2}
            ]
        }]);
        let questions = questions(&doc.to_string()).unwrap();
        assert_eq!(questions.len(), 2, "q3 and q4 are left with no evidence");
        assert_eq!(questions[0].evidence, vec!["D1:2"]);
        assert_eq!((questions[0].index, questions[0].category), (0, 4));
        assert_eq!(questions[1].evidence, vec!["D1:1"]);
        assert_eq!(questions[1].question, "q2");
        assert_eq!(questions[1].sample_id, "c1");
    }
}
