"""The owner's web page in a real Chromium (Debian's /usr/bin/chromium, driven by Playwright;
no browser is downloaded): the owner signs in with their directory password (an LDAP bind on
the test slapd), approves a pending request, and the page shows it approved. A screenshot
is kept in tests/artifacts/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

import slapdserver
from govern.engine.requests import RequestStore
from govern.engine.spec import RequestsConfig

from .test_requests_store import HOSTILE, make
from .test_serve_crash import Server
from .test_serve_ldap import PASSWORDS, ldap_mesh

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class LDAPServer(Server):
    """`govern serve` with LDAP sign-in (no --dev) and a Secure session cookie."""

    def start(self) -> "LDAPServer":
        import subprocess
        import sys

        from .test_crash import wait_for

        self.url = f"http://localhost:{self.port}"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "govern.cli", "--mesh", str(self.root), "serve",
                 "--port", str(self.port)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=os.environ.copy())

        def ready() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                return httpx.get(f"{self.url}/signin", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(ready, timeout=60), self.log.read_text()
        return self


@pytest.fixture
def browser_context(tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-packages")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=FLAGS, viewport={"width": 1200, "height": 900})
        try:
            yield context
        finally:
            context.close()


def test_owner_signs_in_and_approves_in_chromium(slapd, tmp_path, monkeypatch,
                                                 browser_context):
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", slapdserver.READER_PW)
    root, _ = ldap_mesh(tmp_path, slapd[0])
    store = RequestStore.for_config(RequestsConfig(), root, migrate=True)
    request = make(store, requester="bob", purpose=HOSTILE)
    server = LDAPServer(root, tmp_path / "serve.log").start()
    try:
        page = browser_context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{server.url}/")
        assert page.url.endswith("/signin")
        page.get_by_label("User name").fill("dave")
        page.get_by_label("Password").fill(PASSWORDS["dave"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{server.url}/")
        pending = page.get_by_role("table", name="Pending requests for products you own or "
                                                 "steward")
        pending.get_by_role("link", name=request.id).click()
        page.wait_for_url(f"{server.url}/requests/{request.id}")
        assert page.locator("#purpose").inner_text() == HOSTILE  # shown as text, not run
        assert page.locator("#status").inner_text() == "pending"
        page.get_by_label("Reason (kept in the audit trail)").fill("Signed DSA on file")
        page.get_by_role("button", name="Approve").click()
        page.wait_for_load_state()
        assert page.locator("#status").inner_text() == "approved"
        assert page.get_by_role("status").inner_text() == f"Approved {request.id}."
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser-approved.png"), full_page=True)
        assert dialogs == [], "the injected script ran"
        cookies = {c["name"]: c for c in browser_context.cookies()}
        session = cookies["govern_session"]
        assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    finally:
        server.stop()
    assert store.get(request.id).status == "approved"
    assert [(e.who, e.action, e.reason) for e in store.events(request.id)][1:] == [
        ("dave", "approve", "Signed DSA on file")]
    store.close()
    shutil.copy(server.log, ARTIFACTS / "browser-serve.log")


def test_a_cookie_copied_before_sign_out_is_dead_in_chromium(slapd, tmp_path, monkeypatch,
                                                             browser_context):
    """The attack: copy the session cookie out of the browser, let the owner sign out, put
    the copy back. The copy signs no one in."""
    monkeypatch.setenv("GOVERN_LDAP_PASSWORD", slapdserver.READER_PW)
    root, _ = ldap_mesh(tmp_path, slapd[0])
    RequestStore.for_config(RequestsConfig(), root, migrate=True).close()
    server = LDAPServer(root, tmp_path / "serve.log").start()
    try:
        page = browser_context.new_page()
        page.goto(f"{server.url}/signin")
        page.get_by_label("User name").fill("dave")
        page.get_by_label("Password").fill(PASSWORDS["dave"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{server.url}/")
        copied = [c for c in browser_context.cookies() if c["name"] == "govern_session"]
        assert copied, "no session cookie after sign-in"
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{server.url}/signin")
        browser_context.add_cookies(copied)  # the copy, back in the browser
        page.goto(f"{server.url}/")
        assert page.url.endswith("/signin")  # not signed in
        assert httpx.get(f"{server.url}/api/me", timeout=5,
                         cookies={"govern_session": copied[0]["value"]}).status_code == 401
    finally:
        server.stop()
