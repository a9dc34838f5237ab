"""A range's rows of the roll-ups Hindsight refreshes itself, read from their stores.

Each such roll-up `P_hourly`, `P_daily` (and `P_weekly`) is a store holding every bucket
before its watermark (`rollup_watermarks`, hindsight.lifecycle.rollups) and a view that adds
the newer buckets computed from the raw rows. A reader that goes through the views plans
the nested views and computes those newest buckets once per view reference and for every
account. Reading the stores instead: the watermarks are read first, so every bound is a
value when the statement is planned (plain index range scans, chunks excluded), and the
buckets after the hourly watermark are computed once, for one account (the `tail`):

    weekly store  [week0, wcut)                    whole weeks it holds
    daily store   [day0, week0) and [wcut, dcut)   whole days around them it holds
    hourly store  [start, end0) and [dcut, end1)   the hours at either end, up to hcut
    tail          [start, day0) and [dcut, end)    from the hourly watermark (hcut) on

Fewer, wider buckets: a 90-day range reads about 13 weekly + 12 daily rows per key instead
of 90 daily ones. The visitor roll-ups are read this way on both editions; the event, page
and network roll-ups on the Apache edition only (on the timescale edition they are
continuous aggregates with no rows in `rollup_watermarks`, and are read through their views).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg
from psycopg import IsolationLevel, sql
from psycopg.pq import TransactionStatus

from ..db import Conn, one

if TYPE_CHECKING:
    from .traffic import Range

HOUR, DAY, WEEK, BLOCK = timedelta(hours=1), timedelta(days=1), timedelta(days=7), timedelta(days=28)
# Every roll-up family whose stores are read this way (when its watermarks exist).
PREFIXES = ("visits", "page_visits", "events", "pages", "network")

SPLIT = """
    SELECT {columns} FROM {weekly}
    WHERE account_id = %(account_id)s AND bucket >= %({p}_week0)s AND bucket < %({p}_wend)s {where}
    UNION ALL
    SELECT {columns} FROM {daily}
    WHERE account_id = %(account_id)s AND (bucket >= %(day0)s AND bucket < %({p}_week0)s
                                           OR bucket >= %({p}_wcut)s AND bucket < %({p}_dend)s) {where}
    UNION ALL
    SELECT {columns} FROM {hourly}
    WHERE account_id = %(account_id)s AND bucket >= %(start)s AND bucket < %({p}_end0)s {where}
    UNION ALL
    SELECT {columns} FROM {hourly}
    WHERE account_id = %(account_id)s AND bucket >= %({p}_dcut)s AND bucket < %({p}_end1)s {where}
    UNION ALL
    SELECT {columns} FROM {tail}
    WHERE (bucket >= %(start)s AND bucket < %(day0)s OR bucket >= %({p}_dcut)s AND bucket < %(end)s) {where}
"""
# Without a weekly roll-up (events, pages): the same rows less the first part.
SPLIT_NO_WEEKS = SPLIT.split("UNION ALL", 1)[1]
# With 28-day blocks too (network: sql/migrations/0038): the blocks' rows for [block0, block1)
# inside the whole weeks (buckets before `bend`: block1, or the end of a partial block), the
# weeks around them. Without blocks, block0 = block1 = week0.
_BLOCKS_AND_WEEKS = """
    SELECT {columns} FROM {blocks}
    WHERE account_id = %(account_id)s AND bucket >= %({p}_block0)s AND bucket < %({p}_bend)s {where}
    UNION ALL
    SELECT {columns} FROM {weekly}
    WHERE account_id = %(account_id)s AND (bucket >= %({p}_week0)s AND bucket < %({p}_block0)s
                                           OR bucket >= %({p}_block1)s AND bucket < %({p}_wend)s) {where}
