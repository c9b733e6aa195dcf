-- Forgets, recorded in the outbox. A forget takes the next id from archive_head in the
-- transaction that deletes the rows, so every processor on every node meets it in order
-- with the turns and applies it to what it derived (the index, the graph, the recent
-- tier), idempotently: a crash at any point after the commit resumes it, and a write
-- derived from a turn read just before the forget is undone when the writer reaches it.
-- `turn_id` NULL: the whole user; else that turn, with the ids of the summaries that
-- covered it (comma-separated).
CREATE TABLE forgets (
    seq       BIGINT PRIMARY KEY,
    tenant    TEXT   NOT NULL,
    user_id   TEXT   NOT NULL,
    turn_id   BIGINT,
    summaries TEXT   NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX forgets_by_user ON forgets (tenant, user_id, seq);
