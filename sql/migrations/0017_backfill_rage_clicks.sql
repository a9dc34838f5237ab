-- 0017: one-off backfill of sessions.rage_click_count (0016) from the stored clicks.
-- A click is a rage click when its event_data has a `rage` that is not false/0
-- (the same test as INSERT_BATCH in hindsight/queries/events.py).
UPDATE sessions s
SET rage_click_count = r.n
FROM (
    SELECT session_id, count(*)::integer AS n
    FROM events
    WHERE event_type = 'click'
      AND coalesce(event_data->>'rage', 'false') NOT IN ('false', '0')
    GROUP BY session_id
) AS r
WHERE r.session_id = s.session_id AND s.rage_click_count <> r.n;
