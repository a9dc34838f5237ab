-- 0004: how long an account's raw data is kept.
--
-- NULL: the deployment's default (HINDSIGHT_EVENTS_RETENTION_DAYS, 30 days unless set).
-- A number: this account's events, sessions and screenshots are kept that many days.
-- At least 7 days: the roll-ups re-read the last days of raw data when they refresh
-- (see docs/operations.md), so raw rows must outlive that window.
--
--   UPDATE accounts SET events_retention_days = 90 WHERE account_id = '...';
ALTER TABLE accounts
    ADD COLUMN events_retention_days integer
        CHECK (events_retention_days IS NULL OR events_retention_days BETWEEN 7 AND 3650);
