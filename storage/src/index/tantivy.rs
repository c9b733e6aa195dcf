//! The embedded index: tantivy on local disk (or in RAM for tests).
//!
//! The index owns its threads: one writer thread that applies writes in order and
//! commits on an interval or on demand, and a few search threads. Both are fed through
//! crossbeam channels, and answer through oneshot channels, so callers on an async
//! executor never run tantivy's blocking work themselves.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, STORED, STRING,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};

use super::dates;
use super::tokenizer::{self, ANALYZER};
use super::{
    check_query, DocKind, IndexConfig, IndexDoc, IndexMark, IndexStore, SearchHit, SearchQuery,
};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Scope, SessionId, Timestamp, TimestampExt};

const BACKEND: &str = "tantivy index";

fn tantivy_err(err: tantivy::TantivyError) -> Error {
    use tantivy::TantivyError as E;
    let kind = match &err {
        E::DataCorruption(_) | E::IncompatibleIndex(_) | E::SchemaError(_) => ErrorKind::Corrupt,
        E::IoError(_)
        | E::LockFailure(..)
        | E::OpenDirectoryError(_)
        | E::OpenReadError(_)
        | E::OpenWriteError(_) => ErrorKind::Unavailable,
        E::InvalidArgument(_) => return Error::invalid("query", err.to_string()),
        _ => ErrorKind::Internal,
    };
    Error::backend(BACKEND, kind, err)
}

fn stopped() -> Error {
    Error::unavailable(BACKEND, "the index has been closed")
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    key: Field,
    scope: Field,
    kind: Field,
    id: Field,
    session: Field,
    event_time: Field,
    text: Field,
    /// The days a document is about, as [`dates`] terms: searchable, not stored.
    when: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_options = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        key: b.add_text_field("key", STRING),
        scope: b.add_text_field("scope", STRING),
        kind: b.add_text_field("kind", STRING | STORED),
        // Read back, never searched: indexing it put a term per document into every
        // segment's dictionary and every merge (BENCHMARKS.md, ingest).
        id: b.add_i64_field("id", STORED),
        session: b.add_text_field("session", STRING | STORED),
        // A time window is a range on the fast column, which tantivy prefers over the
        // terms of an indexed one: those were a near-unique term per document.
        event_time: b.add_i64_field("event_time", STORED | FAST),
        text: b.add_text_field("text", text_options),
        when: b.add_text_field(
            "when",
            TextOptions::default().set_indexing_options(
                // No length norm: a turn that speaks of many days is no less about each.
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_fieldnorms(false)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        ),
    };
    (b.build(), fields)
}

/// The unique key of a document: its scope, kind and id, so that a replace or delete
/// can only ever touch that user's document.
fn doc_key(scope: &Scope, kind: DocKind, id: i64) -> String {
    format!("{}\u{1f}{}\u{1f}{id}", scope.key(), kind.as_str())
}

type Reply<T> = oneshot::Sender<Result<T>>;

enum WriteOp {
    Add(Vec<IndexDoc>, Reply<()>),
    DeleteUser(Scope, Reply<()>),
    DeleteDoc(Scope, DocKind, i64, Reply<()>),
    Clear(Reply<()>),
    Commit(Reply<()>),
    CommitAt(IndexMark, Reply<()>),
    /// Commit, wait for merges, answer, and stop the thread.
    Shutdown(Reply<()>),
}

enum SearchJob {
    Search {
        scope: Scope,
        query: SearchQuery,
        reply: Reply<Vec<SearchHit>>,
    },
    Stop,
}

/// A job in a bounded queue: the permit is the job's place in the queue, freed when the
/// job is done. Callers wait for a place asynchronously instead of blocking a thread.
struct Queued<T> {
    job: T,
    _place: OwnedSemaphorePermit,
}

/// A bounded queue to threads the index owns.
struct JobQueue<T> {
    sender: Sender<Queued<T>>,
    places: Arc<Semaphore>,
}

