//! Conformance suite of [`IndexStore`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::index::{IndexConfig, IndexStore};

/// Opens a backend of the index tier at one location per factory.
#[async_trait]
pub trait IndexFactory: Send + Sync {
    /// Opens the index at the factory's location with `config`; the caller closes the
    /// previous one first.
    async fn open(&self, config: IndexConfig) -> Arc<dyn IndexStore>;

    /// Whether data survives close and reopen (false for RAM indexes).
    fn persistent(&self) -> bool;
}
