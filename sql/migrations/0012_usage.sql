-- 0012: usage against limits (seed 000: Planet's logUsage and limit check).
--
-- A flush logs its batch total once (usage_log) and adds it to the account's running
-- total for the period (usage_periods); the period is the calendar month in UTC. The
-- running total's row lock also orders concurrent flushes of one account, so the limit
-- check after it sees every flush committed before.

CREATE TABLE usage_log (
    usage_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    service       text NOT NULL,                -- 'statistics'
    amount        bigint NOT NULL CHECK (amount >= 0),
    period_start  date NOT NULL,                -- first day of the month (UTC)
    host          text,
    counter_id    bigint REFERENCES statistics_counters ON DELETE SET NULL,
    logged_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_log_account_period_idx ON usage_log (account_id, service, period_start);

CREATE TABLE usage_periods (
    account_id    uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    service       text NOT NULL,
    period_start  date NOT NULL,
    amount        bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, service, period_start)
);
