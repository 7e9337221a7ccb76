"""The JSON API under /api (OpenAPI at /openapi.json).

Authentication: HTTP Basic with a directory user and password (checked by an LDAP bind; in
``--dev`` mode the password is ignored; throttled like the form, 429 with Retry-After after
too many failures), or the web page's session cookie, in which case a POST must send the
session's CSRF token as ``X-CSRF-Token``. Errors are ``{"detail": "<one line>"}`` with 400,
401, 403, 404, 409, 413 (a body over 64 KiB: ``bodylimit``), 429 or 503.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.requests import Request as HTTPRequest

from govern.engine.approvals import Status as RequestStatus
from govern.engine.requests import Event, NotAuthenticated, Request

from .runtime import Runtime, get_runtime
from .security import CSRF_HEADER, check_csrf, session_user
from .throttle import client_address
from .workflow import MAX_PURPOSE, MAX_REASON

Status = RequestStatus
Access = Literal["read", "write"]

basic = HTTPBasic(auto_error=False, realm="govern",
                  description="A directory user and password (LDAP bind); with `govern serve "
                  "--dev`, any password")


class ErrorOut(BaseModel):
    detail: str = Field(description="What went wrong, in one line")


def errors(*codes: int) -> dict[int | str, dict[str, object]]:
    text = {400: "Invalid input", 401: "Not signed in, or not a directory user",
            403: "Not allowed by the govern.requests policy, or CSRF token missing",
            404: "No such request", 409: "The request is not in a state that allows this",
            413: "The request body is larger than 64 KiB (not read further)",
            429: "Too many failed sign-ins for this user or from this address: try again "
                 "after Retry-After seconds",
            503: "The request store, directory or OPA is unavailable"}
    return {c: {"model": ErrorOut, "description": text[c]} for c in (*codes, 413, 429, 503)}


class RequestOut(BaseModel):
    id: str
    requester: str
    product: str
    port: str
    access: Access
    purpose: str
    sharing_agreement: str = Field(description="The agreement the requester accepted")
    status: Status
    expired: bool = Field(description="Its expiry date has passed (an approval no longer "
                          "grants)")
    expires: dt.date
    created_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    reason: str | None

    @classmethod
    def of(cls, r: Request, today: dt.date) -> "RequestOut":
        return cls(id=r.id, requester=r.requester, product=r.product, port=r.port,
                   access=r.access,  # type: ignore[arg-type]
                   purpose=r.purpose, sharing_agreement=r.sharing_agreement,
                   status=r.status,  # type: ignore[arg-type]
                   expired=r.expired(today), expires=r.expires, created_at=r.created_at,
                   decided_by=r.decided_by, decided_at=r.decided_at, reason=r.reason)


class EventOut(BaseModel):
    seq: int
    at: dt.datetime
    who: str
    action: Literal["create", "approve", "deny", "revoke"]
    reason: str | None

    @classmethod
    def of(cls, e: Event) -> "EventOut":
        return cls(seq=e.seq, at=e.at, who=e.who, action=e.action,  # type: ignore[arg-type]
                   reason=e.reason)


class RequestDetailOut(RequestOut):
    events: list[EventOut] = Field(description="The audit trail, oldest first")


class CreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: str = Field(max_length=100, description="DOMAIN/NAME",
                         examples=["clinical/trial_results"])
    port: str | None = Field(default=None, max_length=64, description="Optional when the "
                             "product has one port")
    access: Access = "read"
    purpose: str = Field(max_length=MAX_PURPOSE, description="Why you need the access")
    until: dt.date = Field(description="Last day of access (after today, at most "
                           "requests.max_days ahead)")
    accept_dsa: StrictBool = Field(description="You accept the product's sharing agreement "
                                   "(GET /api/products shows it); must be the JSON value "
                                   "true (not \"yes\", \"true\" or 1)")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=MAX_REASON, description="Why; kept in the audit trail")


class PortOut(BaseModel):
    name: str
    description: str | None
    datasets: list[str]


class ProductOut(BaseModel):
    ref: str
    description: str
    owner: str
    stewards: list[str]
    classification: str
    access: str
    sharing_agreement: str
    ports: list[PortOut]


class MeOut(BaseModel):
    user: str
    display_name: str
    email: str | None
    dev: bool = Field(description="The server runs in development mode (no passwords)")


def api_actor(request: HTTPRequest,
              credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
              runtime: Annotated[Runtime, Depends(get_runtime)]) -> str:
    """The caller, as a directory user id."""
    if credentials is not None:
        return runtime.workflow.identify(runtime.throttle.verify(
            runtime.signin, credentials.username, credentials.password,
            client_address(request)))
    signed_in = session_user(request)
    if signed_in is not None:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            check_csrf(request, request.headers.get(CSRF_HEADER))
        return runtime.workflow.identify(signed_in)
    raise NotAuthenticated("sign in: HTTP Basic with a directory user, or the web page's "
                           "session")


Actor = Annotated[str, Depends(api_actor)]
Run = Annotated[Runtime, Depends(get_runtime)]
RequestId = Annotated[str, Path(max_length=40, description="req- and 8 hex digits")]

router = APIRouter(prefix="/api", tags=["access requests"])


@router.get("/me", response_model=MeOut, responses=errors(401))
def me(actor: Actor, runtime: Run) -> MeOut:
    """Who you are signed in as."""
    user = runtime.workflow.snapshot.users[actor]
    return MeOut(user=actor, display_name=user.display_name, email=user.email,
                 dev=runtime.dev)


@router.get("/products", response_model=list[ProductOut], responses=errors(401))
def products(actor: Actor, runtime: Run) -> list[ProductOut]:
    """The mesh's products with their ports, owner, stewards and sharing agreement."""
    return [ProductOut(ref=p.ref, description=p.spec.description, owner=p.spec.owner,
                       stewards=list(p.spec.stewards),
                       classification=p.spec.classification.value,
                       access=p.spec.access.value, sharing_agreement=p.spec.sharing_agreement,
                       ports=[PortOut(name=port.name, description=port.description,
                                      datasets=[d.name for d in port.datasets])
                              for port in p.spec.ports])
            for p in runtime.workflow.mesh.products]


