//! The one error type of the runners' library.

/// Result alias of this crate.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// Why an operation of a runner failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The in-process engine refused or failed the request.
    #[error(transparent)]
    Engine(#[from] mnemo_engine::Error),
    /// The server answered with an error.
    #[error("the server answered {status} {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error's stable code (`busy`, `timeout`, ...).
        code: String,
        /// Its message.
        message: String,
        /// Seconds the server asked the client to wait before retrying (`Retry-After`).
        retry_after_secs: Option<u64>,
    },
    /// The server could not be reached, or its answer could not be read.
    #[error("the server could not be reached: {0}")]
    Transport(String),
    /// Something the runner waited for did not happen in time.
    #[error("{0}")]
    Timeout(String),
    /// The runner's input (a data file, an argument) is not usable.
    #[error("{0}")]
    Input(String),
    /// The runner's async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl From<mnemo_engine::storage::Error> for BenchError {
    fn from(err: mnemo_engine::storage::Error) -> Self {
        BenchError::Engine(err.into())
    }
}

impl From<mnemo_engine::cli::CliError> for BenchError {
    fn from(err: mnemo_engine::cli::CliError) -> Self {
        match err {
            mnemo_engine::cli::CliError::Engine(e) => BenchError::Engine(e),
            other => BenchError::Input(other.to_string()),
        }
    }
}

impl BenchError {
    /// A stable name of the failure, to count errors by: the engine's error kind, the
    /// server's error code, `transport` or `input`.
    pub fn kind(&self) -> String {
        match self {
            BenchError::Engine(e) => e.kind().as_str().to_owned(),
            BenchError::Refused { code, .. } => code.clone(),
            BenchError::Transport(_) => "transport".into(),
            BenchError::Timeout(_) => "timeout".into(),
            BenchError::Input(_) => "input".into(),
            BenchError::Runtime(_) => "runtime".into(),
        }
    }

    /// How long a well-behaved client waits before its next call after this failure:
    /// the server's `Retry-After`, or for the in-process engine's `busy` what the HTTP
    /// service would have sent (one second).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            BenchError::Engine(e) if e.kind() == mnemo_engine::ErrorKind::Busy => {
                Some(std::time::Duration::from_secs(1))
            }
            BenchError::Refused {
                retry_after_secs, ..
            } => retry_after_secs.map(std::time::Duration::from_secs),
            _ => None,
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            BenchError::Engine(e) => e.is_retryable(),
            BenchError::Refused { status, .. } => *status == 429 || *status >= 503,
            BenchError::Transport(_) | BenchError::Timeout(_) => true,
            BenchError::Input(_) | BenchError::Runtime(_) => false,
        }
    }
}
