"""Failed sign-ins of ``govern serve``, throttled per user id and per client address.

After :data:`PER_USER` failed sign-ins for one user id, or :data:`PER_ADDRESS` from one client
address, within :data:`WINDOW`, every further attempt for that user or from that address is
refused with :class:`TooManyAttempts` (429, with ``Retry-After``) without asking the
directory, until enough of those failures are older than the window. Refused attempts are
not counted, so waiting always ends the block. A successful sign-in clears the user's
failures (not the address's). The form and HTTP Basic on the API are both sign-ins.

The failures are rows of ``signin_failures`` in the request store's database, where the
sessions are, and not in memory:

- replicas sharing the store (as they share sessions) share the counts, so adding servers
  does not multiply an attacker's guesses, and a restart does not reset them;
- checking and counting are one transaction, serialised (``BEGIN IMMEDIATE`` on SQLite, an
  advisory lock on PostgreSQL): each attempt is counted as a failure *before* the directory
  is asked and uncounted when it succeeds or the directory cannot be reached, so parallel
  attempts cannot all slip past the check (fail closed).

Rows older than the window are deleted as new attempts come. The clock is injectable
(``now``), so tests need no sleeping. The client address is the connection's peer: behind a
proxy that is the proxy's, shared by everyone behind it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import (CheckConstraint, Column, Index, Integer, MetaData, String, Table,
                        and_, delete, func, insert, or_, select, text)
from starlette.requests import Request

from govern.engine.requests import (NotAuthenticated, RequestError, RequestStore, UTCDateTime,
                                    utcnow)

from .signin import MAX_NAME, SignIn

WINDOW = dt.timedelta(minutes=15)
PER_USER = 5
PER_ADDRESS = 20
_LOCK = 7_340_212  # pg_advisory_xact_lock key: one sign-in check at a time

metadata = MetaData()
failures_table = Table(
    "signin_failures", metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    CheckConstraint("kind IN ('user', 'address')", name="ck_signin_failures_kind"),
    Index("ix_signin_failures_subject", "kind", "subject", "at"),
    Index("ix_signin_failures_at", "at"),
)


class TooManyAttempts(RequestError):
    """Too many failed sign-ins for the user or from the address; ``retry_after`` seconds."""

    http_status = 429

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        wait = f"{math.ceil(retry_after / 60)} minutes" if retry_after > 90 \
            else f"{retry_after} seconds"
        super().__init__(f"too many failed sign-ins: try again in {wait}")


@dataclass(frozen=True)
class _Attempt:
    user: str
    rows: tuple[int, ...]  # the failures it was counted as, until it succeeds


def _key(subject: str) -> str:
    """What a failure is counted under: the text as given when it is printable, else
    escaped (a store column holds no NUL), at most :data:`MAX_NAME` characters."""
    return (subject if subject.isprintable() else ascii(subject)[1:-1])[:MAX_NAME]


def client_address(request: Request) -> str:
    """The connection's peer address (never a header a client could set)."""
    return (request.client.host if request.client else "") or "unknown"


class SignInThrottle:
    """Counts failed sign-ins in ``store`` and refuses attempts over the limits."""

    def __init__(self, store: RequestStore, *, now: Callable[[], dt.datetime] = utcnow,
                 window: dt.timedelta = WINDOW, per_user: int = PER_USER,
                 per_address: int = PER_ADDRESS):
        self.store, self.now, self.window = store, now, window
        self.limits = {"user": per_user, "address": per_address}

    def verify(self, signin: SignIn, username: str, password: str, address: str) -> str:
        """``signin.verify(username, password)``, if the user and address are not blocked."""
        attempt = self._begin(_key((username or "").strip().lower()), _key(address))
        try:
            user = signin.verify(username, password)
        except NotAuthenticated:
            raise  # it stays counted
        except BaseException:
            self._end(attempt, succeeded=False)  # the directory failed, not the user
            raise
        self._end(attempt, succeeded=True)
        return user

    def _begin(self, user: str, address: str) -> _Attempt:
        """Refuse a blocked attempt, else count it as a failure, in one transaction."""
        now = self.now()
        t = failures_table
        subjects = [("address", address)] + ([("user", user)] if user else [])
        with self.store.transaction(write=True) as conn:
            if not self.store.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
            conn.execute(delete(t).where(t.c.at <= now - self.window))
            until: list[dt.datetime] = []
            for kind, subject in subjects:
                limit = self.limits[kind]
                recent = conn.execute(select(t.c.at)
                                      .where(t.c.kind == kind, t.c.subject == subject)
                                      .order_by(t.c.at.desc()).limit(limit)).scalars().all()
                if len(recent) >= limit:  # blocked until the limit-th newest is too old
                    until.append(recent[limit - 1] + self.window)
            if until:
                wait = (max(until) - now).total_seconds()
                raise TooManyAttempts(max(1, math.ceil(wait)))
            rows = tuple(conn.execute(insert(t).values(kind=kind, subject=subject, at=now))
                         .inserted_primary_key[0] for kind, subject in subjects)
        return _Attempt(user, rows)

    def _end(self, attempt: _Attempt, succeeded: bool) -> None:
        """Uncount an attempt that was no failure; a success clears the user's failures."""
        t = failures_table
        condition = t.c.id.in_(attempt.rows)
        if succeeded and attempt.user:
            condition = or_(condition, and_(t.c.kind == "user", t.c.subject == attempt.user))
        with self.store.transaction(write=True) as conn:
            conn.execute(delete(t).where(condition))

    def failures(self, kind: str, subject: str) -> int:
        """How many failures count now against ``subject`` (for operators and tests)."""
        t = failures_table
        with self.store.transaction() as conn:
            return int(conn.execute(select(func.count()).select_from(t).where(
                t.c.kind == kind, t.c.subject == subject,
                t.c.at > self.now() - self.window)).scalar_one())
