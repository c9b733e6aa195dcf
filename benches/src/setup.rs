//! How a runner gets its in-process engine: the configuration (embedded defaults, or a
//! file such as `config.server.toml`, with `MNEMO__...` overrides from the environment
//! the binary passes in), and a data directory of its own.

use std::path::{Path, PathBuf};

use mnemo_engine::storage::graph::sql::graph_path;
use mnemo_engine::{Config, Engine};
use tempfile::TempDir;

use crate::error::{BenchError, Result};

/// What the in-process runners take alike: their engine's configuration and data
/// directory, and where their figures go.
#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// Engine configuration file (default: the embedded defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory of the embedded stores (default: a fresh temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// An engine started for a run, with the directory it keeps its embedded stores in.
#[derive(Debug)]
pub struct LocalEngine {
    /// The engine.
    pub engine: Engine,
    /// The configuration it runs with.
    pub config: Config,
    /// A temporary data directory, removed when the run ends.
    _temp: Option<TempDir>,
}

impl LocalEngine {
    /// Starts an engine on `config`. Without `data_dir` the embedded stores go to a fresh
    /// temporary directory (removed at the end), so every run starts empty.
    pub async fn start(mut config: Config, data_dir: Option<&Path>) -> Result<Self> {
        let temp = match data_dir {
            Some(dir) => {
                config.storage.data_dir = dir.to_owned();
                None
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("mnemo-bench-")
                    .tempdir()
                    .map_err(|e| BenchError::Input(format!("cannot make a data directory: {e}")))?;
                config.storage.data_dir = temp.path().to_owned();
                Some(temp)
            }
        };
        let engine = Engine::start(config.clone()).await?;
        Ok(Self {
            engine,
            config,
            _temp: temp,
        })
    }

    /// The full-text index's directory.
    pub fn index_dir(&self) -> PathBuf {
        let storage = &self.config.storage;
        storage.resolve(&storage.index.path)
    }

    /// The SQLite archive's files and those of the embedded graph beside it (database,
    /// WAL, shared memory), or `None` when the archive is on a server.
    pub fn archive_files(&self) -> Option<Vec<PathBuf>> {
        let storage = &self.config.storage;
        let path = storage.archive.url.strip_prefix("sqlite:")?;
        let archive = storage.resolve(path);
        let graph = graph_path(&archive);
        let mut files = Vec::new();
        for db in [archive, graph] {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = db.clone().into_os_string();
                name.push(suffix);
                files.push(PathBuf::from(name));
            }
        }
        Some(files)
    }
}

/// The runner's configuration: `file`, or the built-in defaults, then the `MNEMO__...`
/// entries of `env`.
pub fn load_config(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config> {
    Ok(Config::load(file, env).map_err(mnemo_engine::Error::from)?)
}

/// Runs a runner's `run` to completion on the runtime every runner uses: two worker
/// threads, one per core of the reference machine.
pub fn block_on<F: std::future::Future>(run: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    Ok(runtime.block_on(run))
}
