//! Conformance suite of [`ArchiveStore`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::archive::ArchiveStore;
use crate::clock::SharedClock;
use crate::limits::InputLimits;

/// Opens a backend of the archive tier at one location per factory.
#[async_trait]
pub trait ArchiveFactory: Send + Sync {
    /// Opens the archive at the factory's location; a second call closes the first
    /// archive and reopens the same data, as a restart would.
    async fn open(&self, limits: InputLimits, clock: SharedClock) -> Arc<dyn ArchiveStore>;
}
