-- 0005: the data lifecycle jobs run by Hindsight's scheduler (roll-up refresh, retention).
--
-- Every API process has a scheduler thread, but a job runs in one process at a time:
-- the runner holds a PostgreSQL advisory lock while it works and only starts a job
-- whose next_run_at has come. This table is also what a DBA and /health read to see
-- whether the jobs run: last run, its result, its last error.
CREATE TABLE lifecycle_jobs (
    job_name             text PRIMARY KEY,
    interval_seconds     integer NOT NULL CHECK (interval_seconds > 0),
    next_run_at          timestamptz NOT NULL DEFAULT now(),
    runs                 bigint NOT NULL DEFAULT 0,
    failures             bigint NOT NULL DEFAULT 0,
    last_started_at      timestamptz,
    last_finished_at     timestamptz,
    last_duration_ms     double precision,
    last_status          text CHECK (last_status IN ('success', 'failure')),
    -- What the last successful run did (rows deleted, windows refreshed...).
    last_result          jsonb,
    last_success_at      timestamptz,
    -- The last failure is kept after later successes, so it can still be read.
    last_error           text,
    last_error_at        timestamptz,
    -- host:pid of the process that ran it last.
    last_run_by          text
);
