//! [`MigrationTarget`] on a SQL archive, written once for every dialect.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use async_trait::async_trait;

use super::batch::{key_of, TurnKey};
use super::migration::{id_runs, MigratedUser, MigrationRecord, MigrationTarget, RollbackReport};
use super::sql::{summary_range_columns, SqlArchive};
use crate::error::{Error, Result};
use crate::model::{Scope, Summary, SummaryId, Timestamp, TimestampExt, Turn, TurnId};
use crate::sql::rows::{self, Columns, SUMMARY_COLUMNS, TURN_COLUMNS};
use crate::sql::{Arg, Counters, Dialect, Statement};

/// Conflicts listed in an error before the rest are counted.
const SHOWN_CONFLICTS: usize = 5;

const RECORD_COLUMNS: &str = "name, copied_turns, copied_summaries, graph_done, head_before, \
     summary_before, checkpoints_before, started, finished";

fn record_of<D: Dialect>(row: &D::Row) -> Result<MigrationRecord> {
    let c = Columns::new(D::ARCHIVE, row);
    let checkpoints: BTreeMap<String, i64> =
        c.json("checkpoints_before", "a migration's checkpoints")?;
    Ok(MigrationRecord {
        name: c.text("name")?,
        copied_turns: TurnId(c.int("copied_turns")?),
        copied_summaries: SummaryId(c.int("copied_summaries")?),
        graph_done: TurnId(c.int("graph_done")?),
        head_before: TurnId(c.int("head_before")?),
        summary_before: SummaryId(c.int("summary_before")?),
        checkpoints_before: checkpoints
            .into_iter()
            .map(|(k, v)| (k, TurnId(v)))
            .collect(),
        started: c.time("started")?,
        finished: c.opt_int("finished")?.map(Timestamp::from_micros),
    })
}

async fn checkpoints_in<D: Dialect>(tx: &mut D::Tx) -> Result<BTreeMap<String, TurnId>> {
    let stmt = Statement::new("SELECT processor, seq FROM checkpoints");
    D::fetch(tx, D::ARCHIVE, &stmt)
        .await?
        .iter()
        .map(|row| {
            let c = Columns::new(D::ARCHIVE, row);
            Ok((c.text("processor")?, TurnId(c.int("seq")?)))
        })
        .collect()
}

/// Of `ids` in `table` (`turns` by `seq`, `summaries` by `id`), those stored and not
/// written by the migration `name`, and those it wrote.
async fn stored_ids<D: Dialect>(
    tx: &mut D::Tx,
    name: &str,
    kind: &'static str,
    ids: &[i64],
) -> Result<(BTreeSet<i64>, BTreeSet<i64>)> {
    let (table, column) = match kind {
        "turns" => ("turns", "seq"),
        _ => ("summaries", "id"),
    };
    let mut foreign = BTreeSet::new();
    let mut ours = BTreeSet::new();
    // One migration's runs never overlap (an id is written once), so the run holding an
    // id, if any, is the last one starting at or below it: one index probe per id.
    for chunk in ids.chunks(D::max_rows(1)) {
        let mut stmt = Statement::new(format!(
            "SELECT {column} AS id, CAST(CASE WHEN COALESCE((SELECT r.last_id \
             FROM migrated_ranges r WHERE r.migration = $1 AND r.kind = $2 \
             AND r.first_id <= {table}.{column} ORDER BY r.first_id DESC LIMIT 1), -1) \
             >= {table}.{column} THEN 1 ELSE 0 END AS BIGINT) AS ours \
             FROM {table} WHERE {column}"
        ))
        .arg(name)
        .arg(kind);
        let in_ids = D::in_ids(&mut stmt, chunk);
        stmt.push(&in_ids);
        for row in D::fetch(tx, D::ARCHIVE, &stmt).await? {
            let c = Columns::new(D::ARCHIVE, &row);
            let id = c.int("id")?;
            if c.int("ours")? != 0 {
                ours.insert(id);
            } else {
                foreign.insert(id);
            }
        }
    }
    Ok((foreign, ours))
}

