"""Signing in to `govern serve` with an LDAP bind as the user, on a real slapd holding the
example mesh's directory."""

from __future__ import annotations

import base64
import datetime as dt
import gc
import re

import ldap3
import pytest
import yaml
from fastapi.testclient import TestClient

import slapdserver
from govern.service.app import create_app
from govern.service.throttle import WINDOW

from .conftest import EXAMPLE
from .ldap_support import new_tree, populate
from .test_requests_store import FUTURE, copy_mesh
from .test_sessions import Clock

PASSWORDS = {"dave": "dave-Secret-1", "bob": "bob-Secret-2"}


def ldap_mesh(tmp_path, url: str):
    """The example mesh with its directory in a fresh subtree of the test slapd, and
    passwords for dave and bob; (mesh root, tree)."""
    tree = new_tree(url)
    populate(tree, yaml.safe_load((EXAMPLE / "directory.yaml").read_text()))
    with tree.admin() as conn:
        for uid, password in PASSWORDS.items():
            conn.modify(tree.user_dn(uid), {"userPassword": [(ldap3.MODIFY_REPLACE,
                                                              [password])]})
    root = copy_mesh(tmp_path)
    config = yaml.safe_load((root / "govern.yaml").read_text())
    config["directory"] = tree.config()
    (root / "govern.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root, tree


@pytest.fixture
def ldap_client(slapd, tmp_path, monkeypatch):
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", slapdserver.READER_PW)
    root, _ = ldap_mesh(tmp_path, slapd[0])
    with TestClient(create_app(root), base_url="https://testserver") as client:
        yield client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, username: str, password: str):
    token = csrf_of(client.get("/signin").text)
    return client.post("/signin", follow_redirects=False, data={
        "username": username, "password": password, "csrf_token": token})


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_a_dev_session_is_no_session_on_the_ldap_server(slapd, tmp_path, monkeypatch):
    """The attack: a --dev server (no passwords) and the real one share the store and the
    session secret; a cookie made on the first must not sign anyone in on the second."""
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", slapdserver.READER_PW)
    root, _ = ldap_mesh(tmp_path / "ldap", slapd[0])
    shared = f"sqlite:///{root / '.govern' / 'requests.db'}"
    dev_root = copy_mesh(tmp_path / "dev", shared)
    secret = "one-secret-for-both-servers"
    with TestClient(create_app(dev_root, dev=True, secret_key=secret),
                    base_url="https://testserver") as dev:
        assert sign_in(dev, "dave", "").status_code == 303  # no password needed there
        minted = dev.cookies["govern_session"]
        me = dev.get("/api/me").json()
        assert (me["user"], me["dev"]) == ("dave", True)
    with TestClient(create_app(root, secret_key=secret), base_url="https://testserver") as real:
        headers = {"Cookie": f"govern_session={minted}"}
        api = real.get("/api/me", headers=headers)
        assert api.status_code == 401
        page = real.get("/", headers=headers, follow_redirects=False)
        assert (page.status_code, page.headers["location"]) == (303, "/signin")
        # the real server's own sessions work: dave signs in with his password
        real.cookies.clear()
        assert sign_in(real, "dave", PASSWORDS["dave"]).status_code == 303
        assert real.get("/api/me").json()["dev"] is False


@pytest.fixture
def throttled(slapd, tmp_path, monkeypatch):
    """An LDAP app on an injected clock; (app, clock, binds: the user ids the directory was
    asked to check)."""
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", slapdserver.READER_PW)
    root, _ = ldap_mesh(tmp_path, slapd[0])
    clock = Clock()
    app = create_app(root, now=clock)
    with TestClient(app, base_url="https://testserver", client=("192.0.2.10", 40000)):
        signin = app.state.govern.signin
        real, binds = signin.verify, []
        monkeypatch.setattr(signin, "verify", lambda u, p: (binds.append(u), real(u, p))[1])
        yield app, clock, binds


def from_address(app, address: str) -> TestClient:
    """Another client of the running app, connecting from ``address``."""
    return TestClient(app, base_url="https://testserver", client=(address, 40000))