impl<T> JobQueue<T> {
    fn new(capacity: usize) -> (Self, Receiver<Queued<T>>) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let places = Arc::new(Semaphore::new(capacity));
        (Self { sender, places }, receiver)
    }

    async fn send(&self, job: T) -> Result<()> {
        let place = self
            .places
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| stopped())?;
        self.sender
            .send(Queued { job, _place: place })
            .map_err(|_| stopped())
    }
}

/// The embedded full-text index.
pub struct TantivyIndex {
    reader: IndexReader,
    writes: JobQueue<WriteOp>,
    searches: JobQueue<SearchJob>,
    search_threads: usize,
    commits: watch::Receiver<u64>,
    /// The mark of the last commit.
    committed: Arc<parking_lot::Mutex<IndexMark>>,
    max_limit: usize,
    path: Option<PathBuf>,
}

/// The mark and highest ids a commit recorded, from its payload; none (a new index, or
/// one written before marks were recorded) reads zero, so the index is filled again from
/// the start. A payload without the ids leaves them unknown.
fn read_payload(index: &Index) -> Result<CommitPayload> {
    let metas = index.load_metas().map_err(tantivy_err)?;
    match metas.payload.as_deref() {
        // Never committed: empty, so every id is new.
        None | Some("") => Ok(CommitPayload {
            mark: IndexMark::default(),
            added: Some(AddedIds::default()),
        }),
        Some(payload) => serde_json::from_str(payload).map_err(|e| {
            Error::corrupt(
                BACKEND,
                format!("the index's commit mark is unreadable: {e}"),
            )
        }),
    }
}

/// What each commit records in the index: the mark, and the highest ids added.
#[derive(Debug, Serialize, Deserialize)]
struct CommitPayload {
    #[serde(flatten)]
    mark: IndexMark,
    /// `None`: not known (an index written before this was recorded).
    #[serde(default)]
    added: Option<AddedIds>,
}

/// The highest id of each kind ever added to the index, committed or not. A document
/// with a higher id cannot be in the index, so adding it needs no delete of an older
/// copy: a delete term per document was applied to every segment at every commit and
/// kept through merges (BENCHMARKS.md, ingest). The archive gives ids in increasing
/// order and the indexer follows it, so almost every add is of a new id; a replay after
/// a restart re-adds ids at or below these and replaces them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct AddedIds {
    turns: i64,
    summaries: i64,
}

impl AddedIds {
    /// Whether `id` of `kind` is higher than any added so far; records it.
    fn is_new(&mut self, kind: DocKind, id: i64) -> bool {
        let highest = match kind {
            DocKind::Turn => &mut self.turns,
            DocKind::Summary => &mut self.summaries,
        };
        let new = id > *highest;
        *highest = (*highest).max(id);
        new
    }
}

impl std::fmt::Debug for TantivyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyIndex")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Opens the index in `dir`, or creates it. An index written with another schema (an
/// older release's) is derived data: it is removed and created anew, and its mark of
/// zero makes the indexer fill it again from the archive.
fn open_on_disk(dir: &Path, schema: Schema) -> Result<Index> {
    let open = || {
        MmapDirectory::open(dir)
            .map_err(|e| Error::unavailable(BACKEND, format!("{}: {e}", dir.display())))
    };
    let directory = open()?;
    if Index::exists(&directory).map_err(|e| Error::unavailable(BACKEND, e.to_string()))? {
        let existing = Index::open(directory).map_err(tantivy_err)?;
        if existing.schema() == schema {
            return Ok(existing);
        }
        drop(existing);
        tracing::warn!(
            path = %dir.display(),
            "the index was written with another schema: rebuilding it from the archive"
        );
        remove_index_files(dir)?;
        return Index::create(open()?, schema, Default::default()).map_err(tantivy_err);
    }
    Index::create(directory, schema, Default::default()).map_err(tantivy_err)
}

