"""Bad input to `govern serve` as one clear line (the real app through Starlette's
TestClient, on SQLite and on a real PostgreSQL store, the real OPA deciding): the
to-approve listing is not cut before it is filtered, searches with control characters,
the sharing agreement accepted only as ``true``, hostile fitness statuses, security
headers on every answer, and a store that goes away while the server runs."""

from __future__ import annotations

import datetime as dt
import re

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy.engine import make_url

from govern.engine.catalog import CatalogChange, product_entry
from govern.engine.fitness import CHARACTERISTICS
from govern.service.app import create_app

from .test_requests_store import FUTURE, TODAY, copy_mesh, new_pg_database
from .test_serve_api import SECRET, basic, new_request, sign_in

#: what a published fitness status may never become: an attribute of its own
HOSTILE_STATUS = 'green" onmouseover="x'
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """(mesh root, store URL or None for SQLite, the cluster's DSN or None)."""
    if request.param == "sqlite":
        return copy_mesh(tmp_path), None, None
    cluster = request.getfixturevalue("pg_cluster")
    url = new_pg_database(cluster)
    return copy_mesh(tmp_path, url), url, cluster


@pytest.fixture
def client(backend):
    app = create_app(backend[0], dev=True, secret_key=SECRET)
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def one_line(response) -> str:
    detail = response.json()["detail"]
    assert isinstance(detail, str) and len(detail) <= 300, detail
    assert not RAW_CONTROL.search(detail), detail
    return detail


# ---------------------------------------------------------------- 1. to_approve and limit

def test_to_approve_applies_the_limit_to_what_the_caller_may_approve(client):
    """dave owns clinical/trial_results: bob's old request for it stays in dave's list
    however many newer requests for other products exist."""
    mine = new_request(client, "bob")
    others = [(user, product) for product in ("commercial/campaign_performance",
                                              "hcp/hcp_master", "digital/web_engagement")
              for user in ("alice", "carol", "erin", "frank")][:11]
    for user, product in others:
        new_request(client, user, product=product)
    listed = client.get("/api/requests", params={"to_approve": True, "limit": 10},
                        headers=basic("dave"))
    assert listed.status_code == 200, listed.text
    assert [r["id"] for r in listed.json()] == [mine["id"]]
    # the limit still holds, over what the caller may approve
    assert len(client.get("/api/requests", params={"to_approve": True, "limit": 2},
                          headers=basic("heidi")).json()) == 2  # heidi stewards hcp/…
    everything = client.get("/api/requests", params={"limit": 10}, headers=basic("dave"))
    assert len(everything.json()) == 10


def test_to_approve_pages_through_the_store_and_stays_bounded(client, monkeypatch):
    from govern.service import workflow

    mine = new_request(client, "bob")
    for user, product in [(u, "hcp/hcp_master") for u in ("alice", "carol", "erin", "frank")] \
            + [(u, "digital/web_engagement") for u in ("alice", "carol", "erin")]:
        new_request(client, user, product=product)
    monkeypatch.setattr(workflow, "SCAN_PAGE", 3, raising=False)  # 8 pending: 3 pages
    listed = client.get("/api/requests", params={"to_approve": True, "limit": 5},
                        headers=basic("dave")).json()
    assert [r["id"] for r in listed] == [mine["id"]]
    heidi = client.get("/api/requests", params={"to_approve": True, "limit": 5},
                       headers=basic("heidi")).json()  # hcp/… and clinical/…, newest first
    assert [r["product"] for r in heidi] == ["hcp/hcp_master"] * 4 + ["clinical/trial_results"]
    monkeypatch.setattr(workflow, "SCAN_PAGES", 2, raising=False)  # bounded: 6 looked at
    assert client.get("/api/requests", params={"to_approve": True, "limit": 5},
                      headers=basic("dave")).json() == []


# ---------------------------------------------------------------- 2. search input

