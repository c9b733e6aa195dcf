//! The SQL core: the archive ([`crate::archive::sql::SqlArchive`]) and the graph tables
//! ([`crate::graph::sql::SqlGraph`]) are written once, over a [`Dialect`] that holds
//! only what truly differs between SQL databases: how to connect and migrate, which
//! connection reads and which writes, how a list of ids or a set of rows is written
//! (`IN (...)` and `VALUES` in SQLite, arrays with `= ANY` and `UNNEST` in PostgreSQL),
//! how turn ids are assigned on insert, and a few function names.
//!
//! Statements are [`Statement`]s: text with `$1`, `$2`, ... placeholders, which both
//! dialects take, and the values bound to them. Rows are read through [`rows::SqlRow`],
//! by column name, the same way for every dialect.
//!
//! Dialects: [`sqlite::SqliteDb`] (embedded: a file in WAL mode, one writer connection
//! and a pool of readers) and [`postgres::PostgresDb`] (a server, one pool). A third SQL
//! database is a third dialect beside them.

pub mod owned_row;
pub mod postgres;
pub(crate) mod postgres_pool;
pub mod rows;
pub mod sqlite;
mod sqlite_readers;
mod statement;

use async_trait::async_trait;

pub use self::rows::SqlRow;
pub use self::statement::{Arg, Statement};
use crate::archive::batch::PreparedTurn;
use crate::error::Result;
use crate::model::Scope;

/// The user's check on rows of `table` (an alias, or empty) looked up by id, the user
/// bound as `$1` (tenant) and `$2` (user id). `|| ''` keeps the planner off the indexes
/// led by (tenant, user_id): SQLite would otherwise scan all of the user's rows in one
/// and test each against the ids, instead of seeking each id.
pub(crate) fn user_of_rows_by_id(table: &str) -> String {
    format!(
        "{}tenant || '' = $1 AND {}user_id || '' = $2",
        prefix(table),
        prefix(table)
    )
}

/// `select` (ending where its WHERE clause goes) over the rows of `table` (an alias, or
/// empty) whose `id_column` is one of `ids` and that belong to the user `scope`, each
/// sought by id (see [`user_of_rows_by_id`]).
pub(crate) fn select_by_ids<'a, D: Dialect>(
    select: &str,
    table: &str,
    id_column: &str,
    scope: &'a Scope,
    ids: &[i64],
) -> Statement<'a> {
    let mut stmt = Statement::new(format!(
        "{select} WHERE {} AND {}{id_column}",
        user_of_rows_by_id(table),
        prefix(table)
    ))
    .arg(scope.tenant.as_str())
    .arg(scope.user.as_str());
    let in_ids = D::in_ids(&mut stmt, ids);
    stmt.push(&in_ids);
    stmt
}

/// Makes a row of `R` a value of the model (a turn, a summary).
pub type Convert<R, T> = fn(&'static str, &R) -> Result<T>;

/// Each of `rows` made a `T` by `convert`.
pub(crate) fn convert_all<R, T>(
    backend: &'static str,
    rows: &[R],
    convert: Convert<R, T>,
) -> Result<Vec<T>> {
    rows.iter().map(|row| convert(backend, row)).collect()
}

/// `table.` for a column of `table`, nothing for an empty name.
fn prefix(table: &str) -> String {
    if table.is_empty() {
        String::new()
    } else {
        format!("{table}.")
    }
}

/// The archive's id counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// The highest turn (or forget) id ever assigned.
    pub head: i64,
    /// The highest summary id ever assigned.
    pub summary: i64,
}

