//! The index actor: [`TierActor`] over an [`IndexStore`], and its requests.

use futures_util::FutureExt;
use mnemo_storage::index::{DocKind, IndexDoc, IndexMark, IndexStore, SearchHit, SearchQuery};
use mnemo_storage::model::Scope;

use super::tier::{Tier, TierActor};
use crate::error::Result;

/// The index actor.
pub type IndexActor = TierActor<dyn IndexStore>;

/// Handle to the index actor.
pub type IndexTier = Tier<dyn IndexStore>;

impl Tier<dyn IndexStore> {
    /// Indexes documents (replacing same-key ones).
    pub async fn add(&self, docs: Vec<IndexDoc>) -> Result<()> {
        self.call_waiting(move |s| async move { s.add(docs).await }.boxed())
            .await
    }

    /// BM25 search within the user's documents.
    pub async fn search(&self, scope: Scope, query: SearchQuery) -> Result<Vec<SearchHit>> {
        self.read(move |s| async move { s.search(&scope, &query).await }.boxed())
            .await
    }

    /// Removes every document of the user.
    pub async fn delete_user(&self, scope: Scope) -> Result<()> {
        self.call_waiting(move |s| async move { s.delete_user(&scope).await }.boxed())
            .await
    }

    /// Removes one document of the user.
    pub async fn delete_doc(&self, scope: Scope, kind: DocKind, id: i64) -> Result<()> {
        self.call_waiting(move |s| async move { s.delete_doc(&scope, kind, id).await }.boxed())
            .await
    }

    /// Makes every write so far searchable and durable.
    pub async fn commit(&self) -> Result<()> {
        self.call_waiting(|s| async move { s.commit().await }.boxed())
            .await
    }

    /// Makes every write so far searchable and durable, recording how far it goes.
    pub async fn commit_at(&self, mark: IndexMark) -> Result<()> {
        self.call_waiting(move |s| async move { s.commit_at(mark).await }.boxed())
            .await
    }

    /// How far the index had followed the archive at its last commit.
    pub async fn mark(&self) -> Result<IndexMark> {
        self.read(|s| async move { s.mark().await }.boxed()).await
    }

    /// Searchable documents.
    pub async fn num_docs(&self) -> Result<u64> {
        self.read(|s| async move { s.num_docs().await }.boxed())
            .await
    }
}
