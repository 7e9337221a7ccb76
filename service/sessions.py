"""Server-side sign-in sessions of ``govern serve``, in the request store's database.

A signed cookie alone cannot be taken back: a copy keeps working after sign-out until it
expires, and any server that knows the signing key accepts it. So the cookie
(``service.security``) carries only a random session id, and the session is the row
``web_sessions`` holds for it: the user, the mode of the server that made it (``dev`` or
``ldap``), when it was made and when it ends (8 hours later). Signing out deletes the row.

A session counts only while its row exists, has not expired, and was made in this server's
mode: a session made by a ``--dev`` server (no passwords) is not a session on an LDAP
server sharing the same store and key. Anything else reads as signed out (fail closed).

The table keeps the SHA-256 of each id, never the id itself: a copy of the database signs
no one in. Expired rows are deleted whenever a session starts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Callable

from sqlalchemy import CheckConstraint, Column, Index, MetaData, String, Table, delete, insert
from sqlalchemy import select

from govern.engine.requests import RequestStore, UTCDateTime, utcnow

MODES = ("dev", "ldap")
LIFETIME = dt.timedelta(hours=8)
MAX_TOKEN = 128  # what a cookie may carry as an id; longer is not one of ours

metadata = MetaData()
sessions_table = Table(
    "web_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(256), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    CheckConstraint("mode IN ('dev', 'ldap')", name="ck_web_sessions_mode"),
    Index("ix_web_sessions_expires", "expires_at"),
)


def mode_of(dev: bool) -> str:
    return "dev" if dev else "ldap"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _usable(token: object) -> bool:
    return isinstance(token, str) and 0 < len(token) <= MAX_TOKEN and token.isascii()


class SessionStore:
    """The sessions of one server: its ``mode``, its clock (``now``, injectable)."""

    def __init__(self, store: RequestStore, mode: str, *,
                 now: Callable[[], dt.datetime] = utcnow, lifetime: dt.timedelta = LIFETIME):
        if mode not in MODES:
            raise ValueError(f"session mode {mode!r}: one of {', '.join(MODES)}")
        self.store, self.mode, self.now, self.lifetime = store, mode, now, lifetime

    def start(self, user: str) -> str:
        """A new session for ``user``; the id to put in the cookie."""
        token = secrets.token_urlsafe(32)
        now = self.now()
        t = sessions_table
        with self.store.transaction(write=True) as conn:
            conn.execute(delete(t).where(t.c.expires_at <= now))
            conn.execute(insert(t).values(id_hash=_hash(token), user_id=user, mode=self.mode,
                                          created_at=now, expires_at=now + self.lifetime))
        return token

    def user(self, token: object) -> str | None:
        """The session's user while it lasts, in this mode; otherwise None."""
        if not _usable(token):
            return None
        t = sessions_table
        with self.store.transaction() as conn:
            row = conn.execute(select(t.c.user_id).where(
                t.c.id_hash == _hash(str(token)), t.c.mode == self.mode,
                t.c.expires_at > self.now())).first()
        return row.user_id if row is not None else None

    def end(self, token: object) -> None:
        """Sign out: the session is gone, whoever holds a copy of its cookie."""
        if not _usable(token):
            return
        t = sessions_table
        with self.store.transaction(write=True) as conn:
            conn.execute(delete(t).where(t.c.id_hash == _hash(str(token))))