/// Removes the files tantivy keeps in `dir` (its metadata and segment files, named by a
/// hex uuid), and nothing else that may share the directory.
fn remove_index_files(dir: &Path) -> Result<()> {
    let unavailable = |e: std::io::Error| {
        Error::unavailable(BACKEND, format!("cannot clear {}: {e}", dir.display()))
    };
    for entry in std::fs::read_dir(dir).map_err(unavailable)? {
        let entry = entry.map_err(unavailable)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let segment = name
            .split('.')
            .next()
            .is_some_and(|stem| stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()));
        if segment || name == "meta.json" || name == ".managed.json" {
            std::fs::remove_file(entry.path()).map_err(unavailable)?;
        }
    }
    Ok(())
}

impl TantivyIndex {
    /// Opens the index in `dir` (created if missing), or in RAM when `dir` is `None`,
    /// and starts its threads.
    pub fn open(dir: Option<&Path>, config: &IndexConfig) -> Result<Self> {
        let (schema, fields) = schema();
        let index = match dir {
            None => Index::create_in_ram(schema),
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::unavailable(BACKEND, format!("cannot create {}: {e}", dir.display()))
                })?;
                open_on_disk(dir, schema)?
            }
        };
        index.tokenizers().register(ANALYZER, tokenizer::analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_err)?;

        let (writes, write_rx) = JobQueue::new(QUEUE_CAPACITY);
        let (searches, search_rx) = JobQueue::new(QUEUE_CAPACITY);
        let (commit_tx, commit_rx) = watch::channel(0u64);
        let search_threads = config.search_threads.max(1);
        let CommitPayload { mark, added } = read_payload(&index)?;
        let committed = Arc::new(parking_lot::Mutex::new(mark));
        let (loop_reader, loop_committed) = (reader.clone(), committed.clone());
        let interval = Duration::from_millis(config.commit_interval_ms.max(1));
        let (writer_index, nice) = (index.clone(), config.writer_nice);
        let memory = config.writer_memory_mb.max(16) * 1024 * 1024;
        let (opened_tx, opened_rx) = std::sync::mpsc::sync_channel(1);
        spawn("mnemo-index-writer", move || {
            // Background work: lowered before the writer is made, so the indexing and
            // merge threads tantivy starts from this thread inherit it.
            crate::priority::lower_this_thread(nice);
            let writer: IndexWriter = match writer_index.writer_with_num_threads(1, memory) {
                Ok(writer) => writer,
                Err(e) => {
                    let _ = opened_tx.send(Err(tantivy_err(e)));
                    return;
                }
            };
            let _ = opened_tx.send(Ok(()));
            WriterLoop {
                writer,
                reader: loop_reader,
                fields,
                interval,
                commits: commit_tx,
                mark,
                added,
                committed: loop_committed,
            }
            .run(write_rx)
        })?;
        opened_rx.recv().map_err(|_| {
            Error::unavailable(
                BACKEND,
                "the index writer's thread stopped while opening it",
            )
        })??;
        for n in 0..search_threads {
            let searcher = SearchLoop {
                reader: reader.clone(),
                fields,
                analyzer: tokenizer::analyzer(),
                date_weight: config.date_weight.max(0.0),
            };
            let jobs = search_rx.clone();
            spawn(&format!("mnemo-index-search-{n}"), move || {
                searcher.run(jobs)
            })?;
        }
        Ok(Self {
            reader,
            writes,
            searches,
            search_threads,
            commits: commit_rx,
            committed,
            max_limit: config.max_limit,
            path: dir.map(Path::to_owned),
        })
    }

    /// A receiver that changes on every commit (its value counts commits): lets a caller
    /// wait for the next interval commit without polling.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }

    /// The index directory, or `None` in RAM.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    async fn write(&self, make: impl FnOnce(Reply<()>) -> WriteOp) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.writes.send(make(tx)).await?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Jobs waiting for the writer or the searchers, at most.
const QUEUE_CAPACITY: usize = 1024;

