"""The OPA client against a server the user runs: TLS with a custom CA, bearer token."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time

import httpx
import pytest
from click.testing import CliRunner

from govern.cli.main import cli
from govern.engine.errors import OPAUnavailable, PolicyError
from govern.engine.opa import OPAClient, OPAServer, find_opa, free_port

from testcerts import make_certificates

from .conftest import EXAMPLE

TOKEN = "s3cr3t-token"
AUTHZ = """package system.authz

default allow := false

allow if input.identity == "%s"
""" % TOKEN


@pytest.fixture(scope="module")
def tls_opa(tmp_path_factory, request):
    """A user-run OPA: HTTPS with a certificate from our own CA, token authentication."""
    d = tmp_path_factory.mktemp("opa-tls")
    make_certificates(d)
    (d / "authz.rego").write_text(AUTHZ)
    port = free_port()
    proc = subprocess.Popen([find_opa(), "run", "--server", "--skip-version-check",
                             "--addr", f"127.0.0.1:{port}", "--tls-cert-file", "server.pem",
                             "--tls-private-key-file", "server.key",
                             "--authentication=token", "--authorization=basic", "authz.rego"],
                            cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"https://127.0.0.1:{port}"
    request.addfinalizer(lambda: (proc.terminate(), proc.wait()))
    for _ in range(100):
        try:
            httpx.get(f"{url}/health", timeout=1,
                      verify=ssl.create_default_context(cafile=str(d / "ca.pem")))
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return url, d / "ca.pem"


def test_token_and_custom_ca(tls_opa):
    url, ca = tls_opa
    with OPAClient(url, token=TOKEN, ca_file=str(ca)) as client:
        client.put_data("x", {"y": 1})
        assert client.decide("x/y").result == 1
    with OPAClient(url, token="wrong", ca_file=str(ca)) as client:
        with pytest.raises(PolicyError, match="unauthorized"):
            client.decide("x/y")
    with OPAClient(url, token=TOKEN) as client:  # the system CAs do not know ours
        with pytest.raises(OPAUnavailable):
            client.decide("x/y")


def test_plan_against_a_user_run_opa(tls_opa, tmp_path, monkeypatch):
    url, ca = tls_opa
    root = tmp_path / "mesh"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".govern"))
    config = root / "govern.yaml"
    config.write_text(config.read_text().replace(
        "opa:\n", f"opa:\n  url: {url}\n  token_env: OPA_TOKEN\n  ca_file: {ca}\n"))
    monkeypatch.setenv("OPA_TOKEN", TOKEN)
    result = CliRunner().invoke(cli, ["--mesh", str(root), "validate"])
    assert result.exit_code == 0, result.output
    monkeypatch.delenv("OPA_TOKEN")
    result = CliRunner().invoke(cli, ["--mesh", str(root), "validate"])
    assert result.exit_code == 1
    assert result.stderr == "error: opa.token_env: $OPA_TOKEN is not set\n"


def test_undefined_is_an_error_never_an_empty_result():
    with OPAServer(find_opa()) as server, server.client() as client:
        with pytest.raises(PolicyError, match="undefined"):
            client.decide("nothing/here")
        client.put_policy("p", "package p\n\ngrants contains 1 if false\n")
        assert client.decide("p/grants").result == []  # defined, and empty


def test_server_stopped_mid_run():
    server = OPAServer(find_opa()).start()
    client = server.client(timeout=2)
    client.health()
    server.stop()
    with pytest.raises(OPAUnavailable, match="unreachable"):
        client.decide("x")
    client.close()


def test_a_watched_server_that_dies_is_reported_and_reaped():
    import os
    import signal
    import threading
    from pathlib import Path

    exited: list[int] = []
    done = threading.Event()
    server = OPAServer(find_opa()).start()
    try:
        server.watch(lambda status: (exited.append(status), done.set()))
        pid = server.pid
        os.kill(pid, signal.SIGKILL)
        assert done.wait(10), "on_exit was not called"
        assert exited == [-signal.SIGKILL]
        assert not Path(f"/proc/{pid}").exists()  # reaped: no zombie left behind
    finally:
        server.stop()


def test_a_server_stopped_on_purpose_is_not_reported():
    import threading

    called = threading.Event()
    server = OPAServer(find_opa()).start()
    server.watch(lambda status: called.set())
    server.stop()
    assert not called.wait(1)
