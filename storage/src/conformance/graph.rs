//! Conformance suite of [`GraphStore`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::SharedClock;
use crate::graph::GraphStore;

/// Opens a backend of the graph tier at one location per factory.
#[async_trait]
pub trait GraphFactory: Send + Sync {
    /// Opens the graph at the factory's location; a second call closes the first and
    /// reopens the same data, as a restart would.
    async fn open(&self, clock: SharedClock) -> Arc<dyn GraphStore>;
}