/// Starts one of the index's threads. They are not joined: each stops when its queue
/// disconnects or tells it to, after finishing the job in hand.
fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|e| Error::unavailable(BACKEND, format!("cannot start thread {name}: {e}")))
}

struct WriterLoop {
    writer: IndexWriter,
    reader: IndexReader,
    fields: Fields,
    interval: Duration,
    commits: watch::Sender<u64>,
    /// The mark every commit records: the last one given, zero after a clear.
    mark: IndexMark,
    /// The highest ids added (`None`: not known, so every add replaces).
    added: Option<AddedIds>,
    committed: Arc<parking_lot::Mutex<IndexMark>>,
}

impl WriterLoop {
    fn run(mut self, ops: Receiver<Queued<WriteOp>>) {
        let mut dirty_since: Option<Instant> = None;
        loop {
            // Checked before receiving: under a steady stream of writes the receive below
            // never times out, and the interval commit would never happen.
            if dirty_since.is_some_and(|since| since.elapsed() >= self.interval) {
                dirty_since = None;
                // As on a timeout: a failure shows up on the next explicit commit.
                let _ = self.commit();
            }
            let timeout = match dirty_since {
                Some(since) => self.interval.saturating_sub(since.elapsed()),
                None => Duration::from_secs(3600),
            };
            match ops.recv_timeout(timeout).map(|queued| queued.job) {
                Ok(WriteOp::Commit(reply)) => {
                    let _ = reply.send(self.commit());
                    dirty_since = None;
                }
                Ok(WriteOp::CommitAt(mark, reply)) => {
                    self.mark = mark;
                    let _ = reply.send(self.commit());
                    dirty_since = None;
                }
                Ok(WriteOp::Shutdown(reply)) => {
                    let result = self.commit();
                    let merged = self.writer.wait_merging_threads().map_err(tantivy_err);
                    let _ = reply.send(result.and(merged));
                    return;
                }
                Ok(op) => {
                    self.apply(op);
                    dirty_since.get_or_insert_with(Instant::now);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if dirty_since.take().is_some() {
                        // Nobody waits on an interval commit; a failure shows up on the
                        // next explicit commit, which retries the same pending writes.
                        let _ = self.commit();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.commit();
                    let _ = self.writer.wait_merging_threads();
                    return;
                }
            }
        }
    }

    fn apply(&mut self, op: WriteOp) {
        let f = self.fields;
        match op {
            WriteOp::Add(docs, reply) => {
                let result = docs.into_iter().try_for_each(|d| {
                    let key = doc_key(&d.scope, d.kind, d.id);
                    let new = self
                        .added
                        .as_mut()
                        .is_some_and(|added| added.is_new(d.kind, d.id));
                    if !new {
                        self.writer.delete_term(Term::from_field_text(f.key, &key));
                    }
                    let mut doc = TantivyDocument::new();
                    doc.add_text(f.key, &key);
                    doc.add_text(f.scope, d.scope.key());
                    doc.add_text(f.kind, d.kind.as_str());
                    doc.add_i64(f.id, d.id);
                    doc.add_text(f.session, d.session_id.as_str());
                    doc.add_i64(f.event_time, d.event_time.to_micros());
                    doc.add_text(f.text, &d.text);
                    // A second value of the text field: searchable, while a hit's text is
                    // the first value only.
                    if let Some(speaker) = &d.speaker {
                        doc.add_text(f.text, speaker);
                    }
                    for term in dates::turn_terms(&d.text, d.event_time.date_naive()) {
                        doc.add_text(f.when, term);
                    }
                    self.writer.add_document(doc).map(|_| ())
                });
                let _ = reply.send(result.map_err(tantivy_err));
            }
            WriteOp::DeleteUser(scope, reply) => {
                self.writer
                    .delete_term(Term::from_field_text(f.scope, &scope.key()));
                let _ = reply.send(Ok(()));
            }
            WriteOp::DeleteDoc(scope, kind, id, reply) => {
                self.writer
                    .delete_term(Term::from_field_text(f.key, &doc_key(&scope, kind, id)));
                let _ = reply.send(Ok(()));
            }
            WriteOp::Clear(reply) => {
                self.mark = IndexMark::default();
                // Not `delete_all_documents`: it drops only flushed segments, so documents
                // added since the last flush survive it, and it rewinds the opstamps so
                // later deletes miss them. A delete of every document, in order, doesn't.
                let cleared = self
                    .writer
                    .delete_query(Box::new(AllQuery))
                    .map(|_| ())
                    .map_err(tantivy_err);
                if cleared.is_ok() {
                    // Nothing older is left for a later add to replace.
                    self.added = Some(AddedIds::default());
                }
                let _ = reply.send(cleared);
            }
            WriteOp::Commit(reply) | WriteOp::Shutdown(reply) => {
                let _ = reply.send(self.commit());
            }
            WriteOp::CommitAt(mark, reply) => {
                self.mark = mark;
                let _ = reply.send(self.commit());
            }
        }
    }

    fn commit(&mut self) -> Result<()> {
        let payload = serde_json::to_string(&CommitPayload {
            mark: self.mark,
            added: self.added,
        })
        .map_err(|e| Error::backend(BACKEND, ErrorKind::Internal, e))?;
        let mut prepared = self.writer.prepare_commit().map_err(tantivy_err)?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(tantivy_err)?;
        *self.committed.lock() = self.mark;
        self.reader.reload().map_err(tantivy_err)?;
        self.commits.send_modify(|n| *n += 1);
        Ok(())
    }
}

struct SearchLoop {
    reader: IndexReader,
    fields: Fields,
    analyzer: tantivy::tokenizer::TextAnalyzer,
    /// The boost of a date the query names (`IndexConfig::date_weight`).
    date_weight: f32,
}

impl SearchLoop {
    fn run(mut self, jobs: Receiver<Queued<SearchJob>>) {
        for queued in jobs {
            match queued.job {
                SearchJob::Search {
                    scope,
                    query,
                    reply,
                } => {
                    let _ = reply.send(self.search(&scope, &query));
                }
                SearchJob::Stop => return,
            }
        }
    }

