//! The one error type of `mnemo-actors`.

use mnemo_storage::ErrorKind as StorageKind;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure, as a caller must handle it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A tier or actor is down or restarting; retry later.
    Unavailable,
    /// A bounded queue is full; retry later, more slowly.
    Busy,
    /// The deadline passed.
    Timeout,
    /// The input was refused; nothing was stored.
    InvalidInput,
    /// The thing asked for does not exist in the caller's scope.
    NotFound,
    /// Stored data could not be decoded.
    Corrupt,
    /// The engine is shutting down and takes no more work.
    ShuttingDown,
    /// A bug inside Mnemo.
    Internal,
}

impl ErrorKind {
    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Busy | ErrorKind::Timeout
        )
    }

    /// A stable, lower-case name for logs, metrics and API error codes.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Busy => "busy",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the actor layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A storage tier refused or failed.
    #[error(transparent)]
    Storage(std::sync::Arc<mnemo_storage::Error>),
    /// The actor is down (failed, waiting for its restart) or stopped.
    #[error("{actor} is unavailable: {reason}")]
    Down {
        /// The actor's name.
        actor: &'static str,
        /// Why.
        reason: String,
    },
    /// The actor's mailbox is full.
    #[error("{actor} is busy: its queue is full")]
    Busy {
        /// The actor's name.
        actor: &'static str,
    },
    /// The engine already has as many requests of this operation in flight as it can
    /// answer within their target latency (its admission limit).
    #[error(
        "the engine is at capacity for {operation}: {limit} requests are in flight, as many \
         as it answers in time; retry shortly"
    )]
    AtCapacity {
        /// The operation refused (`store`, `context`).
        operation: &'static str,
        /// Its admission limit when refused.
        limit: usize,
    },
    /// The processors are too far behind the archive to take more writes.
    #[error(
        "the engine is behind: its processors have {behind} stored turns to handle (the bound \
         is {limit}); retry once they catch up"
    )]
    Behind {
        /// Turns stored that the slowest processor has not handled.
        behind: u64,
        /// The bound.
        limit: u64,
    },
    /// The deadline passed before an answer.
    #[error("deadline passed: {0}")]
    Deadline(String),
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A handler panicked; the actor is being restarted.
    #[error("{actor} failed: {message}")]
    Panicked {
        /// The actor's name.
        actor: &'static str,
        /// The panic message.
        message: String,
    },
    /// Something that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<mnemo_storage::Error> for Error {
    fn from(err: mnemo_storage::Error) -> Self {
        Error::Storage(std::sync::Arc::new(err))
    }
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Storage(e) => match e.kind() {
                StorageKind::Unavailable => ErrorKind::Unavailable,
                StorageKind::Timeout => ErrorKind::Timeout,
                StorageKind::InvalidInput => ErrorKind::InvalidInput,
                StorageKind::NotFound => ErrorKind::NotFound,
                StorageKind::Corrupt => ErrorKind::Corrupt,
                StorageKind::Internal => ErrorKind::Internal,
            },
            Error::Down { .. } => ErrorKind::Unavailable,
            Error::Busy { .. } | Error::AtCapacity { .. } | Error::Behind { .. } => ErrorKind::Busy,
            Error::Deadline(_) => ErrorKind::Timeout,
            Error::ShuttingDown => ErrorKind::ShuttingDown,
            Error::Panicked { .. } => ErrorKind::Unavailable,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// Whether this error means the backend behind an actor cannot serve anyone now, so
    /// the actor should be restarted (as opposed to one request being wrong).
    pub fn is_backend_failure(&self) -> bool {
        matches!(
            self,
            Error::Storage(e) if matches!(e.kind(), StorageKind::Unavailable | StorageKind::Corrupt)
        )
    }
}
