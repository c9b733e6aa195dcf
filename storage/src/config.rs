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
            limits: InputLimits::default(),
            recent: RecentConfig::default(),
            archive: ArchiveConfig::default(),
            index: IndexConfig::default(),
            graph: GraphConfig::default(),
        }
    }
}

impl StorageConfig {
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
