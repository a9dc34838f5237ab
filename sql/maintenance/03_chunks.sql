-- 03_chunks.sql: the chunks of the events hypertable, newest first, with their size
-- and compression state.
--
--   psql -X -f sql/maintenance/03_chunks.sql "$HINDSIGHT_DATABASE_URL"
--
-- Read it like this:
--   * one chunk per day (chunk_time_interval 1 day). The oldest chunk's range_start is
--     how far back raw events go: about the retention (30 days by default, or the
--     longest per-account retention). Older chunks mean retention is not running:
--     see 04_jobs.sql.
--   * timescale edition: chunks older than 7 days should say compressed = true, and
--     the ratio column is bytes before / after compression. A chunk that stays
--     uncompressed after 7 days points at a failing compression policy (04_jobs.sql).
--   * apache edition: compression does not exist there; the column says so.

SELECT current_setting('timescaledb.license', true) = 'timescale' AS is_tsl \gset

\echo '== events chunks'
\if :is_tsl
SELECT c.chunk_name AS chunk, c.range_start, c.range_end, c.is_compressed AS compressed,
       pg_size_pretty(coalesce(s.after_compression_total_bytes, d.total_bytes)) AS size_now,
       pg_size_pretty(s.before_compression_total_bytes) AS size_before_compression,
       round(s.before_compression_total_bytes::numeric / nullif(s.after_compression_total_bytes, 0), 1) AS ratio
FROM timescaledb_information.chunks c
JOIN chunks_detailed_size('public.events') d ON d.chunk_schema = c.chunk_schema AND d.chunk_name = c.chunk_name
LEFT JOIN chunk_compression_stats('public.events') s
       ON s.chunk_schema = c.chunk_schema AND s.chunk_name = c.chunk_name
WHERE c.hypertable_schema = 'public' AND c.hypertable_name = 'events'
ORDER BY c.range_start DESC;

\echo '== compression of events, in total'
SELECT total_chunks, number_compressed_chunks AS compressed_chunks,
       pg_size_pretty(before_compression_total_bytes) AS before,
       pg_size_pretty(after_compression_total_bytes) AS after,
       round(before_compression_total_bytes::numeric / nullif(after_compression_total_bytes, 0), 1) AS ratio
FROM hypertable_compression_stats('public.events');
\else
SELECT c.chunk_name AS chunk, c.range_start, c.range_end,
       'unavailable (apache edition)' AS compressed,
       pg_size_pretty(d.total_bytes) AS size
FROM timescaledb_information.chunks c
JOIN chunks_detailed_size('public.events') d ON d.chunk_schema = c.chunk_schema AND d.chunk_name = c.chunk_name
WHERE c.hypertable_schema = 'public' AND c.hypertable_name = 'events'
ORDER BY c.range_start DESC;
\endif
