-- 0019: DOM recordings (rrweb events), stored as the segments tracker.js sends.
--
-- tracker.js records the page with rrweb and sends the events in segments of about
-- 256 KiB of JSON or 10 seconds (POST /api/v1/track/recording). A segment is numbered per
-- session from 0; its events are a JSON array, stored here gzip-compressed exactly as the
-- browser compressed them (a plain-JSON upload is compressed by the API first). Replays
-- read a session's segments in order; a segment that begins with a full snapshot (rrweb
-- type 2) is a seek point.
--
-- Why a hypertable, partitioned by the *session's* start (`session_started_at`, a copy of
-- sessions.started_at), in 1-day chunks:
--   * Recordings are the largest data Hindsight keeps (megabytes per session-hour).
--     Retention drops whole chunks (drop_chunks: files unlinked), instead of deleting
--     rows whose TOASTed bytes vacuum would then have to reclaim.
--   * All segments of a session share its start, so they sit in one chunk: a replay's
--     reads and the tracker's writes find their chunk from the key, never probing the
--     others.
--   * The primary key is (session_id, session_started_at, segment), and a session has one
--     start: so it is unique per (session, segment), which is what makes a re-sent segment
--     a no-op (INSERT ... ON CONFLICT DO NOTHING) even if its bytes differ.
--   * A recording is kept as long as its session's start is within the retention
--     (HINDSIGHT_EVENTS_RETENTION_DAYS or accounts.events_retention_days): the retention
--     job (lifecycle/retention.py) drops whole chunks past the longest retention and
--     deletes the rows of accounts with a shorter one. Deleting a session (erasure)
--     deletes its segments (the foreign key cascades).
--   * Not compressed on the timescale edition: `data` is gzip already, and native
--     compression would only re-pack the small metadata columns.
--
-- For a DBA:
--   -- a session's recording, in order, with sizes:
--   SELECT segment, started_at, ended_at, event_count, full_snapshot, gzip_bytes, json_bytes
--   FROM recording_segments WHERE session_id = '...' ORDER BY segment;
--   -- bytes stored per day of session starts:
--   SELECT time_bucket('1 day', session_started_at) AS day, count(*) AS segments,
--          pg_size_pretty(sum(gzip_bytes)) AS stored, pg_size_pretty(sum(json_bytes)) AS json
--   FROM recording_segments GROUP BY 1 ORDER BY 1 DESC;

CREATE TABLE recording_segments (
    session_id           uuid NOT NULL REFERENCES sessions ON DELETE CASCADE,
    session_started_at   timestamptz NOT NULL,   -- = sessions.started_at (the partitioning column)
    segment              integer NOT NULL CHECK (segment BETWEEN 0 AND 1000000),
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    started_at           timestamptz NOT NULL,   -- the segment's earliest event
    ended_at             timestamptz NOT NULL,   -- the segment's latest event
    event_count          integer NOT NULL CHECK (event_count > 0),
    -- A full snapshot (rrweb type 2) comes before any incremental event: a seek point.
    full_snapshot        boolean NOT NULL,
    data                 bytea NOT NULL,         -- the events: a JSON array, gzip-compressed
    gzip_bytes           integer NOT NULL,       -- = octet_length(data)
    json_bytes           integer NOT NULL,       -- the JSON's size once decompressed
    received_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (started_at <= ended_at),
    PRIMARY KEY (session_id, session_started_at, segment)
);
SELECT create_hypertable('recording_segments', 'session_started_at',
                         chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false);
-- gzip does not compress again: store it out of line as it is, without trying pglz.
ALTER TABLE recording_segments ALTER COLUMN data SET STORAGE EXTERNAL;
