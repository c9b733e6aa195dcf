//! The storage settings: section `[storage]` of `config.toml`. Each tier's settings
//! struct lives beside its code; this one gathers them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::archive::ArchiveConfig;
use crate::graph::GraphConfig;
use crate::index::IndexConfig;
use crate::limits::InputLimits;
use crate::recent::RecentConfig;

/// Section `[storage]` of `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory holding the embedded stores; relative paths below resolve against it.
    pub data_dir: PathBuf,
    /// This node's name among the nodes sharing an archive: in `/readyz`, in its logs, and
    /// on the PostgreSQL connections holding its leases (`application_name`). Empty:
    /// `node-<process id>`.
    pub node: String,
    /// Limits on what callers may store.
    pub limits: InputLimits,
    /// The recent tier.
    pub recent: RecentConfig,
    /// The archive tier.
    pub archive: ArchiveConfig,
    /// The index tier.
    pub index: IndexConfig,
    /// The graph tier.
    pub graph: GraphConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("mnemo-data"),
            node: String::new(),
            limits: InputLimits::default(),
            recent: RecentConfig::default(),
            archive: ArchiveConfig::default(),
            index: IndexConfig::default(),
            graph: GraphConfig::default(),
        }
    }
}

impl StorageConfig {
    /// This node's name: `node`, or `node-<process id>` when it is empty.
    pub fn node_name(&self) -> String {
        match self.node.trim() {
            "" => format!("node-{}", std::process::id()),
            name => name.to_owned(),
        }
    }

    /// Where each tier lives, for logs: backend and place, never a password.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        use crate::graph::GraphBackend;
        use crate::recent::RecentBackend;
        let recent = match self.recent.backend {
            RecentBackend::Memory => "memory".to_owned(),
            RecentBackend::Redis => {
                format!("redis {}", without_credentials(&self.recent.redis_url))
            }
        };
        let archive = if crate::sql::postgres::is_postgres_url(&self.archive.url) {
            format!("postgres {}", without_credentials(&self.archive.url))
        } else {
            match crate::sql::sqlite::sqlite_path(&self.archive.url, &self.data_dir) {
                Ok(path) => format!("sqlite {}", path.display()),
                Err(_) => format!("sqlite {}", self.archive.url),
            }
        };
        let index = if self.index.in_memory {
            "tantivy in memory".to_owned()
        } else {
            format!("tantivy {}", self.resolve(&self.index.path).display())
        };
        let graph = match (self.graph.enabled, self.graph.backend) {
            (false, _) => "off".to_owned(),
            (true, GraphBackend::Embedded) => "tables in the archive".to_owned(),
            (true, GraphBackend::Neo4j) => format!(
                "neo4j {} as {}",
                without_credentials(&self.graph.neo4j.url),
                self.graph.neo4j.user
            ),
        };
        vec![
            ("recent", recent),
            ("archive", archive),
            ("index", index),
            ("graph", graph),
        ]
    }

    /// Resolves `path` against the data directory unless it is absolute.
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.data_dir.join(path)
        }
    }
}

/// `url` with any `user:password@` taken out of its authority.
pub fn without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_a_description() {
        assert_eq!(
            without_credentials("postgres://mnemo:s3cret@db.internal:5432/mnemo?sslmode=require"),
            "postgres://db.internal:5432/mnemo?sslmode=require"
        );
        assert_eq!(
            without_credentials("redis://:pw@127.0.0.1:6379/2"),
            "redis://127.0.0.1:6379/2"
        );
        assert_eq!(
            without_credentials("bolt://localhost:7687"),
            "bolt://localhost:7687"
        );
        let mut config = StorageConfig::default();
        config.archive.url = "postgres://u:topsecret@h:5432/d".into();
        config.recent.redis_url = "redis://user:topsecret@h:6379".into();
        config.recent.backend = crate::recent::RecentBackend::Redis;
        let described = format!("{:?}", config.describe());
        assert!(!described.contains("topsecret"), "{described}");
        assert!(described.contains("postgres://h:5432/d"), "{described}");
    }
}
