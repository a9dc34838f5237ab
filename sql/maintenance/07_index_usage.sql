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

\echo '== events indexes, summed over chunks'
SELECT ci.hypertable_index_name AS index, count(*) AS chunks,
       sum(s.idx_scan) AS scans, sum(s.idx_tup_read) AS tuples_read,
       pg_size_pretty(sum(pg_relation_size(s.indexrelid))::bigint) AS size
FROM _timescaledb_catalog.chunk_index ci
JOIN _timescaledb_catalog.hypertable h ON h.id = ci.hypertable_id
JOIN _timescaledb_catalog.chunk c ON c.id = ci.chunk_id
JOIN pg_stat_user_indexes s ON s.schemaname = c.schema_name AND s.indexrelname = ci.index_name
WHERE h.schema_name = 'public' AND h.table_name = 'events'
GROUP BY ci.hypertable_index_name
ORDER BY scans DESC NULLS LAST;

\echo '== the same indexes on the parent table (an empty hypertable has no chunks yet)'
SELECT indexrelname AS index, pg_size_pretty(pg_relation_size(indexrelid)) AS size
FROM pg_stat_user_indexes
WHERE schemaname = 'public' AND relname = 'events'
ORDER BY 1;

\echo '== scans of the events chunks, by kind'
SELECT sum(t.seq_scan) AS sequential_scans, sum(t.seq_tup_read) AS rows_read_sequentially,
       sum(t.idx_scan) AS index_scans, sum(t.n_tup_ins) AS rows_inserted, sum(t.n_dead_tup) AS dead_rows
FROM pg_stat_user_tables t
JOIN _timescaledb_catalog.chunk c ON c.schema_name = t.schemaname AND c.table_name = t.relname
JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id
WHERE h.schema_name = 'public' AND h.table_name = 'events';
