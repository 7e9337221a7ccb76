"""One shared, user-run OPA (``opa.url``, ``opa.upload: true``) serves one run at a time:
two runs against it would overwrite each other's directory, approvals and mesh. The attack
is the ordinary mistake: `govern serve` running on the shared server while someone runs
`govern validate` (or apply) for another mesh against it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from govern.engine import pipeline
from govern.engine.errors import OPAInUse
from govern.engine.lease import LEASE_PATH
from govern.engine.opa import find_opa, free_port

from .conftest import EXAMPLE


@pytest.fixture
def shared_opa(tmp_path):
    """An OPA the user runs, on loopback, without authentication (theirs to secure)."""
    port = free_port()
    proc = subprocess.Popen([find_opa(), "run", "--server", "--skip-version-check",
                             "--addr", f"127.0.0.1:{port}"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait()


def mesh_on(tmp_path, name: str, url: str, drop_user: str | None = None):
    root = tmp_path / name
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".govern"))
    config = yaml.safe_load((root / "govern.yaml").read_text())
    config["opa"] = {"url": url, "upload": True, "timeout_seconds": 10}
    (root / "govern.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if drop_user:
        directory = yaml.safe_load((root / "directory.yaml").read_text())
        del directory["users"][drop_user]
        for group in directory["groups"].values():
            if drop_user in group.get("members", []):
                group["members"].remove(drop_user)
        (root / "directory.yaml").write_text(yaml.safe_dump(directory, sort_keys=False))
    return root


def govern_process(root, *args):
    """Another govern process (a second CI job, a second shell)."""
    return subprocess.run([sys.executable, "-m", "govern.cli", "--mesh", str(root), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GOVERN_WAREHOUSE_DSN": "host=unused"})


def test_a_second_run_is_refused_and_the_first_keeps_its_data(tmp_path, shared_opa):
    first = mesh_on(tmp_path, "first", shared_opa)
    second = mesh_on(tmp_path, "second", shared_opa, drop_user="alice")
    inputs = pipeline.load_inputs(first)
    with pipeline.opa_session(inputs) as client:
        users = client.decide("directory/users").result
        assert "alice" in users
        result = govern_process(second, "validate")
        assert result.returncode == 1, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: OPA at {shared_opa} is in use by run ")
        assert f"(host {socket.gethostname()}, pid {os.getpid()}, since " in lines[0]
        assert f"curl -X DELETE {shared_opa}/v1/data/{LEASE_PATH}" in lines[0]
        # the first run's directory, approvals and mesh, untouched
        assert client.decide("directory/users").result == users
        assert client.decide("govern/requests/allow", {
            "action": "approve", "actor": "alice", "request": {
                "requester": "bob", "product": "clinical/trial_results", "port": "results",
                "access": "read", "status": "pending"}}).result is False
    # released at the end of the session: the second run now has the server to itself
    assert httpx.get(f"{shared_opa}/v1/data/{LEASE_PATH}").json() == {}
    result = govern_process(second, "validate")
    assert result.returncode == 0, result.stderr
    assert httpx.get(f"{shared_opa}/v1/data/{LEASE_PATH}").json() == {}


def test_a_stale_lease_is_named_and_cleared_as_the_message_says(tmp_path, shared_opa):
    stale = {"run": "0123456789ab", "host": "ci-runner-7", "pid": 4242,
             "since": "2026-12-01T08:00:00Z"}
    httpx.put(f"{shared_opa}/v1/data/{LEASE_PATH}", json=stale).raise_for_status()
    root = mesh_on(tmp_path, "mesh", shared_opa)
    with pytest.raises(OPAInUse, match="in use by run 0123456789ab \\(host ci-runner-7, "
                       "pid 4242, since 2026-12-01T08:00:00Z\\)"):
        with pipeline.opa_session(pipeline.load_inputs(root)):
            pass
    assert httpx.get(f"{shared_opa}/v1/data/{LEASE_PATH}").json()["result"] == stale
    assert httpx.get(f"{shared_opa}/v1/data/directory").json() == {}, "nothing uploaded"
    httpx.delete(f"{shared_opa}/v1/data/{LEASE_PATH}").raise_for_status()
    with pipeline.opa_session(pipeline.load_inputs(root)) as client:
        assert client.decide("directory/users").result


def test_a_failed_run_releases_its_lease(tmp_path, shared_opa):
    root = mesh_on(tmp_path, "mesh", shared_opa)
    with pytest.raises(RuntimeError):
        with pipeline.opa_session(pipeline.load_inputs(root)):
            raise RuntimeError("the run fails half-way")
    assert httpx.get(f"{shared_opa}/v1/data/{LEASE_PATH}").json() == {}


def test_a_read_only_server_takes_no_lease(tmp_path, shared_opa):
    """opa.upload: false (the server has its policies and data from a bundle): runs only
    read, so they may share it."""
    root = mesh_on(tmp_path, "mesh", shared_opa)
    with pipeline.opa_session(pipeline.load_inputs(root)):
        config = yaml.safe_load((root / "govern.yaml").read_text())
        config["opa"]["upload"] = False
        (root / "govern.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        with pipeline.opa_session(pipeline.load_inputs(root)) as reader:
            assert reader.decide("directory/users").result
