"""Step 3 of every write: authorize the sender.

The decision is SQL's (hindsight.queries.writers.CHECKS, read here as the columns of
WRITER); the fast path of a batch makes it inside its statement. Here the same row is read
and the first check that failed becomes the answer, in CHECKS' order:

    no such token                               401 (run the token flow again)
    account disabled                            403 (stop sending)
    statistics switched off for the host        403 (stop: the usage limit, or by hand)
    token revoked, or expired                   401
    the page's host not covered by the token's  403
    the body names another account (seed)       403
    no such session of this account             404

403 before 401: a token revoked because its host was switched off must tell the tracker
to stop, not to fetch a new token (docs/DECISIONS.md, "403, not 401, once switched off").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ..db import Conn
from ..errors import forbidden, not_found, unauthorized
from ..principals import SiteWriter
from ..queries.writers import CHECKS, writer_checks, writer_params

NO_SESSION = "No such session for this account; create it with POST /api/v1/sessions."


@dataclass(frozen=True)
class Sender:
    """Who sends a write, as the request says (read by the HTTP layer, hindsight.resources.http).

    `origin_host`: None when the request has no Origin (a server: the token alone is
    enough); the host of the page that sent it otherwise ('' when it cannot be read, which
    no domain covers). `claimed_account`: the account the body names, if any.
    """

    token: uuid.UUID
    origin_host: str | None = None
    claimed_account: uuid.UUID | None = None

    def params(self, now: datetime, session_id: uuid.UUID | None = None) -> dict:
        return writer_params(self.token, now, session_id=session_id, origin_host=self.origin_host,
                             claimed_account=self.claimed_account)


def _refusals(row: dict, no_session: str) -> dict:
    """What each failed check (a column of queries.writers.CHECKS) answers."""
    return {
        "account_active": lambda: forbidden("This account is disabled."),
        "statistics_enabled": lambda: forbidden(
            "Statistics are disabled for this host (usage limit reached or switched off)."),
        "live": lambda: unauthorized("This statistics token was revoked; request a new one."),
        "unexpired": lambda: unauthorized("This statistics token has expired; request a new one."),
        "origin_covered": lambda: forbidden(f"This token writes for {row['host']}, not for this origin."),
        "account_matches": lambda: forbidden("cklig-track-account is not the account of this token."),
        "session_found": lambda: not_found(no_session),
    }


def explain(row: dict | None, token: uuid.UUID, no_session: str = NO_SESSION) -> SiteWriter:
    """The writer of a row of WRITER whose checks all pass; else raise the first refusal
    (in CHECKS order)."""
    if row is None:
        raise unauthorized("Unknown statistics token; request a new one.")
    refusals = _refusals(row, no_session)
    for column, _ in CHECKS:
        if not row[column]:
            raise refusals[column]()
    return SiteWriter(token, row["account_id"], row["host"], row["strip_query"])


def authorize(conn: Conn, sender: Sender, now: datetime, session_id: uuid.UUID | None = None,
              no_session: str = NO_SESSION) -> SiteWriter:
    """Who writes (for `session_id`, when given: it must be theirs), or raise 401/403/404."""
    return explain(writer_checks(conn, sender.params(now, session_id)), sender.token, no_session)
