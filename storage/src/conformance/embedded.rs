//! Factories that open the embedded backends in a temporary directory, for the suites.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use tempfile::TempDir;
use tokio::sync::watch;

use super::archive::ArchiveFactory;
use super::graph::GraphFactory;
use super::index::IndexFactory;
use super::recent::RecentFactory;
use crate::archive::sql::SqliteArchive;
use crate::archive::{ArchiveConfig, ArchiveStore};
use crate::clock::SharedClock;
use crate::graph::sql::SqliteGraph;
use crate::graph::{GraphConfig, GraphStore};
use crate::index::tantivy::TantivyIndex;
use crate::index::{IndexConfig, IndexStore};
use crate::limits::InputLimits;
use crate::recent::memory::MemoryRecent;
use crate::recent::{RecentConfig, RecentStore};

/// Opens [`MemoryRecent`] caches.
#[derive(Debug, Default)]
pub struct MemoryRecentFactory;

#[async_trait]
impl RecentFactory for MemoryRecentFactory {
    async fn open(&self, config: RecentConfig, clock: SharedClock) -> Arc<dyn RecentStore> {
        Arc::new(MemoryRecent::new(config, clock))
    }
}

/// Opens [`SqliteArchive`]s on one file in a temporary directory; each `open` closes the
/// archive the previous one returned, as a restart would.
#[derive(Debug)]
pub struct SqliteArchiveFactory {
    dir: TempDir,
    last: Mutex<Option<SqliteArchive>>,
}

impl SqliteArchiveFactory {
    /// A factory over a fresh temporary directory.
    pub fn new() -> Self {
        Self {
            dir: TempDir::new().expect("a temporary directory"),
            last: Mutex::new(None),
        }
    }

    async fn reopen(&self, limits: InputLimits, clock: SharedClock) -> SqliteArchive {
        let previous = self.last.lock().take();
        if let Some(previous) = previous {
            previous.close().await;
        }
        let archive = SqliteArchive::open(
            &self.dir.path().join("archive.db"),
            &ArchiveConfig::default(),
            limits,
            clock,
        )
        .await
        .expect("the archive opens");
        *self.last.lock() = Some(archive.clone());
        archive
    }
}

impl Default for SqliteArchiveFactory {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ArchiveFactory for SqliteArchiveFactory {
    async fn open(&self, limits: InputLimits, clock: SharedClock) -> Arc<dyn ArchiveStore> {
        Arc::new(self.reopen(limits, clock).await)
    }
}

#[async_trait]
impl GraphFactory for SqliteArchiveFactory {
    async fn open(&self, clock: SharedClock) -> Arc<dyn GraphStore> {
        let archive = self.reopen(InputLimits::default(), clock).await;
        Arc::new(
            SqliteGraph::open_beside(&archive, &ArchiveConfig::default(), &GraphConfig::default())
                .await
                .expect("the graph opens"),
        )
    }
}

/// Opens [`TantivyIndex`]es in one temporary directory, or in RAM, and keeps the commit
/// signal of the one it opened last.
#[derive(Debug)]
pub struct TantivyIndexFactory {
    dir: Option<TempDir>,
    last_commits: Mutex<Option<watch::Receiver<u64>>>,
}

impl TantivyIndexFactory {
    /// Indexes on disk, in a fresh temporary directory.
    pub fn on_disk() -> Self {
        Self {
            dir: Some(TempDir::new().expect("a temporary directory")),
            last_commits: Mutex::new(None),
        }
    }

    /// Indexes in RAM (persistence is not checked).
    pub fn in_ram() -> Self {
        Self {
            dir: None,
            last_commits: Mutex::new(None),
        }
    }
}

#[async_trait]
impl IndexFactory for TantivyIndexFactory {
    async fn open(&self, config: IndexConfig) -> Arc<dyn IndexStore> {
        let index = TantivyIndex::open(self.dir.as_ref().map(|d| d.path()), &config)
            .expect("the index opens");
        *self.last_commits.lock() = Some(index.commits());
        Arc::new(index)
    }

    fn persistent(&self) -> bool {
        self.dir.is_some()
    }

    fn commit_signal(&self) -> Option<watch::Receiver<u64>> {
        self.last_commits.lock().clone()
    }
}
