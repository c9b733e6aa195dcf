//! The one error type of `mnemo-storage`, and the kind that tells a caller whether a retry
//! can help.

use std::fmt;

/// Result alias used by every fallible function of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
///
/// `Unavailable` and `Timeout` are transient: the same call may succeed later. Every
/// other kind is final for that input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The backend cannot be reached or refused the work for now (I/O, connection, busy).
    Unavailable,
    /// The backend did not answer in time.
    Timeout,
    /// The caller's input is not acceptable; nothing was stored.
    InvalidInput,
    /// The thing asked for does not exist (in the caller's scope).
    NotFound,
    /// Stored data could not be decoded; the store needs attention.
    Corrupt,
    /// A bug or an unexpected state inside Mnemo.
    Internal,
}

impl ErrorKind {
    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }

    /// A stable, lower-case name for logs, metrics labels and API error codes.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a storage tier.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the caller's input was refused; nothing was stored.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field that was refused, as the API names it (`content`, `user_id`, ...).
        field: &'static str,
        /// Why, in words a user can act on.
        reason: String,
    },
    /// The thing asked for does not exist in the caller's scope.
    #[error("not found: {0}")]
    NotFound(String),
    /// The backend cannot be reached or is busy.
    #[error("{backend} unavailable: {message}")]
    Unavailable {
        /// Which backend (`sqlite archive`, `tantivy index`, ...).
        backend: &'static str,
        /// What the backend said.
        message: String,
    },
    /// The backend did not answer in time.
    #[error("{backend} timed out: {message}")]
    Timeout {
        /// Which backend.
        backend: &'static str,
        /// What timed out.
        message: String,
    },
    /// Stored data could not be decoded.
    #[error("{backend} holds corrupt data: {message}")]
    Corrupt {
        /// Which backend.
        backend: &'static str,
        /// What could not be decoded.
        message: String,
    },
    /// A bug or unexpected state inside Mnemo.
    #[error("internal error in {backend}: {message}")]
    Internal {
        /// Which backend.
        backend: &'static str,
        /// What happened.
        message: String,
    },
}

impl Error {
    /// The kind of this error: tells whether a retry can help.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// Shorthand for an [`Error::InvalidInput`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for an [`Error::Unavailable`].
    pub fn unavailable(backend: &'static str, message: impl fmt::Display) -> Self {
        Error::Unavailable {
            backend,
            message: message.to_string(),
        }
    }

    /// Shorthand for an [`Error::Corrupt`].
    pub fn corrupt(backend: &'static str, message: impl fmt::Display) -> Self {
        Error::Corrupt {
            backend,
            message: message.to_string(),
        }
    }

    /// Shorthand for an [`Error::Internal`].
    pub fn internal(backend: &'static str, message: impl fmt::Display) -> Self {
        Error::Internal {
            backend,
            message: message.to_string(),
        }
    }

    /// Classifies an sqlx error from `backend`.
    pub fn from_sqlx(backend: &'static str, err: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match err {
            E::PoolTimedOut => Error::Timeout {
                backend,
                message: "no database connection became free in time".into(),
            },
            E::Io(_) | E::PoolClosed | E::WorkerCrashed | E::Tls(_) | E::Protocol(_) => {
                Error::unavailable(backend, err)
            }
            E::ColumnDecode { .. }
            | E::Decode(_)
            | E::ColumnNotFound(_)
            | E::TypeNotFound { .. } => Error::corrupt(backend, err),
            E::RowNotFound => Error::NotFound(err.to_string()),
            E::Migrate(_) => Error::corrupt(backend, err),
            E::Database(ref db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                match classify_database_code(&code) {
                    ErrorKind::Timeout => Error::Timeout {
                        backend,
                        message: err.to_string(),
                    },
                    ErrorKind::Unavailable => Error::unavailable(backend, err),
                    ErrorKind::Corrupt => Error::corrupt(backend, err),
                    _ => Error::internal(backend, err),
                }
            }
            other => Error::internal(backend, other),
        }
    }
}

/// Maps a database error code to a kind. PostgreSQL SQLSTATEs have five characters;
/// SQLite result codes are decimal numbers of at most four digits.
fn classify_database_code(code: &str) -> ErrorKind {
    if code.len() == 5 {
        // Class 08 connection, 53 resources, 57 operator intervention (57014 is a
        // statement timeout), 40001/40P01 serialization failure and deadlock.
        if code == "57014" {
            ErrorKind::Timeout
        } else if ["08", "53", "57"].iter().any(|c| code.starts_with(c))
            || code == "40001"
            || code == "40P01"
        {
            ErrorKind::Unavailable
        } else if code.starts_with("XX") {
            ErrorKind::Corrupt
        } else {
            ErrorKind::Internal
        }
    } else {
        // SQLite primary code is the low byte of the extended code.
        match code.parse::<i64>().map(|c| c & 0xff) {
            // BUSY, LOCKED, IOERR, FULL, CANTOPEN
            Ok(5 | 6 | 10 | 13 | 14) => ErrorKind::Unavailable,
            // CORRUPT, NOTADB
            Ok(11 | 26) => ErrorKind::Corrupt,
            _ => ErrorKind::Internal,
        }
    }
}
