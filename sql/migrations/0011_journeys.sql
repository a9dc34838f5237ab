-- 0011: what a statistics flush writes — user journeys and statistics counters (seed 000:
-- OnSiteUserJourney, OnSiteUserJourneyEvent, AccountStatisticsCounter).

-- One journey per session.
CREATE TABLE journeys (
    journey_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id    uuid NOT NULL UNIQUE REFERENCES sessions ON DELETE CASCADE,
    account_id    uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    host          text NOT NULL,              -- the registered domain (seed: baseDomain)
    user_id       text,
    ip_hash       bytea,                      -- keyed hash, as in sessions (never the IP)
    step_count    integer NOT NULL DEFAULT 0, -- steps so far; the next flush numbers from here
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journeys_account_idx ON journeys (account_id, created_at DESC);

-- One row per step: the session start, each page view, each click, numbered 1, 2, ...
-- in the order they were counted (within one flush: by time).
CREATE TABLE journey_steps (
    journey_id    bigint NOT NULL REFERENCES journeys ON DELETE CASCADE,
    step          integer NOT NULL CHECK (step >= 1),
    step_type     text NOT NULL CHECK (step_type IN ('session', 'page', 'click')),
    seq           bigint,                     -- the event's seq in its session; NULL for 'session'
    event         jsonb NOT NULL,
    page_url      text,
    "timestamp"   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (journey_id, step)
);
-- Each event is a step at most once (and a journey has one 'session' step).
CREATE UNIQUE INDEX journey_steps_event_idx ON journey_steps (journey_id, coalesce(seq, -1));

-- One row per flush: what was counted for account + host.
CREATE TABLE statistics_counters (
    counter_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    host             text NOT NULL,
    session_events   integer NOT NULL,
    page_events      integer NOT NULL,
    click_events     integer NOT NULL,
    other_events     integer NOT NULL,
    total_events     integer NOT NULL CHECK (total_events = session_events + page_events + click_events + other_events),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX statistics_counters_account_idx ON statistics_counters (account_id, host, created_at DESC);
