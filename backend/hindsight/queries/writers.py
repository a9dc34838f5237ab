"""Who may write: the one decision, in SQL, for every write endpoint.

`CHECKS` lists what a write must pass, each a condition on a statistics token's row (its
account, flag, domain and the session written to). Both ways a write is stored use that
one list:

- the fast path (a new event batch, `INSERT_NEW_BATCH_AUTHORIZED` in queries/events.py)
  embeds `AUTHORIZED_WRITER` as its `writer` CTE: the token's row when every check passes;
- the step-by-step path (re-sent batches, sessions, screenshots, the seed's events,
  recording segments and everything the fast path did not store) reads `WRITER`, the same
  row with each check as a column, and hindsight.ingestion.authorize names the first that
  failed (in `CHECKS` order) as its 401/403/404.

So the rule is written once; Python only explains a refusal. Parameters: `token`, `now`,
`session_id` (NULL: no session to check), `origin_host` (NULL: the request had no Origin,
e.g. a server; '' when the page's host could not be read, which no domain covers) and
`claimed_account` (NULL, or the account the body names: the seed's `cklig-track-account`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from ..db import Conn

# (column, condition), in the order a refusal is named (403 before 401: a token revoked
# because its host was switched off must stop the tracker, not send it for a new token).
CHECKS = (
    ("account_active", "a.active"),
    ("statistics_enabled", "coalesce(f.enabled, true)"),
    ("live", "t.revoked_at IS NULL"),
    ("unexpired", "t.expires_at > %(now)s"),
    # A registered domain covers itself and its subdomains.
    ("origin_covered", "(%(origin_host)s::text IS NULL OR %(origin_host)s::text = t.host\n"
                       "           OR right(%(origin_host)s::text, length(t.host) + 1) = '.' || t.host)"),
    ("account_matches", "(%(claimed_account)s::uuid IS NULL OR %(claimed_account)s::uuid = t.account_id)"),
    ("session_found", "(%(session_id)s::uuid IS NULL OR ws.session_id IS NOT NULL)"),
)

_WRITER_COLUMNS = "t.account_id, t.host, coalesce(d.strip_query_strings, false) AS strip_query"

_TOKEN_ROW = """
    FROM statistics_tokens t
    JOIN accounts a ON a.account_id = t.account_id
    LEFT JOIN statistics_flags f ON f.account_id = t.account_id AND f.host = t.host
    LEFT JOIN domains d ON d.account_id = t.account_id AND d.name = t.host
    LEFT JOIN sessions ws ON ws.session_id = %(session_id)s::uuid AND ws.account_id = t.account_id
    WHERE t.token = %(token)s"""

# The token's row with every check as a column (the step-by-step path reads it).
WRITER = (f"\n    SELECT {_WRITER_COLUMNS},\n           "
          + ",\n           ".join(f"{condition} AS {column}" for column, condition in CHECKS)
          + _TOKEN_ROW)

# The token's row when every check passes (the fast path's `writer` CTE).
AUTHORIZED_WRITER = (f"\n    SELECT {_WRITER_COLUMNS}" + _TOKEN_ROW + "\n      AND "
                     + "\n      AND ".join(condition for _, condition in CHECKS))

# A URL without its query string and fragment, for the domains that ask for it
# (`domains.strip_query_strings`): one expression for events, sessions and screenshots.
# {url} and {strip} are SQL expressions.
STRIPPED_URL = "CASE WHEN {strip} THEN substring({url} from '^[^?#]*') ELSE {url} END"


def writer_params(token: uuid.UUID, now: datetime, *, session_id: uuid.UUID | None = None,
                  origin_host: str | None = None, claimed_account: uuid.UUID | None = None) -> dict:
    return {"token": token, "now": now, "session_id": session_id, "origin_host": origin_host,
            "claimed_account": claimed_account}


def writer_checks(conn: Conn, params: dict) -> dict | None:
    """The token's row with every check column; None: no such token."""
    return conn.execute(WRITER, params, prepare=True).fetchone()