    fn filter(term: Term) -> (Occur, Box<dyn Query>) {
        let query = TermQuery::new(term, IndexRecordOption::Basic);
        // Filters must not add to the BM25 score of the words.
        (
            Occur::Must,
            Box::new(ConstScoreQuery::new(Box::new(query), 0.0)),
        )
    }

    fn search(&mut self, scope: &Scope, q: &SearchQuery) -> Result<Vec<SearchHit>> {
        let f = self.fields;
        let words = tokenizer::terms(&mut self.analyzer, &q.text);
        if words.is_empty() || q.limit == 0 {
            return Ok(Vec::new());
        }
        let mut should: Vec<(Occur, Box<dyn Query>)> = words
            .iter()
            .map(|w| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(f.text, w),
                    IndexRecordOption::WithFreqs,
                ));
                (Occur::Should, q)
            })
            .collect();
        // The dates the query names count like words, weighted: a turn said on, or
        // about, that day ranks with the ones that share its words.
        if self.date_weight > 0.0 {
            for term in dates::query_terms(&q.text) {
                let date = TermQuery::new(
                    Term::from_field_text(f.when, &term),
                    IndexRecordOption::WithFreqs,
                );
                let boosted: Box<dyn Query> =
                    Box::new(BoostQuery::new(Box::new(date), self.date_weight));
                should.push((Occur::Should, boosted));
            }
        }
        let mut clauses = vec![
            Self::filter(Term::from_field_text(f.scope, &scope.key())),
            (
                Occur::Must,
                Box::new(BooleanQuery::new(should)) as Box<dyn Query>,
            ),
        ];
        if let Some(kind) = q.kind {
            clauses.push(Self::filter(Term::from_field_text(f.kind, kind.as_str())));
        }
        if let Some(session) = &q.session {
            clauses.push(Self::filter(Term::from_field_text(
                f.session,
                session.as_str(),
            )));
        }
        if q.from.is_some() || q.to.is_some() {
            let lower = q.from.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_i64(f.event_time, t.to_micros()))
            });
            let upper = q.to.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_i64(f.event_time, t.to_micros()))
            });
            let range: Box<dyn Query> = Box::new(RangeQuery::new(lower, upper));
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(range, 0.0))));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        // The collector allocates room for `offset + limit` hits: bound the window by the
        // documents there are, so a huge offset cannot overflow or exhaust memory.
        let alive = usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX);
        if q.offset >= alive {
            return Ok(Vec::new());
        }
        let limit = q.limit.min(alive - q.offset);
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit).and_offset(q.offset))
            .map_err(tantivy_err)?;
        top.into_iter()
            .map(|(score, address)| {
                let doc: TantivyDocument = searcher.doc(address).map_err(tantivy_err)?;
                hit_from_doc(&doc, &f, score)
            })
            .collect()
    }
}

