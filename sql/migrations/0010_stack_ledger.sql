-- 0010: the statistics stacks' durable ledger — committed events not yet counted.
--
-- Every stored batch of events (POST /api/v1/track and the seed's /api/*/add) and every
-- created session writes one row here, in the same transaction as the data itself: the
-- batch's counts and the identity (seq, timestamp) of its journey steps. A flush of the
-- statistics stacks deletes the rows of one account + host and, in that same transaction,
-- writes the journey steps, a statistics counter row and the usage. So each committed
-- event is counted exactly once, whatever crashes: rows of a rolled-back flush are still
-- here, and a process that (re)starts rebuilds its in-memory stacks from this table.
--
-- The table is short-lived data (rows live until the next flush, minutes): no primary key,
-- no foreign keys, two indexes — every batch pays for each of them.

CREATE TABLE stack_pending (
    account_id   uuid NOT NULL,
    host         text NOT NULL,
    session_id   uuid NOT NULL,
    sessions     integer NOT NULL DEFAULT 0,     -- session starts (a created session)
    pages        integer NOT NULL DEFAULT 0,     -- page views
    clicks       integer NOT NULL DEFAULT 0,     -- clicks
    total        integer NOT NULL,               -- every event, of any type (usage counts these)
    -- The page views and clicks of the batch (journey steps), as their key in `events`.
    step_seqs    bigint[],
    step_times   timestamptz[],
    created_at   timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 5000,
        autovacuum_vacuum_insert_scale_factor = 0.0, autovacuum_vacuum_insert_threshold = 5000);

-- A flush takes every row of one account + host.
CREATE INDEX stack_pending_key_idx ON stack_pending (account_id, host);
-- The monitor looks for rows nobody flushed (a process that died) by age.
CREATE INDEX stack_pending_created_idx ON stack_pending (created_at);

-- A created session is a journey's first step ("session") and one counted event.
-- A row trigger, because a session is created once (a re-sent id inserts nothing and so
-- fires nothing); the event batches add their row in the INSERT statement itself.
CREATE FUNCTION stack_pending_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stack_pending (account_id, host, session_id, sessions, total)
    VALUES (NEW.account_id, NEW.host, NEW.session_id, 1, 1);
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_stack_pending AFTER INSERT ON sessions
    FOR EACH ROW EXECUTE FUNCTION stack_pending_session();

-- Why a host's statistics are off: 'usage_limit' (switched back on by a new period or a
-- higher limit) or 'manual'. A revoked token is looked up by when it was revoked: every
-- process drops its stack of a token revoked elsewhere within one monitor cycle.
ALTER TABLE statistics_flags
    ADD COLUMN disabled_reason text CHECK (disabled_reason IN ('usage_limit', 'manual')),
    ADD COLUMN disabled_period date;
CREATE INDEX statistics_flags_disabled_idx ON statistics_flags (account_id) WHERE NOT enabled;
CREATE INDEX statistics_tokens_revoked_idx ON statistics_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
