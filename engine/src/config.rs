//! The engine's configuration: `config.toml` (embedded defaults, or a file), then
//! environment overrides `MNEMO__SECTION__KEY=value`. Unknown keys are refused with their
//! name. The configuration is read once, at start, and passed down; the environment is
//! handed in by the caller, so nothing else reads it and tests control it.

use std::path::Path;

use mnemo_actors::config::ActorsConfig;
use mnemo_storage::StorageConfig;

use crate::admission::AdmissionConfig;
use crate::logging::LogConfig;
use serde::{Deserialize, Serialize};

/// The shipped `config.toml`: every key with its default, documented.
pub const SHIPPED: &str = include_str!("../../config.toml");

/// Prefix of environment overrides; `__` separates the path's parts.
pub const ENV_PREFIX: &str = "MNEMO__";

/// Everything Mnemo can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The storage tiers.
    pub storage: StorageConfig,
    /// The actors: mailboxes, restarts, group commit, processors, context assembly.
    pub actors: ActorsConfig,
    /// The engine itself.
    pub engine: EngineConfig,
    /// The HTTP service (`mnemo serve`).
    pub server: ServerConfig,
    /// API keys of the HTTP service.
    pub auth: AuthConfig,
    /// Logs of the `mnemo` binary.
    pub log: LogConfig,
}

/// Section `[engine]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// How long `shutdown` waits for processors to finish the step in hand, in
    /// milliseconds; what they have not finished is redone after the next start.
    pub shutdown_timeout_ms: u64,
    /// Admission at the door: requests in flight per operation, adapted to latency.
    pub admission: AdmissionConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            shutdown_timeout_ms: 5_000,
            admission: AdmissionConfig::default(),
        }
    }
}

/// Section `[server]`: the HTTP service of `mnemo serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on (`--listen` overrides it).
    pub listen: String,
    /// Threads serving HTTP requests (0: one per CPU core).
    pub workers: usize,
    /// Largest request body, in bytes; larger bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Largest `query` of a context or search request, in bytes; longer ones get 413.
    pub max_query_bytes: usize,
    /// Most results one search, history page or graph hop may ask for.
    pub max_page: usize,
    /// Longest `deadline_ms` a context request may ask for.
    pub max_deadline_ms: u64,
    /// On shutdown, how long requests in flight may take to finish, in seconds.
    pub shutdown_timeout_secs: u64,
    /// Longest a client may take to send a request's body, in milliseconds; a slower
    /// one gets 408 and its connection is closed (a trickling client must not hold a
    /// worker's connection forever).
    pub body_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            workers: 2,
            max_body_bytes: 8 * 1024 * 1024,
            max_query_bytes: 4096,
            max_page: 1_000,
            max_deadline_ms: 60_000,
            shutdown_timeout_secs: 30,
            body_timeout_ms: 10_000,
        }
    }
}

/// Section `[auth]`: the API keys of the HTTP service, each bound to one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The accepted keys, stored as SHA-256 hashes (`mnemo keygen` makes one).
    pub keys: Vec<ApiKeyConfig>,
    /// Whether `/healthz` and `/readyz` answer without a key.
    pub healthz_open: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            healthz_open: true,
        }
    }
}

/// One API key: the tenant it acts for and the hex SHA-256 of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The tenant whose data the key reads and writes.
    pub tenant: String,
    /// Hex SHA-256 of the key (64 hex digits); the key itself is never stored.
    pub sha256: String,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The text is not valid TOML, or names unknown keys, or has values of the wrong type.
    #[error("invalid configuration in {origin}: {message}")]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// An environment override could not be applied.
    #[error("invalid environment override {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads the configuration: `file` if given (else the built-in defaults), then the
    /// `MNEMO__...` entries of `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (text, origin) = match file {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?,
                path.display().to_string(),
            ),
            None => (String::new(), "the built-in defaults".to_owned()),
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        let mut overridden = Vec::new();
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            apply_override(&mut table, &name, path, &value)?;
            overridden.push(name);
        }
        let origin = if overridden.is_empty() {
            origin
        } else {
            format!("{origin} with {}", overridden.join(", "))
        };
        let config = Config::deserialize(table).map_err(|e| ConfigError::Invalid {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        config.checked(origin)
    }

    /// Parses configuration text (no environment).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let origin = "the given text".to_owned();
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        config.checked(origin)
    }

    /// Refuses values that parse but cannot work together.
    fn checked(self, origin: String) -> Result<Self, ConfigError> {
        let invalid = |message| ConfigError::Invalid {
            origin: origin.clone(),
            message,
        };
        self.engine.admission.validate().map_err(invalid)?;
        for (setting, nice) in [
            ("actors.processors.nice", self.actors.processors.nice),
            ("storage.index.writer_nice", self.storage.index.writer_nice),
        ] {
            if !(0..=19).contains(&nice) {
                return Err(invalid(format!(
                    "{setting} ({nice}) must be a niceness from 0 (the requests' priority) \
                     to 19 (the lowest)"
                )));
            }
        }
        Ok(self)
    }
}

