-- 07_index_usage.sql: are the indexes of the events hypertable used?
--
--   psql -X -f sql/maintenance/07_index_usage.sql "$HINDSIGHT_DATABASE_URL"
--
-- Every index on `events` is paid on each inserted event, so each should earn its keep.
-- An index of a hypertable is one index per chunk; this adds their scans up.
--
-- Read it like this:
--   * events_pkey (session_id, timestamp, seq): replays (a session's events in order)
--     and duplicate detection on ingestion; always used.
--   * events_account_type_time_idx: raw-event queries by account and type (the roll-up
--     refresh reads by time); events_page_url_idx: sessions that viewed a page;
--     events_time_idx: time ranges (refresh, retention).
--   * scans = 0 over weeks of traffic: a candidate to drop (with a new migration).
--   * the table part shows sequential vs index scans on events' chunks: many
--     sequential scans of big chunks mean a query without a usable index.
--   * timescale edition: a compressed chunk keeps its rows in a compressed table of its
--     own, with its own index (on the segment-by columns), shown in the last part; the
--     chunk's own indexes are then empty and see no scans.
--
-- A chunk's index is matched to the hypertable's by its definition (columns, method,
-- uniqueness, predicate), read from PostgreSQL's catalog only, so this runs on every
-- TimescaleDB version Hindsight supports (2.19 to 2.28; TimescaleDB 2.22 removed the
-- catalog table that used to map them, _timescaledb_catalog.chunk_index).

\echo '== events indexes, summed over chunks'
WITH parent AS (
    SELECT i.indexrelid AS index, i.indisunique AS is_unique,
           substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$') AS definition
    FROM pg_index i
    WHERE i.indrelid = 'public.events'::regclass
), chunk AS (
    SELECT format('%I.%I', c.chunk_schema, c.chunk_name)::regclass AS chunk
    FROM timescaledb_information.chunks c
    WHERE c.hypertable_schema = 'public' AND c.hypertable_name = 'events'
)
SELECT p.index::regclass AS index, count(s.indexrelid) AS chunks,
       sum(s.idx_scan) AS scans, sum(s.idx_tup_read) AS tuples_read,
       pg_size_pretty(coalesce(sum(pg_relation_size(s.indexrelid)), 0)::bigint) AS size
FROM parent p
LEFT JOIN (chunk c
           JOIN pg_index ci ON ci.indrelid = c.chunk
           JOIN pg_stat_user_indexes s ON s.indexrelid = ci.indexrelid)
       ON ci.indisunique = p.is_unique
      AND substring(pg_get_indexdef(ci.indexrelid) FROM ' USING .*$') = p.definition
GROUP BY p.index
ORDER BY scans DESC NULLS LAST, 1;

\echo '== the same indexes on the parent table (an empty hypertable has no chunks yet)'
SELECT indexrelname AS index, pg_size_pretty(pg_relation_size(indexrelid)) AS size
FROM pg_stat_user_indexes
WHERE schemaname = 'public' AND relname = 'events'
ORDER BY 1;

\echo '== scans of the events chunks, by kind'
SELECT sum(t.seq_scan) AS sequential_scans, sum(t.seq_tup_read) AS rows_read_sequentially,
       sum(t.idx_scan) AS index_scans, sum(t.n_tup_ins) AS rows_inserted, sum(t.n_dead_tup) AS dead_rows
FROM timescaledb_information.chunks c
JOIN pg_stat_user_tables t ON t.schemaname = c.chunk_schema AND t.relname = c.chunk_name
WHERE c.hypertable_schema = 'public' AND c.hypertable_name = 'events';

\echo '== compressed chunks: their compressed tables (timescale edition; none on apache)'
SELECT count(*) AS compressed_chunks, sum(t.seq_scan) AS sequential_scans, sum(t.idx_scan) AS index_scans,
       pg_size_pretty(coalesce(sum(pg_total_relation_size(t.relid)), 0)::bigint) AS size
FROM _timescaledb_catalog.chunk uc
JOIN _timescaledb_catalog.hypertable h ON h.id = uc.hypertable_id
JOIN _timescaledb_catalog.chunk cc ON cc.id = uc.compressed_chunk_id
JOIN pg_stat_user_tables t ON t.schemaname = cc.schema_name AND t.relname = cc.table_name
WHERE h.schema_name = 'public' AND h.table_name = 'events';
