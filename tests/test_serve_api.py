"""`govern serve` through the real app (Starlette's TestClient), on SQLite and on a real
PostgreSQL store, with the real OPA deciding: the API, the pages, and the attacks on them
(non-owner and self-approval, missing CSRF token, injected text, bad input)."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from govern.engine.errors import GovernError
from govern.engine.requests import store_approvals
from govern.engine.mesh import load_config
from govern.service.app import create_app

from .test_requests_store import FUTURE, HOSTILE, TODAY, copy_mesh, new_pg_database

SECRET = "test-session-secret-that-must-never-appear"


def basic(user: str, password: str = "anything") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(params=["sqlite", "postgresql"])
def root(request, tmp_path):
    store = None
    if request.param == "postgresql":
        store = new_pg_database(request.getfixturevalue("pg_cluster"))
    return copy_mesh(tmp_path, store)


@pytest.fixture
def client(root):
    app = create_app(root, dev=True, secret_key=SECRET)
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def new_request(client, user: str = "bob", **body) -> dict:
    payload = {"product": "clinical/trial_results", "purpose": "Safety review",
               "until": FUTURE.isoformat(), "accept_dsa": True, **body}
    response = client.post("/api/requests", headers=basic(user), json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def sign_in(client, user: str) -> str:
    """Sign in through the form; the session's CSRF token."""
    page = client.get("/signin")
    token = csrf_of(page.text)
    response = client.post("/signin", data={"username": user, "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


# ---------------------------------------------------------------- the flow

def test_request_approve_and_the_pipeline_sees_it(client, root):
    created = new_request(client, "bob")
    assert created["status"] == "pending" and created["requester"] == "bob"
    assert created["sharing_agreement"].startswith("https://wiki.example.com/dsa/")
    waiting = client.get("/api/requests", params={"to_approve": True}, headers=basic("dave"))
    assert [r["id"] for r in waiting.json()] == [created["id"]]
    response = client.post(f"/api/requests/{created['id']}/approve", headers=basic("dave"),
                           json={"reason": "DSA on file"})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["decided_by"]) == ("approved", "dave")
    detail = client.get(f"/api/requests/{created['id']}", headers=basic("bob")).json()
    assert [(e["who"], e["action"], e["reason"]) for e in detail["events"]] == [
        ("bob", "create", None), ("dave", "approve", "DSA on file")]
    config = load_config(root).requests
    approvals = store_approvals(config, root, TODAY)
    assert [(a.id, a.principal, a.port) for a in approvals] == [
        (created["id"], "bob", "results")]
    revoked = client.post(f"/api/requests/{created['id']}/revoke", headers=basic("bob"),
                          json={"reason": "done"})
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert store_approvals(config, root, TODAY) == ()


def test_me_and_products(client):
    me = client.get("/api/me", headers=basic("heidi")).json()
    assert me == {"user": "heidi", "display_name": "Heidi Fischer",
                  "email": "heidi@example.com", "dev": True}
    products = {p["ref"]: p for p in client.get("/api/products", headers=basic("bob")).json()}
    trial = products["clinical/trial_results"]
    assert (trial["owner"], trial["stewards"]) == ("clinical-investigators", ["heidi"])
    assert [p["name"] for p in trial["ports"]] == ["results"]


# ---------------------------------------------------------------- who may

def test_non_owner_gets_403_and_the_request_stays_pending(client):
    created = new_request(client, "bob")
    response = client.post(f"/api/requests/{created['id']}/approve", headers=basic("alice"),
                           json={"reason": "I like it"})
    assert response.status_code == 403
    assert "only its owner and stewards (clinical-investigators, heidi)" in \
        response.json()["detail"]
    assert client.get(f"/api/requests/{created['id']}",
                      headers=basic("bob")).json()["status"] == "pending"


def test_self_approval_gets_403_even_for_an_owner(client):
    created = new_request(client, "dave", access="write")
    for action in ("approve", "deny"):
        response = client.post(f"/api/requests/{created['id']}/{action}",
                               headers=basic("dave"), json={"reason": "mine"})
        assert response.status_code == 403
        assert response.json() == {"detail": "a requester can never approve or deny their "
                                   "own request"}


def test_self_approval_refused_in_python_too(client, monkeypatch):
    """Defence in depth: even a policy that allowed everything would not let it through."""
    from govern.service.authz import Authorizer

    monkeypatch.setattr(Authorizer, "check", lambda self, *a: None)
    created = new_request(client, "dave", access="write")
    response = client.post(f"/api/requests/{created['id']}/approve", headers=basic("dave"),
                           json={"reason": "mine"})
    assert response.status_code == 403


def test_authentication(client):
    assert client.get("/api/requests").status_code == 401
    response = client.get("/api/requests", headers=basic("mallory"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="govern"'
    garbage = client.get("/api/requests", headers={"Authorization": "Basic !!!"})
    assert garbage.status_code == 401


def test_decisions_conflict_and_unknown_ids(client):
    created = new_request(client, "bob")
    ok = client.post(f"/api/requests/{created['id']}/deny", headers=basic("grace"),
                     json={"reason": "no"})
    assert ok.status_code == 200
    again = client.post(f"/api/requests/{created['id']}/approve", headers=basic("grace"),
                        json={"reason": "changed my mind"})
    assert again.status_code == 409 and "is denied" in again.json()["detail"]
    for bad in ("req-00000000", "nope", "req-0000000%00", "req-%3Cscript%3E"):
        assert client.get(f"/api/requests/{bad}", headers=basic("bob")).status_code == 404
    duplicate = client.post("/api/requests", headers=basic("grace"), json={
        "product": "clinical/trial_results", "purpose": "p", "until": FUTURE.isoformat(),
        "accept_dsa": True})
    assert duplicate.status_code == 201
    conflict = client.post("/api/requests", headers=basic("grace"), json={
        "product": "clinical/trial_results", "purpose": "p", "until": FUTURE.isoformat(),
        "accept_dsa": True})
    assert conflict.status_code == 409


@pytest.mark.parametrize("body, message", [
    ({"until": (TODAY - dt.timedelta(days=1)).isoformat()}, "not in the future"),
    ({"until": (TODAY + dt.timedelta(days=366)).isoformat()}, "more than 365 days"),
    ({"until": "31/12/2027"}, "until"),
    ({"accept_dsa": False}, "accept the data sharing agreement"),
    ({"product": "clinical/nothing"}, "no product"),
    ({"port": "raw"}, "has no port 'raw'"),
    ({"access": "own"}, "access"),
    ({"purpose": "   "}, "purpose is required"),
    ({"purpose": "nul \x00 byte"}, "control characters"),
    ({"purpose": "lone \ud800 surrogate"}, "nicode"),
    ({"purpose": "x" * 2001}, "purpose"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_input_is_400_never_500(client, body, message):
    payload = {"product": "clinical/trial_results", "purpose": "p", "until": FUTURE.isoformat(),
               "accept_dsa": True, **body}
    import json as _json

    response = client.post("/api/requests", headers={**basic("bob"),
                                                     "Content-Type": "application/json"},
                           content=_json.dumps(payload).encode("utf-8", "surrogatepass"))
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]


def test_malformed_bodies_are_400(client):
    created = new_request(client, "bob")
    url = f"/api/requests/{created['id']}/approve"
    for kwargs in ({"content": b"{not json", "headers": {"Content-Type": "application/json"}},
                   {"content": b"reason=x", "headers": {"Content-Type":
                                                        "application/x-www-form-urlencoded"}},
                   {"json": {}}, {"json": {"reason": 5}}, {"json": []}):
        headers = {**basic("dave"), **kwargs.pop("headers", {})}
        response = client.post(url, headers=headers, **kwargs)
        assert response.status_code == 400, (kwargs, response.text)
    assert client.get("/api/requests", params={"limit": "many"},
                      headers=basic("bob")).status_code == 400
    assert client.get("/api/requests", params={"product": "x\x00"},
                      headers=basic("bob")).status_code == 400


# ---------------------------------------------------------------- injected text

def test_injected_text_is_stored_verbatim_and_shown_escaped(client):
    created = new_request(client, "bob", purpose=HOSTILE)
    assert created["purpose"] == HOSTILE
    decided = client.post(f"/api/requests/{created['id']}/deny", headers=basic("dave"),
                          json={"reason": HOSTILE + " <img src=x onerror=alert(1)>"})
    assert decided.json()["reason"] == HOSTILE + " <img src=x onerror=alert(1)>"
    assert client.get("/api/requests", headers=basic("bob")).json()[0]["purpose"] == HOSTILE
    sign_in(client, "bob")
    page = client.get(f"/requests/{created['id']}").text
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "DROP TABLE requests" in page
    listing = client.get("/").text
    assert "<script>" not in listing and "&lt;script&gt;" in listing


# ---------------------------------------------------------------- pages, sessions, CSRF

def test_owner_approves_on_the_page(client):
    created = new_request(client, "bob")
    token = sign_in(client, "dave")
    index = client.get("/").text
    assert created["id"] in index and "Development mode" in index
    page = client.get(f"/requests/{created['id']}").text
    assert '<label for="reason-input">' in page and 'value="approve"' in page
    response = client.post(f"/requests/{created['id']}", follow_redirects=False, data={
        "action": "approve", "reason": "ok", "csrf_token": token})
    assert response.status_code == 303
    shown = client.get(response.headers["location"]).text
    assert re.search(r'id="status"[^>]*>approved<', shown)
    assert f"Approved {created['id']}." in shown


def test_missing_or_wrong_csrf_token_is_rejected(client):
    created = new_request(client, "bob")
    token = sign_in(client, "dave")
    for data in ({"action": "approve", "reason": "ok"},
                 {"action": "approve", "reason": "ok", "csrf_token": token[:-2] + "xx"}):
        response = client.post(f"/requests/{created['id']}", data=data, follow_redirects=False)
        assert response.status_code == 403
        assert "CSRF" in response.text
    # the session cookie alone does not make an API call: it needs the token as a header
    no_header = client.post(f"/api/requests/{created['id']}/approve", json={"reason": "ok"})
    assert no_header.status_code == 403
    assert client.get(f"/api/requests/{created['id']}",
                      headers=basic("bob")).json()["status"] == "pending"
    with_header = client.post(f"/api/requests/{created['id']}/approve", json={"reason": "ok"},
                              headers={"X-CSRF-Token": token})
    assert with_header.status_code == 200
    # signing in needs the token too (login CSRF)
    fresh = client.post("/signin", data={"username": "alice"}, follow_redirects=False)
    assert fresh.status_code == 403


def test_non_owner_on_the_page_sees_no_form_and_gets_403(client):
    created = new_request(client, "bob")
    token = sign_in(client, "alice")
    page = client.get(f"/requests/{created['id']}").text
    assert 'value="approve"' not in page
    response = client.post(f"/requests/{created['id']}", data={
        "action": "approve", "reason": "sneaky", "csrf_token": token})
    assert response.status_code == 403
    assert "alice may not approve" in response.text


def test_session_cookie_flags_and_headers(client):
    response = client.get("/signin")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("govern_session=")
    for flag in ("httponly", "samesite=strict", "secure", "path=/"):
        assert flag in cookie.lower()
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert '<label for="username">' in response.text
    assert SECRET not in response.text and SECRET not in cookie


def test_insecure_dev_drops_only_the_secure_flag(root):
    with TestClient(create_app(root, dev=True, insecure_dev=True)) as c:
        cookie = c.get("/signin").headers["set-cookie"].lower()
    assert "secure" not in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_signed_out_pages_redirect_and_sign_out_works(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"
    token = sign_in(client, "dave")
    assert "Signed in as" in client.get("/").text
    response = client.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303
    unknown = client.post("/signin", data={"username": "mallory",
                                           "csrf_token": csrf_of(client.get("/signin").text)})
    assert unknown.status_code == 401 and "not a directory user" in unknown.text


def test_openapi_is_published_without_422(client):
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "govern access requests"
    assert {"/api/requests", "/api/requests/{request_id}/approve"} <= set(spec["paths"])
    assert "422" not in str(spec) and "HTTPValidationError" not in str(spec)
    assert spec["components"]["securitySchemes"]["HTTPBasic"]["scheme"] == "basic"


def test_sign_in_modes_are_checked_before_start(root, tmp_path):
    with pytest.raises(GovernError, match="LDAP bind"):
        create_app(root)  # the example mesh has a file directory: no passwords
    ldap = copy_mesh(tmp_path / "ldap")
    text = (ldap / "govern.yaml").read_text().replace(
        "directory:\n  source: file\n  path: directory.yaml\n",
        "directory:\n  source: ldap\n  url: ldap://127.0.0.1:1\n  users: {bases: [ou=p]}\n"
        "  groups: {bases: [ou=g]}\n")
    (ldap / "govern.yaml").write_text(text)
    with pytest.raises(GovernError, match="--dev"):
        create_app(ldap, dev=True)


# ---------------------------------------------------------------- attacks on the session

def replay(client, cookie: str, path: str, **kwargs):
    """A request carrying only ``cookie`` as the session (as an attacker holding a copy)."""
    client.cookies.clear()
    return client.get(path, headers={"Cookie": f"govern_session={cookie}"},
                      follow_redirects=False, **kwargs)


def test_a_copied_cookie_is_dead_after_sign_out(client):
    token = sign_in(client, "dave")
    copied = client.cookies["govern_session"]
    assert client.get("/api/me").json()["user"] == "dave"  # the cookie is the session
    response = client.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    api = replay(client, copied, "/api/me")
    assert api.status_code == 401
    assert "govern_session=null" in api.headers["set-cookie"]  # and cleared
    page = replay(client, copied, "/")
    assert (page.status_code, page.headers["location"]) == (303, "/signin")
    created = new_request(client, "bob")
    decide = client.post(f"/api/requests/{created['id']}/deny", json={"reason": "x"},
                         headers={"Cookie": f"govern_session={copied}", "X-CSRF-Token": token})
    assert decide.status_code == 401
    assert client.get(f"/api/requests/{created['id']}",
                      headers=basic("bob")).json()["status"] == "pending"


def test_signing_in_again_ends_the_previous_session(client):
    sign_in(client, "dave")
    first = client.cookies["govern_session"]
    sign_in(client, "grace")
    assert client.get("/api/me").json()["user"] == "grace"
    assert replay(client, first, "/api/me").status_code == 401


def test_a_session_ends_after_eight_hours(root):
    at = [dt.datetime.now(dt.timezone.utc)]
    app = create_app(root, dev=True, secret_key=SECRET, now=lambda: at[0])
    with TestClient(app, base_url="https://testserver") as c:
        sign_in(c, "dave")
        at[0] += dt.timedelta(hours=8) - dt.timedelta(seconds=1)
        assert c.get("/api/me").status_code == 200
        at[0] += dt.timedelta(seconds=1)
        assert c.get("/api/me").status_code == 401
        assert c.get("/", follow_redirects=False).headers["location"] == "/signin"


# ---------------------------------------------------------------- throttled sign-in

def test_twenty_failures_from_one_address_block_it_not_others(root):
    """The attack: spray user ids from one address. After twenty failures that address is
    refused (429) even for a real user, on the API and the form; another address is not;
    after the window it is served again."""
    from govern.service.throttle import WINDOW

    from .test_sessions import Clock

    clock = Clock()
    app = create_app(root, dev=True, secret_key=SECRET, now=clock)
    with TestClient(app, base_url="https://testserver", client=("192.0.2.66", 1)) as sprayer:
        for i in range(20):
            assert sprayer.get("/api/me", headers=basic(f"nobody{i}")).status_code == 401
        refused = sprayer.get("/api/me", headers=basic("bob"))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) == 900
        form = sprayer.post("/signin", data={"username": "bob",
                                             "csrf_token": csrf_of(sprayer.get("/signin").text)})
        assert form.status_code == 429 and form.headers["retry-after"] == "900"
        assert "too many failed sign-ins" in form.text
        other = TestClient(app, base_url="https://testserver", client=("198.51.100.8", 1))
        assert other.get("/api/me", headers=basic("bob")).status_code == 200
        clock.at += WINDOW
        assert sprayer.get("/api/me", headers=basic("bob")).status_code == 200


def test_openapi_documents_429(client):
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/api/me"]["get"]["responses"]
    assert "429" in responses and "Retry-After" in responses["429"]["description"]
