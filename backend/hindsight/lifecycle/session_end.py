"""Ending sessions: `sessions.ended_at` is the session's last activity, set once the
session has been quiet for as long as tracker.js waits before it starts a new one.

A visit has no reliable "goodbye" (a tab closed, a phone locked, a network lost all look
the same), so a session ends by silence: 30 minutes without activity, the tracker's own
timeout (tracker/src/index.js, IDLE), after which the same browser starts a new session.
The job runs every few minutes; a session's `ended_at` is therefore known between 30
and 30 + interval minutes after its last activity. A late retry of an old batch (the
tracker's outbox) can move `last_activity_at` past an `ended_at` already set; the next
run moves `ended_at` with it for sessions active within the look-back below.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..db import Conn

IDLE = timedelta(minutes=30)     # tracker.js's session timeout
BATCH = 10_000                   # sessions ended per statement (a run repeats until done)
LOOK_BACK = timedelta(days=1)    # ended sessions whose activity moved on since, re-ended

# Open sessions that went quiet (sessions_open_idx, migration 0026).
END_QUIET = """
UPDATE sessions s SET ended_at = s.last_activity_at
FROM (SELECT session_id FROM sessions
      WHERE ended_at IS NULL AND last_activity_at < %(cutoff)s
      LIMIT %(batch)s) quiet
WHERE s.session_id = quiet.session_id
"""

# Sessions ended before a late batch moved their last activity (recent ones only: the
# list is read by start time, sessions_started_idx).
MOVE_LATE_ENDS = """
UPDATE sessions SET ended_at = last_activity_at
WHERE started_at >= %(since)s AND ended_at IS NOT NULL AND ended_at < last_activity_at
  AND last_activity_at < %(cutoff)s
"""


def end_quiet_sessions(conn: Conn, now: datetime) -> dict:
    """One job run: end every session quiet since `now - IDLE`; {ended, moved}."""
    cutoff = now - IDLE
    ended = 0
    while True:
        count = conn.execute(END_QUIET, {"cutoff": cutoff, "batch": BATCH}).rowcount
        ended += count
        if count < BATCH:
            break
    moved = conn.execute(MOVE_LATE_ENDS, {"since": now - LOOK_BACK, "cutoff": cutoff}).rowcount
    return {"ended": ended, "moved": moved}
