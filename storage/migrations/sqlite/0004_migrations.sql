-- Copies into this archive by `mnemo migrate`, one row per migration (named after its
-- source and user filter): how far it got, so an interrupted one resumes where it
-- stopped, and this archive's counters and checkpoints before it, which a rollback
-- puts back.
CREATE TABLE migrations (
    name               TEXT    PRIMARY KEY,
    copied_turns       INTEGER NOT NULL,
    copied_summaries   INTEGER NOT NULL,
    graph_done         INTEGER NOT NULL,
    head_before        INTEGER NOT NULL,
    summary_before     INTEGER NOT NULL,
    checkpoints_before TEXT    NOT NULL,
    started            INTEGER NOT NULL,
    finished           INTEGER
);

-- What each migration wrote: runs of consecutive ids of turns or summaries, so a
-- rollback removes exactly those rows and nothing the archive held before.
CREATE TABLE migrated_ranges (
    migration TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    first_id  INTEGER NOT NULL,
    last_id   INTEGER NOT NULL
);
CREATE INDEX migrated_ranges_by_migration ON migrated_ranges (migration, kind, first_id);
