-- timescale/0003: compress the events chunks by account and host, ordered by session and
-- time (was: one segment per session, timescale/0001).
--
-- Measured by bench/compression.py (docs/BENCHMARKS.md, "Compression of events"): segmenting
-- by session_id leaves about 25 events per compressed batch, too few for the column
-- encodings to pay off (2.6x in issue 12). With an account's (and host's) events in one
-- segment, a batch holds up to 1,000 events of a few consecutive sessions: far better
-- ratios, and a replay still finds its session fast — each batch records its smallest and
-- largest session_id (session_id leads the order), so a lookup by session decompresses only
-- the batches whose range holds it.
--
-- Chunks compressed already keep the settings they were compressed with until they are
-- recompressed; new chunks get these.
ALTER TABLE events SET (
    timescaledb.compress_segmentby = 'account_id, host',
    timescaledb.compress_orderby = 'session_id, "timestamp", seq'
);
