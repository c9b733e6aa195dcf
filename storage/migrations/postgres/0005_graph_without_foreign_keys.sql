-- The graph's support rows and aliases without foreign keys to their edges and entities:
-- the check ran once per inserted row (a trigger, a lookup and a row lock on the edge) and
-- doubled the cost of the graph sync's largest insert (BENCHMARKS.md, "Ingest: the graph's
-- support rows without foreign keys"). Forgetting deletes them with their edges and
-- entities itself (storage/src/graph/sql.rs), as the cascade did.
ALTER TABLE graph_edge_support DROP CONSTRAINT IF EXISTS graph_edge_support_edge_id_fkey;
ALTER TABLE graph_aliases DROP CONSTRAINT IF EXISTS graph_aliases_entity_id_fkey;
