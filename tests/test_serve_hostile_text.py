"""Hostile text in every text field of the request API (property-based, derandomized):
NUL, CR/LF, U+2028, C1 controls, 100 KB, SQL and HTML metacharacters, lone surrogates, in
create (product, port, purpose, until, access, and as an unknown field's name), in
approve/deny/revoke (reason), in the list filters and in the Basic auth user id. Whatever
comes, the server never answers 500, every error is one bounded line, and stored text comes
back as sent (stripped, CRLF as LF) or was refused."""

from __future__ import annotations

import base64
import json
import re

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from govern.service.app import create_app

from .test_requests_store import FUTURE
from .test_serve_api import SECRET, basic, root  # noqa: F401  (root: the fixture)

BIG = "<100 KB>"  # stands for 100,000 characters (expanded when sent: a short repr)
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
PIECES = ["\x00", "\r\n", "\r", "\n", "\u2028", "\u2029", "\x85", "\x1b[2J", "\t", " ",
          BIG, "'; DROP TABLE requests; --", "\" OR 1=1 --", "<script>alert(1)</script>",
          "<img src=x onerror=alert(1)>", "&amp;", "%00", "\\", "\ud800", "é", "🙂",
          "clinical/trial_results", "results", "read", "2027-01-01", FUTURE.isoformat()]
hostile = st.one_of(
    st.sampled_from(PIECES),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=4).map("".join),
    st.text(min_size=0, max_size=40),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), min_size=1,
             max_size=4).map("".join))
FIELDS = ["product", "port", "purpose", "until", "access", "reason", "filter", "user", "key"]
NO_SURROGATE = {"filter", "user"}  # they travel in a URL or a header: UTF-8 only
MAX_URL_TEXT = 8_000  # a URL longer than 64 KiB is refused by the client before sending


def check_answer(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and len(detail) <= 300, detail[:400]
        assert not RAW_CONTROL.search(detail), detail


def stored_as(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


class Run:
    """One server; a pending request (by carol, decided by bob) to decide on."""

    def __init__(self, client: TestClient):
        self.client = client
        self.pending = self.create("carol", product="commercial/campaign_performance")

    def create(self, user: str, **body) -> str:
        response = self.client.post("/api/requests", headers=basic(user), json={
            "product": "clinical/trial_results", "purpose": "p", "until": FUTURE.isoformat(),
            "accept_dsa": True, **body})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def post(self, path: str, user: str, body: dict):
        """JSON as a client sends it: a lone surrogate travels as its \\u escape."""
        return self.client.post(path, content=json.dumps(body).encode(),
                                headers={**basic(user), "Content-Type": "application/json"})

    def send_create(self, field: str, value: str) -> None:
        body = {"product": "clinical/trial_results", "purpose": "p",
                "until": FUTURE.isoformat(), "accept_dsa": True, field: value}
        response = self.post("/api/requests", "bob", body)
        check_answer(response)
        if response.status_code == 201:
            made = response.json()
            shown = self.client.get(f"/api/requests/{made['id']}", headers=basic("bob")).json()
            if field == "purpose":
                assert made["purpose"] == shown["purpose"] == stored_as(value)
            else:
                assert shown["expires" if field == "until" else field] == value
            withdrawn = self.client.post(f"/api/requests/{made['id']}/revoke",
                                         headers=basic("bob"), json={"reason": "done"})
            assert withdrawn.status_code == 200, withdrawn.text

    def send_reason(self, action: str, value: str) -> None:
        who = "carol" if action == "revoke" else "bob"
        response = self.post(f"/api/requests/{self.pending}/{action}", who, {"reason": value})
        check_answer(response)
        if response.status_code == 200:
            assert response.json()["reason"] == stored_as(value)
            events = self.client.get(f"/api/requests/{self.pending}",
                                     headers=basic("carol")).json()["events"]
            assert events[-1]["reason"] == stored_as(value)
            self.pending = self.create("carol", product="commercial/campaign_performance")

    def send_filter(self, name: str, value: str) -> None:
        check_answer(self.client.get("/api/requests", params={name: value},
                                     headers=basic("bob")))

    def send_user(self, value: str) -> None:
        token = base64.b64encode(f"{value}:pw".encode("utf-8")).decode()
        response = self.client.get("/api/me", headers={"Authorization": f"Basic {token}"})
        check_answer(response)
        uid = value.strip().lower()
        if response.status_code == 401 and len(uid) > 100:  # echoed cut, if at all
            assert uid[:100] not in response.json()["detail"]


def test_hostile_text_in_every_field(root):
    app = create_app(root, dev=True, secret_key=SECRET)
    with TestClient(app, base_url="https://testserver") as client:
        run = Run(client)

        @given(field=st.sampled_from(FIELDS), value=hostile,
               choice=st.sampled_from(["approve", "deny", "revoke", "status", "product",
                                       "mine", "to_approve", "limit"]))
        @example(field="user", value="bob\x00", choice="status")
        @example(field="user", value="\x00" + BIG, choice="status")
        @example(field="key", value="two\nlines\u2028" + BIG, choice="status")
        @example(field="reason", value="\x00", choice="deny")
        @example(field="purpose", value="next\x85line", choice="status")
        @example(field="filter", value="clinical/trial_results\x00", choice="product")
        @settings(max_examples=200, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def property(field: str, value: str, choice: str) -> None:
            value = value.replace(BIG, "x" * 100_000)
            if field == "filter":
                value = value[:MAX_URL_TEXT]
            if field in NO_SURROGATE and re.search(r"[\ud800-\udfff]", value):
                value = value.encode("utf-8", "replace").decode("utf-8")
            if field == "reason":
                run.send_reason(choice if choice in ("approve", "deny", "revoke") else "deny",
                                value)
            elif field == "filter":
                run.send_filter(choice if choice not in ("approve", "deny", "revoke")
                                else "product", value)
            elif field == "user":
                run.send_user(value)
            elif field == "key":  # a field of its own name: refused, and named in one line
                response = run.post("/api/requests", "bob", {
                    "product": "clinical/trial_results", "purpose": "p",
                    "until": FUTURE.isoformat(), "accept_dsa": True, value: "v"})
                check_answer(response)
            else:
                run.send_create(field, value)

        property()
