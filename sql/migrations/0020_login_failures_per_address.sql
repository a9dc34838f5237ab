-- Failed dashboard logins, one row per failure carrying both of its keys, so that they
-- can be counted per e-mail, per client address and per (e-mail, address). The pair is
-- what locks a login out (docs/DECISIONS.md, "Login lockouts"): five wrong passwords
-- typed elsewhere no longer lock the real user out. 0015 kept one row per key, which
-- cannot be paired; those rows are at most 15 minutes of history and are dropped.
DROP TABLE dashboard_login_failures;

CREATE TABLE dashboard_login_failures (
    email_key            bytea NOT NULL,   -- SHA-256 of the lower-cased e-mail, never the e-mail
    address_key          bytea NOT NULL,   -- SHA-256 of the address's keyed hash, never the IP
    failed_at            timestamptz NOT NULL DEFAULT now()
);
-- Per e-mail and per (e-mail, address); and per address (password spraying).
CREATE INDEX dashboard_login_failures_email_idx
    ON dashboard_login_failures (email_key, address_key, failed_at);
CREATE INDEX dashboard_login_failures_address_idx
    ON dashboard_login_failures (address_key, failed_at);
