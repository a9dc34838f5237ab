-- 0024: saved funnels, admin API keys, and the audit of erasures (issue 14: custom events,
-- funnels, paths and a person's right to be forgotten).

-- A funnel an analyst saved: ordered steps (a page path with `*` wildcards, or a custom
-- event with property filters), the conversion window and the unit that converts (a visitor
-- or a session). The definition is the JSON the API takes (hindsight/funnels.py validates
-- it); the SQL that reads it is backend/hindsight/queries/funnels.py.
--   SELECT funnel_id, name, definition FROM funnels WHERE account_id = '...' ORDER BY name;
CREATE TABLE funnels (
    funnel_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    definition           jsonb NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

-- An API key may erase and export a person's data of its account (hindsight keys create
-- --account ID --admin). Ordinary analyst keys read numbers and replays, nothing more.
ALTER TABLE api_keys ADD COLUMN admin boolean NOT NULL DEFAULT false;

-- One row per erasure (hindsight erase, DELETE /api/v1/admin/erasure): who asked, when,
-- which kind of selector, and how many rows each table lost. Never the erased data, nor the
-- selector's value (a user id is itself personal data): the selector is recorded as its
-- kind ('user_id', 'visitor_id', 'session_id') only.
--   SELECT erased_at, actor, selector_kind, sessions, rows FROM erasure_audit
--   WHERE account_id = '...' ORDER BY erased_at DESC;
CREATE TABLE erasure_audit (
    erasure_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    actor                text NOT NULL,              -- 'cli', 'api key 12'
    selector_kind        text NOT NULL CHECK (selector_kind IN ('user_id', 'visitor_id', 'session_id')),
    sessions             integer NOT NULL,           -- sessions erased
    rows                 jsonb NOT NULL,             -- {"events": 120, "screenshots": 3, ...}
    erased_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX erasure_audit_account_idx ON erasure_audit (account_id, erased_at DESC);