/// What differs between SQL databases; everything else is written once over it.
#[async_trait]
pub trait Dialect: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// A row this database returns.
    type Row: SqlRow;
    /// A transaction in progress.
    type Tx: Send;

    /// The archive's name in errors (`sqlite archive`).
    const ARCHIVE: &'static str;
    /// The graph tables' name in errors (`sqlite graph`).
    const GRAPH: &'static str;
    /// The scalar function giving the smaller of two values.
    const LEAST: &'static str;
    /// The scalar function giving the larger of two values.
    const GREATEST: &'static str;
    /// A query of the archive head (the highest turn id ever assigned) as column `seq`;
    /// no row means 0.
    const HEAD: &'static str;

    /// Binds `ids` and returns the condition that a column is one of them, to append
    /// right after the column (` IN ($3, $4)` or ` = ANY($3)`). The returned text may be
    /// used more than once in the statement.
    fn in_ids(stmt: &mut Statement<'_>, ids: &[i64]) -> String;

    /// Binds a set of rows given column by column (each an array [`Arg`] of the same
    /// length) and returns a query yielding them, to use wherever a SELECT may stand
    /// (`VALUES (...), (...)` or `SELECT * FROM UNNEST(...)`).
    fn rows<'a>(stmt: &mut Statement<'a>, columns: Vec<Arg<'a>>) -> String;

    /// Most rows one [`Dialect::rows`] may hold with `columns` columns.
    fn max_rows(columns: usize) -> usize;

    /// Runs a read on the read connections.
    async fn read(&self, backend: &'static str, stmt: &Statement<'_>) -> Result<Vec<Self::Row>>;

    /// Runs a read on the read connections and makes each row a `T` with `convert`;
    /// where the rows are (SQLite's reader threads), not on the caller's thread.
    async fn read_as<T: Send + 'static>(
        &self,
        backend: &'static str,
        stmt: &Statement<'_>,
        convert: Convert<Self::Row, T>,
    ) -> Result<Vec<T>>;

    /// Runs one write on the write connection, in a transaction of its own. It must be
    /// idempotent (an upsert, a delete): a backend may run it again when a connection
    /// broke under it.
    async fn write(&self, backend: &'static str, stmt: &Statement<'_>) -> Result<Vec<Self::Row>>;

    /// Begins a write transaction.
    async fn begin(&self, backend: &'static str) -> Result<Self::Tx>;

    /// Begins a read-only transaction whose statements all see one snapshot.
    async fn begin_snapshot(&self, backend: &'static str) -> Result<Self::Tx>;

    /// Runs a statement in `tx`, returning its rows.
    async fn fetch(
        tx: &mut Self::Tx,
        backend: &'static str,
        stmt: &Statement<'_>,
    ) -> Result<Vec<Self::Row>>;

    /// Runs a statement in `tx` and makes each row a `T` with `convert`; in a SQLite
    /// snapshot, on its reader thread.
    async fn fetch_as<T: Send + 'static>(
        tx: &mut Self::Tx,
        backend: &'static str,
        stmt: &Statement<'_>,
        convert: Convert<Self::Row, T>,
    ) -> Result<Vec<T>>;

    /// Runs a statement in `tx`, returning how many rows it changed.
    async fn execute(tx: &mut Self::Tx, backend: &'static str, stmt: &Statement<'_>)
        -> Result<u64>;

    /// Commits `tx`.
    async fn commit(tx: Self::Tx, backend: &'static str) -> Result<()>;

    /// Rolls `tx` back.
    async fn rollback(tx: Self::Tx, backend: &'static str) -> Result<()>;

    /// Inserts `turns` (external ids unique within the batch) into `turns` in `tx`,
    /// assigning each a new id; a turn whose external id is already stored is skipped.
    /// Returns the inserted rows as `seq, tenant, user_id, external_id`, in any order.
    async fn insert_turns(
        tx: &mut Self::Tx,
        turns: &[&PreparedTurn],
        ingest_time: i64,
    ) -> Result<Vec<Self::Row>>;

    /// Statements that refresh the query planner's statistics of Mnemo's tables.
    const ANALYZE: &'static str;

    /// Takes the next id of the archive's one sequence in `tx` (a forget's place in the
    /// outbox), in the same order as the turns' ids.
    async fn take_seq(tx: &mut Self::Tx) -> Result<i64>;

    /// What follows the column list of an INSERT that gives `summaries` rows their ids
    /// (PostgreSQL generates them otherwise).
    const GIVEN_IDS: &'static str;

    /// The archive's two counters in `tx`: the highest turn id ever assigned (the head)
    /// and the highest summary id.
    async fn counters(tx: &mut Self::Tx) -> Result<Counters>;

    /// Sets the counters in `tx`: to `to` exactly, or (`raise`) to at least `to`, never
    /// lower. Ids given on insert (a migration's copies) must be below the counters, so
    /// the archive never hands them out again.
    async fn set_counters(tx: &mut Self::Tx, to: Counters, raise: bool) -> Result<()>;

    /// Waits for work in flight and closes the connections.
    async fn close(&self);
}
