-- 0027: refused writes per account and 10 seconds, for the live page's ingestion rate
-- (events/s, batches/s and rejected/s over the last 10 minutes).
--
-- Each API process adds up its refusals in memory (hindsight/observe/warnings.py) and adds
-- them here with its `ingestion_warnings` upsert every 2 s, in the bucket of the flush's
-- latest refusal: one row write per account per flush, however many requests were refused.
-- Refusals that cannot be given to an account (no token, an unknown one) are not counted
-- here; /metrics counts every refusal. The `observe.prune` job keeps a day.
CREATE TABLE ingestion_rejections (
    account_id   uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    bucket       timestamptz NOT NULL,
    rejected     bigint NOT NULL,
    PRIMARY KEY (account_id, bucket)
);
CREATE INDEX ingestion_rejections_bucket_idx ON ingestion_rejections (bucket);
