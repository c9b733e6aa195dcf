-- Copies into this archive by `mnemo migrate`, one row per migration (named after its
-- source and user filter): how far it got, so an interrupted one resumes where it
-- stopped, and this archive's counters and checkpoints before it, which a rollback
-- puts back.
CREATE TABLE migrations (
    name               TEXT    PRIMARY KEY,
    copied_turns       BIGINT NOT NULL,
    copied_summaries   BIGINT NOT NULL,
    graph_done         BIGINT NOT NULL,
    head_before        BIGINT NOT NULL,
    summary_before     BIGINT NOT NULL,
    checkpoints_before TEXT    NOT NULL,
    started            BIGINT NOT NULL,
    finished           BIGINT
);

-- What each migration wrote: runs of consecutive ids of turns or summaries, so a
-- rollback removes exactly those rows and nothing the archive held before.
CREATE TABLE migrated_ranges (
    migration TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    first_id  BIGINT NOT NULL,
    last_id   BIGINT NOT NULL
);
CREATE INDEX migrated_ranges_by_migration ON migrated_ranges (migration, kind, first_id);
