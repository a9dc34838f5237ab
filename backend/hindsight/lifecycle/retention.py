"""Retention: what is past its age goes, what is still referenced stays.

One run, in this order (each step is its own statement or batch of statements, so a
failure leaves everything consistent and the next run carries on):

1. raw events, whole chunks: chunks entirely older than the longest retention any
   account has (the default, or an account's `events_retention_days`). Apache edition:
   `drop_chunks` here; timescale edition: the native retention policy on `events`,
   whose `drop_after` this run keeps equal to that longest retention.
2. raw events, rows: what is left past each account's own cutoff (the part of the
   boundary chunk before it, and accounts with a shorter retention). Cutoffs are whole
   hours, so an hour of an account's events is either all kept or all gone.
3. screenshots taken before their account's cutoff (the events of that moment are gone),
   the heatmaps' scroll-depth roll-up rows of those hours (they name sessions, 0033),
   and DOM recordings whose session started before it: whole chunks of
   `recording_segments` (partitioned by the session's start) past the longest retention
   with `drop_chunks` on both editions, then the rows of accounts with a shorter one.
4. sessions whose last activity is before the cutoff and that have no event left
   (their remaining screenshots and recording segments go with them).
5. screenshot images no screenshot references any more (at least an hour old, locked
   row by row so an upload that is using one keeps it), and recording blobs no recording
   segment references any more (sql/migrations/0028: locked first, so an upload that is
   using one keeps it).
6. roll-ups past the roll-up retention (2 years by default): their stores with
   `drop_chunks`, and on the timescale edition the continuous aggregates' native
   retention policies.

The roll-ups are not touched by steps 1-4: they keep counting what retention removed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import sql

from ..db import Conn, one
from ..queries import heatmap_sources, recordings
from .edition import TIMESCALE
from .rollups import ALL_ROLLUPS

# Raw rows must outlive the roll-ups' refresh windows (at most 4 days): a refresh
# re-reads them. 7 days also matches the timescale edition's compression age.
MIN_RETENTION_DAYS = 7
SESSION_GRACE = timedelta(hours=1)   # a session younger than this may still get its first events
IMAGE_GRACE = timedelta(hours=1)     # an image younger than this may be on its way to a screenshot
BATCH = 5000
TIMESCALE_AGGREGATES = ("events_hourly_cagg", "pages_hourly_cagg", "events_daily_cagg", "pages_daily_cagg",
                        "pages_weekly_cagg", "network_hourly_cagg", "network_daily_cagg", "network_weekly_cagg",
                        "network_4weekly_cagg")

# Each account's cutoff is a whole hour: time_bucket('1 hour', now - its retention).
EXPIRE_SCREENSHOTS = """
WITH cutoffs AS (
    SELECT account_id, time_bucket(INTERVAL '1 hour', %(now)s::timestamptz
               - make_interval(days => coalesce(events_retention_days, %(default)s))) AS cutoff
    FROM accounts)
DELETE FROM screenshots s USING cutoffs c
WHERE s.account_id = c.account_id AND s."timestamp" < c.cutoff
"""

# started_at <= last_activity_at: the started_at bound lets the (account_id,
# started_at) index find the candidates.
EXPIRE_SESSIONS = """
WITH cutoffs AS (
    SELECT account_id, time_bucket(INTERVAL '1 hour', %(now)s::timestamptz
               - make_interval(days => coalesce(events_retention_days, %(default)s))) AS cutoff
    FROM accounts)
DELETE FROM sessions WHERE session_id IN (
    SELECT s.session_id FROM sessions s JOIN cutoffs c ON c.account_id = s.account_id
    WHERE s.started_at < c.cutoff AND s.last_activity_at < c.cutoff
      AND s.created_at < %(now)s::timestamptz - %(grace)s
      AND NOT EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.session_id)
    LIMIT %(batch)s)
"""

# A recording goes with its session's start (0019 partitions it by that).
EXPIRE_RECORDINGS = """
WITH cutoffs AS (
    SELECT account_id, time_bucket(INTERVAL '1 hour', %(now)s::timestamptz
               - make_interval(days => coalesce(events_retention_days, %(default)s))) AS cutoff
    FROM accounts)
DELETE FROM recording_segments r USING cutoffs c
WHERE r.account_id = c.account_id AND r.session_started_at < c.cutoff
  AND r.session_started_at < %(newest_cutoff)s
