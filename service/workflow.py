"""The access-request workflow, shared by ``govern request`` and ``govern serve``.

A consumer asks for access to a product's port, accepting its data sharing agreement; the
product's owner or a steward approves or denies; the requester or an approver may revoke.
This module validates the input, asks the ``govern.requests`` policy (through
:class:`~govern.service.authz.Authorizer`) whether the actor may act, applies the change in
the store (one transaction with its audit row) and then notifies. Validation errors are
:class:`InvalidRequest` (400), refusals :class:`NotAllowed` (403).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Callable

from govern.engine.mesh import Mesh
from govern.engine.requests import (TRANSITIONS, Event, InvalidRequest, NotAllowed,
                                    NotAuthenticated, Request, RequestConflict,
                                    RequestNotFound, RequestStore, utcnow)
from govern.engine.spec import PRODUCT_REF_PATTERN, ProductSpec
from govern.engine.directory import Snapshot

from .authz import Authorizer
from .notify import Notifier, NullNotifier

REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}$")
PRODUCT_REF = re.compile(PRODUCT_REF_PATTERN)
MAX_PURPOSE = 2000
MAX_REASON = 2000
SCAN_PAGE = 500  # pending requests per policy decision when listing what one may approve
SCAN_PAGES = 20  # so a to-approve listing looks at the newest 10,000 pending requests
#: what stored text may not hold: C0 and C1 controls but tab and LF, and the Unicode line
#: and paragraph separators (text is one line per LF, wherever it is shown)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def clean_text(value: str | None, what: str, max_length: int) -> str:
    """Text as stored: stripped, CRLF as LF, required, bounded, printable, valid Unicode.
    Markup and quotes are kept as typed: they are data, escaped where shown."""
    text = (value or "").replace("\r\n", "\n").strip()
    if not text:
        raise InvalidRequest(f"{what} is required")
    if len(text) > max_length:
        raise InvalidRequest(f"{what} is longer than {max_length} characters")
    if _CONTROL.search(text):
        raise InvalidRequest(f"{what} contains control characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(f"{what} is not valid Unicode text") from exc
    return text


def check_request_id(request_id: str) -> str:
    if not REQUEST_ID.fullmatch(request_id or ""):
        raise RequestNotFound(f"no request {request_id[:40]!r}")
    return request_id


@dataclass
class Workflow:
    """The rules of the workflow over one store, one mesh, one directory snapshot and one
    OPA session (all held by the caller for the workflow's lifetime)."""

    store: RequestStore
    mesh: Mesh
    snapshot: Snapshot
    authz: Authorizer
    notifier: Notifier = field(default_factory=NullNotifier)
    max_days: int = 365
    today: Callable[[], dt.date] = dt.date.today
    now: Callable[[], dt.datetime] = utcnow

    # -- who and what -----------------------------------------------------------------------
    def identify(self, user: str) -> str:
        """A directory user id (lower-cased), or NotAuthenticated."""
        uid = (user or "").strip().lower()
        if not uid or uid not in self.snapshot.users:
            raise NotAuthenticated(f"{uid[:64]!r} is not a user of the directory "
                                   f"{self.snapshot.source}")
        return uid

    def product(self, ref: str) -> ProductSpec:
        try:
            return self.mesh.product(ref).spec
        except KeyError:
            raise InvalidRequest(f"no product {ref[:100]!r} in the mesh "
                                 "(want DOMAIN/NAME)") from None

    def port_of(self, spec: ProductSpec, port: str | None) -> str:
        names = [p.name for p in spec.ports]
        if port is None:
            if len(names) == 1:
                return names[0]
            raise InvalidRequest(f"{spec.ref} has ports {', '.join(names)}: name one")
        if port not in names:
            raise InvalidRequest(f"{spec.ref} has no port {port[:64]!r} (ports: "
                                 f"{', '.join(names)})")
        return port

    def latest_until(self, today: dt.date | None = None) -> dt.date:
        """The last day a request made ``today`` may ask for (``max_days`` ahead)."""
        return (today or self.today()) + dt.timedelta(days=self.max_days)

    # -- create -----------------------------------------------------------------------------
    def create(self, actor: str, product: str, port: str | None, access: str, purpose: str,
               until: dt.date, accept_dsa: bool) -> Request:
        """A pending request by ``actor``, who has accepted the product's sharing agreement,
        for access until ``until`` (after today, at most ``max_days`` ahead)."""
        actor = self.identify(actor)
        spec = self.product(product)
        port = self.port_of(spec, port)
        if access not in ("read", "write"):
            raise InvalidRequest(f"access must be read or write, not {access[:20]!r}")
        purpose = clean_text(purpose, "purpose", MAX_PURPOSE)
        today = self.today()
        if until <= today:
            raise InvalidRequest(f"--until {until.isoformat()} is not in the future")
        latest = self.latest_until(today)
        if until > latest:
            raise InvalidRequest(f"--until {until.isoformat()} is more than {self.max_days} "
                                 f"days ahead (latest {latest.isoformat()})")
        if accept_dsa is not True:
            raise InvalidRequest(f"accept the data sharing agreement of {spec.ref} to request "
                                 f"access: {spec.sharing_agreement}")
        candidate = {"id": None, "requester": actor, "product": spec.ref, "port": port,
                     "access": access, "purpose": purpose, "status": "pending",
                     "expires": until.isoformat()}
        self.authz.check("create", actor, candidate)
        created = self.store.create(requester=actor, product=spec.ref, port=port,
                                    access=access, purpose=purpose,
                                    sharing_agreement=spec.sharing_agreement, expires=until,
                                    now=self.now())
        self.notifier.notify("create", created, actor, None)
        return created

    # -- decide -----------------------------------------------------------------------------
    def decide(self, actor: str, request_id: str, action: str, reason: str) -> Request:
        """Approve, deny or revoke, when the policy allows and the request is (still) in a
        state the action may leave from."""
        if action not in TRANSITIONS:
            raise InvalidRequest(f"unknown action {action[:20]!r}: approve, deny or revoke")
        actor = self.identify(actor)
        request = self.store.get(check_request_id(request_id))
        reason = clean_text(reason, "reason", MAX_REASON)
        self.authz.check(action, actor, request.to_dict())
        # defence in depth: the policy refuses this too, whatever it was changed into
        if action in ("approve", "deny") and actor == request.requester:
            raise NotAllowed("a requester can never approve or deny their own request")
        if action == "approve":
            if request.expired(self.today()):
                raise RequestConflict(f"request {request.id} expired on "
                                      f"{request.expires.isoformat()} before it was approved")
            spec = self.product(request.product)
            self.port_of(spec, request.port)
        decided = self.store.transition(request.id, action, actor, reason, now=self.now())
        self.notifier.notify(action, decided, actor, reason)
        return decided

    # -- read -------------------------------------------------------------------------------
    def get(self, request_id: str) -> tuple[Request, list[Event]]:
        request = self.store.get(check_request_id(request_id))
        return request, self.store.events(request.id)

    def find(self, actor: str, *, mine: bool = False, to_approve: bool = False,
             status: str | None = None, product: str | None = None,
             limit: int = 200) -> list[Request]:
        """Requests, newest first: all, the actor's own (``mine``), or the pending ones the
        actor may approve (``to_approve``)."""
        actor = self.identify(actor)
        if product is not None and not PRODUCT_REF.fullmatch(product):
            raise InvalidRequest(f"product {product[:100]!r}: want DOMAIN/NAME")
        requester = actor if mine else None
        if to_approve:
            return self._approvable_page(actor, requester, product, limit)
        return self.store.find(requester=requester, status=status, product=product,
                               limit=limit)

    def _approvable_page(self, actor: str, requester: str | None, product: str | None,
                         limit: int) -> list[Request]:
        """The newest ``limit`` pending requests the actor may approve: pending requests
        are read page by page (one policy decision per page) until ``limit`` are found,
        the store has no more, or :data:`SCAN_PAGES` pages were read."""
        found: list[Request] = []
        after = None
        for _ in range(SCAN_PAGES):
            page = self.store.find(requester=requester, status="pending", product=product,
                                   limit=SCAN_PAGE, after=after)
            ids = self.approvable(actor, page)
            found += [r for r in page if r.id in ids]
            if len(found) >= limit or len(page) < SCAN_PAGE:
                break
            after = (page[-1].created_at, page[-1].id)
        return found[:limit]

    def approvable(self, actor: str, requests: list[Request]) -> set[str]:
        if not requests:
            return set()
        return self.authz.approvable(actor, [r.to_dict() for r in requests])

    def may(self, action: str, actor: str, request: Request) -> bool:
        """Whether the actor may take the action now (to offer it on a page)."""
        if action not in TRANSITIONS or request.status not in TRANSITIONS[action][1]:
            return False
        try:
            self.authz.check(action, actor, request.to_dict())
        except NotAllowed:
            return False
        return not (action in ("approve", "deny") and actor == request.requester)