/// The rows `select` reads (a SELECT ending in its id column's name) whose id is one of
/// `ids`, each read by `read`, by id.
async fn rows_by_ids<D: Dialect, T>(
    tx: &mut D::Tx,
    select: &str,
    ids: &[i64],
    read: impl Fn(&D::Row) -> Result<(i64, T)>,
) -> Result<BTreeMap<i64, T>> {
    let mut found = BTreeMap::new();
    for chunk in ids.chunks(D::max_rows(1)) {
        let mut stmt = Statement::new(select);
        let in_ids = D::in_ids(&mut stmt, chunk);
        stmt.push(&in_ids);
        for row in D::fetch(tx, D::ARCHIVE, &stmt).await? {
            let (id, value) = read(&row)?;
            found.insert(id, value);
        }
    }
    Ok(found)
}

/// Of `rows` whose id is among `foreign` (stored, not by this migration), those stored
/// exactly as given go into `ours` (skipped, not written again); the others are
/// answered as conflicts, described by `what`.
fn settle_foreign<T>(
    rows: &[T],
    id_of: impl Fn(&T) -> i64,
    foreign: &BTreeSet<i64>,
    stored: &BTreeMap<i64, T>,
    same: impl Fn(&T, &T) -> bool,
    what: &str,
    ours: &mut BTreeSet<i64>,
) -> Vec<String> {
    let mut conflicts = Vec::new();
    for row in rows.iter().filter(|r| foreign.contains(&id_of(r))) {
        let id = id_of(row);
        match stored.get(&id) {
            Some(existing) if same(existing, row) => {
                ours.insert(id);
            }
            _ => conflicts.push(format!(
                "{what} {id} is already stored in the target as another {what}"
            )),
        }
    }
    conflicts
}

/// Whether two turns are one (annotations aside: processors add them later).
fn same_turn(a: &Turn, b: &Turn) -> bool {
    a.id == b.id
        && a.scope == b.scope
        && a.external_id == b.external_id
        && a.session_id == b.session_id
        && a.content == b.content
        && a.event_time == b.event_time
}

fn same_summary(a: &Summary, b: &Summary) -> bool {
    a.id == b.id
        && a.scope == b.scope
        && a.session_id == b.session_id
        && a.first_turn == b.first_turn
        && a.last_turn == b.last_turn
}

