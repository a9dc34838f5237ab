-- 0001: the TimescaleDB extension and the migration ledger.
--
-- `hindsight migrate` records every applied file in schema_migrations and holds
-- an advisory lock while it runs, so two migrators never interleave.
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Instance-wide secrets generated once (the IP hashing key). Never exposed by the API.
CREATE TABLE IF NOT EXISTS instance_secrets (
    name        text PRIMARY KEY,
    value       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
