-- 02_sizes.sql: how big the database is, and where the bytes are.
--
--   psql -X -f sql/maintenance/02_sizes.sql "$HINDSIGHT_DATABASE_URL"
--
-- Read it like this:
--   * `events` is a hypertable: its size is the sum of its chunks (one per day), with
--     the indexes. With retention at 30 days it stops growing after 30 days of traffic;
--     on the timescale edition, chunks older than 7 days shrink when compressed
--     (03_chunks.sql shows each one).
--   * screenshot_images holds each distinct picture once (TOAST is where the bytes
--     are); the retention job deletes the ones no screenshot references any more.
--   * the *_store tables are the roll-ups (kept 2 years); they stay small: rows per
--     account x host x hour (or day) x event type (or path).

\echo '== database'
SELECT current_database() AS database, pg_size_pretty(pg_database_size(current_database())) AS size;

\echo '== hypertables (events and the roll-up stores), with their chunks'
SELECT h.hypertable_name AS hypertable, h.num_chunks AS chunks,
       pg_size_pretty(d.table_bytes) AS tables, pg_size_pretty(d.index_bytes) AS indexes,
       pg_size_pretty(d.toast_bytes) AS toast, pg_size_pretty(d.total_bytes) AS total
FROM timescaledb_information.hypertables h
CROSS JOIN LATERAL hypertable_detailed_size(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass) d
WHERE h.hypertable_schema = 'public'
ORDER BY d.total_bytes DESC NULLS LAST;

\echo '== plain tables (largest first)'
SELECT c.relname AS "table", c.reltuples::bigint AS rows_estimate,
       pg_size_pretty(pg_table_size(c.oid)) AS table_and_toast,
       pg_size_pretty(pg_indexes_size(c.oid)) AS indexes,
       pg_size_pretty(pg_total_relation_size(c.oid)) AS total
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
  AND NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables h
                  WHERE h.hypertable_schema = 'public' AND h.hypertable_name = c.relname)
ORDER BY pg_total_relation_size(c.oid) DESC;