/// Why the migration `name` cannot copy `turns` and `summaries` into the archive, read in
/// `tx`; and the ids of each it wrote before (skipped).
async fn conflicts_in<D: Dialect>(
    tx: &mut D::Tx,
    name: &str,
    turns: &[Turn],
    summaries: &[Summary],
) -> Result<(Vec<String>, BTreeSet<i64>, BTreeSet<i64>)> {
    let mut conflicts = Vec::new();
    let ids: Vec<i64> = turns.iter().map(|t| t.id.0).collect();
    let (foreign, mut ours_turns) = stored_ids::<D>(tx, name, "turns", &ids).await?;
    // A row stored as it is in the source (another migration of the same source copied
    // it) is skipped, not written again; only a different row under the id conflicts.
    let foreign_ids: Vec<i64> = foreign.iter().copied().collect();
    let select = format!("SELECT {TURN_COLUMNS} FROM turns WHERE seq");
    let stored_turns = rows_by_ids::<D, _>(tx, &select, &foreign_ids, |row| {
        rows::turn(D::ARCHIVE, row).map(|t| (t.id.0, t))
    })
    .await?;
    conflicts.extend(settle_foreign(
        turns,
        |t| t.id.0,
        &foreign,
        &stored_turns,
        same_turn,
        "turn",
        &mut ours_turns,
    ));
    // A user's external id stored under another id.
    let new_turns: Vec<&Turn> = turns
        .iter()
        .filter(|t| !foreign.contains(&t.id.0) && !ours_turns.contains(&t.id.0))
        .collect();
    let keys: Vec<TurnKey> = new_turns
        .iter()
        .map(|t| key_of(&t.scope, &t.external_id))
        .collect();
    let key_refs: Vec<&TurnKey> = keys.iter().collect();
    let stored = SqlArchive::<D>::turns_by_keys(tx, &key_refs).await?;
    for turn in &new_turns {
        if let Some(other) = stored.get(&key_of(&turn.scope, &turn.external_id)) {
            conflicts.push(format!(
                "user {} of tenant {} already has external id {:?} in the target, as turn {}",
                turn.scope.user,
                turn.scope.tenant,
                turn.external_id.as_str(),
                other.id.0
            ));
        }
    }
    let ids: Vec<i64> = summaries.iter().map(|s| s.id.0).collect();
    let (foreign, mut ours_summaries) = stored_ids::<D>(tx, name, "summaries", &ids).await?;
    let foreign_ids: Vec<i64> = foreign.iter().copied().collect();
    let select = format!("SELECT {SUMMARY_COLUMNS} FROM summaries WHERE id");
    let stored_summaries = rows_by_ids::<D, _>(tx, &select, &foreign_ids, |row| {
        rows::summary(D::ARCHIVE, row).map(|s| (s.id.0, s))
    })
    .await?;
    conflicts.extend(settle_foreign(
        summaries,
        |s| s.id.0,
        &foreign,
        &stored_summaries,
        same_summary,
        "summary",
        &mut ours_summaries,
    ));
    // The same (user, session, turn range) under another id.
    let new_summaries: Vec<&Summary> = summaries
        .iter()
        .filter(|s| !foreign.contains(&s.id.0) && !ours_summaries.contains(&s.id.0))
        .collect();
    for chunk in new_summaries.chunks(D::max_rows(5)) {
        let mut stmt = Statement::new("WITH k (k_tenant, k_user, k_session, k_first, k_last) AS (");
        let values = D::rows(
            &mut stmt,
            summary_range_columns(
                chunk
                    .iter()
                    .map(|s| (&s.scope, &s.session_id, s.first_turn, s.last_turn)),
            ),
        );
        stmt.push(&values).push(
            ") SELECT id, tenant, user_id, session_id FROM k JOIN summaries \
             ON summaries.tenant = k.k_tenant AND summaries.user_id = k.k_user \
             AND summaries.session_id = k.k_session AND summaries.first_turn = k.k_first \
             AND summaries.last_turn = k.k_last",
        );
        for row in D::fetch(tx, D::ARCHIVE, &stmt).await? {
            let c = Columns::new(D::ARCHIVE, &row);
            conflicts.push(format!(
                "user {} of tenant {} already has a summary of those turns of session {} \
                 in the target, as summary {}",
                c.text("user_id")?,
                c.text("tenant")?,
                c.text("session_id")?,
                c.int("id")?
            ));
        }
    }
    Ok((conflicts, ours_turns, ours_summaries))
}

