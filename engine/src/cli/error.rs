//! The errors of the command-line functions, and the per-record failures an import
//! reports.

use std::fmt;

use serde::Serialize;

use crate::error::Error;

/// Where a record that failed came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// A line of a JSON lines file, counted from 1.
    Line(usize),
    /// An item of a structured document (e.g. `conv-26 D1:3` of a LoCoMo file).
    Item(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Item(name) => f.write_str(name),
        }
    }
}

/// One record that could not be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Where it came from.
    pub location: Location,
    /// Why it failed.
    pub reason: String,
}

impl Failure {
    /// The line number, when the record was a line.
    pub fn line(&self) -> Option<usize> {
        match self.location {
            Location::Line(n) => Some(n),
            Location::Item(_) => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The engine failed (or refused its configuration).
    #[error(transparent)]
    Engine(#[from] Error),
    /// Reading input or writing output failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The input as a whole is not in the expected format.
    #[error("the input is not valid {format}: {message}")]
    Format {
        /// The format expected.
        format: &'static str,
        /// What is wrong.
        message: String,
    },
    /// `mnemo migrate` refused to go on, or found the copy wrong.
    #[error("{0}")]
    Migrate(String),
    /// With `--strict`, some records failed to parse, so nothing was written.
    #[error(
        "{} record(s) failed to parse and --strict is set, so nothing was written; first: {}",
        .failures.len(),
        .failures.first().map(ToString::to_string).unwrap_or_default()
    )]
    Strict {
        /// Every record that failed.
        failures: Vec<Failure>,
    },
}

impl From<mnemo_storage::Error> for CliError {
    fn from(err: mnemo_storage::Error) -> Self {
        CliError::Engine(err.into())
    }
}

impl CliError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| CliError::Io { what, source }
    }
}
