//! The `mnemo` subcommands that work on the configured store: `import`, `export`,
//! `context`, `search`, `health`, `index rebuild` and `migrate`.
//!
//! Each command has a library function that takes an [`Engine`](crate::Engine) and
//! explicit readers and writers (what tests call), and a `run` function that the binary
//! calls with the parsed arguments: it opens the embedded engine from the configuration,
//! does the work on standard input and output, and shuts the engine down.

pub mod error;
pub mod export;
pub mod import;
pub mod index;
pub mod locomo;
pub mod migrate;
pub mod progress;
pub mod query;
pub mod record;
pub mod remote;

use std::path::PathBuf;

pub use error::{CliError, Failure, Location};

use crate::config::Config;
use crate::engine::Engine;

/// The tenant used when none is given.
pub const DEFAULT_TENANT: &str = "default";

/// Arguments every command on the embedded store takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Data directory of the embedded store (overrides `storage.data_dir` of the
    /// configuration).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Starts an embedded engine on `config`, in `store.data_dir` when given.
pub async fn open(mut config: Config, store: &StoreArgs) -> Result<Engine, CliError> {
    if let Some(dir) = &store.data_dir {
        config.storage.data_dir = dir.clone();
    }
    Ok(Engine::start(config).await?)
}

/// Runs `work` on an engine opened with [`open`], then shuts the engine down, also when
/// `work` failed (the first error is the one answered).
pub async fn with_engine<T, F>(config: Config, store: &StoreArgs, work: F) -> Result<T, CliError>
where
    F: AsyncFnOnce(&Engine) -> Result<T, CliError>,
{
    let engine = open(config, store).await?;
    let result = work(&engine).await;
    let closed = engine.shutdown().await;
    let value = result?;
    closed?;
    Ok(value)
}
