"""The access-request store: SQLAlchemy 2 over SQLite (the default) or PostgreSQL, its schema
kept by Alembic (``engine/migrations/``).

Two tables. ``requests`` holds one row per request in its current state; ``request_events``
is append-only (triggers refuse UPDATE and DELETE) and records who did what, when and why.
Every state change is ONE transaction: a guarded ``UPDATE … WHERE status IN (…)`` and its
event row. An update that matches no row means someone else changed the request first, so
concurrent or repeated approvals cannot double-apply, and a crash leaves either both or
neither.

The pipeline reads only :func:`store_approvals` (approved, unexpired requests as
:class:`~govern.engine.approvals.Approval` values); the workflow (who may do what, and
validation) lives in ``govern.service.workflow``.

Errors, each with the HTTP status the API answers with::

    GovernError
    └── RequestError
        ├── InvalidRequest        400  bad input: unknown product or port, date, text
        ├── NotAuthenticated      401  not signed in, or not a directory user
        ├── NotAllowed            403  the policy (govern.requests) says no
        ├── RequestNotFound       404
        ├── RequestConflict       409  not in a state that allows the action
        └── StoreUnavailable      503  the database cannot be reached or is not migrated
"""

from __future__ import annotations

import datetime as dt
import secrets
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from sqlalchemy import (CheckConstraint, Column, Date, DateTime, ForeignKey, Index, Integer,
                        MetaData, String, Table, Text, TypeDecorator, and_, create_engine,
                        event, insert, or_, select, text, update)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError

from .approvals import STATUS_WORDS, Approval
from .errors import (GovernError, InvalidRequest, NotAllowed, NotAuthenticated,  # noqa: F401
                     Problem, RequestConflict, RequestError, RequestNotFound, SpecError,
                     StoreUnavailable, first_line)
from .models import AccessLevel
from .spec import RequestsConfig

STATUSES = STATUS_WORDS  # engine.approvals: the one list of request statuses
ACTIONS = ("create", "approve", "deny", "revoke")
#: action -> (new status, statuses it may leave from)
TRANSITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "approve": ("approved", ("pending",)),
    "deny": ("denied", ("pending",)),
    "revoke": ("revoked", ("pending", "approved")),
}
DEFAULT_URL = "sqlite:///.govern/requests.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATE_LOCK = 7_340_211  # pg_advisory_xact_lock key: one migration at a time


# ---------------------------------------------------------------- values