@pytest.mark.parametrize("q", ["\x00", "golden\x00", "a\x01b", "\x7f", "\x1b[31m", "\x85"])
def test_search_with_control_characters_is_400_in_one_line(client, q):
    sign_in(client, "bob")
    response = client.get("/catalog", params={"q": q})
    assert response.status_code == 400, response.text
    assert "control characters" in response.text
    assert "\x00" not in response.text


@pytest.mark.parametrize("q", ["x" * 201, "word " * 2000])
def test_a_too_long_search_is_400(client, q):
    sign_in(client, "bob")
    response = client.get("/catalog", params={"q": q})
    assert response.status_code == 400, response.text[:300]
    assert q not in response.text


@pytest.mark.parametrize("q", ["tab\tand\nnewline", "line\u2028separator", "x " * 100,
                               "\"'*(:-^NEAR AND OR NOT", "; DROP TABLE requests; --"])
def test_odd_but_printable_searches_are_text(client, q):
    sign_in(client, "bob")
    assert client.get("/catalog", params={"q": q}).status_code == 200


# ---------------------------------------------------------------- 3. accept_dsa

@pytest.mark.parametrize("lax", ["yes", "true", "True", 1, "1", "on", 1.0])
def test_accept_dsa_must_be_the_json_value_true(client, lax):
    payload = {"product": "clinical/trial_results", "purpose": "p",
               "until": FUTURE.isoformat(), "accept_dsa": lax}
    response = client.post("/api/requests", headers=basic("bob"), json=payload)
    assert response.status_code == 400, response.text
    assert "accept_dsa" in one_line(response)
    assert client.get("/api/requests", headers=basic("bob")).json() == []


@pytest.mark.parametrize("lax", ["true", "1", "on", "YES", "yes ", "Yes"])
def test_the_form_accepts_only_the_checkbox_value(client, lax):
    token = sign_in(client, "bob")
    response = client.post("/requests/new", follow_redirects=False, data={
        "csrf_token": token, "product": "clinical/trial_results", "port": "results",
        "access": "read", "purpose": "p", "until": FUTURE.isoformat(), "accept_dsa": lax})
    assert response.status_code == 400, response.text
    assert client.get("/api/requests", headers=basic("bob")).json() == []


# ---------------------------------------------------------------- 5. fitness statuses

def publish_hostile_fitness(client) -> None:
    """Every product in the built-in catalog, with a fitness result whose statuses are
    hostile text (as a tampered store or a broken fitness policy could publish)."""
    runtime = client.app.state.govern
    cells = {ch: {"status": HOSTILE_STATUS, "checks": [
        {"product": "x", "check": f"{ch}.hostile", "status": HOSTILE_STATUS,
         "reason": "<b>bold</b>"}]} for ch in CHARACTERISTICS}
    fitness = {"at": TODAY.isoformat(), "status": {ch: HOSTILE_STATUS for ch in CHARACTERISTICS},
               "cells": cells, "trend": [{ch: HOSTILE_STATUS for ch in CHARACTERISTICS}] * 2}
    runtime.catalog.write([CatalogChange("create", p.ref, product_entry(p, {}, fitness))
                           for p in runtime.workflow.mesh.products])


def test_a_hostile_fitness_status_never_becomes_markup(client):
    publish_hostile_fitness(client)
    sign_in(client, "bob")
    for path in ("/catalog", "/catalog/clinical/trial_results", "/dashboard"):
        page = client.get(path)
        assert page.status_code == 200, (path, page.text)
        assert 'onmouseover="x' not in page.text, path
        assert "onmouseover" not in page.text, path
        classes = set(re.findall(r'class="([^"]*)"', page.text))
        assert all(re.fullmatch(r"[a-z -]*", c) for c in classes), (path, classes)
    dashboard = client.get("/dashboard").text
    assert re.search(r'<td class="unknown" data-product="clinical/trial_results"', dashboard)


# ---------------------------------------------------------------- 7. headers, outage, expiry

HEADERS = {"content-security-policy", "x-content-type-options", "x-frame-options",
           "referrer-policy", "cache-control"}