"""

HOUR_CUTOFF = "SELECT time_bucket(INTERVAL '1 hour', %s::timestamptz - make_interval(days => %s)) AS c"

# Where the chunk holding a time starts (rows before it are in chunks wholly past).
CHUNK_START = """
SELECT min(range_start) AS s FROM timescaledb_information.chunks
WHERE hypertable_schema = 'public' AND hypertable_name = 'events' AND range_end > %s
"""

# The native retention policy of a hypertable or continuous aggregate (timescale edition).
POLICY = """
SELECT j.job_id, (j.config->>'drop_after')::interval AS drop_after
FROM timescaledb_information.jobs j
WHERE j.proc_name = 'policy_retention'
  AND (j.hypertable_schema, j.hypertable_name) IN (
      SELECT 'public'::name, %(relation)s::name
      UNION ALL
      SELECT materialization_hypertable_schema, materialization_hypertable_name
      FROM timescaledb_information.continuous_aggregates
      WHERE view_schema = 'public' AND view_name = %(relation)s)
"""


def default_days(events_retention_days: int) -> int:
    return max(int(events_retention_days), MIN_RETENTION_DAYS)


def ensure_retention_policy(conn: Conn, relation: str, days: int) -> str:
    """Make the native retention policy of `relation` drop after `days`; say what was done."""
    wanted = timedelta(days=days)
    row = conn.execute(POLICY, {"relation": relation}).fetchone()
    if row is not None and row["drop_after"] == wanted:
        return "kept"
    with conn.transaction():
        if row is not None:
            conn.execute("SELECT remove_retention_policy(%s::regclass)", (relation,))
        conn.execute("SELECT add_retention_policy(%s::regclass, drop_after => %s)", (relation, wanted))
    return "added" if row is None else "updated"


def _drop_chunks(conn: Conn, relation: str, older_than: datetime) -> int:
    return one(conn.execute("SELECT count(*) AS n FROM drop_chunks(%s::regclass, older_than => %s)",
                            (relation, older_than)))["n"]


def expire_events(conn: Conn, now: datetime, default: int, edition: str | None) -> dict:
    """Steps 1 and 2: raw events past their account's retention."""
    retentions = conn.execute(
        "SELECT coalesce(events_retention_days, %(default)s) AS days, array_agg(account_id) AS accounts "
        "FROM accounts GROUP BY 1 ORDER BY 1 DESC", {"default": default}).fetchall()
    longest = max([default] + [r["days"] for r in retentions])
    longest_cutoff = one(conn.execute(HOUR_CUTOFF, (now, longest)))["c"]
    result: dict = {"longest_retention_days": longest}
    if edition == TIMESCALE:
        result["events_policy"] = ensure_retention_policy(conn, "events", longest)
    else:
        result["chunks_dropped"] = _drop_chunks(conn, "events", longest_cutoff)
    # Rows: the start of the boundary chunk up to the longest cutoff (older chunks go
    # whole, above), then each shorter retention between the longest cutoff and its own.
    boundary = one(conn.execute(CHUNK_START, (longest_cutoff,)))["s"] or longest_cutoff
    deleted = conn.execute('DELETE FROM events WHERE "timestamp" >= %s AND "timestamp" < %s',
                           (min(boundary, longest_cutoff), longest_cutoff)).rowcount
    for group in retentions:
        if group["days"] >= longest:
            continue
        cutoff = one(conn.execute(HOUR_CUTOFF, (now, group["days"])))["c"]
        deleted += conn.execute(
            'DELETE FROM events WHERE account_id = ANY(%s) AND "timestamp" >= %s AND "timestamp" < %s',
            (group["accounts"], longest_cutoff, cutoff)).rowcount
    result["events_deleted"] = deleted
    return result


def expire_recordings(conn: Conn, now: datetime, default: int) -> dict:
    """Step 3, recordings: whole chunks past the longest retention, then rows by account."""
    row = one(conn.execute(
        "SELECT max(coalesce(events_retention_days, %(d)s)) AS longest, "
        "min(coalesce(events_retention_days, %(d)s)) AS shortest FROM accounts", {"d": default}))
    longest = max(default, row["longest"] or default)
    shortest = row["shortest"] or default
    chunks = _drop_chunks(conn, "recording_segments", one(conn.execute(HOUR_CUTOFF, (now, longest)))["c"])
    newest_cutoff = one(conn.execute(HOUR_CUTOFF, (now, shortest)))["c"]
    deleted = conn.execute(EXPIRE_RECORDINGS, {"now": now, "default": default,
                                               "newest_cutoff": newest_cutoff}).rowcount
    return {"recording_chunks_dropped": chunks, "recording_segments_deleted": deleted}


