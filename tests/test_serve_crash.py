"""Kill `govern serve` in the middle of an approval: the request is then either approved with
its audit row, or still pending without one; never half. A restarted server carries on."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from govern.engine.opa import free_port
from govern.engine.requests import RequestStore
from govern.engine.spec import RequestsConfig

from .conftest import dsn_for
from .test_crash import wait_for
from .test_requests_store import copy_mesh, make, new_pg_database
from .test_serve_api import basic


class Server:
    """`govern serve --dev` in its own process, on a free port."""

    def __init__(self, root: Path, log: Path):
        self.root, self.log = root, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Server":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "govern.cli", "--mesh", str(self.root), "serve", "--dev",
                 "--insecure-dev", "--port", str(self.port)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=os.environ.copy())

        def ready() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                return httpx.get(f"{self.url}/api/me", headers=basic("dave"),
                                 timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(ready, timeout=60), self.log.read_text()
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Approval(threading.Thread):
    """An approve call in the background; ``status`` is its HTTP status, or None when the
    server was killed before it answered."""

    def __init__(self, server: Server, request_id: str):
        super().__init__(daemon=True)
        self.url = f"{server.url}/api/requests/{request_id}/approve"
        self.status: int | None = None
        self.start()

    def run(self) -> None:
        try:
            self.status = httpx.post(self.url, headers=basic("dave"),
                                     json={"reason": "approved while dying"}, timeout=60
                                     ).status_code
        except httpx.HTTPError:
            pass  # the server was killed under us: expected


def approve_in_background(server: Server, request_id: str) -> Approval:
    return Approval(server, request_id)


def state(store: RequestStore, request_id: str) -> tuple[str, tuple[str, ...]]:
    return store.get(request_id).status, tuple(e.action for e in store.events(request_id))


def test_kill_between_update_and_audit_row_leaves_it_pending(tmp_path, pg_cluster):
    url = new_pg_database(pg_cluster)
    root = copy_mesh(tmp_path, url)
    dsn = dsn_for(pg_cluster, make_url(url).database)
    store = RequestStore.for_config(RequestsConfig(url=url), root, migrate=True)
    server = Server(root, tmp_path / "serve.log")
    try:
        request = make(store)
        server.start()
        # another session holds the audit table: the approval's UPDATE is done, its event
        # INSERT waits, inside the one transaction
        blocker = psycopg.connect(dsn)
        blocker.execute("LOCK TABLE request_events IN EXCLUSIVE MODE")
        caller = approve_in_background(server, request.id)

        def waiting() -> bool:
            with psycopg.connect(dsn, autocommit=True) as conn:
                return bool(conn.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'govern-requests' "
                    "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO request_events%'"
                ).fetchone())

        assert wait_for(waiting), server.log.read_text()
        server.kill()
        blocker.rollback()
        blocker.close()
        caller.join(timeout=30)
        assert caller.status is None  # killed before it could answer

        def gone() -> bool:  # the killed server's transaction ends with its connection
            with psycopg.connect(dsn, autocommit=True) as conn:
                return not conn.execute("SELECT 1 FROM pg_stat_activity WHERE "
                                        "application_name = 'govern-requests' "
                                        "AND state <> 'idle'").fetchone()

        assert wait_for(gone)
        assert state(store, request.id) == ("pending", ("create",))

        server.start()  # a new server on the same store carries on
        response = httpx.post(f"{server.url}/api/requests/{request.id}/approve",
                              headers=basic("dave"), json={"reason": "second try"}, timeout=30)
        assert response.status_code == 200, response.text
        server.kill()  # after the commit, a kill changes nothing
        assert state(store, request.id) == ("approved", ("create", "approve"))
    finally:
        server.stop()
        store.close()


def test_kill_at_random_moments_never_leaves_half_an_approval(tmp_path):
    root = copy_mesh(tmp_path)
    store = RequestStore.for_config(RequestsConfig(), root, migrate=True)  # SQLite
    server = Server(root, tmp_path / "serve.log")
    rng = random.Random(20261201)
    try:
        for _ in range(3):
            requests = [make(store, requester=user) for user in ("alice", "bob", "erin", "frank")]
            server.start()
            callers = [approve_in_background(server, r.id) for r in requests]
            time.sleep(rng.uniform(0.0, 0.15))
            server.kill()
            for caller in callers:
                caller.join(timeout=30)
            for r, caller in zip(requests, callers):
                assert caller.status in (None, 200), caller.status  # killed, or approved
                if caller.status == 200:  # answered: the approval is whole
                    assert state(store, r.id) == ("approved", ("create", "approve"))
                assert state(store, r.id) in {("pending", ("create",)),
                                              ("approved", ("create", "approve"))}
                if store.get(r.id).status == "pending":  # tidy for the next round
                    store.transition(r.id, "deny", "dave", "round over")
    finally:
        server.stop()
        store.close()


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def test_when_opa_dies_the_server_stops_with_one_line_and_no_zombie(tmp_path):
    root = copy_mesh(tmp_path)
    log = tmp_path / "serve.log"
    server = Server(root, log).start()
    try:
        (opa,) = [c for c in _children(server.proc.pid)
                  if Path(f"/proc/{c}/comm").read_text().strip() == "opa"]
        os.kill(opa, signal.SIGKILL)
        assert server.proc.wait(timeout=30) == 1  # exits, for its supervisor to restart it
        assert not Path(f"/proc/{opa}").exists()  # reaped, not left a zombie
        errors = [line for line in log.read_text().splitlines() if line.startswith("error: ")]
        assert errors == [f"error: OPA exited (status {-signal.SIGKILL}) under govern serve; "
                          "the server stopped so that its supervisor can start it again"]
    finally:
        server.stop()


def test_a_server_that_cannot_start_says_why_in_one_line(tmp_path, pg_cluster):
    url = new_pg_database(pg_cluster).replace("/req_", "/gone_")  # a database that is not there
    root = copy_mesh(tmp_path, url)
    proc = subprocess.run([sys.executable, "-m", "govern.cli", "--mesh", str(root), "serve",
                           "--dev", "--insecure-dev", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0].startswith("error: request store ") and \
        "gone_" in errors[0], proc.stderr
