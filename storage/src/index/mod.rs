//! The index tier: full-text (BM25) search over turns and summaries, always restricted
//! to one tenant and user by an indexed filter (never by post-filtering a global top-k).
//! Derived from the archive, and rebuildable from it ([`rebuild_from_archive`]).
//!
//! Backends: [`tantivy::TantivyIndex`] (embedded, on local disk or in RAM).

pub mod dates;
pub mod tantivy;
mod tokenizer;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::archive::ArchiveStore;
use crate::error::{Error, Result};
use crate::model::{Scope, SessionId, Summary, SummaryId, Timestamp, Turn, TurnId};

/// English stopwords and chat filler, one or more a line, `#` comments: left out of the
/// index and of queries (so "my" or "how" never outweigh a name), and of keywords.
pub const STOPWORDS: &str = include_str!("stopwords.txt");

/// Settings of the index tier. Section `[storage.index]` of `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Directory of the index; a relative path is resolved against `storage.data_dir`.
    pub path: String,
    /// Keep the index in memory only (tests, throw-away engines).
    pub in_memory: bool,
    /// Pending writes are committed (made searchable) at most this many milliseconds
    /// after they arrive.
    pub commit_interval_ms: u64,
    /// Memory the tantivy writer may buffer before it flushes a segment, in MiB.
    pub writer_memory_mb: usize,
    /// Threads that run searches (owned by the index, never the async executor).
    pub search_threads: usize,
    /// Niceness (0-19) of the writer's thread and of the indexing and merge threads it
    /// starts: background work that gives way to requests when the cores are short.
    /// 0: the requests' priority.
    pub writer_nice: i32,
    /// Most hits one search may ask for.
    pub max_limit: usize,
    /// How much a dated document counts when a query names its day, month or year
    /// ("on May 3, 2023", "in June"), against the query's words (see [`dates`]); 0
    /// leaves dates out of the search.
    pub date_weight: f32,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            path: "index".into(),
            in_memory: false,
            commit_interval_ms: 1_000,
            writer_memory_mb: 64,
            search_threads: 2,
            writer_nice: 10,
            max_limit: 1_000,
            date_weight: 1.0,
        }
    }
}

/// What an index document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    /// A conversation turn.
    Turn,
    /// A session summary.
    Summary,
}

impl DocKind {
    /// The kind's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Turn => "turn",
            DocKind::Summary => "summary",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "turn" => Some(DocKind::Turn),
            "summary" => Some(DocKind::Summary),
            _ => None,
        }
    }
}

/// A document to index: a turn or a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDoc {
    /// Turn or summary.
    pub kind: DocKind,
    /// The turn's or summary's id in the archive.
    pub id: i64,
    /// Whose it is.
    pub scope: Scope,
    /// Its session.
    pub session_id: SessionId,
    /// When it was said (a summary: its last turn's time).
    pub event_time: Timestamp,
    /// The searchable text.
    pub text: String,
    /// Who said it (turns): searchable too, so "what did Sam suggest" finds Sam's turns,
    /// but not part of the text a hit returns.
    pub speaker: Option<String>,
}

impl IndexDoc {
    /// The document for a stored turn.
    pub fn from_turn(turn: &Turn) -> Self {
        Self {
            kind: DocKind::Turn,
            id: turn.id.0,
            scope: turn.scope.clone(),
            session_id: turn.session_id.clone(),
            event_time: turn.event_time,
            text: turn.content.clone(),
            speaker: turn.speaker.clone(),
        }
    }

    /// The document for a stored summary.
    pub fn from_summary(summary: &Summary) -> Self {
        Self {
            kind: DocKind::Summary,
            id: summary.id.0,
            scope: summary.scope.clone(),
            session_id: summary.session_id.clone(),
            event_time: summary.end_time,
            text: summary.text.clone(),
            speaker: None,
        }
    }
}

/// A search within one user's documents.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Words to look for (free text; no query syntax is interpreted).
    pub text: String,
    /// Only documents at or after this time.
    pub from: Option<Timestamp>,
    /// Only documents before this time.
    pub to: Option<Timestamp>,
    /// Only this kind of document.
    pub kind: Option<DocKind>,
    /// Only this session.
    pub session: Option<SessionId>,
    /// Hits to skip (paging).
    pub offset: usize,
    /// Most hits to return.
    pub limit: usize,
}

impl SearchQuery {
    /// The first `limit` hits for `text`, with no other filter.
    pub fn new(text: impl Into<String>, limit: usize) -> Self {
        Self {
            text: text.into(),
            from: None,
            to: None,
            kind: None,
            session: None,
            offset: 0,
            limit,
        }
    }
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// Turn or summary.
    pub kind: DocKind,
    /// The turn's or summary's id.
    pub id: i64,
    /// Its session.
    pub session_id: SessionId,
    /// When it was said.
    pub event_time: Timestamp,
    /// Its text.
    pub text: String,
    /// BM25 relevance.
    pub score: f32,
}

