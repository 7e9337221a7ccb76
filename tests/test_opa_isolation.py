"""Only govern can reach the OPA it starts: a Unix socket in a private directory, no TCP
listener, and OPA's token authentication with a token per run. Each test is the attack of
another local process on a running session: rewrite a policy so that alice approves every
request, empty the directory, or read a decision."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govern.engine import pipeline
from govern.engine.opa import OPAServer, find_opa
from govern.engine.opa_local import sweep_stale

from .conftest import EXAMPLE

ATTACKER = r"""
import json, sys
import httpx

url, token = sys.argv[1], sys.argv[2]
if url.startswith("unix://"):
    http = httpx.Client(transport=httpx.HTTPTransport(uds=url[len("unix://"):]),
                        base_url="http://opa", timeout=5)
else:
    http = httpx.Client(base_url=url, timeout=5)
headers = {"Authorization": f"Bearer {token}"} if token else {}
evil = 'package govern.requests\n\nallow if input.actor == "alice"\n'
answers = {
    "PUT /v1/policies": http.put("/v1/policies/evil", content=evil, headers=headers),
    "PUT /v1/data": http.put("/v1/data/directory", json={"users": {}, "groups": {}},
                             headers=headers),
    "POST /v1/data": http.post("/v1/data/govern/requests/allow", json={"input": {}},
                               headers=headers),
    "GET /health": http.get("/health", headers=headers),
}
print(json.dumps({k: r.status_code for k, r in answers.items()}))
"""

#: alice may not approve bob's request for a product she does not own
REQUEST = {"action": "approve", "actor": "alice",
           "request": {"requester": "bob", "product": "clinical/trial_results",
                       "port": "results", "access": "read", "status": "pending"}}


def attack(url: str, token: str | None) -> dict[str, int]:
    """Another process of the same user, knowing where govern's OPA listens."""
    out = subprocess.run([sys.executable, "-c", ATTACKER, url, token or ""],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


@pytest.fixture
def session(tmp_path):
    root = tmp_path / "mesh"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".govern"))
    inputs = pipeline.load_inputs(root)
    with pipeline.opa_session(inputs) as client:
        yield client


def opa_children() -> list[int]:
    """The OPA servers this process started."""
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return [p for p in pids
            if b"--server" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")]


def tcp_listeners() -> set[str]:
    """Socket inodes of every TCP socket listening on this machine (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                found.add(fields[9])
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["no token", "wrong token"])
def test_another_process_cannot_rewrite_or_read_a_running_session(session, token):
    before = session.decide("govern/requests/allow", REQUEST).result
    users = session.decide("directory/users").result
    answers = attack(session.url, token)
    assert answers == {"PUT /v1/policies": 401, "PUT /v1/data": 401, "POST /v1/data": 401,
                       "GET /health": 401}
    assert before is False
    assert session.decide("govern/requests/allow", REQUEST).result is False
    assert session.decide("directory/users").result == users


def test_no_tcp_listener_and_a_private_socket(session):
    (pid,) = opa_children()
    assert socket_inodes(pid), "OPA holds its Unix socket"
    assert not socket_inodes(pid) & tcp_listeners()
    assert session.url.startswith("unix://")
    sock = Path(session.url.removeprefix("unix://"))
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(sock.stat().st_mode) & 0o077 == 0
    assert sorted(p.name for p in sock.parent.iterdir()) == [
        "authz.rego", "decision-log-mask.rego", "opa.sock"]


def test_the_token_is_not_in_the_authorization_policy():
    with OPAServer(find_opa()) as server, server.client() as client:
        assert client.decide("system/authz/allow", {"identity": server.token}).result is True
        assert server.token not in (server.folder / "authz.rego").read_text()
        folder = server.folder
        assert attack(server.url, server.token)["GET /health"] == 200
    assert not folder.exists(), "the private directory goes with the server"


def test_govern_runs_on_its_own_server(mesh):
    result = mesh.govern("plan", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert mesh.govern("plan", "--detailed-exitcode").exit_code == 0
    assert opa_children() == []


def test_directories_of_killed_runs_are_swept(tmp_path):
    """A run killed with SIGKILL takes its OPA along (it asks for SIGTERM when govern dies)
    but leaves its directory: the next run removes it, never a live server's."""
    gone, dead_socket, live, young = (tmp_path / f"govern-opa-{n}" for n in
                                      ("gone", "dead", "live", "young"))
    for folder in (gone, dead_socket, live, young):
        folder.mkdir(mode=0o700)
    (gone / "authz.rego").write_text("package system.authz\n")
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(dead_socket / "opa.sock"))  # bound, never listening: refused
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(live / "opa.sock"))
    listener.listen()
    old = time.time() - 3600
    for folder in (gone, dead_socket, live):
        os.utime(folder, (old, old))
    try:
        sweep_stale(tmp_path)
    finally:
        listener.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["govern-opa-live", "govern-opa-young"]
