"""The throttling of failed sign-ins in the request store, on SQLite and on a real
PostgreSQL, with a fake directory and an injected clock: the limits hold even for attempts
made all at once, and a directory that cannot be reached counts against no one."""

from __future__ import annotations

import threading
import time

import pytest

from govern.engine.errors import IdentityError
from govern.engine.requests import NotAuthenticated
from govern.service.throttle import SignInThrottle, TooManyAttempts, metadata

from .conftest import assert_migration_matches
from .test_requests_store import store, store_config  # noqa: F401  (fixtures)
from .test_sessions import Clock


class FakeSignIn:
    """A directory where ``password`` is everyone's password; ``slow`` seconds per bind."""

    dev = False

    def __init__(self, slow: float = 0.0, down: bool = False):
        self.slow, self.down, self.asked = slow, down, 0
        self._lock = threading.Lock()

    def verify(self, username: str, password: str) -> str:
        with self._lock:
            self.asked += 1
        time.sleep(self.slow)
        if self.down:
            raise IdentityError("ldap://directory: unreachable")
        if password != "password":
            raise NotAuthenticated("sign-in failed: unknown user or wrong password")
        return username.strip().lower()


def test_parallel_guesses_get_no_more_tries_than_the_limit(store):
    throttle, directory = SignInThrottle(store, now=Clock()), FakeSignIn(slow=0.2)
    outcomes: list[str] = []

    def guess(i: int) -> None:
        try:
            throttle.verify(directory, "dave", f"guess-{i}", f"192.0.2.{i}")
        except NotAuthenticated:
            outcomes.append("401")
        except TooManyAttempts:
            outcomes.append("429")

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert directory.asked == 5
    assert sorted(outcomes) == ["401"] * 5 + ["429"] * 7
    assert throttle.failures("user", "dave") == 5


def test_a_directory_outage_counts_against_no_one(store):
    throttle, directory = SignInThrottle(store, now=Clock()), FakeSignIn(down=True)
    for _ in range(10):
        with pytest.raises(IdentityError):
            throttle.verify(directory, "dave", "password", "192.0.2.1")
    assert throttle.failures("user", "dave") == throttle.failures("address", "192.0.2.1") == 0
    directory.down = False
    assert throttle.verify(directory, "Dave ", "password", "192.0.2.1") == "dave"


def test_user_ids_are_counted_as_the_directory_reads_them(store):
    throttle, directory = SignInThrottle(store, now=Clock()), FakeSignIn()
    for name in ("dave", "Dave", " DAVE ", "dAvE", "dave"):
        with pytest.raises(NotAuthenticated):
            throttle.verify(directory, name, "wrong", "192.0.2.1")
    with pytest.raises(TooManyAttempts):
        throttle.verify(directory, "DaVe", "password", "192.0.2.2")


def test_the_migration_matches_the_table(store):
    assert_migration_matches(store.engine, metadata)
