-- 0016: rage clicks counted per session, so "sessions with rage clicks" is a column test.
--
-- tracker.js marks a click that is the third (or later) within a second on the same spot
-- with `event_data.rage` (the number of clicks in the burst). INSERT_BATCH
-- (hindsight/queries/events.py) moves `rage_click_count` by the rage-marked clicks it
-- inserted, like the other counters. Existing sessions are counted by 0017.
ALTER TABLE sessions ADD COLUMN rage_click_count integer NOT NULL DEFAULT 0;

-- The session list's "has errors" and "has rage clicks" filters: newest first within an
-- account, over the few sessions that have them. The counters change rarely after a
-- session's first errors, so these indexes cost little on the per-batch UPDATE.
CREATE INDEX sessions_account_errors_idx ON sessions (account_id, started_at DESC) WHERE error_count > 0;
CREATE INDEX sessions_account_rage_idx ON sessions (account_id, started_at DESC) WHERE rage_click_count > 0;