"""
SPLIT_BLOCKS = "    UNION ALL".join((_BLOCKS_AND_WEEKS, SPLIT_NO_WEEKS))


def rows(prefix: str, columns: str, where: str, host: str | None, tail: sql.Composable,
         weekly: bool = True, blocks: bool = False) -> sql.Composable:
    """The rows of roll-up family `prefix` over the range (its bounds: `params(..., prefixes)`);
    `tail`: a row source of the buckets after the hourly watermark, computed from raw rows;
    `blocks`: whole 28-day blocks from `prefix`_4weekly_store (network)."""
    condition = sql.SQL(where + (" AND host = %(host)s" if host is not None else ""))
    return sql.SQL(SPLIT_BLOCKS if blocks else SPLIT if weekly else SPLIT_NO_WEEKS).format(
        columns=sql.SQL(columns), blocks=sql.Identifier(f"{prefix}_4weekly_store"),
        weekly=sql.Identifier(f"{prefix}_weekly_store"),
        daily=sql.Identifier(f"{prefix}_daily_store"), hourly=sql.Identifier(f"{prefix}_hourly_store"),
        where=condition, tail=tail, p=sql.SQL(prefix))


_WATERMARKS = "SELECT rollup, materialized_until FROM rollup_watermarks WHERE rollup = ANY(%s)"
# Weeks start on Monday 00:00 UTC, as time_bucket('7 days', ...) cuts them.
_WEEK_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)


def week_floor(t: datetime) -> datetime:
    return _WEEK_ORIGIN + ((t - _WEEK_ORIGIN) // WEEK) * WEEK


def week_ceil(t: datetime) -> datetime:
    floor = week_floor(t)
    return floor if floor == t else floor + WEEK


# 28-day blocks from the same origin (time_bucket('28 days', ...)): 4 whole weeks each.
def block_floor(t: datetime) -> datetime:
    return _WEEK_ORIGIN + ((t - _WEEK_ORIGIN) // BLOCK) * BLOCK


def block_ceil(t: datetime) -> datetime:
    floor = block_floor(t)
    return floor if floor == t else floor + BLOCK


def read_watermarks(conn: Conn, prefixes: tuple[str, ...]) -> dict[str, datetime]:
    names = [f"{p}_{width}" for p in prefixes for width in ("hourly", "daily", "weekly", "4weekly")]
    return {r["rollup"]: r["materialized_until"] for r in conn.execute(_WATERMARKS, (names,)).fetchall()}


# Watermarks read once for several statements (same_watermarks), else once per statement.
_SAME_WATERMARKS: ContextVar[dict[str, datetime] | None] = ContextVar("same_watermarks", default=None)
# Whether the readers run in one snapshot (`snapshot`): only then are partial rows read.
_ONE_SNAPSHOT: ContextVar[bool] = ContextVar("one_snapshot", default=False)


@contextmanager
def snapshot(conn: Conn, spare: Conn | None = None) -> Iterator[Conn | None]:
    """Within: every statement on `conn` (and on `spare`, which yields itself, or None when it
    cannot share the snapshot) sees the database as of one moment, so the readers may read
    the visitor roll-ups' partial rows (today so far, this week so far).

    A partial row is the one thing a refresh *grows* below the watermarks: a reader that read
    the watermarks before a refresh committed and its rows after would count the hours the
    row gained twice (the row holds them now, and the hours after the old watermark are read
    again from the hourly store and the raw rows). In one snapshot (a REPEATABLE READ, READ
    ONLY transaction; the spare imports it with SET TRANSACTION SNAPSHOT) the watermarks and
    the rows agree. Outside one (a connection already in a transaction, the default read
    committed) the readers take whole days and weeks only, and the hours after them: as
    correct, a little slower.

    A spare that cannot import the snapshot (another server: the primary and a replica; a
    server that refuses) is handed back as None: the caller reads on `conn` alone."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        yield None
        return
    with _isolated(conn), conn.transaction(), ExitStack() as stack:
        shared = _share(stack, conn, spare) if spare is not None else None
        token = _ONE_SNAPSHOT.set(True)
        try:
            yield shared
        finally:
            _ONE_SNAPSHOT.reset(token)


@contextmanager
def _isolated(conn: Conn) -> Iterator[None]:
    """`conn`'s next transaction REPEATABLE READ, READ ONLY; its settings as they were after."""
    before = conn.isolation_level, conn.read_only
    conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
    try:
        yield
    finally:
        conn.isolation_level, conn.read_only = before


def _share(stack: ExitStack, conn: Conn, spare: Conn) -> Conn | None:
    """`spare` in a transaction of `conn`'s snapshot until `stack` closes, or None."""
    if spare.info.transaction_status != TransactionStatus.IDLE:
        return None
    name = one(conn.execute("SELECT pg_export_snapshot() AS s"))["s"]
    stack.enter_context(_isolated(spare))
    transaction = spare.transaction()
    transaction.__enter__()
    try:
        spare.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(name)))
    except psycopg.Error as ex:
        # Another server's snapshot, or one it refuses: rolled back; read on `conn` alone.
        transaction.__exit__(type(ex), ex, ex.__traceback__)
        return None
    stack.push(transaction.__exit__)
    return spare


@contextmanager
def same_watermarks(conn: Conn) -> Iterator[None]:
    """Within: every reader uses the watermarks read once here (one round trip for the
    overview's statements, not one each). Correct for any later statement: a refresh
    replaces whole rows below a watermark, it never adds to them, and the partial rows it
    does grow are read only in one snapshot (`snapshot`), where no refresh shows."""
    token = _SAME_WATERMARKS.set(read_watermarks(conn, PREFIXES))
    try:
        yield
    finally:
        _SAME_WATERMARKS.reset(token)


def watermarks(conn: Conn, prefixes: tuple[str, ...]) -> dict[str, datetime]:
    marks = _SAME_WATERMARKS.get()
    return marks if marks is not None else read_watermarks(conn, prefixes)


def has_stores(conn: Conn, prefix: str) -> bool:
    """Whether roll-up family `prefix` is refreshed by Hindsight here (its hourly watermark
    exists): the Apache edition's event, page and network roll-ups, never the timescale one's."""
    return f"{prefix}_hourly" in watermarks(conn, (prefix,))


