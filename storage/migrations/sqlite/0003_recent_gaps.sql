-- Sessions whose recent-tier cache missed a write (the push failed while the turns were
-- stored): read from the archive, and refilled, until a refill made after the mark
-- clears it. Kept here so every node and every restart sees the mark. `stamp` is the
-- highest turn id the cache missed; a refill clears only marks up to what it read.
CREATE TABLE recent_gaps (
    tenant     TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    stamp      INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id, session_id)
);
