//! The `mnemo` command. Thin: parses the command line, reads the configuration once
//! (file and environment), and calls the library.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mnemo_engine::{demo, Config};

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
        }
        Ok(())
    })
}