def params(conn: Conn, account_id: uuid.UUID, rng: Range, host: str | None,
           prefixes: tuple[str, ...], weeks: bool = True, hours_only: bool = False,
           marks: dict[str, datetime] | None = None, **more) -> dict:
    """The statement's parameters: the range's bounds and, per roll-up prefix, where its
    weekly, daily and hourly stores end. `weeks` False: no weekly rows (a per-day series);
    `hours_only`: hourly rows and the tail only (a per-hour series); `marks`: watermarks
    read elsewhere (the timescale edition's continuous aggregates') instead of
    `rollup_watermarks`."""
    day0, day1 = rng.whole_days()
    out = {"account_id": account_id, "start": rng.start, "end": rng.end, "day0": day0, "day1": day1,
           "host": host, **more}
    marks = watermarks(conn, prefixes) if marks is None else marks

    def mark(name: str, low: datetime, high: datetime) -> datetime:
        t = marks.get(name)
        return low if t is None else min(max(t, low), high)

    for prefix in prefixes:
        hcut = mark(f"{prefix}_hourly", rng.start, rng.end)
        # The daily store only below the hourly watermark too (a refresh fills hours first).
        dcut = max(day0, min(mark(f"{prefix}_daily", day0, day1), _day_floor(hcut.astimezone(UTC))))
        # Daily rows up to `dend` (exclusive bucket start); hours from `dcut` on. A partial day
        # (the visitor roll-ups' today so far, up to their watermark inside it) is read when it
        # lies inside the range and below the hourly watermark: one row instead of its hours.
        dend = dcut
        daily = marks.get(f"{prefix}_daily")
        partial = _ONE_SNAPSHOT.get()  # partial rows only in one snapshot (see `snapshot`)
        if partial and daily is not None:
            today = _day_floor(daily.astimezone(UTC))
            if daily != today and dcut == today and rng.start <= today and daily <= min(hcut, rng.end):
                dcut, dend = daily, today + DAY
        # Whole weeks inside [day0, dcut) that the weekly store holds.
        week0 = week_ceil(day0)
        # (Whole weeks below the weekly watermark: a partial week's row is never read as a
        # whole one, even when the weekly refresh is behind the daily one.)
        wcut = min(week_floor(dcut), week_floor(mark(f"{prefix}_weekly", day0, day1)))
        if not weeks or week0 >= wcut:
            week0 = wcut = day0
        wend = wcut
        # A partial week (the visitor roll-ups' current week so far, up to the daily rows'
        # watermark): its row instead of that week's days, when the range holds its start.
        weekly = marks.get(f"{prefix}_weekly")
        if partial and weeks and weekly is not None and weekly == dcut and weekly <= min(hcut, rng.end):
            this_week = week_floor(weekly.astimezone(UTC))
            if weekly != this_week and day0 <= this_week and wcut <= this_week:
                if week0 >= wcut:  # no whole week before it
                    week0 = this_week
                wcut = dend = wend = this_week + WEEK
        # Whole 28-day blocks inside the whole weeks that the 28-day store holds (network):
        # rows of buckets [block0, bend) instead of the weeks [block0, block1).
        blocks = marks.get(f"{prefix}_4weekly")
        block0 = block_ceil(week0)
        block1 = min(block_floor(wcut), block_floor(mark(f"{prefix}_4weekly", day0, day1)))
        if blocks is None or block0 >= block1:
            block0 = block1 = week0
        bend = block1
        # A partial block (this block so far: its weeks, then days up to the daily rows'
        # watermark): its row instead of those weeks and days, when the range holds them and
        # the weeks after it start where it ends: at `wcut`, or below it on a week's start (a
        # 28-day watermark mid-week below the weekly one, as between the weekly and the 28-day
        # refresh's commits, would leave that week's days after it read from nowhere), or
        # past it with no partial week (then days from it on).
        if partial and weeks and blocks is not None:
            this_block = block_floor(blocks.astimezone(UTC))
            if (blocks != this_block and week0 <= this_block <= wcut and blocks <= dcut
                    and block1 in (week0, this_block)
                    and (blocks == wcut or blocks < wcut and blocks == week_floor(blocks.astimezone(UTC))
                         or blocks > wcut and wcut == wend)):
                if block0 == block1:  # no whole block before it
                    block0 = this_block
                block1, bend = blocks, this_block + BLOCK
                if blocks > wcut:  # the days before it too: days from it on
                    wcut = wend = blocks
        out.update({f"{prefix}_hcut": hcut, f"{prefix}_dcut": dcut, f"{prefix}_dend": dend, f"{prefix}_week0": week0,
                    f"{prefix}_wcut": wcut, f"{prefix}_wend": wend, f"{prefix}_end0": min(day0, hcut),
                    f"{prefix}_end1": min(rng.end, hcut), f"{prefix}_block0": block0, f"{prefix}_block1": block1,
                    f"{prefix}_bend": bend})
        if hours_only:  # every bucket from the hourly store or the tail: no daily or weekly part
            out.update({"day0": rng.start, **{f"{prefix}_{b}": rng.start for b in (
                "dcut", "dend", "end0", "week0", "wcut", "wend", "block0", "block1", "bend")}})
    return out


def _day_floor(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)