fn hit_from_doc(doc: &TantivyDocument, f: &Fields, score: f32) -> Result<SearchHit> {
    let text = |field: Field| -> Result<String> {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| Error::corrupt(BACKEND, "a document lacks a stored field"))
    };
    let int = |field: Field| -> Result<i64> {
        doc.get_first(field)
            .and_then(|v| v.as_i64())
            .ok_or_else(|| Error::corrupt(BACKEND, "a document lacks a stored number"))
    };
    let kind = DocKind::parse(&text(f.kind)?)
        .ok_or_else(|| Error::corrupt(BACKEND, "a document has an unknown kind"))?;
    Ok(SearchHit {
        kind,
        id: int(f.id)?,
        session_id: SessionId::new(text(f.session)?).map_err(|e| Error::corrupt(BACKEND, e))?,
        event_time: Timestamp::from_micros(int(f.event_time)?),
        text: text(f.text)?,
        score,
    })
}

#[async_trait]
impl IndexStore for TantivyIndex {
    async fn add(&self, docs: Vec<IndexDoc>) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        self.write(|reply| WriteOp::Add(docs, reply)).await
    }

    async fn search(&self, scope: &Scope, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        check_query(query, self.max_limit)?;
        let (tx, rx) = oneshot::channel();
        self.searches
            .send(SearchJob::Search {
                scope: scope.clone(),
                query: query.clone(),
                reply: tx,
            })
            .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn delete_user(&self, scope: &Scope) -> Result<()> {
        let scope = scope.clone();
        self.write(|reply| WriteOp::DeleteUser(scope, reply)).await
    }

    async fn delete_doc(&self, scope: &Scope, kind: DocKind, id: i64) -> Result<()> {
        let scope = scope.clone();
        self.write(|reply| WriteOp::DeleteDoc(scope, kind, id, reply))
            .await
    }

    async fn clear(&self) -> Result<()> {
        self.write(WriteOp::Clear).await
    }

    async fn commit(&self) -> Result<()> {
        self.write(WriteOp::Commit).await
    }

    async fn commit_at(&self, mark: IndexMark) -> Result<()> {
        self.write(|reply| WriteOp::CommitAt(mark, reply)).await
    }

    async fn mark(&self) -> Result<IndexMark> {
        Ok(*self.committed.lock())
    }

    async fn num_docs(&self) -> Result<u64> {
        Ok(self.reader.searcher().num_docs())
    }

    async fn ping(&self) -> Result<()> {
        // A local directory with threads of its own: what can fail shows on the requests.
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        for _ in 0..self.search_threads {
            // A closed queue means the threads are already gone.
            let _ = self.searches.send(SearchJob::Stop).await;
        }
        match self.write(WriteOp::Shutdown).await {
            Err(e) if e.kind() == crate::error::ErrorKind::Unavailable => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index an older release wrote, with another schema, is rebuilt empty (its mark
    /// zero, so the indexer fills it again), and files that are not the index's stay.
    #[tokio::test]
    async fn an_index_of_another_schema_is_rebuilt() {
        let dir = tempfile::TempDir::new().expect("a temporary directory");
        {
            let mut old = Schema::builder();
            let text = old.add_text_field("text", tantivy::schema::TEXT);
            let index = Index::create_in_dir(dir.path(), old.build()).expect("an old index");
            let mut writer: IndexWriter = index.writer(15_000_000).expect("a writer");
            let mut doc = TantivyDocument::new();
            doc.add_text(text, "an old document");
            writer.add_document(doc).expect("added");
            writer.commit().expect("committed");
        }
        std::fs::write(dir.path().join("notes.txt"), "not the index's").expect("written");

        let index =
            TantivyIndex::open(Some(dir.path()), &IndexConfig::default()).expect("the index opens");
        assert_eq!(index.num_docs().await.expect("counted"), 0);
        assert_eq!(index.mark().await.expect("a mark"), IndexMark::default());
        assert!(dir.path().join("notes.txt").exists());
        let alice = Scope::parse("acme", "alice").expect("a scope");
        index
            .add(vec![IndexDoc {
                kind: DocKind::Turn,
                id: 1,
                scope: alice.clone(),
                session_id: SessionId::new("s1").expect("a session"),
                event_time: Timestamp::from_micros(0),
                text: "a new document".into(),
                speaker: None,
            }])
            .await
            .expect("added");
        index.commit().await.expect("committed");
        let hits = index
            .search(&alice, &SearchQuery::new("document", 10))
            .await
            .expect("searched");
        assert_eq!(hits.len(), 1);
        index.close().await.expect("closed");
        drop(index);
        // Opened again, the new schema's index is kept.
        let index = TantivyIndex::open(Some(dir.path()), &IndexConfig::default())
            .expect("the index opens again");
        assert_eq!(index.num_docs().await.expect("counted"), 1);
        index.close().await.expect("closed");
    }

    /// An index whose commits did not record the highest ids added (written before they
    /// were) replaces a document added again, as every add did then.
    #[tokio::test]
    async fn an_index_without_the_highest_ids_replaces_every_add() {
        let dir = tempfile::TempDir::new().expect("a temporary directory");
        let alice = Scope::parse("acme", "alice").expect("a scope");
        let doc = |text: &str| IndexDoc {
            kind: DocKind::Turn,
            id: 1,
            scope: alice.clone(),
            session_id: SessionId::new("s1").expect("a session"),
            event_time: Timestamp::from_micros(0),
            text: text.into(),
            speaker: None,
        };
        let index =
            TantivyIndex::open(Some(dir.path()), &IndexConfig::default()).expect("the index opens");
        index.add(vec![doc("the old copy")]).await.expect("added");
        index.close().await.expect("closed");
        drop(index);
        {
            // A commit of nothing whose payload is an older release's: the mark alone.
            let index = Index::open_in_dir(dir.path()).expect("the index opens");
            index.tokenizers().register(ANALYZER, tokenizer::analyzer());
            let mut writer: IndexWriter = index.writer(15_000_000).expect("a writer");
            let mut prepared = writer.prepare_commit().expect("prepared");
            prepared.set_payload(r#"{"turns":0,"summaries":0}"#);
            prepared.commit().expect("committed");
        }
        let index =
            TantivyIndex::open(Some(dir.path()), &IndexConfig::default()).expect("the index opens");
        assert_eq!(index.num_docs().await.expect("counted"), 1);
        index.add(vec![doc("the new copy")]).await.expect("added");
        index.commit().await.expect("committed");
        let hits = index
            .search(&alice, &SearchQuery::new("copy", 10))
            .await
            .expect("searched");
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].text, "the new copy");
        index.close().await.expect("closed");
    }
}
