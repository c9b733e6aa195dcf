//! The storage conformance suites run against the embedded backends.

mod recent_memory {
    mnemo_storage::recent_conformance!(mnemo_storage::conformance::embedded::MemoryRecentFactory);
}

mod archive_sqlite {
    mnemo_storage::archive_conformance!(
        mnemo_storage::conformance::embedded::SqliteArchiveFactory::new()
    );
}
