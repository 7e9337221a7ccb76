"""``create_app``: the FastAPI application of ``govern serve``.

For its lifetime the app holds one request store (migrated at start), one snapshot of the
mesh and the directory, and one OPA session (``engine.pipeline.opa_session``) in which the
``govern.requests`` policy decides who may do what. Restart it to pick up changes to the
mesh or the directory. JSON API under /api (``api``), pages under / (``web``), OpenAPI at
/openapi.json.

Errors map to HTTP once, here: a RequestError to its ``http_status`` (429 for too many
failed sign-ins, with Retry-After), a directory, store (or built-in catalog) or OPA outage to
503, invalid input to 400 (never a 500 for bad input), a bug to a one-line 500. Every answer,
Starlette's own 500 included, carries the security headers (``security``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from govern.engine import pipeline
from govern.engine.catalog import BuiltinCatalog, CatalogError
from govern.engine.errors import GovernError, IdentityError, OPAUnavailable, one_line
from govern.engine.mesh import load_config
from govern.engine.requests import NotAuthenticated, RequestError, RequestStore, utcnow

from . import api, catalog_pages, web
from .authz import Authorizer
from .bodylimit import BodyLimit
from .notify import Notifier, make_notifier
from .runtime import Runtime
from .security import SESSION_COOKIE, SESSION_MAX_AGE, SecurityHeaders, cookie_key
from .sessions import SessionStore, mode_of
from .signin import check_mode, make_signin
from .throttle import SignInThrottle, TooManyAttempts
from .workflow import Workflow

log = logging.getLogger("govern.serve")
MAX_DETAIL = 260  # characters of an error's one line (a cut line says how much more)
STATIC = Path(__file__).resolve().parent / "static"


@contextmanager
def open_runtime(mesh_root: Path, *, dev: bool = False,
                 today: Callable[[], dt.date] | None = None,
                 now: Callable[[], dt.datetime] | None = None,
                 notifier: Notifier | None = None,
                 on_opa_exit: Callable[[int], None] | None = None) -> Iterator[Runtime]:
    """What a server holds while it runs: the store (migrated), the mesh and directory
    snapshot, one OPA session, and the sign-in sessions and failed sign-ins (kept in the
    store, on the clock ``now``). Run it on the thread that serves: the OPA child is tied
    to the thread that started it (PR_SET_PDEATHSIG). ``on_opa_exit(status)``: the OPA
    child exited under the server (it is reaped; the API answers 503 until the server
    stops)."""
    root = Path(mesh_root).resolve()
    config = load_config(root)
    check_mode(config.directory, dev)
    clock = today or dt.date.today
    with ExitStack() as stack:
        store = RequestStore.for_config(config.requests, root, migrate=True)
        stack.callback(store.close)
        inputs = pipeline.load_inputs(root, today=clock())
        client = stack.enter_context(pipeline.opa_session(inputs, on_exit=on_opa_exit))
        workflow = Workflow(store, inputs.mesh, inputs.snapshot, Authorizer(client),
                            notifier or make_notifier(config.requests.webhook),
                            max_days=config.requests.max_days, today=clock)
        log.info("serving access requests of %s (store %s)", root, store.label)
        clock_now = now or utcnow
        yield Runtime(workflow, make_signin(inputs.mesh, inputs.snapshot, dev), dev,
                      BuiltinCatalog(store.engine),
                      SessionStore(store, mode_of(dev), now=clock_now),
                      SignInThrottle(store, now=clock_now))


def create_app(mesh_root: Path, *, dev: bool = False, insecure_dev: bool = False,
               secret_key: str | None = None, today: Callable[[], dt.date] | None = None,
               now: Callable[[], dt.datetime] | None = None,
               notifier: Notifier | None = None, runtime: Runtime | None = None) -> FastAPI:
    """The app for the mesh at ``mesh_root``.

    ``dev``: sign in as any user of a file directory without a password (a banner says so).
    ``insecure_dev``: the session cookie without the Secure flag, for plain-HTTP testing.
    ``secret_key``: signs session cookies, bound to the mode (default
    $GOVERN_SESSION_SECRET, else random per process: sessions then end with the process).
    ``today``: the date that decides expiry; ``now``: the clock of sessions and of the
    throttling of failed sign-ins.
    ``runtime``: one already opened (:func:`open_runtime`, as `govern serve` does, so that a
    failure to start is one line); by default the app opens its own at startup.
    """
    root = Path(mesh_root).resolve()
    check_mode(load_config(root).directory, dev)
    if runtime is not None and runtime.dev != dev:
        raise GovernError("the server's runtime was opened in another sign-in mode")
    secret = secret_key or os.environ.get("GOVERN_SESSION_SECRET") or secrets.token_urlsafe(32)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # on the event loop's own thread, on purpose (see open_runtime)
        with ExitStack() as stack:
            app.state.govern = runtime or stack.enter_context(
                open_runtime(root, dev=dev, today=today, now=now, notifier=notifier))
            try:
                yield
            finally:
                app.state.govern = None

    app = _GovernApp(title="govern access requests", version="1", lifespan=lifespan,
                     docs_url=None, redoc_url=None,
                     description="Request access to data products; owners and stewards "
                     "approve. See docs/requests.md.")
    app.add_middleware(SessionMiddleware, secret_key=cookie_key(secret, dev),
                       session_cookie=SESSION_COOKIE,
                       max_age=SESSION_MAX_AGE, same_site="strict", https_only=not insecure_dev)
    app.add_middleware(BodyLimit)
    app.dev_headers = dev
    app.include_router(api.router)
    app.include_router(catalog_pages.router)  # before web: /requests/new, not /requests/{id}
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _errors(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


class _GovernApp(FastAPI):
    """The app with :class:`SecurityHeaders` outside every other layer, Starlette's own
    error middleware included: a 500, a 413 or a static file carries the headers too."""

    dev_headers = False

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack(), dev=self.dev_headers)


def _is_api(request: HTTPRequest) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _respond(request: HTTPRequest, status: int, message: str,
             headers: dict[str, str] | None = None) -> Response:
    message = one_line(message, MAX_DETAIL)  # whatever it echoes: escaped and cut
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    if status == 401 and request.method == "GET":
        return RedirectResponse("/signin", status_code=303)
    try:
        response: Response = web.error_page(request, status, message)
    except GovernError:  # not started: no page to render
        response = Response(message, status_code=status, media_type="text/plain")
    response.headers.update(headers or {})
    return response


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: HTTPRequest, exc: RequestError) -> Response:
        headers = {"WWW-Authenticate": 'Basic realm="govern"'} \
            if isinstance(exc, NotAuthenticated) and _is_api(request) else None
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after)}
        return _respond(request, exc.http_status, str(exc), headers)

    @app.exception_handler(GovernError)
    async def unavailable(request: HTTPRequest, exc: GovernError) -> Response:
        # the built-in catalog lives in the request store's database: an outage too
        status = 503 if isinstance(exc, (IdentityError, OPAUnavailable, CatalogError)) else 500
        log.error("%s %s: %s", request.method, request.url.path, str(exc))
        return _respond(request, status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: HTTPRequest, exc: RequestValidationError) -> Response:
        return _respond(request, 400, _first_error(exc))

    @app.exception_handler(Exception)
    async def bug(request: HTTPRequest, exc: Exception) -> Response:
        # a bug, never bad input: one line, no details for the caller (the server logs it)
        message = "internal error: see the server's log"
        if _is_api(request):
            return JSONResponse({"detail": message}, status_code=500)
        return Response(message, status_code=500, media_type="text/plain")

    @app.exception_handler(HTTPException)
    async def http_error(request: HTTPRequest, exc: HTTPException) -> Response:
        return _respond(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))


def _first_error(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    err = errors[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    # a field's name is input too (an unknown field is named): escaped and cut
    return f"{one_line(where, 80)}: {one_line(str(err.get('msg', 'invalid')), 120)}{more}"


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The published schema: bad input is answered with 400 (never FastAPI's 422)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {"description": "Invalid input", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema
