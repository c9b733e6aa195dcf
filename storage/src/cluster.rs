//! The nodes that share one archive, and the leases that let exactly one of them run a
//! piece of shared work (a processor that writes to the shared stores).
//!
//! Backends: [`SingleNode`] for the embedded archive (SQLite in one data directory,
//! which [`NodeLock`] keeps to one process, so every lease is granted at once), and
//! [`PostgresCluster`], whose leases are PostgreSQL session advisory locks, each held on
//! a connection of its own: the server releases one as soon as that connection ends, so
//! a node that crashes or is killed hands its leases on within moments (the kernel
//! closes its sockets), and no lease outlives its holder.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;

use crate::error::{Error, Result};
use crate::sql::postgres::connect_options;

const BACKEND: &str = "postgres leases";

/// The first key of every advisory lock Mnemo takes ("mnem"), so its locks never meet
/// another application's on the same database.
const LOCK_CLASS: i32 = 0x6d6e_656d;

/// How long a lease session may stay silent before the server ends it (PostgreSQL's
/// `idle_session_timeout`, from version 14), releasing the lease: a holder that hangs
/// without dying (stopped, deadlocked) hands its processors on after this. A holder that
/// works checks its lease more often than this.
pub const LEASE_SILENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The nodes sharing an archive.
#[async_trait]
pub trait Cluster: Send + Sync + std::fmt::Debug {
    /// Whether other nodes may write to the same archive: then a node must look for
    /// their writes itself (they wake nothing here).
    fn shared(&self) -> bool;

    /// Takes the lease `name` if no other node holds it; `None` while one does.
    async fn try_lease(&self, name: &str) -> Result<Option<Box<dyn Lease>>>;

    /// The name of the node holding the lease `name`, if one does and it can be told.
    async fn lease_holder(&self, name: &str) -> Result<Option<String>>;
}

/// A lease held: released when dropped, or when the holder's process ends.
#[async_trait]
pub trait Lease: Send + Sync + std::fmt::Debug {
    /// Checks that the lease is still held; an error means it is lost (the connection
    /// holding it broke) and another node may hold it now.
    async fn check(&mut self) -> Result<()>;
}

/// One node alone on its archive: every lease is granted.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleNode;

#[derive(Debug)]
struct SoleLease;

#[async_trait]
impl Lease for SoleLease {
    async fn check(&mut self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl Cluster for SingleNode {
    fn shared(&self) -> bool {
        false
    }

    async fn try_lease(&self, _name: &str) -> Result<Option<Box<dyn Lease>>> {
        Ok(Some(Box::new(SoleLease)))
    }

    async fn lease_holder(&self, _name: &str) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Nodes sharing a PostgreSQL archive.
#[derive(Debug, Clone)]
pub struct PostgresCluster {
    options: PgConnectOptions,
}

/// The `application_name` of a lease's connection: names its holder.
const LEASE_APPLICATION: &str = "mnemo-lease ";

impl PostgresCluster {
    /// The cluster of the archive at `url`, as the node named `node`.
    pub fn new(url: &str, node: &str) -> Result<Self> {
        // PostgreSQL keeps 63 bytes of an application name.
        let mut application = format!("{LEASE_APPLICATION}{node}");
        while application.len() > 63 {
            application.pop();
        }
        Ok(Self {
            options: connect_options(url)?.application_name(&application),
        })
    }

    async fn connect(&self) -> Result<PgConnection> {
        PgConnection::connect_with(&self.options)
            .await
            .map_err(|e| Error::from_sqlx(BACKEND, e))
    }
}

/// An advisory lock held on a connection of its own.
struct AdvisoryLease {
    name: String,
    conn: Option<PgConnection>,
}

impl std::fmt::Debug for AdvisoryLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisoryLease")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Lease for AdvisoryLease {
    async fn check(&mut self) -> Result<()> {
        let lost = |detail: String| Error::unavailable(BACKEND, detail);
        let Some(conn) = self.conn.as_mut() else {
            return Err(lost(format!("the lease {} was lost", self.name)));
        };
        // The lock lives exactly as long as this session: a session that still answers
        // still holds it.
        match sqlx::query("SELECT 1").execute(&mut *conn).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.conn = None;
                Err(lost(format!(
                    "the connection holding the lease {} broke: {e}",
                    self.name
                )))
            }
        }
    }
}

impl Drop for AdvisoryLease {
    fn drop(&mut self) {
        // Closing the session releases the lock; the server notices the socket closing.
        drop(self.conn.take());
    }
}

#[async_trait]
impl Cluster for PostgresCluster {
    fn shared(&self) -> bool {
        true
    }

    async fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        let mut conn = self.connect().await?;
        // pg_locks shows the two keys of an advisory lock as classid and objid (oids:
        // the signed hash is read as unsigned there).
        let holder: Option<String> = sqlx::query_scalar(
            "SELECT a.application_name FROM pg_locks l \
             JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
             AND l.classid = $1::bigint::oid \
             AND l.objid = (hashtext($2)::bigint & 4294967295)::oid \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             LIMIT 1",
        )
        .bind(i64::from(LOCK_CLASS))
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .map_err(|e| Error::from_sqlx(BACKEND, e))?;
        let _ = conn.close().await;
        Ok(holder.map(|h| h.strip_prefix(LEASE_APPLICATION).unwrap_or(&h).to_owned()))
    }

    async fn try_lease(&self, name: &str) -> Result<Option<Box<dyn Lease>>> {
        let mut conn = self.connect().await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| Error::from_sqlx(BACKEND, e))?;
        if !taken {
            let _ = conn.close().await;
            return Ok(None);
        }
        // Before version 14 the server has no such setting: the lease then lasts as long
        // as the holder's connection, as before.
        let silence = format!("SET idle_session_timeout = {}", LEASE_SILENCE.as_millis());
        let _ = sqlx::query(&silence).execute(&mut conn).await;
        Ok(Some(Box::new(AdvisoryLease {
            name: name.to_owned(),
            conn: Some(conn),
        })))
    }
}

/// An exclusive lock on a data directory, held while an engine uses it: two processes
/// writing one SQLite archive or one index would corrupt nothing (both have locks of
/// their own) but would fail in ways that name neither the cause nor the directory.
#[derive(Debug)]
pub struct NodeLock {
    path: PathBuf,
    file: parking_lot::Mutex<Option<File>>,
}

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "mnemo.lock";

impl NodeLock {
    /// Locks `data_dir` (created if missing) for this process, or explains which
    /// process holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self> {
        let unavailable = |detail: String| Error::unavailable("data directory", detail);
        std::fs::create_dir_all(data_dir)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", data_dir.display())))?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| unavailable(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another process".to_owned(),
                    pid => format!("process {pid}"),
                };
                return Err(unavailable(format!(
                    "the data directory {} is in use by {holder}: an embedded engine runs as \
                     one node, so give each process a data directory of its own (several \
                     nodes share one PostgreSQL archive, each with its own data directory)",
                    data_dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(unavailable(format!("cannot lock {}: {e}", path.display())))
            }
        }
        // Who holds it, for the message another process shows.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()));
        Ok(Self {
            path,
            file: parking_lot::Mutex::new(Some(file)),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases the directory (also done on drop).
    pub fn release(&self) {
        drop(self.file.lock().take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn a_second_lock_on_a_data_directory_is_refused_naming_it_until_the_first_is_released() {
        let dir = tempfile::TempDir::new().unwrap();
        let first = NodeLock::acquire(dir.path()).unwrap();
        let refused = NodeLock::acquire(dir.path()).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Unavailable);
        let message = refused.to_string();
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(
            message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
        first.release();
        let again = NodeLock::acquire(dir.path()).expect("free once released");
        drop(again);
        NodeLock::acquire(dir.path()).expect("free once dropped");
    }

    #[tokio::test]
    async fn a_single_node_grants_every_lease() {
        let node = SingleNode;
        assert!(!node.shared());
        let mut a = node.try_lease("emotion").await.unwrap().unwrap();
        let mut b = node.try_lease("emotion").await.unwrap().unwrap();
        a.check().await.unwrap();
        b.check().await.unwrap();
    }
}
