-- 0003: what the tracker records — sessions, events (a hypertable) and screenshots.
--
-- Every row carries the account and host of the statistics token that wrote it.

CREATE TABLE sessions (
    session_id           uuid PRIMARY KEY,
    account_id           uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    host                 text NOT NULL,
    user_id              text,
    started_at           timestamptz NOT NULL,
    ended_at             timestamptz,
    last_activity_at     timestamptz NOT NULL,
    page_url             text,
    referrer             text,
    user_agent           text,
    screen_width         integer,
    screen_height        integer,
    viewport_width       integer,
    viewport_height      integer,
    device_type          text,
    browser              text,
    os                   text,
    language             text,
    timezone             text,
    -- HMAC-SHA256 of the client IP with the instance key; the IP itself is never stored.
    ip_hash              bytea,
    metadata             jsonb NOT NULL DEFAULT '{}',
    -- Counters moved by every accepted batch (only newly stored events count).
    event_count          integer NOT NULL DEFAULT 0,
    page_view_count      integer NOT NULL DEFAULT 0,
    click_count          integer NOT NULL DEFAULT 0,
    error_count          integer NOT NULL DEFAULT 0,
    screenshot_count     integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now()
);
-- The session list: newest first within an account.
CREATE INDEX sessions_account_started_idx ON sessions (account_id, started_at DESC);
CREATE INDEX sessions_account_user_idx ON sessions (account_id, user_id) WHERE user_id IS NOT NULL;

-- Events: one row per recorded interaction. Identity is (session, seq): the
-- tracker numbers events per session, and a re-sent batch carries the same
-- numbers, so ON CONFLICT DO NOTHING stores it once. TimescaleDB requires the
-- partitioning column in every unique index, hence (session_id, timestamp, seq);
-- the same index serves "events of a session in time order".
CREATE TABLE events (
    session_id           uuid NOT NULL,
    seq                  bigint NOT NULL CHECK (seq >= 0),
    "timestamp"          timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    event_type           text NOT NULL,
    page_url             text,
    target_element       text,
    target_selector      text,
    target_tag           text,
    target_id            text,
    target_class         text,
    viewport_x           integer,
    viewport_y           integer,
    screen_x             integer,
    screen_y             integer,
    scroll_x             integer,
    scroll_y             integer,
    input_value          text,
    input_masked         boolean,
    key_pressed          text,
    mouse_button         smallint,
    click_count          smallint,
    event_data           jsonb,
    received_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, "timestamp", seq)
);
SELECT create_hypertable('events', 'timestamp',
                         chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false);
-- Few indexes on purpose: each one is paid on every insert.
CREATE INDEX events_time_idx ON events ("timestamp" DESC);
CREATE INDEX events_account_type_time_idx ON events (account_id, event_type, "timestamp" DESC);
CREATE INDEX events_page_url_idx ON events (page_url, "timestamp" DESC);

-- Screenshot images, stored once per content (SHA-256), however often referenced.
CREATE TABLE screenshot_images (
    content_hash         bytea PRIMARY KEY,
    image_data           bytea NOT NULL,
    image_format         text NOT NULL CHECK (image_format IN ('jpeg', 'png', 'webp')),
    image_width          integer NOT NULL,
    image_height         integer NOT NULL,
    file_size            integer NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE screenshot_images ALTER COLUMN image_data SET STORAGE EXTERNAL;  -- already compressed

CREATE TABLE screenshots (
    screenshot_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id           uuid NOT NULL REFERENCES sessions ON DELETE CASCADE,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    page_url             text,
    "timestamp"          timestamptz NOT NULL,
    content_hash         bytea NOT NULL REFERENCES screenshot_images,
    width                integer,
    height               integer,
    created_at           timestamptz NOT NULL DEFAULT now(),
    -- A re-sent upload of the same picture at the same moment is the same screenshot.
    UNIQUE (session_id, "timestamp", content_hash)
);
CREATE INDEX screenshots_time_idx ON screenshots ("timestamp" DESC);
CREATE INDEX screenshots_hash_idx ON screenshots (content_hash);