def test_security_headers_on_every_answer(backend):
    app = create_app(backend[0], dev=True, secret_key=SECRET)

    @app.get("/api/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, base_url="https://testserver",
                    raise_server_exceptions=False) as c:
        answers = {
            200: c.get("/api/me", headers=basic("bob")),
            "static": c.get("/static/govern.css"),
            "page": c.get("/signin"),
            303: c.get("/", follow_redirects=False),
            400: c.post("/api/requests", headers=basic("bob"), json={}),
            401: c.get("/api/me"),
            403: c.post("/signout", data={}),
            404: c.get("/no/such/page"),
            "api 404": c.get("/api/requests/req-00000000", headers=basic("bob")),
            405: c.delete("/api/me"),
            413: c.post("/api/requests", headers=basic("bob"), content=b"x" * 70_000),
            500: c.get("/api/boom"),
        }
        for i in range(20):  # failures from one address: the next sign-in is refused
            c.get("/api/me", headers=basic(f"nobody{i}"))
        answers[429] = c.get("/api/me", headers=basic("bob"))
    for name, response in answers.items():
        if isinstance(name, int):
            assert response.status_code == name, (name, response.text[:200])
        missing = HEADERS - set(response.headers)
        assert not missing, (name, response.status_code, missing)
        assert response.headers["x-frame-options"] == "DENY"
    assert answers[500].json() == {"detail": "internal error: see the server's log"}


def test_a_store_that_goes_away_is_503_in_one_line_and_comes_back(tmp_path, pg_cluster):
    url = new_pg_database(pg_cluster)
    root = copy_mesh(tmp_path, url)
    dbname = make_url(url).database
    app = create_app(root, dev=True, secret_key=SECRET)
    with TestClient(app, base_url="https://testserver") as c:
        created = new_request(c, "bob")
        sign_in(c, "dave")
        with psycopg.connect(pg_cluster, autocommit=True) as admin:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
                sql.Identifier(dbname)))
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s", (dbname,))
            try:
                for response in (
                        c.get("/api/requests", headers=basic("dave")),
                        c.post(f"/api/requests/{created['id']}/approve",
                               headers=basic("dave"), json={"reason": "ok"}),
                        c.post("/api/requests", headers=basic("alice"), json={
                            "product": "clinical/trial_results", "purpose": "p",
                            "until": FUTURE.isoformat(), "accept_dsa": True})):
                    assert response.status_code == 503, response.text
                    assert "request store" in one_line(response)
                for path in ("/", "/catalog", "/dashboard", f"/requests/{created['id']}"):
                    page = c.get(path, follow_redirects=False)
                    assert page.status_code == 503, (path, page.text[:300])
                    assert "\n" not in page.text.strip() or "<html" in page.text
            finally:
                admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                    sql.Identifier(dbname)))
        again = c.get("/api/requests", headers=basic("dave"))
        assert again.status_code == 200 and [r["id"] for r in again.json()] == [created["id"]]


def test_a_catalog_read_that_fails_is_503(client, monkeypatch):
    from govern.engine.catalog import BuiltinCatalog, CatalogError

    def down(self):
        raise CatalogError("catalog: server closed the connection unexpectedly")

    sign_in(client, "bob")
    monkeypatch.setattr(BuiltinCatalog, "read", down)
    for path in ("/catalog", "/dashboard", "/catalog/clinical/trial_results"):
        response = client.get(path)
        assert response.status_code == 503, (path, response.status_code)
        assert "server closed the connection" in response.text


def test_approving_a_request_that_expired_is_409(backend):
    day = [TODAY]
    app = create_app(backend[0], dev=True, secret_key=SECRET, today=lambda: day[0])
    with TestClient(app, base_url="https://testserver") as c:
        created = new_request(c, "bob", until=(TODAY + dt.timedelta(days=1)).isoformat())
        day[0] = TODAY + dt.timedelta(days=2)
        response = c.post(f"/api/requests/{created['id']}/approve", headers=basic("dave"),
                          json={"reason": "late"})
        assert response.status_code == 409, response.text
        assert "expired" in one_line(response)
        assert c.get(f"/api/requests/{created['id']}",
                     headers=basic("bob")).json()["status"] == "pending"