def test_the_sixth_wrong_password_is_refused_even_when_right(throttled):
    """The attack: guess dave's password. After five failures the right one is refused too,
    with 429 and Retry-After, and the directory is not even asked, on the form and on the
    API, from any address; bob elsewhere is unaffected; after the window dave signs in."""
    app, clock, binds = throttled
    attacker = from_address(app, "192.0.2.10")
    for guess in range(5):
        assert sign_in(attacker, "dave", f"Guess-{guess}").status_code == 401
    assert len(binds) == 5
    refused = sign_in(attacker, "dave", PASSWORDS["dave"])
    message = "too many failed sign-ins: try again in 15 minutes"
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "900")
    assert message in refused.text and PASSWORDS["dave"] not in refused.text
    api = attacker.get("/api/me", headers=basic("dave", PASSWORDS["dave"]))
    assert (api.status_code, api.json(), api.headers["retry-after"]) == (
        429, {"detail": message}, "900")
    elsewhere = from_address(app, "203.0.113.9").get(
        "/api/me", headers=basic("dave", PASSWORDS["dave"]))
    assert elsewhere.status_code == 429  # per user, whatever the address
    assert len(binds) == 5  # none of those reached the directory
    assert attacker.get("/", follow_redirects=False).headers["location"] == "/signin"

    bob = from_address(app, "198.51.100.7")
    assert sign_in(bob, "bob", PASSWORDS["bob"]).status_code == 303
    assert bob.get("/api/me").json()["user"] == "bob"

    clock.at += WINDOW - dt.timedelta(seconds=1)
    late = sign_in(attacker, "dave", PASSWORDS["dave"])
    assert (late.status_code, late.headers["retry-after"]) == (429, "1")
    clock.at += dt.timedelta(seconds=1)
    assert sign_in(attacker, "dave", PASSWORDS["dave"]).status_code == 303
    assert attacker.get("/api/me").json()["user"] == "dave"


def test_a_successful_sign_in_clears_the_users_failures(throttled):
    app, clock, binds = throttled
    client = from_address(app, "192.0.2.11")
    for _ in range(2):
        for guess in range(4):
            assert sign_in(client, "dave", f"Guess-{guess}").status_code == 401
            clock.at += dt.timedelta(seconds=10)
        assert sign_in(client, "dave", PASSWORDS["dave"]).status_code == 303
    # eight failures in two minutes, but never five since the last success
    assert len(binds) == 10


def test_owner_signs_in_with_the_directory_password(ldap_client):
    page = ldap_client.get("/signin").text
    assert '<label for="password">' in page and "Development mode" not in page
    response = sign_in(ldap_client, "Dave", PASSWORDS["dave"])  # the id is lower-cased
    assert response.status_code == 303
    assert "Signed in as <strong>dave</strong>" in ldap_client.get("/").text


@pytest.mark.parametrize("username, password", [
    ("dave", "Wr0ng-guess"),
    ("dave", ""),                  # an empty password would be an anonymous bind
    ("dave", PASSWORDS["bob"]),    # someone else's password
    ("mallory", "m4llory-pw"),       # not in the directory
    ("*", PASSWORDS["dave"]),      # a filter wildcard is a literal
    ("dave)(uid=*", PASSWORDS["dave"]),
    ("alice", "no-password-set"),  # in the directory, without a password
])
def test_failed_sign_in_reads_the_same_and_echoes_no_password(ldap_client, username, password):
    response = sign_in(ldap_client, username, password)
    assert response.status_code == 401
    assert "sign-in failed: unknown user or wrong password" in response.text
    if password:
        assert password not in response.text
    assert ldap_client.get("/", follow_redirects=False).status_code == 303


def test_api_with_basic_auth_binds_as_the_user(ldap_client):
    assert ldap_client.get("/api/me", headers=basic("bob", "nope")).status_code == 401
    me = ldap_client.get("/api/me", headers=basic("bob", PASSWORDS["bob"]))
    assert me.status_code == 200 and me.json()["dev"] is False
    created = ldap_client.post("/api/requests", headers=basic("bob", PASSWORDS["bob"]), json={
        "product": "clinical/trial_results", "purpose": "review", "until": FUTURE.isoformat(),
        "accept_dsa": True})
    assert created.status_code == 201
    approved = ldap_client.post(f"/api/requests/{created.json()['id']}/approve",
                                headers=basic("dave", PASSWORDS["dave"]), json={"reason": "ok"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"


# ldap3 leaves the socket of a refused connection open (identity/ldap.py's connect() meets it
# too); collected here, inside this test, so that its ResourceWarning is the only one ignored
@pytest.mark.filterwarnings("ignore::ResourceWarning",
                            "ignore::pytest.PytestUnraisableExceptionWarning")
def test_directory_down_at_sign_in_is_503_not_a_failed_password(slapd, tmp_path, monkeypatch):
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", slapdserver.READER_PW)
    root, tree = ldap_mesh(tmp_path, slapd[0])
    app = create_app(root)
    with TestClient(app, base_url="https://testserver") as client:
        from govern.engine.opa import free_port

        runtime = app.state.govern
        runtime.signin.config = runtime.signin.config.model_copy(
            update={"url": f"ldap://127.0.0.1:{free_port()}", "timeout_seconds": 2})
        response = client.get("/api/me", headers=basic("dave", PASSWORDS["dave"]))
        assert response.status_code == 503
        assert "unknown user or wrong password" not in response.text
    gc.collect()
