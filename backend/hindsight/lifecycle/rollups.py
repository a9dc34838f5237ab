"""Roll-ups refreshed by Hindsight itself, from a watermark.

Each roll-up `X` is a view (sql/editions/apache/, sql/migrations/0007) over a table
`X_store` holding every bucket before its watermark (`rollup_watermarks`), plus the
newer buckets computed from the source rows at query time. A refresh:

1. takes the window [min(watermark, now - start_offset), now - end_offset), both ends
   rounded down to the bucket width — so the last days are re-read every time and late
   events that fall in them are counted;
2. deletes the store's buckets in that window and inserts them again from the source,
   in one transaction: buckets are replaced, never added to, so a refresh can run any
   number of times and never counts an event twice;
3. moves the watermark to the window's end.

The first refresh starts at the oldest source row. The offsets are those of the
timescale edition's refresh policies (sql/editions/timescale/0001), so both editions
count the same late events: those at most `start_offset` old when the refresh runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import sql

from ..db import Conn, one
from ..queries import heatmap_sources
from .edition import TIMESCALE

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Rollup:
    name: str
    width: timedelta
    start_offset: timedelta
    end_offset: timedelta
    columns: tuple[str, ...]
    # A SELECT of `columns` for the buckets in [%(start)s, %(end)s).
    source: str
    # The oldest source time (first refresh), as column `t`.
    earliest: str
    # The store also holds the current bucket so far, up to a whole hour (its watermark then
    # lies inside that bucket; the next refresh replaces the row): the visitor roll-ups' days,
    # so that a range ending now merges one sketch for today instead of one per hour.
    partial: bool = False
    # A roll-up whose *store* this one's source reads: never refreshed past its watermark
    # (a partial week is made of the daily store's rows, today's partial one included).
    after: str | None = None

    @property
    def store(self) -> str:
        return f"{self.name}_store"


EVENTS_HOURLY = Rollup(
    "events_hourly", HOUR, timedelta(days=2), HOUR,
    ("bucket", "account_id", "host", "event_type", "events"),
    """
    SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host, event_type,
           count(*) AS events
    FROM events
    WHERE "timestamp" >= %(start)s AND "timestamp" < %(end)s
    GROUP BY 1, 2, 3, 4
    """,
    'SELECT min("timestamp") AS t FROM events',
)

PAGES_HOURLY = Rollup(
    "pages_hourly", HOUR, timedelta(days=2), HOUR,
    ("bucket", "account_id", "host", "path", "page_views", "clicks", "errors"),
    """
    SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host,
           hindsight_url_path(page_url) AS path,
           count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
           count(*) FILTER (WHERE event_type = 'click') AS clicks,
           count(*) FILTER (WHERE event_type = 'error') AS errors
    FROM events
    WHERE "timestamp" >= %(start)s AND "timestamp" < %(end)s
      AND page_url IS NOT NULL AND event_type IN ('page_view', 'click', 'error')
    GROUP BY 1, 2, 3, 4
    """,
    'SELECT min("timestamp") AS t FROM events',
)

# Durations of network requests in histogram buckets (sql/migrations/0021 says how they
# merge and how a percentile is read off them).
NETWORK_COLUMNS = ("bucket", "account_id", "host", "method", "url", "duration_bucket", "requests",
                   "failures", "min_ms", "max_ms")

NETWORK_HOURLY = Rollup(
    "network_hourly", HOUR, timedelta(days=2), HOUR, NETWORK_COLUMNS,
    """
    SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host,
           hindsight_network_method(event_data) AS method, hindsight_network_url(event_data) AS url,
           hindsight_duration_bucket(hindsight_network_duration(event_data)) AS duration_bucket,
           count(*) AS requests, count(*) FILTER (WHERE hindsight_network_failed(event_data)) AS failures,
           min(hindsight_network_duration(event_data)) AS min_ms,
           max(hindsight_network_duration(event_data)) AS max_ms
    FROM events
    WHERE "timestamp" >= %(start)s AND "timestamp" < %(end)s
      AND event_type = 'network' AND hindsight_network_duration(event_data) IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6
    """,
    'SELECT min("timestamp") AS t FROM events',
)

# Daily roll-ups read the hourly views (store + newest hours), like the hierarchical
# continuous aggregates of the timescale edition.
EVENTS_DAILY = Rollup(
    "events_daily", DAY, timedelta(days=4), HOUR,
    ("bucket", "account_id", "host", "event_type", "events"),
    """
    SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, event_type,
           sum(events)::bigint AS events
    FROM events_hourly
    WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1, 2, 3, 4
    """,
    "SELECT min(bucket) AS t FROM events_hourly",
)

PAGES_DAILY = Rollup(
    "pages_daily", DAY, timedelta(days=4), HOUR,
    ("bucket", "account_id", "host", "path", "page_views", "clicks", "errors"),
    """
    SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, path,
           sum(page_views)::bigint AS page_views, sum(clicks)::bigint AS clicks,
           sum(errors)::bigint AS errors
    FROM pages_hourly
    WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1, 2, 3, 4
    """,
    "SELECT min(bucket) AS t FROM pages_hourly",
)

NETWORK_DAILY = Rollup(
    "network_daily", DAY, timedelta(days=4), HOUR, NETWORK_COLUMNS,
    """
    SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, method, url, duration_bucket,
           sum(requests)::bigint AS requests, sum(failures)::bigint AS failures,
           min(min_ms) AS min_ms, max(max_ms) AS max_ms
    FROM network_hourly
    WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1, 2, 3, 4, 5, 6
    """,
    "SELECT min(bucket) AS t FROM network_hourly",
)

# Weeks start on Monday 00:00 UTC (time_bucket's origin for whole days); a refresh re-reads
# the last 3 weeks, which holds the daily roll-up's 4 days of late events.
NETWORK_WEEKLY = Rollup(
    "network_weekly", WEEK, timedelta(days=21), HOUR, NETWORK_COLUMNS,
    """
    SELECT time_bucket(INTERVAL '7 days', bucket) AS bucket, account_id, host, method, url, duration_bucket,
           sum(requests)::bigint AS requests, sum(failures)::bigint AS failures,
           min(min_ms) AS min_ms, max(max_ms) AS max_ms
    FROM network_daily
    WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1, 2, 3, 4, 5, 6
    """,
    "SELECT min(bucket) AS t FROM network_daily",
)

# 28-day blocks (sql/migrations/0038), so that a long range's slowest endpoints read a block
# instead of 4 weeks. Blocks start on Monday 2000-01-03 (time_bucket's origin): a block is 4
# whole weeks. Made of the weekly *store* up to its watermark and the daily store's days
# after it, up to the daily watermark (`after`; refreshed after both): the current block so
# far is a row too (`partial`: one row per key instead of up to 3 weeks' and 6 days' rows).
# A refresh re-reads the last 63 days: the weekly roll-up rewrites its last 3 weeks, so a
# block's weeks change until 49 days after it starts. Weeks only up to the week holding `end`
# (a rewrite after an erasure may end mid-week, below the weekly watermark): the days from
# there on, never a whole week that runs past `end`.
BLOCK = timedelta(days=28)
NETWORK_4WEEKLY = Rollup(
    "network_4weekly", BLOCK, timedelta(days=63), HOUR, NETWORK_COLUMNS,
    """
    SELECT time_bucket(INTERVAL '28 days', bucket) AS bucket, account_id, host, method, url, duration_bucket,
           sum(requests)::bigint AS requests, sum(failures)::bigint AS failures,
           min(min_ms) AS min_ms, max(max_ms) AS max_ms
    FROM (SELECT * FROM network_weekly_store
          WHERE bucket >= %(start)s
            AND bucket < least(time_bucket(INTERVAL '7 days', %(end)s::timestamptz),
                               hindsight_rollup_watermark('network_weekly'))
          UNION ALL
          SELECT * FROM network_daily_store
          WHERE bucket >= greatest(%(start)s, least(time_bucket(INTERVAL '7 days', %(end)s::timestamptz),
                                                    hindsight_rollup_watermark('network_weekly')))
            AND bucket < %(end)s
         ) AS weeks_and_days
    GROUP BY 1, 2, 3, 4, 5, 6
    """,
    "SELECT least((SELECT min(bucket) FROM network_weekly_store), (SELECT min(bucket) FROM network_daily_store)) AS t",
    partial=True, after="network_daily",
)

# The same weeks of the page roll-up (sql/migrations/0037): a long range's page lists read
# weeks instead of days.
PAGES_WEEKLY = Rollup(
    "pages_weekly", WEEK, timedelta(days=21), HOUR, PAGES_DAILY.columns,
    """
    SELECT time_bucket(INTERVAL '7 days', bucket) AS bucket, account_id, host, path,
           sum(page_views)::bigint AS page_views, sum(clicks)::bigint AS clicks,
           sum(errors)::bigint AS errors
    FROM pages_daily
    WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1, 2, 3, 4
    """,
    "SELECT min(bucket) AS t FROM pages_daily",
)

# Sessions are a plain table on both editions: this one is always ours to refresh.
SESSIONS_DAILY = Rollup(
    "sessions_daily", DAY, timedelta(days=4), HOUR,
    ("bucket", "account_id", "host", "dimension", "value", "sessions"),
    """
    SELECT time_bucket(INTERVAL '1 day', s.started_at) AS bucket, s.account_id, s.host,
           d.dimension, d.value, count(*) AS sessions
    FROM sessions s
    CROSS JOIN LATERAL (VALUES
        ('referrer', coalesce(hindsight_referrer_host(s.referrer, s.host), '')),
        ('device_type', coalesce(s.device_type, '')),
        ('browser', coalesce(s.browser, '')),
        ('os', coalesce(s.os, ''))
    ) AS d (dimension, value)
    WHERE s.started_at >= %(start)s AND s.started_at < %(end)s
    GROUP BY 1, 2, 3, 4, 5
    """,
    "SELECT min(started_at) AS t FROM sessions",
)

# Visitors (sql/migrations/0023): sessions and page views joined with their sessions' visitor
# ids, unique visitors as HyperLogLog sketches that the daily roll-ups merge (hll_union_agg).
# Ours to refresh on both editions; the hourly source is the SQL function the views' newest
# buckets are computed with.
VISITS_COLUMNS = ("bucket", "account_id", "host", "dimension", "value", "sessions", "visitors", "bounces",
                  "duration_s", "page_views")
VISITS_HOURLY = Rollup(
    "visits_hourly", HOUR, timedelta(days=2), HOUR, VISITS_COLUMNS,
    "SELECT * FROM hindsight_visits(%(start)s, %(end)s)",
    "SELECT min(started_at) AS t FROM sessions",
)
VISITS_DAILY = Rollup(
    "visits_daily", DAY, timedelta(days=4), HOUR, VISITS_COLUMNS,
    """
    SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, dimension, value,
           sum(sessions)::bigint, hll_union_agg(visitors), sum(bounces)::bigint, sum(duration_s),
           sum(page_views)::bigint
    FROM visits_hourly
    WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1, 2, 3, 4, 5
    """,
    "SELECT min(bucket) AS t FROM visits_hourly",
    partial=True,
)
PAGE_VISITS_COLUMNS = ("bucket", "account_id", "host", "path", "page_views", "visitors", "exits",
                       "time_on_page_s")
PAGE_VISITS_HOURLY = Rollup(
    "page_visits_hourly", HOUR, timedelta(days=2), HOUR, PAGE_VISITS_COLUMNS,
    "SELECT * FROM hindsight_page_visits(%(start)s, %(end)s)",
    """SELECT min("timestamp") AS t FROM events WHERE event_type = 'page_view'""",
)
PAGE_VISITS_DAILY = Rollup(
    "page_visits_daily", DAY, timedelta(days=4), HOUR, PAGE_VISITS_COLUMNS,
    """
    SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, path,
           sum(page_views)::bigint, hll_union_agg(visitors), sum(exits)::bigint, sum(time_on_page_s)
    FROM page_visits_hourly
    WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1, 2, 3, 4
    """,
    "SELECT min(bucket) AS t FROM page_visits_hourly",
    partial=True,
)
# Weekly (sql/migrations/0031): the same rows per week (Monday 00:00 UTC, as network_weekly),
# merged from the daily roll-ups, so that a long range merges ~13 weekly sketches per value
# instead of ~90 daily ones. A refresh re-reads the last 3 weeks, which holds the daily
# roll-ups' 4 days of late events; refreshed after the daily ones (refresh_all's order),
# from the daily *store* up to its watermark (`after`): the current week so far is a row
# too (`partial`), made of its days and today's partial day (docs/DECISIONS.md, "The
# overview, fourth round").
VISITS_WEEKLY = Rollup(
    "visits_weekly", WEEK, timedelta(days=21), HOUR, VISITS_COLUMNS,
    """
    SELECT time_bucket(INTERVAL '7 days', bucket) AS bucket, account_id, host, dimension, value,
           sum(sessions)::bigint, hll_union_agg(visitors), sum(bounces)::bigint, sum(duration_s),
           sum(page_views)::bigint
    FROM visits_daily_store
    WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1, 2, 3, 4, 5
    """,
    "SELECT min(bucket) AS t FROM visits_daily_store",
    partial=True, after="visits_daily",
)
PAGE_VISITS_WEEKLY = Rollup(
    "page_visits_weekly", WEEK, timedelta(days=21), HOUR, PAGE_VISITS_COLUMNS,
    """
    SELECT time_bucket(INTERVAL '7 days', bucket) AS bucket, account_id, host, path,
           sum(page_views)::bigint, hll_union_agg(visitors), sum(exits)::bigint, sum(time_on_page_s)
    FROM page_visits_daily_store
    WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1, 2, 3, 4
    """,
    "SELECT min(bucket) AS t FROM page_visits_daily_store",
    partial=True, after="page_visits_daily",
)
VISITOR_ROLLUPS = (VISITS_HOURLY, VISITS_DAILY, PAGE_VISITS_HOURLY, PAGE_VISITS_DAILY, VISITS_WEEKLY,
                   PAGE_VISITS_WEEKLY)

# The heatmap page's clicks and scroll depths (sql/migrations/0033): ours on both editions
# (they join sessions); the reader applies the same SELECT after the watermark.
HEATMAP_CLICKS_HOURLY = Rollup(
    "heatmap_clicks_hourly", HOUR, timedelta(days=2), HOUR, heatmap_sources.CLICKS_COLUMNS,
    heatmap_sources.CLICKS_SOURCE,
    """SELECT min("timestamp") AS t FROM events WHERE event_type = 'click'""",
)
HEATMAP_DEPTHS_HOURLY = Rollup(
    "heatmap_depths_hourly", HOUR, timedelta(days=2), HOUR, heatmap_sources.DEPTHS_COLUMNS,
    heatmap_sources.DEPTHS_SOURCE,
    'SELECT min("timestamp") AS t FROM events',
)
HEATMAP_ROLLUPS = (HEATMAP_CLICKS_HOURLY, HEATMAP_DEPTHS_HOURLY)

APACHE_ROLLUPS = (EVENTS_HOURLY, PAGES_HOURLY, NETWORK_HOURLY, EVENTS_DAILY, PAGES_DAILY, NETWORK_DAILY,
                  PAGES_WEEKLY, NETWORK_WEEKLY, NETWORK_4WEEKLY, SESSIONS_DAILY, *VISITOR_ROLLUPS, *HEATMAP_ROLLUPS)
TIMESCALE_ROLLUPS = (SESSIONS_DAILY, *VISITOR_ROLLUPS, *HEATMAP_ROLLUPS)
ALL_ROLLUPS = APACHE_ROLLUPS


def scheduler_rollups(schema_edition: str | None) -> tuple[Rollup, ...]:
    """The roll-ups this deployment's scheduler refreshes."""
    return TIMESCALE_ROLLUPS if schema_edition == TIMESCALE else APACHE_ROLLUPS


