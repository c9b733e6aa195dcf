//! The storage conformance suites run against the embedded backends.

mod recent_memory {
    mnemo_storage::recent_conformance!(mnemo_storage::conformance::embedded::MemoryRecentFactory);
}

mod archive_sqlite {
    mnemo_storage::archive_conformance!(
        mnemo_storage::conformance::embedded::SqliteArchiveFactory::new()
    );
}

mod tantivy_disk {
    mnemo_storage::index_conformance!(
        mnemo_storage::conformance::embedded::TantivyIndexFactory::on_disk()
    );
}

mod tantivy_ram {
    mnemo_storage::index_conformance!(
        mnemo_storage::conformance::embedded::TantivyIndexFactory::in_ram()
    );
}

mod sqlite_graph {
    mnemo_storage::graph_conformance!(
        mnemo_storage::conformance::embedded::SqliteArchiveFactory::new()
    );
}
