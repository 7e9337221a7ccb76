"""The catalog and the fitness dashboard in `govern serve`, over the built-in catalog (what
`govern catalog publish` wrote into the request store's database):

    GET  /catalog?q=...           search names, descriptions, columns and owners
    GET  /catalog/{domain}/{name} a product: metadata, ports, columns, lineage, fitness
    GET  /dashboard               products × the six characteristics, by domain, with trend
    GET  /requests/new            the access request form for a product's port
    POST /requests/new            create it (pending), then its page

Pages need a signed-in directory user, like every other page. Everything shown is text
from product files and the directory, escaped by the templates (or, for the SVG and the
fitness cells built in Python, by html.escape); every published fitness status is mapped to
a fixed set first (``fitness_view``), so none becomes markup or a class of its own.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import RedirectResponse, Response

from govern.engine import fitness as fit
from govern.engine.catalog import Current
from govern.engine.requests import InvalidRequest, NotAuthenticated, RequestError

from . import fitness_view
from .lineage import lineage_svg
from .runtime import get_runtime
from .security import check_csrf, flash
from .web import CSRFField, page, signed_in, to_signin
from .workflow import MAX_PURPOSE

router = APIRouter(include_in_schema=False)
#: control characters a search refuses (tab, CR and LF are spaces between words)
_SEARCH_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _live(request: HTTPRequest) -> dict[str, Current]:
    return {ref: c for ref, c in get_runtime(request).catalog.read().items() if not c.retired}


def _link(ref: str) -> str:
    return f"/catalog/{ref}"


@router.get("/catalog")
def catalog(request: HTTPRequest,
            q: Annotated[str, Query(max_length=200)] = "") -> Response:
    if signed_in(request) is None:
        return to_signin()
    if _SEARCH_CONTROL.search(q):
        raise InvalidRequest("q: the search contains control characters")
    runtime = get_runtime(request)
    live = _live(request)
    query = " ".join(q.split())
    refs = [r for r in runtime.catalog.search(query) if r in live] if query else sorted(live)
    kind = runtime.workflow.mesh.config.catalog.kind
    return page(request, "catalog.html", title="Catalog", query=query,
                results=[fitness_view.shown(live[r].doc) for r in refs], total=len(live),
                characteristics=fit.CHARACTERISTICS,
                external=None if kind == "builtin" else kind)


@router.get("/catalog/{domain}/{name}")
def product(request: HTTPRequest, domain: str, name: str) -> Response:
    if signed_in(request) is None:
        return to_signin()
    ref = f"{domain}/{name}"
    current = get_runtime(request).catalog.read()
    entry = current.get(ref)
    if entry is None:
        raise HTTPException(404, f"no product {ref[:100]!r} in the catalog")
    docs = {r: c.doc for r, c in current.items() if not c.retired}
    fitness = fitness_view.clean(entry.doc.get("fitness"))
    report = fit.report_from_published({ref: fitness}, dt.date.today()) if fitness else None
    return page(request, "product.html", title=ref, entry=entry, doc=entry.doc,
                lineage=Markup(lineage_svg(ref, {**docs, ref: entry.doc})),
                fitness=Markup(fit.cells_table(report, [ref])) if report else None,
                fitness_at=fitness.get("at") if report else None)


@router.get("/dashboard")
def dashboard(request: HTTPRequest) -> Response:
    if signed_in(request) is None:
        return to_signin()
    live = _live(request)
    report = fit.report_from_published(
        {r: fitness_view.clean(c.doc.get("fitness")) for r, c in live.items()}, dt.date.today())
    at = report.today.isoformat() if report.cells else None
    return page(request, "dashboard.html", title="Fitness", measured=len(report.cells),
                total=len(live), red=report.red_cells, at=at,
                body=Markup(fit.dashboard_body(report, link=_link)))


def _form(request: HTTPRequest, user: str, product: str, port: str | None, status: int = 200,
          error: str | None = None, **values: Any) -> Response:
    wf = get_runtime(request).workflow
    spec = wf.product(product)
    today = wf.today()
    latest = wf.latest_until(today)
    defaults = {"access": "read", "purpose": "",
                "until": min(today + dt.timedelta(days=90), latest).isoformat()}
    return page(request, "request_new.html", status=status, title=f"Request access to {spec.ref}",
                spec=spec, port=port or (spec.ports[0].name if len(spec.ports) == 1 else ""),
                error=error, max_purpose=MAX_PURPOSE, requester=user,
                latest=latest.isoformat(), **{**defaults, **values})


@router.get("/requests/new")
def new_request(request: HTTPRequest, product: Annotated[str, Query(max_length=100)] = "",
                port: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    user = signed_in(request)
    if user is None:
        return to_signin()
    return _form(request, user, product, port)


@router.post("/requests/new")
def create_request(request: HTTPRequest,
                   product: Annotated[str, Form(max_length=100)] = "",
                   port: Annotated[str, Form(max_length=64)] = "",
                   access: Annotated[str, Form(max_length=8)] = "read",
                   purpose: Annotated[str, Form(max_length=MAX_PURPOSE)] = "",
                   until: Annotated[str, Form(max_length=10)] = "",
                   accept_dsa: Annotated[str | None, Form(max_length=8)] = None,
                   token: CSRFField = None) -> Response:
    check_csrf(request, token)
    user = signed_in(request)
    if user is None:
        raise NotAuthenticated("sign in first")
    values = {"access": access, "purpose": purpose, "until": until}
    try:
        try:
            day = dt.date.fromisoformat(until)
        except ValueError:
            raise InvalidRequest(f"until: {until[:10]!r} is not a date (YYYY-MM-DD)") from None
        created = get_runtime(request).workflow.create(
            user, product, port or None, access, purpose, day, accept_dsa == "yes")
    except RequestError as exc:
        if exc.http_status != 400:
            raise
        return _form(request, user, product, port or None, status=400, error=str(exc), **values)
    flash(request, f"Requested {created.id}: waiting for the owner's decision.")
    return RedirectResponse(f"/requests/{created.id}", status_code=303)