/// Sets `storage.recent.ttl_secs` from `MNEMO__STORAGE__RECENT__TTL_SECS`. The value is
/// read as a TOML value when it is one (numbers, booleans, arrays), else as a string.
fn apply_override(
    table: &mut toml::Table,
    name: &str,
    path: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
    if keys.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            name: name.to_owned(),
            message: "names an empty key".into(),
        });
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, parents) = keys.split_last().ok_or_else(|| ConfigError::Env {
        name: name.to_owned(),
        message: "names no key".into(),
    })?;
    let mut here = table;
    for key in parents {
        let next = here
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = next.as_table_mut().ok_or_else(|| ConfigError::Env {
            name: name.to_owned(),
            message: format!("`{key}` is a value, not a section"),
        })?;
    }
    here.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_file_is_the_defaults() {
        assert_eq!(Config::from_toml(SHIPPED).unwrap(), Config::default());
        assert_eq!(Config::load(None, env(&[])).unwrap(), Config::default());
    }

    #[test]
    fn every_default_key_is_in_the_shipped_file() {
        let shipped: toml::Table = toml::from_str(SHIPPED).unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        fn walk(path: &str, defaults: &toml::Table, shipped: &toml::Table) {
            for (key, value) in defaults {
                let here = format!("{path}.{key}");
                let found = shipped
                    .get(key)
                    .unwrap_or_else(|| panic!("{here} is missing from config.toml"));
                if let (toml::Value::Table(d), toml::Value::Table(s)) = (value, found) {
                    walk(&here, d, s);
                }
            }
        }
        walk("", &defaults, &shipped);
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = Config::load(
            None,
            env(&[
                ("MNEMO__STORAGE__RECENT__TTL_SECS", "5"),
                ("MNEMO__STORAGE__DATA_DIR", "/tmp/x"),
                ("MNEMO__ACTORS__PROCESSORS__EMOTION__ENABLED", "false"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(config.storage.recent.ttl_secs, 5);
        assert_eq!(config.storage.data_dir, std::path::PathBuf::from("/tmp/x"));
        assert!(!config.actors.processors.emotion.enabled);
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = Config::load(None, env(&[("MNEMO__STORAGE__RECENT__TTL_SEC", "5")])).unwrap_err();
        assert!(err.to_string().contains("ttl_sec"), "{err}");
        assert!(
            err.to_string().contains("MNEMO__STORAGE__RECENT__TTL_SEC"),
            "{err}"
        );
        let text = SHIPPED.replace("[storage.recent]", "[storage.recent]\nsize = 1");
        let err = Config::from_toml(&text).unwrap_err();
        assert!(err.to_string().contains("size"), "{err}");
    }

    #[test]
    fn api_keys_are_read() {
        let text = SHIPPED.replace(
            "keys = []",
            "keys = [{ tenant = \"acme\", sha256 = \"00ff\" }]",
        );
        let config = Config::from_toml(&text).unwrap();
        assert_eq!(
            config.auth.keys,
            vec![ApiKeyConfig {
                tenant: "acme".into(),
                sha256: "00ff".into()
            }]
        );
    }

    #[test]
    fn wrong_types_are_refused() {
        let err =
            Config::load(None, env(&[("MNEMO__STORAGE__RECENT__TTL_SECS", "soon")])).unwrap_err();
        assert!(err.to_string().contains("ttl_secs"), "{err}");
    }

    #[test]
    fn a_niceness_outside_0_to_19_is_refused_by_name() {
        for (name, value) in [
            ("MNEMO__ACTORS__PROCESSORS__NICE", "20"),
            ("MNEMO__STORAGE__INDEX__WRITER_NICE", "-5"),
        ] {
            let err = Config::load(None, env(&[(name, value)])).unwrap_err();
            let setting = name
                .trim_start_matches("MNEMO__")
                .replace("__", ".")
                .to_lowercase();
            assert!(err.to_string().contains(&setting), "{err}");
        }
        let config = Config::load(None, env(&[("MNEMO__ACTORS__PROCESSORS__NICE", "0")])).unwrap();
        assert_eq!(config.actors.processors.nice, 0);
    }
}
