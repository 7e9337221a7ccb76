"""The server-side sessions of `govern serve` in the request store, on SQLite and on a real
PostgreSQL: a session lasts while its row does, in the mode that made it, until it expires
(an injected clock: no sleeping); the table holds no usable session id."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from govern.service.sessions import LIFETIME, SessionStore, metadata, sessions_table

from .conftest import assert_migration_matches
from .test_requests_store import store, store_config  # noqa: F401  (fixtures)


class Clock:
    def __init__(self) -> None:
        self.at = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.at


def test_a_session_is_bound_to_its_mode_and_ends_at_sign_out(store):
    dev, ldap = SessionStore(store, "dev"), SessionStore(store, "ldap")
    token = dev.start("dave")
    assert dev.user(token) == "dave"
    assert ldap.user(token) is None  # a --dev session on an LDAP server sharing the store
    other = ldap.start("dave")
    assert (ldap.user(other), dev.user(other)) == ("dave", None)
    dev.end(token)
    assert dev.user(token) is None
    assert ldap.user(other) == "dave"  # only that session ended
    for forged in (None, "", 42, ["x"], token + "x", "é" * 10, "x" * 10_000):
        assert dev.user(forged) is None and ldap.user(forged) is None


def test_a_session_expires_and_expired_rows_are_deleted(store):
    clock = Clock()
    sessions = SessionStore(store, "ldap", now=clock)
    token = sessions.start("grace")
    clock.at += LIFETIME - dt.timedelta(seconds=1)
    assert sessions.user(token) == "grace"
    clock.at += dt.timedelta(seconds=1)
    assert sessions.user(token) is None
    sessions.start("heidi")  # starting a session deletes the expired ones
    with store.engine.connect() as conn:
        users = [r.user_id for r in conn.execute(select(sessions_table.c.user_id))]
    assert users == ["heidi"]


def test_the_table_keeps_no_session_id(store):
    token = SessionStore(store, "dev").start("bob")
    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(sessions_table))]
    assert len(rows) == 1 and token not in repr(rows)
    assert rows[0][1:3] == ("bob", "dev")


def test_an_unknown_mode_is_refused(store):
    with pytest.raises(ValueError, match="dev, ldap"):
        SessionStore(store, "none")


def test_the_migration_matches_the_table(store):
    assert_migration_matches(store.engine, metadata)
