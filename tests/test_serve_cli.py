"""`govern serve` from the command line: development mode (no passwords) listens on this
machine only. Any other address is refused in one line, exit 1, before the store, the
directory, OPA or the web server start."""

from __future__ import annotations

import socket

import pytest
import uvicorn
from click.testing import CliRunner

from govern.cli.main import cli

from .test_requests_store import copy_mesh

REAL_GETADDRINFO = socket.getaddrinfo
FAKE_NAMES = {  # names this test resolves itself: no DNS is asked
    "lan-box.test": ["127.0.0.1", "192.168.1.20"],  # one address elsewhere is enough
    "nowhere.test": None,
}


def fake_getaddrinfo(host, *args, **kwargs):
    if host not in FAKE_NAMES:
        return REAL_GETADDRINFO(host, *args, **kwargs)
    if FAKE_NAMES[host] is None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in FAKE_NAMES[host]]


@pytest.fixture
def started(monkeypatch):
    """What `govern serve` started: ("uvicorn", host, port) and ("runtime",) calls."""
    calls: list[tuple] = []
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **kw: calls.append(
        ("uvicorn", self.config.host, self.config.port)))
    return calls


def serve(root, *args: str):
    return CliRunner().invoke(cli, ["--mesh", str(root), "serve", *args],
                              catch_exceptions=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.1.2.3",
                                  "::ffff:127.0.0.1", "0", "", "lan-box.test",
                                  "nowhere.test"])
def test_dev_mode_refuses_every_address_but_loopback(tmp_path, started, monkeypatch, host):
    import govern.service.app as app_module

    def no_runtime(*args, **kwargs):
        started.append(("runtime",))
        raise AssertionError("the runtime was opened")

    monkeypatch.setattr(app_module, "open_runtime", no_runtime)
    result = serve(copy_mesh(tmp_path), "--dev", "--host", host, "--port", "8181")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: govern serve --dev listens only on this machine")
    assert started == []
    assert result.stdout == ""


@pytest.mark.parametrize("host, bound", [("127.0.0.1", {"127.0.0.1"}),
                                         ("127.0.0.2", {"127.0.0.2"}), ("::1", {"::1"}),
                                         ("localhost", {"localhost", "127.0.0.1", "::1"})])
def test_dev_mode_serves_on_loopback(tmp_path, started, host, bound):
    result = serve(copy_mesh(tmp_path), "--dev", "--host", host, "--port", "8181")
    assert result.exit_code == 0, result.output
    assert len(started) == 1
    kind, listened, port = started[0]
    assert kind == "uvicorn" and listened in bound and port == 8181
    assert "development mode" in result.stderr


def test_without_dev_any_address_is_left_to_the_operator(tmp_path, started):
    # the example mesh has a file directory: refused for wanting LDAP, not for the address
    result = serve(copy_mesh(tmp_path), "--host", "0.0.0.0")
    assert result.exit_code == 1
    assert "LDAP bind" in result.stderr and "loopback" not in result.stderr
    assert started == []
