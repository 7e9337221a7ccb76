"""The owners' web pages: server-rendered (Jinja2, autoescaped), no scripts.

    GET  /                   requests waiting for your decision, and your own
    GET  /signin, POST       sign in (LDAP bind; --dev: any directory user, no password;
                             throttled after failures, 429: ``throttle``)
    POST /signout
    GET  /requests/{id}      one request, its audit trail, and the decision form
    POST /requests/{id}      approve, deny or revoke, with a reason

(The catalog, the dashboard and the request form are in ``catalog_pages``.) Every POST form
carries the session's CSRF token; each decision redirects (303) to the request's page, which
shows the new state.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request as HTTPRequest
from starlette.responses import HTMLResponse, RedirectResponse, Response

from govern.engine.requests import NotAuthenticated, RequestError

from .fitness_view import css_class
from .runtime import get_runtime
from .security import (check_csrf, csrf_token, end_session, flash, session_user,
                       start_session)
from .throttle import TooManyAttempts, client_address
from .workflow import check_request_id

TEMPLATES = Path(__file__).resolve().parent / "templates"
templates = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                        autoescape=select_autoescape(default=True, default_for_string=True))
DONE = {"approve": "Approved", "deny": "Denied", "revoke": "Revoked"}

router = APIRouter(include_in_schema=False)
CSRFField = Annotated[str | None, Form(alias="csrf_token", max_length=128)]


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


templates.filters["when"] = _when
templates.filters["status_class"] = css_class


def page(request: HTTPRequest, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with what every page shows (user, dev banner, CSRF token)."""
    runtime = get_runtime(request)
    values = {"user": session_user(request), "dev": runtime.dev, "csrf": csrf_token(request),
              "flash": flash(request), "today": runtime.workflow.today(), "error": None,
              **context}
    return HTMLResponse(templates.get_template(name).render(values), status_code=status)


def error_page(request: HTTPRequest, status: int, message: str) -> HTMLResponse:
    return page(request, "error.html", status=status, title=f"Error {status}", message=message)


def signed_in(request: HTTPRequest) -> str | None:
    """The signed-in directory user, or None (a session whose user left the directory ends)."""
    user = session_user(request)
    if user is None:
        return None
    try:
        return get_runtime(request).workflow.identify(user)
    except NotAuthenticated:
        end_session(request)
        return None


def to_signin() -> RedirectResponse:
    """Where a page sends a visitor who is not signed in."""
    return RedirectResponse("/signin", status_code=303)


@router.get("/")
def index(request: HTTPRequest) -> Response:
    user = signed_in(request)
    if user is None:
        return to_signin()
    wf = get_runtime(request).workflow
    return page(request, "index.html", title="Access requests",
                pending=wf.find(user, to_approve=True), mine=wf.find(user, mine=True, limit=50))


@router.get("/signin")
def signin_form(request: HTTPRequest) -> Response:
    return page(request, "signin.html", title="Sign in", username="")


@router.post("/signin")
def signin(request: HTTPRequest, username: Annotated[str, Form(max_length=256)] = "",
           password: Annotated[str, Form(max_length=1024)] = "",
           token: CSRFField = None) -> Response:
    check_csrf(request, token)
    runtime = get_runtime(request)
    try:
        user = runtime.workflow.identify(runtime.throttle.verify(
            runtime.signin, username, password, client_address(request)))
    except NotAuthenticated as exc:
        return page(request, "signin.html", status=401, title="Sign in", error=str(exc),
                    username=username)
    except TooManyAttempts as exc:
        refused = page(request, "signin.html", status=429, title="Sign in", error=str(exc),
                       username=username)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    start_session(request, user)
    return RedirectResponse("/", status_code=303)


@router.post("/signout")
def signout(request: HTTPRequest,
            token: CSRFField = None) -> Response:
    check_csrf(request, token)
    end_session(request)
    return to_signin()


def _request_page(request: HTTPRequest, user: str, request_id: str, status: int = 200,
                  error: str | None = None, reason: str = "") -> HTMLResponse:
    wf = get_runtime(request).workflow
    item, events = wf.get(request_id)
    return page(request, "request.html", status=status, title=f"Request {item.id}",
                item=item, events=events, error=error, reason=reason,
                product=wf.mesh.product(item.product).spec
                if item.product in {p.ref for p in wf.mesh.products} else None,
                may_decide=wf.may("approve", user, item), may_revoke=wf.may("revoke", user, item))


@router.get("/requests/{request_id}")
def show(request: HTTPRequest, request_id: str) -> Response:
    user = signed_in(request)
    if user is None:
        return to_signin()
    return _request_page(request, user, check_request_id(request_id))


@router.post("/requests/{request_id}")
def decide(request: HTTPRequest, request_id: str,
           action: Annotated[str, Form(max_length=16)] = "",
           reason: Annotated[str, Form(max_length=4000)] = "",
           token: CSRFField = None) -> Response:
    check_csrf(request, token)
    user = signed_in(request)
    if user is None:
        raise NotAuthenticated("sign in first")
    check_request_id(request_id)
    try:
        decided = get_runtime(request).workflow.decide(user, request_id, action, reason)
    except RequestError as exc:
        if exc.http_status in (404, 503):
            raise
        return _request_page(request, user, request_id, status=exc.http_status,
                             error=str(exc), reason=reason)
    flash(request, f"{DONE[action]} {decided.id}.")
    return RedirectResponse(f"/requests/{decided.id}", status_code=303)
