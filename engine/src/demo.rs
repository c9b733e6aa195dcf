//! `mnemo demo`: an embedded engine in a data directory, fed a sample conversation that
//! ships with Mnemo (a user over two months, written for the project), then asked
//! questions that need memories from weeks before.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use mnemo_storage::model::{ExternalId, NewTurn, Role, Scope, SessionId, Timestamp};
use serde::Deserialize;

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::{ContextAnswer, ContextRequest};

/// The sample conversation, JSON lines.
pub const CONVERSATION: &str = include_str!("../data/demo_conversation.jsonl");
/// The questions the demo asks, one per line.
pub const QUESTIONS: &str = include_str!("../data/demo_questions.txt");

/// The demo's tenant and user.
pub const TENANT: &str = "demo";
/// The demo's user.
pub const USER: &str = "maya";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoTurn {
    session_id: String,
    role: String,
    speaker: Option<String>,
    content: String,
    event_time: Timestamp,
}

/// The sample conversation as turns to store (external ids make a second run store
/// nothing new).
pub fn conversation() -> Result<Vec<NewTurn>> {
    let scope = Scope::parse(TENANT, USER)?;
    CONVERSATION
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let t: DemoTurn = serde_json::from_str(line)
                .map_err(|e| Error::Startup(format!("demo conversation line {}: {e}", n + 1)))?;
            let mut turn = NewTurn::new(
                scope.clone(),
                SessionId::new(t.session_id)?,
                Role::parse(&t.role)?,
                t.content,
            );
            turn.speaker = t.speaker;
            turn.event_time = Some(t.event_time);
            turn.external_id = Some(ExternalId::new(format!("demo-{}", n + 1))?);
            Ok(turn)
        })
        .collect()
}

fn print_answer(
    out: &mut impl Write,
    question: &str,
    answer: &ContextAnswer,
) -> std::io::Result<()> {
    writeln!(out, "\n=== {question}")?;
    let timings: Vec<String> = answer
        .timings_ms
        .iter()
        .map(|(tier, ms)| format!("{tier} {ms:.2} ms"))
        .collect();
    writeln!(out, "timings: {}", timings.join(", "))?;
    if !answer.degraded.is_empty() {
        writeln!(out, "degraded: {}", answer.degraded.join(", "))?;
    }
    writeln!(
        out,
        "{} items, {} tokens:",
        answer.items.len(),
        answer.tokens
    )?;
    for item in &answer.items {
        let date = item
            .event_time
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let text: String = item.text.chars().take(140).collect();
        writeln!(out, "  {:.3}  {:?} {date}  {text}", item.score, item.kind)?;
    }
    Ok(())
}

/// Runs the demo in `data_dir` (created if needed), printing to `out`.
pub async fn run(data_dir: &Path, mut config: Config, out: &mut impl Write) -> Result<()> {
    let io = Error::Output;
    config.storage.data_dir = data_dir.to_owned();
    let started = Instant::now();
    let engine = Engine::start(config).await?;
    writeln!(out, "Mnemo demo: embedded engine in {}", data_dir.display()).map_err(io)?;

    let turns = conversation()?;
    let total = turns.len();
    let ingest = Instant::now();
    let mut created = 0;
    for chunk in turns.chunks(64) {
        created += engine
            .store_batch_paced(chunk.to_vec())
            .await?
            .iter()
            .filter(|a| a.created)
            .count();
    }
    let ingest_ms = ingest.elapsed().as_secs_f64() * 1000.0;
    writeln!(
        out,
        "stored {total} turns ({created} new) over {} sessions in {ingest_ms:.1} ms",
        {
            let mut sessions: Vec<&str> = CONVERSATION
                .lines()
                .filter_map(|l| l.split("\"session_id\": \"").nth(1))
                .filter_map(|rest| rest.split('"').next())
                .collect();
            sessions.dedup();
            sessions.len()
        }
    )
    .map_err(io)?;
    let processing = Instant::now();
    engine.wait_processed().await?;
    writeln!(
        out,
        "processors caught up in {:.1} ms (emotion, index, summaries, graph)",
        processing.elapsed().as_secs_f64() * 1000.0
    )
    .map_err(io)?;

    let scope = Scope::parse(TENANT, USER)?;
    let last_session = turns
        .last()
        .map(|t| t.session_id.clone())
        .ok_or_else(|| Error::Startup("the demo conversation is empty".into()))?;
    let mut last_answer = None;
    for question in QUESTIONS.lines().filter(|l| !l.trim().is_empty()) {
        let mut request = ContextRequest::new(scope.clone(), Some(last_session.clone()), question);
        request.max_recent = Some(2);
        request.max_items = Some(6);
        request.deadline = Some(Duration::from_millis(200));
        let answer = engine.context(request).await?;
        print_answer(out, question, &answer).map_err(io)?;
        last_answer = Some(answer);
    }
    if let Some(answer) = last_answer {
        if let Some(emotion) = &answer.emotion {
            let mut labels: Vec<_> = emotion.scores.labels.iter().collect();
            labels.sort_by(|a, b| b.1.total_cmp(a.1));
            let top: Vec<String> = labels
                .iter()
                .take(3)
                .map(|(k, v)| format!("{k} {v:.2}"))
                .collect();
            writeln!(
                out,
                "\nMaya's emotion state over {} turns: valence {:+.2}, arousal {:.2}; {}",
                emotion.turns,
                emotion.scores.valence,
                emotion.scores.arousal,
                top.join(", ")
            )
            .map_err(io)?;
        }
        let entities: Vec<String> = answer
            .entities
            .iter()
            .map(|e| {
                format!(
                    "{} ({}, {} mentions)",
                    e.entity.name, e.entity.kind, e.mentions
                )
            })
            .collect();
        writeln!(out, "Strongest entities: {}", entities.join("; ")).map_err(io)?;
    }
    writeln!(out, "\nThe prompt for the last question:\n").map_err(io)?;
    let mut request = ContextRequest::new(
        scope,
        Some(last_session),
        QUESTIONS.lines().last().unwrap_or_default(),
    );
    request.deadline = Some(Duration::from_millis(200));
    let answer = engine.context(request).await?;
    writeln!(out, "{}", answer.prompt).map_err(io)?;
    engine.shutdown().await?;
    writeln!(out, "done in {:.1} s", started.elapsed().as_secs_f64()).map_err(io)?;
    Ok(())
}
