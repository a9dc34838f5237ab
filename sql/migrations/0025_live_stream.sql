-- migrate: no-transaction
-- 0025: the live view reads the newest events of the accounts being watched, by the time
-- their batch was received (hindsight/live/: one stream loop per API process polls it).
--
-- `received_at` is the batch statement's now(): its transaction's start. The stream loop
-- reads `account_id = ANY(...) AND received_at > cursor` a few times a second; without
-- this index that is a scan of the watched accounts' events in the recent chunks. The price
-- is one more index entry per event (measured with bench/live.py against no index and
-- against NOTIFY in the write path: docs/DECISIONS.md, "Live view (issue 13)").
--
-- One transaction per chunk (TimescaleDB): writes to the chunks not being indexed go on
-- while it builds. IF NOT EXISTS makes it safe to run again after an interruption.
CREATE INDEX IF NOT EXISTS events_account_received_idx ON events (account_id, received_at)
    WITH (timescaledb.transaction_per_chunk);
