-- 0022: observing the pipeline — per-account ingestion warnings and per-batch traces.
--
-- ingestion_warnings: refused write requests (401 expired or unknown token, 403 host
-- switched off or foreign origin, 400 with the field names, 413, 429, ...) grouped by
-- account, status and reason, with a count, when first and last seen and one sample (the
-- field names or a short description, never the body). Each API process adds up its
-- refusals in memory and upserts them every few seconds (hindsight/observe/warnings.py),
-- so a flood of bad requests costs one row write per group per flush, not one per request.
-- The `observe.prune` scheduler job keeps 7 days and at most 100 groups per account.
CREATE TABLE ingestion_warnings (
    account_id   uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    status       smallint NOT NULL,
    reason       text NOT NULL,
    count        bigint NOT NULL DEFAULT 0,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    sample       jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (account_id, status, reason)
);
CREATE INDEX ingestion_warnings_last_seen_idx ON ingestion_warnings (last_seen);

-- pipeline_traces: the stages of recent event batches (received, validated, committed)
-- with the request id, written in batches by each process every few seconds (never on the
-- request's path). When a batch was counted into journeys and usage is the first
-- pipeline_flushes row of its account + host that started after it committed (a flush
-- takes every stack_pending row of the key, whichever process wrote it).
-- Both are kept a few hours (the `observe.prune` job).
CREATE TABLE pipeline_traces (
    trace_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id     text NOT NULL,
    account_id     uuid,
    host           text,
    session_id     uuid,
    path           text NOT NULL,
    status         smallint NOT NULL,
    error          text,
    received_at    timestamptz NOT NULL,
    validated_ms   real,
    committed_ms   real,
    committed_at   timestamptz,
    events         integer,
    inserted       integer,
    duplicates     integer,
    counted_ms     real,
    duration_ms    real NOT NULL
);
CREATE INDEX pipeline_traces_received_idx ON pipeline_traces (received_at DESC);
CREATE INDEX pipeline_traces_request_idx ON pipeline_traces (request_id);
CREATE INDEX pipeline_traces_session_idx ON pipeline_traces (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX pipeline_traces_account_idx ON pipeline_traces (account_id, received_at DESC);

CREATE TABLE pipeline_flushes (
    account_id   uuid NOT NULL,
    host         text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    events       integer NOT NULL,
    batches      integer NOT NULL
);
CREATE INDEX pipeline_flushes_key_idx ON pipeline_flushes (account_id, host, started_at);
