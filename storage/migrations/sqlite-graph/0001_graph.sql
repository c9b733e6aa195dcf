-- The embedded graph tier, in a database of its own beside the SQLite archive: its
-- writes (the graph sync processor's) take this file's write lock, never the
-- archive's, so a group commit of turns never waits behind them. Entity names are
-- matched on `name_key` (case- and space-folded). Edge `src` 0 stands for the user's
-- own node (MENTIONS edges); RELATED_TO edges are undirected and stored with src < dst.
CREATE TABLE graph_entities (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    UNIQUE (tenant, user_id, name_key)
);

CREATE TABLE graph_aliases (
    tenant    TEXT    NOT NULL,
    user_id   TEXT    NOT NULL,
    alias_key TEXT    NOT NULL,
    entity_id INTEGER NOT NULL REFERENCES graph_entities (id) ON DELETE CASCADE,
    alias     TEXT    NOT NULL,
    PRIMARY KEY (tenant, user_id, alias_key, entity_id)
);
CREATE INDEX graph_aliases_by_entity ON graph_aliases (entity_id);

CREATE TABLE graph_edges (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    src        INTEGER NOT NULL,
    dst        INTEGER NOT NULL,
    weight     REAL    NOT NULL,
    count      INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    UNIQUE (tenant, user_id, kind, src, dst)
);
CREATE INDEX graph_edges_by_dst ON graph_edges (tenant, user_id, kind, dst);

-- Which turns support an edge, and with what weight: makes upserts idempotent per turn
-- and lets a forgotten turn be taken back out of the weights.
CREATE TABLE graph_edge_support (
    edge_id INTEGER NOT NULL REFERENCES graph_edges (id) ON DELETE CASCADE,
    turn_id INTEGER NOT NULL,
    weight  REAL    NOT NULL,
    time    INTEGER NOT NULL,
    PRIMARY KEY (edge_id, turn_id)
);
CREATE INDEX graph_edge_support_by_turn ON graph_edge_support (turn_id);

-- Set once the graph rows an earlier layout kept in the archive's database (tables of
-- the same names there) were copied here; they are then deleted there.
CREATE TABLE graph_moved_from_archive (
    moved_at INTEGER NOT NULL
);