fn refuse(conflicts: &[String]) -> Error {
    let mut message = conflicts
        .iter()
        .take(SHOWN_CONFLICTS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if conflicts.len() > SHOWN_CONFLICTS {
        message.push_str(&format!("; and {} more", conflicts.len() - SHOWN_CONFLICTS));
    }
    Error::invalid(
        "migration target",
        format!(
            "{message} (a migration copies ids as they are: migrate into an empty archive, \
             or leave those users out with --users)"
        ),
    )
}

/// Records that the migration wrote `ids` of `kind`, and moves its progress column.
async fn record_copy<D: Dialect>(
    tx: &mut D::Tx,
    name: &str,
    kind: &'static str,
    ids: &[i64],
    progress_column: &'static str,
    copied: i64,
) -> Result<()> {
    let runs = id_runs(ids);
    for chunk in runs.chunks(D::max_rows(4)) {
        let mut stmt =
            Statement::new("INSERT INTO migrated_ranges (migration, kind, first_id, last_id) ");
        let values = D::rows(
            &mut stmt,
            vec![
                Arg::Texts(vec![Some(Cow::Owned(name.to_owned())); chunk.len()]),
                Arg::Texts(vec![Some(Cow::Borrowed(kind)); chunk.len()]),
                Arg::Ints(chunk.iter().map(|r| Some(r.0)).collect()),
                Arg::Ints(chunk.iter().map(|r| Some(r.1)).collect()),
            ],
        );
        stmt.push(&values);
        D::execute(tx, D::ARCHIVE, &stmt).await?;
    }
    let stmt = Statement::new(format!(
        "UPDATE migrations SET {progress_column} = {}({progress_column}, $2) WHERE name = $1",
        D::GREATEST
    ))
    .arg(name)
    .arg(copied);
    D::execute(tx, D::ARCHIVE, &stmt).await?;
    Ok(())
}

impl<D: Dialect> SqlArchive<D> {
    async fn record_in(tx: &mut D::Tx, name: &str) -> Result<Option<MigrationRecord>> {
        let stmt = Statement::new(format!(
            "SELECT {RECORD_COLUMNS} FROM migrations WHERE name = $1"
        ))
        .arg(name);
        D::fetch(tx, D::ARCHIVE, &stmt)
            .await?
            .first()
            .map(record_of::<D>)
            .transpose()
    }

    async fn existing_record(tx: &mut D::Tx, name: &str) -> Result<MigrationRecord> {
        Self::record_in(tx, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no migration {name:?} in this archive")))
    }
}

#[async_trait]
impl<D: Dialect> MigrationTarget for SqlArchive<D> {
    async fn migration(&self, name: &str) -> Result<Option<MigrationRecord>> {
        let mut tx = self.db().begin_snapshot(D::ARCHIVE).await?;
        let record = Self::record_in(&mut tx, name).await;
        D::rollback(tx, D::ARCHIVE).await?;
        record
    }

    async fn begin_migration(&self, name: &str, now: Timestamp) -> Result<MigrationRecord> {
        let mut tx = self.db().begin(D::ARCHIVE).await?;
        if let Some(record) = Self::record_in(&mut tx, name).await? {
            D::rollback(tx, D::ARCHIVE).await?;
            return Ok(record);
        }
        let counters = D::counters(&mut tx).await?;
        let checkpoints = checkpoints_in::<D>(&mut tx).await?;
        let as_ints: BTreeMap<&String, i64> = checkpoints.iter().map(|(k, v)| (k, v.0)).collect();
        let json = serde_json::to_string(&as_ints)
            .map_err(|e| Error::internal(D::ARCHIVE, format!("checkpoints as JSON: {e}")))?;
        let stmt = Statement::new(
            "INSERT INTO migrations (name, copied_turns, copied_summaries, graph_done, \
             head_before, summary_before, checkpoints_before, started, finished) \
             VALUES ($1, 0, 0, 0, $2, $3, $4, $5, NULL)",
        )
        .arg(name)
        .arg(counters.head)
        .arg(counters.summary)
        .arg(json)
        .arg(now.to_micros());
        D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
        let record = Self::existing_record(&mut tx, name).await?;
        D::commit(tx, D::ARCHIVE).await?;
        Ok(record)
    }

    async fn checkpoints(&self) -> Result<BTreeMap<String, TurnId>> {
        let mut tx = self.db().begin_snapshot(D::ARCHIVE).await?;
        let checkpoints = checkpoints_in::<D>(&mut tx).await;
        D::rollback(tx, D::ARCHIVE).await?;
        checkpoints
    }

    async fn copy_conflicts(
        &self,
        name: &str,
        turns: &[Turn],
        summaries: &[Summary],
    ) -> Result<Vec<String>> {
        let mut tx = self.db().begin_snapshot(D::ARCHIVE).await?;
        let found = conflicts_in::<D>(&mut tx, name, turns, summaries).await;
        D::rollback(tx, D::ARCHIVE).await?;
        Ok(found?.0)
    }

    async fn copy_turns(&self, name: &str, turns: &[Turn], copied: TurnId) -> Result<u64> {
        let mut tx = self.db().begin(D::ARCHIVE).await?;
        Self::existing_record(&mut tx, name).await?;
        let (conflicts, ours, _) = conflicts_in::<D>(&mut tx, name, turns, &[]).await?;
        if !conflicts.is_empty() {
            D::rollback(tx, D::ARCHIVE).await?;
            return Err(refuse(&conflicts));
        }
        // One row per id (a source never gives one twice, but a resumed copy may overlap).
        let mut seen = HashSet::new();
        let new: Vec<&Turn> = turns
            .iter()
            .filter(|t| !ours.contains(&t.id.0) && seen.insert(t.id.0))
            .collect();
        let emotions: Vec<Option<String>> = new
            .iter()
            .map(|t| t.emotion.as_ref().map(serde_json::to_string).transpose())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::invalid("emotion", e.to_string()))?;
        let metadata: Vec<String> = new
            .iter()
            .map(|t| serde_json::to_string(&t.metadata))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::invalid("metadata", e.to_string()))?;
        const COLUMNS: usize = 13;
        let mut start = 0;
        for chunk in new.chunks(D::max_rows(COLUMNS)) {
            let end = start + chunk.len();
            let texts = |pick: fn(&Turn) -> Option<&str>| {
                Arg::Texts(chunk.iter().map(|t| pick(t).map(Cow::Borrowed)).collect())
            };
            let ints =
                |pick: fn(&Turn) -> i64| Arg::Ints(chunk.iter().map(|t| Some(pick(t))).collect());
            let mut stmt = Statement::new(
                "INSERT INTO turns (seq, external_id, tenant, user_id, session_id, role, \
                 speaker, content, event_time, ingest_time, metadata, emotion, importance) ",
            );
            let values = D::rows(
                &mut stmt,
                vec![
                    ints(|t| t.id.0),
                    texts(|t| Some(t.external_id.as_str())),
                    texts(|t| Some(t.scope.tenant.as_str())),
                    texts(|t| Some(t.scope.user.as_str())),
                    texts(|t| Some(t.session_id.as_str())),
                    texts(|t| Some(t.role.as_str())),
                    texts(|t| t.speaker.as_deref()),
                    texts(|t| Some(t.content.as_str())),
                    ints(|t| t.event_time.to_micros()),
                    ints(|t| t.ingest_time.to_micros()),
                    Arg::Texts(
                        metadata[start..end]
                            .iter()
                            .map(|m| Some(Cow::Borrowed(m.as_str())))
                            .collect(),
                    ),
                    Arg::Texts(
                        emotions[start..end]
                            .iter()
                            .map(|e| e.as_deref().map(Cow::Borrowed))
                            .collect(),
                    ),
                    Arg::Floats(chunk.iter().map(|t| t.importance.map(f64::from)).collect()),
                ],
            );
            stmt.push(&values);
            D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
            start = end;
        }
        let mut ids: Vec<i64> = new.iter().map(|t| t.id.0).collect();
        ids.sort_unstable();
        record_copy::<D>(&mut tx, name, "turns", &ids, "copied_turns", copied.0).await?;
        // Ids given on insert stay below the counters, so none is handed out again.
        let top = ids.last().copied().unwrap_or(0);
        D::set_counters(
            &mut tx,
            Counters {
                head: top,
                summary: 0,
            },
            true,
        )
        .await?;
        D::commit(tx, D::ARCHIVE).await?;
        Ok(ids.len() as u64)
    }

    async fn copy_summaries(
        &self,
        name: &str,
        summaries: &[Summary],
        copied: SummaryId,
    ) -> Result<u64> {
        let mut tx = self.db().begin(D::ARCHIVE).await?;
        Self::existing_record(&mut tx, name).await?;
        let (conflicts, _, ours) = conflicts_in::<D>(&mut tx, name, &[], summaries).await?;
        if !conflicts.is_empty() {
            D::rollback(tx, D::ARCHIVE).await?;
            return Err(refuse(&conflicts));
        }
        let mut seen = HashSet::new();
        let new: Vec<&Summary> = summaries
            .iter()
            .filter(|s| !ours.contains(&s.id.0) && seen.insert(s.id.0))
            .collect();
        let keywords: Vec<String> = new
            .iter()
            .map(|s| serde_json::to_string(&s.keywords))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::invalid("keywords", e.to_string()))?;
        let mut start = 0;
        for chunk in new.chunks(D::max_rows(11)) {
            let end = start + chunk.len();
            let texts = |pick: fn(&Summary) -> &str| {
                Arg::Texts(chunk.iter().map(|s| Some(Cow::Borrowed(pick(s)))).collect())
            };
            let ints = |pick: fn(&Summary) -> i64| {
                Arg::Ints(chunk.iter().map(|s| Some(pick(s))).collect())
            };
            let mut stmt = Statement::new(format!(
                "INSERT INTO summaries (id, tenant, user_id, session_id, first_turn, last_turn, \
                 text, keywords, start_time, end_time, created){} ",
                D::GIVEN_IDS
            ));
            let values = D::rows(
                &mut stmt,
                vec![
                    ints(|s| s.id.0),
                    texts(|s| s.scope.tenant.as_str()),
                    texts(|s| s.scope.user.as_str()),
                    texts(|s| s.session_id.as_str()),
                    ints(|s| s.first_turn.0),
                    ints(|s| s.last_turn.0),
                    texts(|s| s.text.as_str()),
                    Arg::Texts(
                        keywords[start..end]
                            .iter()
                            .map(|k| Some(Cow::Borrowed(k.as_str())))
                            .collect(),
                    ),
                    ints(|s| s.start_time.to_micros()),
                    ints(|s| s.end_time.to_micros()),
                    ints(|s| s.created.to_micros()),
                ],
            );
            stmt.push(&values);
            D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
            start = end;
        }
        let mut ids: Vec<i64> = new.iter().map(|s| s.id.0).collect();
        ids.sort_unstable();
        record_copy::<D>(
            &mut tx,
            name,
            "summaries",
            &ids,
            "copied_summaries",
            copied.0,
        )
        .await?;
        let top = ids.last().copied().unwrap_or(0);
        D::set_counters(
            &mut tx,
            Counters {
                head: 0,
                summary: top,
            },
            true,
        )
        .await?;
        D::commit(tx, D::ARCHIVE).await?;
        Ok(ids.len() as u64)
    }

    async fn set_migration_graph_done(&self, name: &str, done: TurnId) -> Result<()> {
        let stmt = Statement::new(format!(
            "UPDATE migrations SET graph_done = {}(graph_done, $2) WHERE name = $1",
            D::GREATEST
        ))
        .arg(name)
        .arg(done.0);
        self.db().write(D::ARCHIVE, &stmt).await?;
        Ok(())
    }

    async fn finish_migration(
        &self,
        name: &str,
        head: TurnId,
        summary: SummaryId,
        checkpoints: &BTreeMap<String, TurnId>,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.db().begin(D::ARCHIVE).await?;
        let record = Self::existing_record(&mut tx, name).await?;
        let current = checkpoints_in::<D>(&mut tx).await?;
        for (processor, source) in checkpoints {
            let at = if record.target_was_empty() {
                *source
            } else {
                (*source).min(current.get(processor).copied().unwrap_or_default())
            };
            let stmt = Statement::new(
                "INSERT INTO checkpoints (processor, seq) VALUES ($1, $2) \
                 ON CONFLICT (processor) DO UPDATE SET seq = excluded.seq",
            )
            .arg(processor.as_str())
            .arg(at.0);
            D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
        }
        D::set_counters(
            &mut tx,
            Counters {
                head: head.0,
                summary: summary.0,
            },
            true,
        )
        .await?;
        let stmt = Statement::new("UPDATE migrations SET finished = $2 WHERE name = $1")
            .arg(name)
            .arg(now.to_micros());
        D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
        D::commit(tx, D::ARCHIVE).await
    }

    async fn migrated_users(&self, name: &str) -> Result<Vec<MigratedUser>> {
        let stmt = Statement::new(
            "WITH m (tenant, user_id, migrated) AS (SELECT t.tenant, t.user_id, COUNT(*) \
             FROM migrated_ranges r JOIN turns t ON t.seq >= r.first_id AND t.seq <= r.last_id \
             WHERE r.migration = $1 AND r.kind = 'turns' GROUP BY t.tenant, t.user_id) \
             SELECT m.tenant, m.user_id, m.migrated, (SELECT COUNT(*) FROM turns a \
             WHERE a.tenant = m.tenant AND a.user_id = m.user_id) AS total FROM m \
             ORDER BY m.tenant, m.user_id",
        )
        .arg(name);
        self.db()
            .read(D::ARCHIVE, &stmt)
            .await?
            .iter()
            .map(|row| {
                let c = Columns::new(D::ARCHIVE, row);
                Ok(MigratedUser {
                    scope: c.scope("a migrated user")?,
                    migrated: c.int("migrated")? as u64,
                    total: c.int("total")? as u64,
                })
            })
            .collect()
    }

    async fn migrated_turns(
        &self,
        name: &str,
        after: TurnId,
        limit: usize,
    ) -> Result<Vec<(Scope, TurnId)>> {
        let stmt = Statement::new(
            "SELECT t.tenant, t.user_id, t.seq FROM migrated_ranges r JOIN turns t \
             ON t.seq >= r.first_id AND t.seq <= r.last_id \
             WHERE r.migration = $1 AND r.kind = 'turns' AND t.seq > $2 \
             ORDER BY t.seq LIMIT $3",
        )
        .arg(name)
        .arg(after.0)
        .arg(limit as i64);
        self.db()
            .read(D::ARCHIVE, &stmt)
            .await?
            .iter()
            .map(|row| {
                let c = Columns::new(D::ARCHIVE, row);
                Ok((c.scope("a migrated turn")?, TurnId(c.int("seq")?)))
            })
            .collect()
    }

    async fn rollback_migration(&self, name: &str) -> Result<RollbackReport> {
        let mut tx = self.db().begin(D::ARCHIVE).await?;
        let record = Self::existing_record(&mut tx, name).await?;
        let mut report = RollbackReport::default();
        let mut users: BTreeSet<(String, String)> = BTreeSet::new();
        for (kind, table, column) in [("turns", "turns", "seq"), ("summaries", "summaries", "id")] {
            let stmt = Statement::new(format!(
                "DELETE FROM {table} WHERE {column} IN (SELECT x.{column} \
                 FROM migrated_ranges r JOIN {table} x ON x.{column} >= r.first_id \
                 AND x.{column} <= r.last_id WHERE r.migration = $1 AND r.kind = $2) \
                 RETURNING tenant, user_id"
            ))
            .arg(name)
            .arg(kind);
            let rows = D::fetch(&mut tx, D::ARCHIVE, &stmt).await?;
            for row in &rows {
                let c = Columns::new(D::ARCHIVE, row);
                users.insert((c.text("tenant")?, c.text("user_id")?));
            }
            match kind {
                "turns" => report.turns = rows.len() as u64,
                _ => report.summaries = rows.len() as u64,
            }
        }
        // What the engine keeps of a user with no turn left.
        for (tenant, user) in &users {
            let stmt = Statement::new(
                "SELECT 1 AS one FROM turns WHERE tenant = $1 AND user_id = $2 LIMIT 1",
            )
            .arg(tenant.as_str())
            .arg(user.as_str());
            if !D::fetch(&mut tx, D::ARCHIVE, &stmt).await?.is_empty() {
                continue;
            }
            for table in ["emotion_state", "recent_gaps", "summaries"] {
                let stmt = Statement::new(format!(
                    "DELETE FROM {table} WHERE tenant = $1 AND user_id = $2"
                ))
                .arg(tenant.as_str())
                .arg(user.as_str());
                D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
            }
            report.emptied_users += 1;
        }
        // Checkpoints at most where they were: the processors see again what they may
        // have derived from the copies, and remove nothing else.
        let current = checkpoints_in::<D>(&mut tx).await?;
        for (processor, now) in current {
            let Some(&before) = record.checkpoints_before.get(&processor) else {
                // A processor that had never run here starts from the beginning again.
                let stmt = Statement::new("DELETE FROM checkpoints WHERE processor = $1")
                    .arg(processor.as_str());
                D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
                continue;
            };
            if now > before {
                let stmt = Statement::new("UPDATE checkpoints SET seq = $2 WHERE processor = $1")
                    .arg(processor.as_str())
                    .arg(before.0);
                D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
            }
        }
        // The counters back where they were, when nothing stored is above them.
        let stmt = Statement::new(
            "SELECT (SELECT MAX(seq) FROM turns) AS turn, (SELECT MAX(seq) FROM forgets) \
             AS forget, (SELECT MAX(id) FROM summaries) AS summary",
        );
        let rows = D::fetch(&mut tx, D::ARCHIVE, &stmt).await?;
        if let Some(row) = rows.first() {
            let c = Columns::new(D::ARCHIVE, row);
            let top_turn = c
                .opt_int("turn")?
                .unwrap_or(0)
                .max(c.opt_int("forget")?.unwrap_or(0));
            let top_summary = c.opt_int("summary")?.unwrap_or(0);
            let mut counters = D::counters(&mut tx).await?;
            if top_turn <= record.head_before.0 {
                counters.head = record.head_before.0;
            }
            if top_summary <= record.summary_before.0 {
                counters.summary = record.summary_before.0;
            }
            D::set_counters(&mut tx, counters, false).await?;
        }
        for table in ["migrated_ranges", "migrations"] {
            let column = if table == "migrations" {
                "name"
            } else {
                "migration"
            };
            let stmt = Statement::new(format!("DELETE FROM {table} WHERE {column} = $1")).arg(name);
            D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
        }
        D::commit(tx, D::ARCHIVE).await?;
        Ok(report)
    }
}