@router.get("/requests", response_model=list[RequestOut], responses=errors(400, 401))
def list_requests(actor: Actor, runtime: Run, mine: bool = False, to_approve: bool = False,
                  status: Status | None = None,
                  product: Annotated[str | None, Query(max_length=100)] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[RequestOut]:
    """Requests, newest first: all, yours (`mine`), or those waiting for your decision
    (`to_approve`)."""
    wf = runtime.workflow
    found = wf.find(actor, mine=mine, to_approve=to_approve, status=status, product=product,
                    limit=limit)
    return [RequestOut.of(r, wf.today()) for r in found]


@router.post("/requests", status_code=201, response_model=RequestOut,
             responses=errors(400, 401, 403, 409))
def create_request(body: CreateIn, actor: Actor, runtime: Run) -> RequestOut:
    """Ask for access to a product's port, accepting its data sharing agreement."""
    wf = runtime.workflow
    created = wf.create(actor, body.product, body.port, body.access, body.purpose,
                        body.until, body.accept_dsa)
    return RequestOut.of(created, wf.today())


@router.get("/requests/{request_id}", response_model=RequestDetailOut,
            responses=errors(401, 404))
def get_request(request_id: RequestId, actor: Actor, runtime: Run) -> RequestDetailOut:
    """One request with its audit trail."""
    wf = runtime.workflow
    request, events = wf.get(request_id)
    return RequestDetailOut(**RequestOut.of(request, wf.today()).model_dump(),
                            events=[EventOut.of(e) for e in events])


def _decide(action: str, request_id: str, body: DecisionIn, actor: str,
            runtime: Runtime) -> RequestOut:
    wf = runtime.workflow
    return RequestOut.of(wf.decide(actor, request_id, action, body.reason), wf.today())


DECISION_ERRORS = errors(400, 401, 403, 404, 409)


@router.post("/requests/{request_id}/approve", response_model=RequestOut,
             responses=DECISION_ERRORS)
def approve(request_id: RequestId, body: DecisionIn, actor: Actor, runtime: Run) -> RequestOut:
    """Approve a pending request (its product's owner or a steward; never the requester)."""
    return _decide("approve", request_id, body, actor, runtime)


@router.post("/requests/{request_id}/deny", response_model=RequestOut,
             responses=DECISION_ERRORS)
def deny(request_id: RequestId, body: DecisionIn, actor: Actor, runtime: Run) -> RequestOut:
    """Deny a pending request (its product's owner or a steward; never the requester)."""
    return _decide("deny", request_id, body, actor, runtime)


@router.post("/requests/{request_id}/revoke", response_model=RequestOut,
             responses=DECISION_ERRORS)
def revoke(request_id: RequestId, body: DecisionIn, actor: Actor, runtime: Run) -> RequestOut:
    """Revoke a pending or approved request (an approver, or the requester withdrawing);
    the next apply revokes the grant."""
    return _decide("revoke", request_id, body, actor, runtime)
