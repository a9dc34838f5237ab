-- 0039: the visitor roll-ups' newest hours, computed for the dimensions a reader needs only.
--
-- Readers of the visitor roll-ups (hindsight.queries.visitors) take the hours after the
-- hourly watermark from the raw sessions, through hindsight_visits (0023): every session of
-- those hours (one or two) x six dimensions, each with a visitor sketch. The overview calls
-- it four times (its summary and series need 'all' only, the entry pages 'entry_page' only,
-- the breakdowns four dimensions) and each call built all six: about a quarter of the page's
-- database time at 90 days (issue 12: every overview range under 100 ms), most of it
-- sketches and the referrer's and entry page's parsing that the caller then threw away.
--
-- This overload takes the dimensions wanted and builds only those; the same rows as the
-- three-argument function's for them (tests/test_visitor_tail.py). The three-argument one
-- stays for the views (visits_hourly) and the refresh.
CREATE FUNCTION hindsight_visits(since timestamptz, until timestamptz, account uuid, dimensions text[])
    RETURNS TABLE (bucket timestamptz, account_id uuid, host text, dimension text, value text,
                   sessions bigint, visitors hll, bounces bigint, duration_s double precision,
                   page_views bigint)
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    wanted text;
BEGIN
    IF since >= until THEN
        RETURN;
    END IF;
    -- The (dimension, value) pairs of each session, as in 0023, for the dimensions asked.
    SELECT string_agg(format('(%L, %s)', d.name, d.expr), ', ' ORDER BY d.ord) INTO wanted
    FROM (VALUES
        (1, 'all', $e$''$e$),
        (2, 'referrer', $e$coalesce(hindsight_referrer_host(s.referrer, s.host), '')$e$),
        (3, 'device_type', $e$coalesce(s.device_type, '')$e$),
        (4, 'browser', $e$coalesce(s.browser, '')$e$),
        (5, 'os', $e$coalesce(s.os, '')$e$),
        (6, 'entry_page', $e$coalesce(hindsight_url_path(s.page_url), '')$e$)
    ) AS d (ord, name, expr)
    WHERE d.name = ANY(dimensions);
    IF wanted IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT time_bucket(INTERVAL '1 hour', s.started_at), s.account_id, s.host, d.dimension, d.value::text,
               count(*), hll_add_agg(hindsight_visitor_hash(s.visitor_id), 15, 5, -1, 1),
               count(*) FILTER (WHERE s.page_view_count <= 1),
               coalesce(sum(extract(epoch FROM greatest(s.last_activity_at - s.started_at, INTERVAL '0'))), 0)::double precision,
               coalesce(sum(s.page_view_count), 0)::bigint
        FROM sessions s
        CROSS JOIN LATERAL (VALUES %1$s) AS d (dimension, value)
        WHERE s.started_at >= %2$L AND s.started_at < %3$L AND %4$s
        GROUP BY 1, 2, 3, 4, 5$q$, wanted, since, until,
        CASE WHEN account IS NULL THEN 'true' ELSE format('s.account_id = %L', account) END);
END $$;
