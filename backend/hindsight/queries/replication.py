"""Streaming replication as the API sees it: how far a replica's replay is behind, and
the replicas the primary streams to (hindsight.read_side, /health)."""

from __future__ import annotations

from ..db import Conn, one

# On a replica: "0" while it has replayed everything it received (an idle primary writes
# nothing, so the last replayed transaction's age would grow without any lag), else the
# age of the last replayed transaction.
_REPLICA_LAG = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0.0
            ELSE greatest(0.0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::float8
       END AS lag_seconds,
       pg_last_xact_replay_timestamp() AS replayed_at
"""

# On the primary: its streaming replicas (details need superuser or pg_monitor; else null).
_STANDBYS = """
SELECT application_name, client_addr::text AS client_addr, state,
       extract(epoch FROM replay_lag)::float8 AS replay_lag_seconds
FROM pg_stat_replication ORDER BY application_name, client_addr
"""


def replica_lag(conn: Conn) -> dict:
    """{in_recovery, lag_seconds, replayed_at} of the server `conn` is connected to."""
    return dict(one(conn.execute(_REPLICA_LAG)))


def standbys(conn: Conn) -> list[dict]:
    """The replicas streaming from the primary `conn` is connected to."""
    return [dict(r) for r in conn.execute(_STANDBYS).fetchall()]