def expire_screenshots_and_sessions(conn: Conn, now: datetime, default: int) -> dict:
    """Steps 3 and 4."""
    params = {"now": now, "default": default, "grace": SESSION_GRACE, "batch": BATCH}
    screenshots = conn.execute(EXPIRE_SCREENSHOTS, params).rowcount
    # The heatmaps' scroll-depth roll-up names sessions (sql/migrations/0033): it goes too.
    depths = heatmap_sources.expire_depths(conn, now, default)
    sessions = 0
    while True:
        n = conn.execute(EXPIRE_SESSIONS, params).rowcount
        sessions += n
        if n < BATCH:
            break
    return {"screenshots_deleted": screenshots, "sessions_deleted": sessions, "heatmap_depth_rows_deleted": depths}


def reclaim_images(conn: Conn, now: datetime) -> dict:
    """Step 5: images no screenshot references; SKIP LOCKED leaves any an upload holds."""
    images = reclaimed_bytes = 0
    while True:
        rows = conn.execute(
            """
            DELETE FROM screenshot_images WHERE content_hash IN (
                SELECT i.content_hash FROM screenshot_images i
                WHERE i.created_at < %(now)s::timestamptz - %(grace)s
                  AND NOT EXISTS (SELECT 1 FROM screenshots s WHERE s.content_hash = i.content_hash)
                LIMIT %(batch)s
                FOR UPDATE SKIP LOCKED)
            RETURNING file_size
            """, {"now": now, "grace": IMAGE_GRACE, "batch": BATCH}).fetchall()
        images += len(rows)
        reclaimed_bytes += sum(r["file_size"] for r in rows)
        if len(rows) < BATCH:
            break
    return {"images_deleted": images, "image_bytes_reclaimed": reclaimed_bytes}


def _reclaim_in_batches(conn: Conn, reclaim) -> tuple[int, int]:
    """Call `reclaim(conn, BATCH)` (rows deleted, bytes freed), one transaction a batch,
    until a batch comes back short; return the totals."""
    rows = freed = 0
    while True:
        with conn.transaction():
            n, size = reclaim(conn, BATCH)
        rows += n
        freed += size
        if n < BATCH:
            return rows, freed


def reclaim_recording_blobs(conn: Conn) -> dict:
    """Step 5, recordings: blobs no segment references any more (0028); each batch locks
    its candidates, then deletes those still unreferenced, in one transaction."""
    blobs, reclaimed_bytes = _reclaim_in_batches(conn, recordings.reclaim_blobs)
    # blobs whose dictionary's source session is gone, compressed with the vocabulary (0035)
    recompressed, _ = _reclaim_in_batches(conn, recordings.recompress_orphaned_blobs)
    # and the dictionaries no segment or blob uses any more (0030)
    dictionaries, dictionary_bytes = _reclaim_in_batches(conn, recordings.reclaim_dictionaries)
    return {"recording_blobs_deleted": blobs, "recording_blob_bytes_reclaimed": reclaimed_bytes,
            "recording_blobs_recompressed": recompressed,
            "recording_dictionaries_deleted": dictionaries,
            "recording_dictionary_bytes_reclaimed": dictionary_bytes}


def expire_rollups(conn: Conn, now: datetime, days: int, edition: str | None) -> dict:
    """Step 6: roll-up buckets entirely older than the roll-up retention."""
    cutoff = now - timedelta(days=days)
    chunks = rows = 0
    for rollup in ALL_ROLLUPS:
        chunks += _drop_chunks(conn, rollup.store, cutoff)
        rows += conn.execute(
            sql.SQL("DELETE FROM {} WHERE bucket < time_bucket(%s, %s::timestamptz)").format(
                sql.Identifier(rollup.store)), (rollup.width, cutoff)).rowcount
    result: dict = {"rollup_chunks_dropped": chunks, "rollup_rows_deleted": rows}
    if edition == TIMESCALE:
        result["rollup_policies"] = {name: ensure_retention_policy(conn, name, days)
                                     for name in TIMESCALE_AGGREGATES}
    return result


def run(conn: Conn, now: datetime, *, events_retention_days: int,
        rollup_retention_days: int, schema_edition: str | None) -> dict:
    """One retention run (steps 1-6); return what it removed."""
    default = default_days(events_retention_days)
    result = {"default_retention_days": default}
    result.update(expire_events(conn, now, default, schema_edition))
    result.update(expire_recordings(conn, now, default))
    result.update(expire_screenshots_and_sessions(conn, now, default))
    result.update(reclaim_images(conn, now))
    result.update(reclaim_recording_blobs(conn))
    result.update(expire_rollups(conn, now, max(int(rollup_retention_days), 1), schema_edition))
    return result
