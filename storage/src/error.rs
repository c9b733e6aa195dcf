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
    /// A backend's client library failed; its error is kept as the source, and `kind`
    /// says what it means for the caller (whether a retry can help).
    #[error("{}", backend_message(backend, *kind, source))]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What the failure means.
        kind: ErrorKind,
        /// The client library's error.
        #[source]
        source: BoxError,
    },
}

/// A backend client's error, kept as the source of an [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How an [`Error::Backend`] reads: the same words as the variant of its kind.
fn backend_message(backend: &str, kind: ErrorKind, source: &BoxError) -> String {
    match kind {
        ErrorKind::Unavailable => format!("{backend} unavailable: {source}"),
        ErrorKind::Timeout => format!("{backend} timed out: {source}"),
        ErrorKind::Corrupt => format!("{backend} holds corrupt data: {source}"),
        ErrorKind::NotFound => format!("not found: {source}"),
        ErrorKind::InvalidInput => format!("{backend} refused the input: {source}"),
        ErrorKind::Internal => format!("internal error in {backend}: {source}"),
    }
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
            Error::Backend { kind, .. } => *kind,
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

    /// A backend client's error, kept as the source, with what it means.
    pub fn backend(backend: &'static str, kind: ErrorKind, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            backend,
            kind,
            source: source.into(),
        }
    }

    /// Classifies an sqlx error from `backend`, keeping it as the source.
    pub fn from_sqlx(backend: &'static str, err: sqlx::Error) -> Self {
        use sqlx::Error as E;
        let kind = match &err {
            E::PoolTimedOut => {
                return Error::Timeout {
                    backend,
                    message: "no database connection became free in time".into(),
                }
            }
            E::Io(_) | E::PoolClosed | E::WorkerCrashed | E::Tls(_) | E::Protocol(_) => {
                ErrorKind::Unavailable
            }
            E::ColumnDecode { .. }
            | E::Decode(_)
            | E::ColumnNotFound(_)
            | E::TypeNotFound { .. }
            | E::Migrate(_) => ErrorKind::Corrupt,
            E::RowNotFound => ErrorKind::NotFound,
            E::Database(db) => {
                classify_database_code(&db.code().map(|c| c.into_owned()).unwrap_or_default())
            }
            _ => ErrorKind::Internal,
        };
        Error::backend(backend, kind, err)
    }

    /// Classifies a rusqlite error from `backend` (SQLite's reader threads), keeping it
    /// as the source.
    pub fn from_rusqlite(backend: &'static str, err: rusqlite::Error) -> Self {
        use rusqlite::Error as E;
        let kind = match &err {
            E::SqliteFailure(code, _) => classify_database_code(&code.extended_code.to_string()),
            E::Utf8Error(_)
            | E::FromSqlConversionFailure(..)
            | E::IntegralValueOutOfRange(..)
            | E::InvalidColumnType(..) => ErrorKind::Corrupt,
            _ => ErrorKind::Internal,
        };
        Error::backend(backend, kind, err)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_error_is_kept_as_the_source_and_says_whether_to_retry() {
        let err = Error::from_sqlx("sqlite archive", sqlx::Error::PoolClosed);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_retryable());
        assert!(
            err.to_string().starts_with("sqlite archive unavailable: "),
            "{err}"
        );
        let source = std::error::Error::source(&err).expect("the sqlx error is kept");
        assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");

        let err = Error::from_sqlx("postgres archive", sqlx::Error::ColumnNotFound("x".into()));
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert!(!err.is_retryable());
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn database_codes_say_whether_to_retry() {
        // PostgreSQL: connection failure, statement timeout, deadlock, unique violation.
        assert_eq!(classify_database_code("08006"), ErrorKind::Unavailable);
        assert_eq!(classify_database_code("57014"), ErrorKind::Timeout);
        assert_eq!(classify_database_code("40P01"), ErrorKind::Unavailable);
        assert_eq!(classify_database_code("23505"), ErrorKind::Internal);
        // SQLite: BUSY (extended SQLITE_BUSY_SNAPSHOT), CORRUPT, CONSTRAINT.
        assert_eq!(classify_database_code("517"), ErrorKind::Unavailable);
        assert_eq!(classify_database_code("11"), ErrorKind::Corrupt);
        assert_eq!(classify_database_code("19"), ErrorKind::Internal);
    }
}
