"""Sessions, CSRF and response headers of ``govern serve``.

- The session cookie ``govern_session`` (HttpOnly, SameSite=Strict, Secure unless
  ``--insecure-dev``, 8 hours) is signed (Starlette's SessionMiddleware over itsdangerous,
  with a key derived from the secret and the server's mode, so a ``--dev`` server's cookie
  does not even verify on an LDAP server). It holds the session id, the CSRF token and a
  one-time message; no user id, no password.
- Who is signed in is the session's server-side row (``service.sessions``): a cookie whose
  row is missing (signed out), expired or of another mode is signed out, and its id is
  dropped from the cookie. Signing in always starts a new session (and ends the old one).
- Every POST form carries ``csrf_token``, compared in constant time with the session's; a
  JSON API call authenticated by the session cookie sends it as ``X-CSRF-Token``.
- Every response says: no caching, no framing, no sniffing, and a Content Security Policy
  that allows only this server's own stylesheet (the pages have no scripts).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govern.engine.requests import NotAllowed

from .runtime import get_runtime
from .sessions import LIFETIME, mode_of

SESSION_COOKIE = "govern_session"
SESSION_MAX_AGE = int(LIFETIME.total_seconds())
SESSION_ID = "sid"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self'; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class CSRFRejected(NotAllowed):
    """A state-changing request without the session's CSRF token."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if not (isinstance(expected, str) and expected and isinstance(submitted, str)
            and hmac.compare_digest(expected.encode(), submitted.encode())):
        raise CSRFRejected("CSRF token missing or invalid: reload the page and try again")


def cookie_key(secret: str, dev: bool) -> str:
    """The key that signs session cookies: the secret, bound to the server's mode."""
    label = f"govern session cookie, {mode_of(dev)} mode".encode()
    return hmac.new(secret.encode("utf-8"), label, hashlib.sha256).hexdigest()


def session_user(request: Request) -> str | None:
    """The signed-in user, by the session's server-side row; None when there is no row for
    the cookie's id in this server's mode, or it expired (the cookie is then cleared)."""
    token = request.session.get(SESSION_ID)
    if token is None:
        return None
    user = get_runtime(request).sessions.user(token)
    if user is None:
        request.session.clear()
    return user


def start_session(request: Request, user: str) -> None:
    """A fresh session for a signed-in user (a new id and CSRF token, nothing carried over;
    a session the cookie held before ends)."""
    end_session(request)
    request.session[SESSION_ID] = get_runtime(request).sessions.start(user)
    request.session["csrf"] = secrets.token_urlsafe(32)


def end_session(request: Request) -> None:
    """Sign out: the server-side session is deleted, so no copy of the cookie signs in."""
    token = request.session.get(SESSION_ID)
    if token is not None:
        get_runtime(request).sessions.end(token)
    request.session.clear()


def flash(request: Request, message: str | None = None) -> str | None:
    """Set a one-time message for the next page, or take the pending one."""
    if message is not None:
        request.session["flash"] = message
        return None
    value = request.session.pop("flash", None)
    return value if isinstance(value, str) else None


class SecurityHeaders:
    """Pure ASGI middleware adding :data:`HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp, dev: bool = False):
        self.app = app
        self.extra = [(b"x-govern-mode", b"development")] if dev else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                headers: list[Any] = list(message.get("headers", []))
                headers += [(k, v) for k, v in HEADERS + self.extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
