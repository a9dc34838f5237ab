-- 0015: the analysts' dashboard — its users, their server-side sessions, and the
-- login attempts that rate-limit guessing.
--
-- A dashboard user belongs to one account and sees only it; an admin may switch the
-- account their session looks at. Passwords are scrypt hashes (hindsight/dashboard/passwords.py):
-- 'scrypt$<log2 n>$<r>$<p>$<salt, base64>$<hash, base64>'. Create users with
--   hindsight users create --email EMAIL --account ACCOUNT_ID [--admin]

CREATE TABLE dashboard_users (
    user_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email                text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash        text NOT NULL,
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    is_admin             boolean NOT NULL DEFAULT false,
    disabled_at          timestamptz,
    last_login_at        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dashboard_users_account_idx ON dashboard_users (account_id);

-- One row per logged-in browser. The cookie holds a random token; only its SHA-256 is
-- stored, so a copy of this table cannot be used to log in. `account_id` is the account
-- the session looks at (the user's own, or for an admin the one switched to).
-- `csrf_token` is what every form of this session must send back.
CREATE TABLE dashboard_sessions (
    token_hash           bytea PRIMARY KEY,
    user_id              bigint NOT NULL REFERENCES dashboard_users ON DELETE CASCADE,
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    csrf_token           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz NOT NULL,
    last_seen_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dashboard_sessions_user_idx ON dashboard_sessions (user_id);
CREATE INDEX dashboard_sessions_expires_idx ON dashboard_sessions (expires_at);

-- Failed logins, per e-mail address and per client address (its keyed hash, like
-- sessions.ip_hash), kept in the database so every worker and host counts the same
-- and a restart forgets nothing. Rows older than the window are deleted as new ones
-- come in (hindsight/dashboard/store.py).
CREATE TABLE dashboard_login_failures (
    scope                text NOT NULL CHECK (scope IN ('email', 'ip')),
    key                  bytea NOT NULL,
    failed_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dashboard_login_failures_key_idx ON dashboard_login_failures (scope, key, failed_at);

-- Rendered click heatmaps (PNG), keyed by everything that went into them (page, range,
-- screenshot, the last click's time and the number of clicks): a new click makes a new
-- key, so an entry is never stale, only unused. Entries unused for a day are deleted
-- as new ones are written.
CREATE TABLE dashboard_heatmap_cache (
    cache_key            bytea PRIMARY KEY,
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    png                  bytea NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE dashboard_heatmap_cache ALTER COLUMN png SET STORAGE EXTERNAL;  -- already compressed
CREATE INDEX dashboard_heatmap_cache_created_idx ON dashboard_heatmap_cache (created_at);
