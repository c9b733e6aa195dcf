//! `mnemo context`, `mnemo search` and `mnemo health` against the embedded store
//! (context and search also against a running server, see [`super::remote`]).

use std::io::Write;

use mnemo_storage::index::{DocKind, SearchQuery};
use mnemo_storage::model::{Scope, SessionId, Timestamp};
use serde::Serialize;

use super::error::CliError;
use super::remote::{self, RemoteArgs};
use super::{with_engine, StoreArgs, DEFAULT_TENANT};
use crate::config::Config;
use crate::engine::Engine;
use crate::ContextRequest;

/// Arguments of `mnemo context`.
#[derive(Debug, Clone, clap::Args)]
pub struct ContextArgs {
    /// The user whose memories to use.
    #[arg(long)]
    pub user: String,
    /// The user's tenant.
    #[arg(long, default_value = DEFAULT_TENANT)]
    pub tenant: String,
    /// The current session, whose last turns come first.
    #[arg(long)]
    pub session: Option<String>,
    /// Relevant items, at most (default: the configuration's).
    #[arg(long)]
    pub max_items: Option<usize>,
    /// Tokens of the rendered prompt, at most (default: the configuration's).
    #[arg(long)]
    pub token_budget: Option<usize>,
    /// Print the whole answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// What the next prompt is about.
    pub query: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// A running server to ask instead.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Arguments of `mnemo search`.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// The user whose turns and summaries to search.
    #[arg(long)]
    pub user: String,
    /// The user's tenant.
    #[arg(long, default_value = DEFAULT_TENANT)]
    pub tenant: String,
    /// Hits, at most.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Print the hits as JSON.
    #[arg(long)]
    pub json: bool,
    /// Words to look for.
    pub query: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// A running server to ask instead.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Arguments of `mnemo health`.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A search hit as `--json` prints it.
#[derive(Serialize)]
struct Hit<'a> {
    kind: DocKind,
    id: i64,
    session_id: &'a str,
    event_time: Timestamp,
    text: &'a str,
    score: f32,
}

fn write_json(out: &mut impl Write, value: &impl Serialize) -> Result<(), CliError> {
    let io = CliError::io("cannot write the answer");
    serde_json::to_writer_pretty(&mut *out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .map_err(io)
}

/// Assembles context for `args.query` and prints it to `out`: the prompt and the ranked
/// items, or with `args.json` the whole answer.
pub async fn context(
    engine: &Engine,
    args: &ContextArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let scope = Scope::parse(&args.tenant, &args.user)?;
    let session = args.session.clone().map(SessionId::new).transpose()?;
    let mut request = ContextRequest::new(scope, session, args.query.clone());
    request.max_items = args.max_items;
    request.token_budget = args.token_budget;
    let answer = engine.context(request).await?;
    if args.json {
        return write_json(out, &answer);
    }
    let mut write = || -> std::io::Result<()> {
        if !answer.degraded.is_empty() {
            writeln!(out, "degraded: {}", answer.degraded.join(", "))?;
        }
        writeln!(
            out,
            "{} recent turns, {} items, {} tokens",
            answer.recent.len(),
            answer.items.len(),
            answer.tokens
        )?;
        for item in &answer.items {
            let date = item
                .event_time
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            writeln!(
                out,
                "  {:.3}  {:?} {}  {date}  {}",
                item.score, item.kind, item.id, item.text
            )?;
        }
        writeln!(out, "\n{}", answer.prompt)?;
        out.flush()
    };
    write().map_err(CliError::io("cannot write the answer"))
}

/// Searches the user's turns and summaries for `args.query` and prints the hits to
/// `out`, best first (with `args.json`, as JSON).
pub async fn search(
    engine: &Engine,
    args: &SearchArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let scope = Scope::parse(&args.tenant, &args.user)?;
    let hits = engine
        .search(&scope, SearchQuery::new(args.query.clone(), args.limit))
        .await?;
    if args.json {
        let hits: Vec<Hit<'_>> = hits
            .iter()
            .map(|h| Hit {
                kind: h.kind,
                id: h.id,
                session_id: h.session_id.as_str(),
                event_time: h.event_time,
                text: &h.text,
                score: h.score,
            })
            .collect();
        return write_json(out, &hits);
    }
    let mut write = || -> std::io::Result<()> {
        for hit in &hits {
            writeln!(
                out,
                "{:.3}  {:?} {}  {}  {}  {}",
                hit.score,
                hit.kind,
                hit.id,
                hit.session_id,
                hit.event_time.format("%Y-%m-%d %H:%M"),
                hit.text
            )?;
        }
        writeln!(out, "{} hits", hits.len())?;
        out.flush()
    };
    write().map_err(CliError::io("cannot write the hits"))
}

/// Prints the engine's health to `out` as JSON.
pub fn health(engine: &Engine, out: &mut impl Write) -> Result<(), CliError> {
    write_json(out, &engine.health())
}

/// Waits until the processors have caught up, so answers include every stored turn.
async fn caught_up(engine: &Engine) -> Result<(), CliError> {
    let spinner = super::progress::spinner("processors catching up");
    let done = engine.wait_processed().await;
    spinner.finish_and_clear();
    Ok(done?)
}

/// `mnemo context` on the embedded store of `config` (or the server of `--url`),
/// printing to standard output.
pub async fn run_context(config: Config, args: ContextArgs) -> Result<(), CliError> {
    if let Some(url) = &args.remote.url {
        let out = &mut std::io::stdout().lock();
        return remote::context(url, args.remote.key.as_deref(), &args, out).await;
    }
    with_engine(config, &args.store, async |engine| {
        caught_up(engine).await?;
        context(engine, &args, &mut std::io::stdout().lock()).await
    })
    .await
}

/// `mnemo search` on the embedded store of `config` (or the server of `--url`),
/// printing to standard output.
pub async fn run_search(config: Config, args: SearchArgs) -> Result<(), CliError> {
    if let Some(url) = &args.remote.url {
        let out = &mut std::io::stdout().lock();
        return remote::search(url, args.remote.key.as_deref(), &args, out).await;
    }
    with_engine(config, &args.store, async |engine| {
        caught_up(engine).await?;
        search(engine, &args, &mut std::io::stdout().lock()).await
    })
    .await
}

/// `mnemo health` on the embedded store of `config`, printing to standard output.
pub async fn run_health(config: Config, args: HealthArgs) -> Result<(), CliError> {
    with_engine(config, &args.store, async |engine| {
        health(engine, &mut std::io::stdout().lock())
    })
    .await
}
