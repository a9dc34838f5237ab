-- 09_usage_and_journeys.sql: what the statistics stacks counted (statistics_counters,
-- usage) and the journeys they wrote, per account and host.
--
--   psql -X -f sql/maintenance/09_usage_and_journeys.sql "$HINDSIGHT_DATABASE_URL"
--
-- Read it like this:
--   * Who reads these tables: this script (DBAs) and the dashboard's account page (its
--     "Usage this month" per host and "Recent journeys"). Every flush of a stack writes one
--     statistics_counters row, one usage_log row and the journey steps, in one transaction.
--   * counted vs usage: for each account this month, the sum of its statistics_counters
--     must equal usage_periods.amount (the running total the limit is checked against).
--     A difference means rows were written outside a flush (a bug: report it).
--   * pending: events stored and not counted yet (stack_pending). A few seconds' worth is
--     normal; an old `oldest_pending` means no process is flushing (04_jobs.sql, the
--     workers' logs, GET /api/health/stacks).
--   * journeys: sessions with steps in the last 7 days per host, and the most common first
--     pages; steps_per_journey far below the page views per session means flushes lag.

\echo '== counted this month vs usage, per account (must agree)'
WITH counted AS (
    SELECT account_id, sum(total_events)::bigint AS counted, count(*) AS flushes, max(created_at) AS last_flush
    FROM statistics_counters
    WHERE created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    GROUP BY account_id
)
SELECT a.name AS account, c.account_id, c.flushes, c.counted, coalesce(u.amount, 0) AS usage_amount,
       c.counted = coalesce(u.amount, 0) AS agree, a.monthly_event_limit, c.last_flush
FROM counted c
JOIN accounts a USING (account_id)
LEFT JOIN usage_periods u ON u.account_id = c.account_id AND u.service = 'statistics'
     AND u.period_start = date_trunc('month', now() AT TIME ZONE 'UTC')::date
ORDER BY c.counted DESC
LIMIT 50;

\echo '== counted this month, per account and host'
SELECT account_id, host, count(*) AS flushes, sum(session_events)::bigint AS sessions,
       sum(page_events)::bigint AS pages, sum(click_events)::bigint AS clicks,
       sum(other_events)::bigint AS other, sum(total_events)::bigint AS total
FROM statistics_counters
WHERE created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
GROUP BY account_id, host
ORDER BY total DESC
LIMIT 50;

\echo '== pending: stored, not counted yet (stack_pending)'
SELECT account_id, host, count(*) AS batches, sum(total)::bigint AS events,
       min(created_at) AS oldest_pending, now() - min(created_at) AS waiting
FROM stack_pending
GROUP BY account_id, host
ORDER BY oldest_pending
LIMIT 50;

\echo '== journeys of the last 7 days, per account and host'
SELECT account_id, host, count(*) AS journeys, round(avg(step_count), 1) AS steps_per_journey,
       max(updated_at) AS last_step_written
FROM journeys
WHERE created_at >= now() - interval '7 days'
GROUP BY account_id, host
ORDER BY journeys DESC
LIMIT 50;

\echo '== most common first pages of those journeys'
SELECT j.host, hindsight_url_path(s.page_url) AS first_page, count(*) AS journeys
FROM journeys j
JOIN LATERAL (SELECT page_url FROM journey_steps
              WHERE journey_id = j.journey_id AND step_type = 'page'
              ORDER BY step LIMIT 1) s ON true
WHERE j.created_at >= now() - interval '7 days'
GROUP BY 1, 2
ORDER BY journeys DESC
LIMIT 20;