@dataclass(frozen=True)
class Request:
    """One access request in its current state."""

    id: str
    requester: str
    product: str
    port: str
    access: str
    purpose: str
    sharing_agreement: str
    status: str
    expires: dt.date
    created_at: dt.datetime
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    reason: str | None = None

    def expired(self, today: dt.date) -> bool:
        return self.expires < today

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (dates as ISO text): the OPA input and the CLI's ``--format json``."""
        out = asdict(self)
        for key in ("expires", "created_at", "decided_at"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out

    def to_approval(self) -> Approval:
        return Approval(id=self.id, principal=self.requester, product=self.product,
                        port=self.port, access=AccessLevel(self.access), expires=self.expires,
                        status="approved")


@dataclass(frozen=True)
class Event:
    """One append-only audit row: who did what to which request, when and why."""

    seq: int
    request_id: str
    at: dt.datetime
    who: str
    action: str
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


def new_id() -> str:
    return f"req-{secrets.token_hex(4)}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ---------------------------------------------------------------- tables

class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone: stored as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the request store")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None \
            else value.astimezone(dt.timezone.utc)


metadata = MetaData()
_PENDING = text("status = 'pending'")

requests_table = Table(
    "requests", metadata,
    Column("id", String(16), primary_key=True),
    Column("requester", String(256), nullable=False),
    Column("product", String(100), nullable=False),
    Column("port", String(64), nullable=False),
    Column("access", String(8), nullable=False),
    Column("purpose", Text(), nullable=False),
    Column("sharing_agreement", Text(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires", Date(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("decided_by", String(256)),
    Column("decided_at", UTCDateTime()),
    Column("reason", Text()),
    CheckConstraint("status IN ('pending', 'approved', 'denied', 'revoked')",
                    name="ck_requests_status"),
    CheckConstraint("access IN ('read', 'write')", name="ck_requests_access"),
    Index("ix_requests_status_expires", "status", "expires"),
    Index("ix_requests_requester", "requester"),
    Index("uq_requests_one_pending", "requester", "product", "port", "access", unique=True,
          sqlite_where=_PENDING, postgresql_where=_PENDING),
)

events_table = Table(
    "request_events", metadata,
    Column("seq", Integer(), primary_key=True, autoincrement=True),
    Column("request_id", String(16), ForeignKey("requests.id"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("who", String(256), nullable=False),
    Column("action", String(16), nullable=False),
    Column("reason", Text()),
    CheckConstraint("action IN ('create', 'approve', 'deny', 'revoke')",
                    name="ck_request_events_action"),
    Index("ix_request_events_request", "request_id", "seq"),
)


def _request(row: Any) -> Request:
    m = row._mapping
    return Request(**{c.name: m[c.name] for c in requests_table.columns})


def _event(row: Any) -> Event:
    m = row._mapping
    return Event(**{c.name: m[c.name] for c in events_table.columns})


# ---------------------------------------------------------------- where the store is

def store_url(config: RequestsConfig, root: Path) -> URL:
    """The store's URL from ``requests:`` in govern.yaml; a relative SQLite path is relative
    to the mesh root, and ``postgresql://`` means the psycopg (3) driver."""
    import os

    raw = config.url or DEFAULT_URL
    if config.url_env:
        raw = os.environ.get(config.url_env) or ""
        if not raw:
            raise StoreUnavailable(f"requests.url_env: ${config.url_env} is not set")
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise SpecError([Problem("govern.yaml", "requests.url", "not a database URL "
                                 "(sqlite:///… or postgresql://…)")]) from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise SpecError([Problem("govern.yaml", "requests.url",
                                     "an in-memory SQLite store would forget every request")])
        path = Path(url.database)
        if not path.is_absolute():
            url = url.set(database=str((root / path).resolve()))
    elif backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
    else:
        raise SpecError([Problem("govern.yaml", "requests.url",
                                 f"unsupported store {backend!r}: sqlite or postgresql")])
    return url


def _engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # govern issues BEGIN itself: DDL becomes transactional and writes take the
            # lock up front (BEGIN IMMEDIATE), so two writers queue instead of deadlocking
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA foreign_keys = ON")

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_pre_ping=True,
                         connect_args={"connect_timeout": 10,
                                       "application_name": "govern-requests"})


# ---------------------------------------------------------------- the store

class RequestStore:
    """Requests and their events in one database. Thread-safe (a connection pool)."""

    def __init__(self, url: URL):
        self.url = url
        self.label = url.render_as_string(hide_password=True)
        self.engine = _engine(url)

    @classmethod
    def for_config(cls, config: RequestsConfig, root: Path, *, migrate: bool) -> "RequestStore":
        """The configured store; ``migrate`` creates or upgrades its schema, otherwise the
        schema must already be current."""
        url = store_url(config, root)
        if not migrate and url.get_backend_name() == "sqlite" \
                and not Path(url.database or "").exists():
            # a read never creates the file (SQLite would, empty, on connect)
            raise StoreUnavailable(f"request store {url.render_as_string(hide_password=True)} "
                                   "does not exist: run `govern request migrate`")
        store = cls(url)
        try:
            if migrate:
                if store.is_sqlite:
                    Path(store.url.database or "").parent.mkdir(parents=True, exist_ok=True)
                store.migrate()
            else:
                store.check_current()
        except BaseException:
            store.close()
            raise
        return store

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "RequestStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Connection]:
        """One transaction; database errors (other than integrity) become StoreUnavailable."""
        try:
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
        except IntegrityError:
            raise
        except DBAPIError as exc:
            raise StoreUnavailable(f"request store {self.label}: {first_line(exc)}") from exc

    # -- schema ------------------------------------------------------------------------------
    def _alembic(self, conn: Connection) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def head(self) -> str:
        from alembic.script import ScriptDirectory

        cfg = self._alembic(None)  # type: ignore[arg-type]
        head = ScriptDirectory.from_config(cfg).get_current_head()
        assert head is not None
        return head

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.transaction() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest revision (idempotent, one at a time)."""
        from alembic import command

        with self.transaction(write=True) as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
            command.upgrade(self._alembic(conn), "head")

    def check_current(self) -> None:
        current, head = self.revision(), self.head()
        if current != head:
            raise StoreUnavailable(f"request store {self.label} has schema {current or 'none'}, "
                                   f"govern needs {head}: run `govern request migrate`")

    # -- reads -------------------------------------------------------------------------------
    def get(self, request_id: str) -> Request:
        with self.transaction() as conn:
            row = conn.execute(select(requests_table)
                               .where(requests_table.c.id == request_id)).first()
        if row is None:
            raise RequestNotFound(f"no request {request_id}")
        return _request(row)

    def find(self, *, requester: str | None = None, status: str | None = None,
             product: str | None = None, limit: int = 500,
             after: tuple[dt.datetime, str] | None = None) -> list[Request]:
        """Newest first; ``after`` (a request's ``created_at`` and ``id``) pages on: only
        the requests that come after it in that order."""
        c = requests_table.c
        query = select(requests_table)
        if after is not None:
            at, request_id = after
            query = query.where(or_(c.created_at < at,
                                    and_(c.created_at == at, c.id > request_id)))
        if requester is not None:
            query = query.where(requests_table.c.requester == requester)
        if status is not None:
            query = query.where(requests_table.c.status == status)
        if product is not None:
            query = query.where(requests_table.c.product == product)
        query = query.order_by(requests_table.c.created_at.desc(),
                               requests_table.c.id).limit(limit)
        with self.transaction() as conn:
            return [_request(r) for r in conn.execute(query)]

    def events(self, request_id: str) -> list[Event]:
        with self.transaction() as conn:
            rows = conn.execute(select(events_table)
                                .where(events_table.c.request_id == request_id)
                                .order_by(events_table.c.seq))
            return [_event(r) for r in rows]

    def active_approvals(self, today: dt.date) -> tuple[Approval, ...]:
        """Approved requests whose expiry is today or later: what ``data.approvals`` gets."""
        query = (select(requests_table)
                 .where(requests_table.c.status == "approved",
                        requests_table.c.expires >= today)
                 .order_by(requests_table.c.id))
        with self.transaction() as conn:
            return tuple(_request(r).to_approval() for r in conn.execute(query))

    # -- writes ------------------------------------------------------------------------------
    def create(self, *, requester: str, product: str, port: str, access: str, purpose: str,
               sharing_agreement: str, expires: dt.date, now: dt.datetime | None = None
               ) -> Request:
        """A new pending request and its ``create`` event, in one transaction."""
        now = now or utcnow()
        t = requests_table
        for _ in range(5):
            request_id = new_id()
            try:
                with self.transaction(write=True) as conn:
                    duplicate = conn.execute(
                        select(t.c.id).where(t.c.requester == requester, t.c.product == product,
                                             t.c.port == port, t.c.access == access,
                                             t.c.status == "pending")).first()
                    if duplicate is not None:
                        raise RequestConflict(f"{requester} already has a pending request "
                                              f"{duplicate.id} for {access} on {product} port "
                                              f"{port}")
                    conn.execute(insert(t).values(
                        id=request_id, requester=requester, product=product, port=port,
                        access=access, purpose=purpose, sharing_agreement=sharing_agreement,
                        status="pending", expires=expires, created_at=now))
                    conn.execute(insert(events_table).values(
                        request_id=request_id, at=now, who=requester, action="create",
                        reason=None))
                    row = conn.execute(select(t).where(t.c.id == request_id)).one()
                return _request(row)
            except IntegrityError:
                # an id collision, or a duplicate created concurrently: the next attempt's
                # check tells which
                continue
        raise StoreUnavailable(f"request store {self.label}: could not insert a new request")

    def transition(self, request_id: str, action: str, who: str, reason: str | None,
                   now: dt.datetime | None = None) -> Request:
        """Apply ``action`` (approve, deny, revoke) with its event, in one transaction,
        only if the request is still in a state the action may leave from."""
        to, allowed = TRANSITIONS[action]
        now = now or utcnow()
        t = requests_table
        with self.transaction(write=True) as conn:
            result = conn.execute(update(t)
                                  .where(t.c.id == request_id, t.c.status.in_(allowed))
                                  .values(status=to, decided_by=who, decided_at=now,
                                          reason=reason))
            if result.rowcount != 1:
                row = conn.execute(select(t.c.status).where(t.c.id == request_id)).first()
                if row is None:
                    raise RequestNotFound(f"no request {request_id}")
                raise RequestConflict(f"request {request_id} is {row.status}: only a "
                                      f"{' or '.join(allowed)} request can be {to}")
            conn.execute(insert(events_table).values(request_id=request_id, at=now, who=who,
                                                     action=action, reason=reason))
            row = conn.execute(select(t).where(t.c.id == request_id)).one()
        return _request(row)


# ---------------------------------------------------------------- for the pipeline

def store_approvals(config: RequestsConfig, root: Path, today: dt.date) -> tuple[Approval, ...]:
    """The store's approved, unexpired requests. The default store (no ``requests.url``)
    that was never created has none; a configured store must exist, be reachable and be
    migrated, or the run fails (closed) rather than revoke what its approvals grant."""
    url = store_url(config, root)
    default = config.url is None and config.url_env is None
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        if default:
            return ()
        raise StoreUnavailable(f"request store {url.render_as_string(hide_password=True)} "
                               "does not exist: run `govern request migrate`")
    with RequestStore(url) as store:
        if default and store.revision() is None:
            return ()  # the default file, made but never migrated: it holds no requests
        store.check_current()
        return store.active_approvals(today)


def combine(*sources: Sequence[Approval]) -> tuple[Approval, ...]:
    """Approvals from the YAML file and from the store, sorted by id; one id twice is an
    error (explain and the plan fingerprint name approvals by id)."""
    seen: dict[str, Approval] = {}
    for source in sources:
        for approval in source:
            if approval.id in seen:
                raise SpecError([Problem("approvals", approval.id, "request id appears both "
                                         "in the approvals file and in the request store")])
            seen[approval.id] = approval
    return tuple(sorted(seen.values(), key=lambda a: a.id))
