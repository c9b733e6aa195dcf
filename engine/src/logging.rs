//! Logs. Mnemo's crates emit events through `tracing` (start-up, actor failures and
//! restarts, tier outages and recoveries, refused writes, shutdown); none of them
//! installs anything. A program that embeds the engine brings its own subscriber; the
//! `mnemo` binary installs the one here, writing to stderr as text or JSON lines.

use std::io::IsTerminal;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One line of text per event: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Section `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Which events to write, as `RUST_LOG` directives (`info`,
    /// `warn,mnemo_actors=debug`); `RUST_LOG` itself wins. Unset: `info` for
    /// `mnemo serve`, `warn` for the one-shot commands.
    pub level: Option<String>,
    /// Text or JSON lines.
    pub format: LogFormat,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The level directives do not parse.
    #[error("invalid log level {directives:?} (from {origin}): {source}")]
    Level {
        /// The directives.
        directives: String,
        /// `RUST_LOG` or `[log] level`.
        origin: &'static str,
        /// What the parser said.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A subscriber was installed already.
    #[error("a log subscriber is installed already")]
    Installed,
}

/// The filter: `rust_log` (the `RUST_LOG` variable, read by the caller) if set, else
/// `[log] level`, else `fallback`.
pub fn filter(
    config: &LogConfig,
    rust_log: Option<&str>,
    fallback: &str,
) -> Result<EnvFilter, LogError> {
    let (directives, origin) = match (rust_log.filter(|v| !v.trim().is_empty()), &config.level) {
        (Some(env), _) => (env, "RUST_LOG"),
        (None, Some(level)) => (level.as_str(), "[log] level"),
        (None, None) => (fallback, "the default"),
    };
    EnvFilter::builder()
        .parse(directives)
        .map_err(|source| LogError::Level {
            directives: directives.to_owned(),
            origin,
            source,
        })
}

/// Installs the process's subscriber: events passing the [`filter`] go to stderr, as
/// text (colored on a terminal) or JSON lines.
pub fn install(config: &LogConfig, rust_log: Option<&str>, fallback: &str) -> Result<(), LogError> {
    let filter = filter(config, rust_log, fallback)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
    installed.map_err(|_| LogError::Installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_then_the_config_then_the_fallback() {
        let config = LogConfig {
            level: Some("debug".into()),
            format: LogFormat::Text,
        };
        let shown = |f: EnvFilter| f.to_string();
        assert_eq!(
            shown(filter(&config, Some("error"), "warn").unwrap()),
            "error"
        );
        assert_eq!(shown(filter(&config, None, "warn").unwrap()), "debug");
        assert_eq!(shown(filter(&config, Some(" "), "warn").unwrap()), "debug");
        assert_eq!(
            shown(filter(&LogConfig::default(), None, "warn").unwrap()),
            "warn"
        );
    }

    #[test]
    fn a_bad_level_is_refused_naming_where_it_came_from() {
        let config = LogConfig {
            level: Some("mnemo=loudest".into()),
            format: LogFormat::Json,
        };
        let err = filter(&config, None, "info").unwrap_err();
        assert!(err.to_string().contains("[log] level"), "{err}");
        assert!(err.to_string().contains("mnemo=loudest"), "{err}");
    }
}