impl SearchHit {
    /// The turn id, when this hit is a turn.
    pub fn turn_id(&self) -> Option<TurnId> {
        (self.kind == DocKind::Turn).then_some(TurnId(self.id))
    }

    /// The summary id, when this hit is a summary.
    pub fn summary_id(&self) -> Option<SummaryId> {
        (self.kind == DocKind::Summary).then_some(SummaryId(self.id))
    }
}

/// How far an index has followed the archive: the last turn and summary it holds. Each
/// commit records it inside the index (tantivy: the commit's payload), so it is always
/// exactly as durable as the documents it describes: a lost or new index directory reads
/// zero, and the node indexes the archive again from the start by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IndexMark {
    /// Every turn up to this id has been indexed (or was forgotten).
    pub turns: TurnId,
    /// Every summary up to this id has been indexed (or was forgotten).
    pub summaries: SummaryId,
}

/// The index tier.
///
/// Writes (`add`, deletes) are applied in order and become visible to searches at the
/// next commit: on the configured interval, or when `commit` is called.
#[async_trait]
pub trait IndexStore: Send + Sync + std::fmt::Debug {
    /// Indexes documents; a document with the same kind, id and scope replaces the old one.
    async fn add(&self, docs: Vec<IndexDoc>) -> Result<()>;

    /// BM25 search within `scope`, best first.
    async fn search(&self, scope: &Scope, query: &SearchQuery) -> Result<Vec<SearchHit>>;

    /// Removes every document of the user.
    async fn delete_user(&self, scope: &Scope) -> Result<()>;

    /// Removes one document of the user.
    async fn delete_doc(&self, scope: &Scope, kind: DocKind, id: i64) -> Result<()>;

    /// Removes every document of every user (before a rebuild).
    async fn clear(&self) -> Result<()>;

    /// Makes every write so far visible to searches, durably.
    async fn commit(&self) -> Result<()>;

    /// Commits like [`IndexStore::commit`] and records `mark` with the commit: the
    /// caller has written everything up to it.
    async fn commit_at(&self, mark: IndexMark) -> Result<()>;

    /// The mark of the last commit ([`IndexMark::default`] for a new index, and after
    /// [`IndexStore::clear`] once committed).
    async fn mark(&self) -> Result<IndexMark>;

    /// Number of searchable documents.
    async fn num_docs(&self) -> Result<u64>;

    /// Whether the index answers (health: a tier is up only once it does).
    async fn ping(&self) -> Result<()>;

    /// Commits pending writes and stops the index's threads.
    async fn close(&self) -> Result<()>;
}

/// Checks the parts of a query every backend refuses alike.
pub(crate) fn check_query(query: &SearchQuery, max_limit: usize) -> Result<()> {
    if query.text.trim().is_empty() {
        return Err(Error::invalid("query", "must contain at least one word"));
    }
    if query.limit > max_limit {
        return Err(Error::invalid(
            "limit",
            format!("{} is over the limit of {max_limit}", query.limit),
        ));
    }
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if from > to {
            return Err(Error::invalid("from", "is after `to`"));
        }
    }
    Ok(())
}

/// What a rebuild indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RebuildReport {
    /// Turns indexed.
    pub turns: u64,
    /// Summaries indexed.
    pub summaries: u64,
}

/// Empties `index` and indexes every turn and summary of `archive` again, `batch` at a
/// time, calling `progress` after each batch, then commits with the mark of what it
/// indexed (so a processor following the outbox resumes after it).
pub async fn rebuild_from_archive(
    archive: &dyn ArchiveStore,
    index: &dyn IndexStore,
    batch: usize,
    mut progress: impl FnMut(&RebuildReport) + Send,
) -> Result<RebuildReport> {
    let batch = batch.max(1);
    index.clear().await?;
    let mut report = RebuildReport::default();
    let mut mark = IndexMark::default();
    loop {
        let page = archive.outbox(mark.turns, batch).await?;
        let Some(last) = page.turns.last().map(|t| t.id) else {
            // Up to the head as of this read: ids in between are gone or were never stored.
            mark.turns = mark.turns.max(page.head);
            break;
        };
        mark.turns = last;
        report.turns += page.turns.len() as u64;
        index
            .add(page.turns.iter().map(IndexDoc::from_turn).collect())
            .await?;
        progress(&report);
    }
    loop {
        let summaries = archive.summaries_after(mark.summaries, batch).await?;
        let Some(last) = summaries.last() else { break };
        mark.summaries = last.id;
        report.summaries += summaries.len() as u64;
        index
            .add(summaries.iter().map(IndexDoc::from_summary).collect())
            .await?;
        progress(&report);
    }
    index.commit_at(mark).await?;
    Ok(report)
}
