//! Opening the four tiers a config names, as trait objects.

use std::sync::Arc;

use crate::archive::sql::{PostgresArchive, SqliteArchive};
use crate::archive::ArchiveStore;
use crate::clock::SharedClock;
use crate::cluster::{Cluster, NodeLock, PostgresCluster, SingleNode};
use crate::config::StorageConfig;
use crate::error::Result;
use crate::graph::neo4j::Neo4jGraph;
use crate::graph::sql::{PostgresGraph, SqliteGraph};
use crate::graph::{GraphBackend, GraphStore};
use crate::index::tantivy::TantivyIndex;
use crate::index::IndexStore;
use crate::recent::memory::MemoryRecent;
use crate::recent::redis::RedisRecent;
use crate::recent::{RecentBackend, RecentStore};
use crate::sql::postgres::{connect_options, is_postgres_url};
use crate::sql::sqlite::sqlite_path;

/// The four tiers of one engine.
#[derive(Debug, Clone)]
pub struct Tiers {
    /// The recent cache.
    pub recent: Arc<dyn RecentStore>,
    /// The archive, source of truth.
    pub archive: Arc<dyn ArchiveStore>,
    /// The full-text index.
    pub index: Arc<dyn IndexStore>,
    /// The relationship graph.
    pub graph: Arc<dyn GraphStore>,
    /// The nodes sharing the archive, and their leases.
    pub cluster: Arc<dyn Cluster>,
    /// This process's hold on the data directory, when anything lives there.
    pub node_lock: Option<Arc<NodeLock>>,
    /// This node's name ([`StorageConfig::node_name`]).
    pub node: String,
}

impl Tiers {
    /// Opens every tier with the backend `config` selects, running migrations and
    /// starting the index's threads.
    pub async fn open(config: &StorageConfig, clock: SharedClock) -> Result<Self> {
        let shared_archive = is_postgres_url(&config.archive.url);
        // Node-local state (an embedded archive, the index) lives in the data directory:
        // one process at a time.
        let node_lock = if !shared_archive || !config.index.in_memory {
            Some(Arc::new(NodeLock::acquire(&config.data_dir)?))
        } else {
            None
        };
        let node = config.node_name();
        let cluster: Arc<dyn Cluster> = if shared_archive {
            Arc::new(PostgresCluster::new(&config.archive.url, &node)?)
        } else {
            Arc::new(SingleNode)
        };
        // The url's scheme picks the archive; the embedded graph lives in its database on
        // PostgreSQL, in a file beside it on SQLite.
        let (archive, graph): (Arc<dyn ArchiveStore>, Arc<dyn GraphStore>) = if shared_archive {
            let archive = PostgresArchive::open(
                &config.archive.url,
                &config.archive,
                config.limits.clone(),
                clock.clone(),
            )
            .await?;
            let graph: Arc<dyn GraphStore> = match config.graph.backend {
                GraphBackend::Embedded => Arc::new(PostgresGraph::beside(&archive, &config.graph)),
                GraphBackend::Neo4j => Arc::new(Neo4jGraph::open(&config.graph).await?),
            };
            (Arc::new(archive), graph)
        } else {
            let archive = SqliteArchive::open_url(
                &config.archive.url,
                &config.data_dir,
                &config.archive,
                config.limits.clone(),
                clock.clone(),
            )
            .await?;
            let graph: Arc<dyn GraphStore> = match config.graph.backend {
                GraphBackend::Embedded => Arc::new(
                    SqliteGraph::open_beside(&archive, &config.archive, &config.graph).await?,
                ),
                GraphBackend::Neo4j => Arc::new(Neo4jGraph::open(&config.graph).await?),
            };
            (Arc::new(archive), graph)
        };
        let recent: Arc<dyn RecentStore> = match config.recent.backend {
            RecentBackend::Memory => Arc::new(MemoryRecent::new(config.recent.clone(), clock)),
            RecentBackend::Redis => Arc::new(RedisRecent::new(config.recent.clone(), clock)?),
        };
        let index_dir = (!config.index.in_memory).then(|| config.resolve(&config.index.path));
        let index: Arc<dyn IndexStore> =
            Arc::new(TantivyIndex::open(index_dir.as_deref(), &config.index)?);
        Ok(Self {
            recent,
            archive,
            index,
            graph,
            cluster,
            node_lock,
            node,
        })
    }

    /// Commits the index, closes every connection and releases the data directory.
    pub async fn close(&self) -> Result<()> {
        let index = self.index.close().await;
        self.archive.close().await;
        self.graph.close().await;
        if let Some(lock) = &self.node_lock {
            lock.release();
        }
        index
    }
}

/// Opens only the archive `config` names, running its migrations: for commands that read
/// or copy archives without serving (no data-directory lock, no other tier).
pub async fn open_archive(
    config: &StorageConfig,
    clock: SharedClock,
) -> Result<Arc<dyn ArchiveStore>> {
    let archive = &config.archive;
    Ok(if is_postgres_url(&archive.url) {
        Arc::new(PostgresArchive::open(&archive.url, archive, config.limits.clone(), clock).await?)
    } else {
        Arc::new(
            SqliteArchive::open_url(
                &archive.url,
                &config.data_dir,
                archive,
                config.limits.clone(),
                clock,
            )
            .await?,
        )
    })
}

/// Whether the archive `config` names exists with Mnemo's tables, found without creating
/// or changing anything (a dry run must not).
pub async fn archive_exists(config: &StorageConfig) -> Result<bool> {
    let url = &config.archive.url;
    if !is_postgres_url(url) {
        return Ok(sqlite_path(url, &config.data_dir)?.exists());
    }
    use sqlx::{ConnectOptions, Connection, Row};
    let backend = "postgres archive";
    let mut conn = connect_options(url)?
        .connect()
        .await
        .map_err(|e| crate::error::Error::from_sqlx(backend, e))?;
    let row = sqlx::query("SELECT to_regclass('turns') IS NOT NULL AS present")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| crate::error::Error::from_sqlx(backend, e))?;
    let present: bool = row
        .try_get("present")
        .map_err(|e| crate::error::Error::from_sqlx(backend, e))?;
    let _ = conn.close().await;
    Ok(present)
}