def _floor(conn: Conn, width: timedelta, t: datetime) -> datetime:
    return one(conn.execute("SELECT time_bucket(%s, %s::timestamptz) AS b", (width, t)))["b"]


def refresh(conn: Conn, rollup: Rollup, now: datetime) -> dict:
    """Refresh one roll-up up to `now - end_offset`; return the window it rewrote."""
    store = sql.Identifier(rollup.store)
    columns = sql.SQL(", ").join(map(sql.Identifier, rollup.columns))
    with conn.transaction():
        end = _floor(conn, HOUR if rollup.partial else rollup.width, now - rollup.end_offset)
        if rollup.after is not None:
            below = conn.execute("SELECT materialized_until FROM rollup_watermarks WHERE rollup = %s",
                                 (rollup.after,)).fetchone()
            end = min(end, below["materialized_until"]) if below else _floor(conn, rollup.width, end)
        row = conn.execute(
            "SELECT materialized_until FROM rollup_watermarks WHERE rollup = %s FOR UPDATE",
            (rollup.name,),
        ).fetchone()
        watermark = row["materialized_until"] if row else None
        if watermark is not None and end < watermark:
            # An earlier clock than the last refresh's (stepped back, another server's): the
            # buckets it rewrites still reach the watermark, or a partial row (today so far)
            # would end before it while readers take it as reaching it.
            end = watermark
        if watermark is None:
            earliest = one(conn.execute(rollup.earliest))["t"]
            start = _floor(conn, rollup.width, earliest) if earliest is not None else end
        else:
            # Whole buckets: a partial one is replaced from its start.
            start = _floor(conn, rollup.width, min(watermark, now - rollup.start_offset))
        replaced = inserted = 0
        if start < end:
            replaced = conn.execute(
                sql.SQL("DELETE FROM {} WHERE bucket >= %(start)s AND bucket < %(end)s").format(store),
                {"start": start, "end": end},
            ).rowcount
            # In key order: an account's buckets land next to each other, so a reader of a
            # long range (the 90-day overview) touches few pages of the store.
            inserted = conn.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT * FROM ({}) AS fresh ORDER BY account_id, bucket").format(
                    store, columns, sql.SQL(rollup.source)),
                {"start": start, "end": end},
            ).rowcount
        new_watermark = end if watermark is None else max(watermark, end)
        conn.execute(
            """
            INSERT INTO rollup_watermarks (rollup, materialized_until, refreshed_at)
            VALUES (%s, %s, now())
            ON CONFLICT (rollup) DO UPDATE
            SET materialized_until = EXCLUDED.materialized_until, refreshed_at = now()
            """,
            (rollup.name, new_watermark),
        )
    return {"from": start.isoformat(), "to": end.isoformat(), "rows": inserted, "replaced": replaced}


def refresh_all(conn: Conn, now: datetime, schema_edition: str | None) -> dict:
    """Refresh every roll-up the scheduler owns, hourly ones before daily ones."""
    return {r.name: refresh(conn, r, now) for r in scheduler_rollups(schema_edition)}
