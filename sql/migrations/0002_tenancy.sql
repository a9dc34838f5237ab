-- 0002: tenancy — accounts, their domains and widgets, the tokens that let a site
-- write, the per-host statistics switch, and analyst API keys.
--
-- The flow (seed 000): a site asks for its account's widgets (its host is checked
-- against `domains`), receives a signed JWT per widget, trades the JWT for a
-- statistics token (a UUID bound to account + host), and writes with that token.

CREATE TABLE accounts (
    account_id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    active               boolean NOT NULL DEFAULT true,
    -- NULL means unlimited; enforced by the statistics stacks (usage flow).
    monthly_event_limit  bigint CHECK (monthly_event_limit IS NULL OR monthly_event_limit >= 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Registered hosts of an account. A domain also covers its subdomains.
CREATE TABLE domains (
    domain_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    name                 text NOT NULL CHECK (name = lower(name) AND length(name) BETWEEN 1 AND 253),
    -- Strip query strings from recorded URLs of this domain (privacy option).
    strip_query_strings  boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);
CREATE INDEX domains_name_idx ON domains (name);

CREATE TABLE widgets (
    widget_id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    domain_id            bigint REFERENCES domains ON DELETE CASCADE,
    widget_type          text NOT NULL CHECK (widget_type IN ('tracker', 'button_form', 'popup')),
    active               boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX widgets_account_idx ON widgets (account_id);

-- RSA keys that sign widget JWTs. The newest active key signs; every key not yet
-- past `retire_after` verifies and is published at /.well-known/jwks.json.
CREATE TABLE jwt_signing_keys (
    kid                  text PRIMARY KEY,
    private_key_pem      text NOT NULL,
    public_jwk           jsonb NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    retired_at           timestamptz,
    retire_after         timestamptz
);

-- Statistics tokens: what a site writes with. One live token per account + host.
CREATE TABLE statistics_tokens (
    token                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    host                 text NOT NULL,
    expires_at           timestamptz NOT NULL,
    revoked_at           timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX statistics_tokens_account_host_idx ON statistics_tokens (account_id, host, expires_at DESC);

-- The per account + host switch: disabled when the account goes over its limit.
CREATE TABLE statistics_flags (
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    host                 text NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, host)
);

-- Analyst API keys: only a SHA-256 of the key is stored (keys are 256-bit random).
CREATE TABLE api_keys (
    key_id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    key_hash             bytea NOT NULL UNIQUE,
    prefix               text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    revoked_at           timestamptz
);
