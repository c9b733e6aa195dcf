//! The `mnemo` command. Thin: parses the command line, reads the configuration once
//! (file and environment), and calls the library.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mnemo_engine::{cli, demo, Config};

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
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
        }
        Ok(())
    })
}
