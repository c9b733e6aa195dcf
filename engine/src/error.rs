//! The one error type of `mnemo-engine`.

pub use mnemo_actors::ErrorKind;

use crate::config::ConfigError;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The engine could not start.
    #[error("the engine could not start: {0}")]
    Startup(String),
    /// Output (a report, an export) could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// A request failed in the actor layer (or the storage beneath it).
    #[error(transparent)]
    Actor(#[from] mnemo_actors::Error),
}

impl From<mnemo_storage::Error> for Error {
    fn from(err: mnemo_storage::Error) -> Self {
        Error::Actor(err.into())
    }
}

impl Error {
    /// The kind of this error: tells whether retrying can help.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::InvalidInput,
            Error::Startup(_) => ErrorKind::Unavailable,
            Error::Output(_) => ErrorKind::Unavailable,
            Error::Actor(e) => e.kind(),
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}
