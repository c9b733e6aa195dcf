//! The `mnemo` command. Thin: parses the command line, reads the configuration once
//! (file and environment), and calls the library.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mnemo_engine::{cli, demo, http, logging, mcp, Config, Engine};

// Why jemalloc: BENCHMARKS.md, "jemalloc as the binaries' allocator".
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Mnemo: a memory engine for conversational AI.
#[derive(Debug, Parser)]
#[command(name = "mnemo", version, about)]
struct Cli {
    /// Configuration file (default: the built-in defaults, as in config.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ingests a sample conversation into an embedded store and shows assembled context.
    Demo {
        /// Directory of the demo's embedded store.
        #[arg(long, default_value = "mnemo-demo-data")]
        data_dir: PathBuf,
    },
    /// Imports turns from JSON lines or a LoCoMo file into the embedded store.
    Import(cli::import::ImportArgs),
    /// Exports every turn of the embedded store as JSON lines.
    Export(cli::export::ExportArgs),
    /// Assembles context for a query from the embedded store.
    Context(cli::query::ContextArgs),
    /// Searches a user's turns and summaries in the embedded store.
    Search(cli::query::SearchArgs),
    /// Prints the embedded engine's health as JSON.
    Health(cli::query::HealthArgs),
    /// This node's full-text index: `rebuild` indexes the whole archive again (the node
    /// must be stopped).
    Index(cli::index::IndexArgs),
    /// Copies one store into another (SQLite <-> PostgreSQL, embedded graph -> Neo4j),
    /// resumable, with --dry-run, --verify and --rollback.
    Migrate(cli::migrate::MigrateArgs),
    /// Serves the HTTP API until SIGINT or SIGTERM, then shuts down gracefully.
    Serve {
        /// Address to listen on (default: `[server] listen`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Serves the memory as MCP tools (remember, recall, search_memory, forget_user,
    /// forget_turn) over stdio for an MCP client (newline-delimited JSON-RPC); exits when
    /// the client closes stdin. Logs go to stderr.
    Mcp {
        /// The tenant the tools act for.
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Prints a new API key for a tenant and the `[auth] keys` entry that accepts it.
    Keygen {
        /// The tenant the key acts for.
        #[arg(long)]
        tenant: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Command::Keygen { tenant } = &cli.command {
        return keygen(tenant);
    }
    // A server tells its operator what it does; a one-shot command only what went wrong.
    let default_level = match cli.command {
        // rmcp's own info events repeat each session's handshake; ours say what matters.
        Command::Serve { .. } | Command::Mcp { .. } => "info,rmcp=warn",
        _ => "warn",
    };
    let rust_log = std::env::var("RUST_LOG").ok();
    logging::install(&config.log, rust_log.as_deref(), default_level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo { data_dir } => {
                let mut out = std::io::stdout().lock();
                demo::run(&data_dir, config, &mut out).await?;
            }
            Command::Import(args) => {
                cli::import::run(config, args).await?;
            }
            Command::Export(args) => {
                cli::export::run(config, args).await?;
            }
            Command::Context(args) => cli::query::run_context(config, args).await?,
            Command::Search(args) => cli::query::run_search(config, args).await?,
            Command::Health(args) => cli::query::run_health(config, args).await?,
            Command::Index(args) => {
                cli::index::run(config, args).await?;
            }
            Command::Migrate(args) => {
                let env: Vec<(String, String)> = std::env::vars().collect();
                let clock = mnemo_engine::storage::clock::SystemClock::shared();
                cli::migrate::run(args, &env, clock).await?;
            }
            Command::Serve { listen } => serve(config, listen).await?,
            Command::Mcp { tenant } => mcp(config, &tenant).await?,
            Command::Keygen { .. } => {}
        }
        Ok(())
    });
    // A read of stdin (`mnemo mcp` stopped by a signal) blocks a thread that dropping the
    // runtime would wait for until the client writes or closes; nothing else is left.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

fn keygen(tenant: &str) -> anyhow::Result<()> {
    mnemo_engine::storage::model::TenantId::new(tenant).context("invalid tenant")?;
    let key = http::generate_key()?;
    println!("key: {key}");
    println!("Add to config.toml (only the hash is stored; keep the key secret):");
    println!("[auth]");
    println!("keys = [{}]", http::config_entry(tenant, &key));
    Ok(())
}

async fn serve(mut config: Config, listen: Option<String>) -> anyhow::Result<()> {
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    // Refuse bad keys before starting anything.
    http::Keys::from_config(&config.auth)?;
    if config.auth.keys.is_empty() {
        tracing::warn!("[auth] keys is empty, so every /v1 request gets 401; see `mnemo keygen`");
    }
    let listener = http::bind(&config.server.listen)
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    // Listening for signals before saying where it serves: a SIGTERM from then on drains.
    let stop = stop_signal();
    let engine = Engine::start(config.clone()).await?;
    tracing::info!("mnemo serving on http://{}", listener.local_addr()?);
    let served = http::run(listener, engine.clone(), config, stop).await;
    tracing::info!("stopped accepting requests; draining the engine");
    let drained = engine.shutdown().await;
    served?;
    drained?;
    Ok(())
}

async fn mcp(config: Config, tenant: &str) -> anyhow::Result<()> {
    use mnemo_engine::storage::model::TenantId;
    let tenant = TenantId::new(tenant).context("invalid --tenant")?;
    let stop = stop_signal();
    let engine = Engine::start(config).await?;
    tracing::info!(tenant = tenant.as_str(), "mnemo serving MCP on stdio");
    let clock = mnemo_engine::storage::clock::SystemClock::shared();
    let tools = mcp::MemoryTools::new(engine.clone(), tenant, clock);
    let served = mcp::run(tools, tokio::io::stdin(), tokio::io::stdout(), stop).await;
    let drained = engine.shutdown().await;
    served?;
    drained?;
    Ok(())
}

/// Listens for SIGINT and SIGTERM from now on; the future completes on the first.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let listening = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        let (Ok(mut int), Ok(mut term)) = listening else {
            tracing::warn!("cannot listen for signals; stop with SIGKILL");
            return std::future::pending().await;
        };
        let signal = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        tracing::info!("{signal} received: shutting down");
    }
}
