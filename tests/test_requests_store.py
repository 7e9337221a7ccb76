"""The access-request store on SQLite and on a real PostgreSQL: migrations, guarded state
changes with their audit rows, append-only events, and what the pipeline reads from it.

The fixtures here (a store URL per backend, a mesh copy wired to it) are shared by the other
test_requests* / test_serve* / test_browser* modules.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql
from sqlalchemy import text

from govern.engine import pipeline
from govern.engine.errors import SpecError
from govern.engine.requests import (RequestConflict, RequestNotFound, RequestStore,
                                    StoreUnavailable, combine, metadata, store_approvals,
                                    store_url)
from govern.engine.spec import RequestsConfig

from .conftest import EXAMPLE

TODAY = dt.date.today()
FUTURE = TODAY + dt.timedelta(days=90)
HOSTILE = "x'); DROP TABLE requests; -- <script>alert('pwned')</script> & \"quotes\""


def pg_url(cluster_dsn: str, dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(cluster_dsn)
    return (f"postgresql+psycopg://{params['user']}@{params['host']}:{params['port']}/"
            f"{dbname}")


def new_pg_database(cluster_dsn: str) -> str:
    """A fresh database on the test cluster; its SQLAlchemy URL."""
    dbname = f"req_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cluster_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return pg_url(cluster_dsn, dbname)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_config(request, tmp_path) -> RequestsConfig:
    """A request store on each backend (a file under tmp, or a fresh PostgreSQL database)."""
    if request.param == "sqlite":
        return RequestsConfig(url=f"sqlite:///{tmp_path / 'requests.db'}")
    return RequestsConfig(url=new_pg_database(request.getfixturevalue("pg_cluster")))


@pytest.fixture
def store(store_config, tmp_path):
    with RequestStore.for_config(store_config, tmp_path, migrate=True) as s:
        yield s


def copy_mesh(tmp_path: Path, store: str | None = None) -> Path:
    """The example mesh in tmp (no store target needed to serve requests), with its request
    store at ``store`` (default: SQLite under the copy's .govern/)."""
    root = tmp_path / "mesh"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".govern"))
    if store:
        path = root / "govern.yaml"
        data = yaml.safe_load(path.read_text())
        data["requests"] = {"url": store}
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def make(store: RequestStore, requester: str = "bob", **overrides):
    values = dict(requester=requester, product="clinical/trial_results", port="results",
                  access="read", purpose="Safety review", sharing_agreement="DSA v1",
                  expires=FUTURE)
    values.update(overrides)
    return store.create(**values)


# ---------------------------------------------------------------- schema

def test_migrations_are_idempotent_and_match_the_tables(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store.migrate()  # again: nothing to do
    store.check_current()
    assert store.revision() == store.head()
    ours = set(metadata.tables)  # other revisions may add their own tables to the database

    def include_name(name, type_, parent_names) -> bool:
        return type_ != "table" or name in ours

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diffs = compare_metadata(context, metadata)
    assert diffs == []


def test_unmigrated_store_is_refused(tmp_path):
    db = tmp_path / "empty.db"
    db.write_bytes(b"")
    config = RequestsConfig(url=f"sqlite:///{db}")
    with pytest.raises(StoreUnavailable, match="govern request migrate"):
        store_approvals(config, tmp_path, TODAY)
    # the default file, created empty (by another command) but never migrated, holds none
    default = tmp_path / ".govern" / "requests.db"
    default.parent.mkdir()
    default.write_bytes(b"")
    assert store_approvals(RequestsConfig(), tmp_path, TODAY) == ()


def test_a_store_never_created_has_no_approvals_and_is_not_created(tmp_path):
    assert store_approvals(RequestsConfig(), tmp_path, TODAY) == ()
    assert not (tmp_path / ".govern" / "requests.db").exists()
    # but a store named in govern.yaml must be there (a fresh CI checkout, a wrong path)
    configured = RequestsConfig(url="sqlite:///shared/requests.db")
    with pytest.raises(StoreUnavailable, match="does not exist"):
        store_approvals(configured, tmp_path, TODAY)
    assert not (tmp_path / "shared").exists()
    with pytest.raises(StoreUnavailable, match="does not exist"):
        RequestStore.for_config(RequestsConfig(), tmp_path, migrate=False)
    assert not (tmp_path / ".govern" / "requests.db").exists()


def test_unreachable_postgres_fails_closed(tmp_path):
    from govern.engine.opa import free_port

    config = RequestsConfig(url=f"postgresql://nobody@127.0.0.1:{free_port()}/x")
    with pytest.raises(StoreUnavailable, match="request store postgresql"):
        store_approvals(config, tmp_path, TODAY)


def test_store_urls(tmp_path, monkeypatch):
    assert store_url(RequestsConfig(), tmp_path).database == \
        str((tmp_path / ".govern/requests.db").resolve())
    assert store_url(RequestsConfig(url="postgresql://u:pw@h/db"), tmp_path).drivername == \
        "postgresql+psycopg"
    for bad in ("sqlite://", "sqlite:///:memory:", "mysql://h/db", "not a url"):
        with pytest.raises(SpecError):
            store_url(RequestsConfig(url=bad), tmp_path)
    monkeypatch.delenv("REQ_URL", raising=False)
    with pytest.raises(StoreUnavailable, match=r"\$REQ_URL"):
        store_url(RequestsConfig(url_env="REQ_URL"), tmp_path)
    monkeypatch.setenv("REQ_URL", "postgresql://u:secret@h/db")
    store = RequestStore(store_url(RequestsConfig(url_env="REQ_URL"), tmp_path))
    assert "secret" not in store.label
    store.close()


# ---------------------------------------------------------------- state changes

def test_create_stores_text_verbatim_with_its_event(store):
    created = make(store, purpose=HOSTILE)
    assert created.id.startswith("req-") and len(created.id) == 12
    assert created.status == "pending" and created.purpose == HOSTILE
    assert created.created_at.tzinfo is not None
    assert store.get(created.id) == created
    [event] = store.events(created.id)
    assert (event.who, event.action, event.reason) == ("bob", "create", None)


def test_transitions_are_guarded_and_each_has_one_event(store):
    r = make(store)
    approved = store.transition(r.id, "approve", "dave", HOSTILE)
    assert (approved.status, approved.decided_by, approved.reason) == ("approved", "dave", HOSTILE)
    with pytest.raises(RequestConflict, match="is approved"):
        store.transition(r.id, "approve", "dave", "again")
    with pytest.raises(RequestConflict):
        store.transition(r.id, "deny", "dave", "too late")
    assert store.transition(r.id, "revoke", "bob", "done").status == "revoked"
    with pytest.raises(RequestConflict):
        store.transition(r.id, "revoke", "bob", "twice")
    assert [e.action for e in store.events(r.id)] == ["create", "approve", "revoke"]
    with pytest.raises(RequestNotFound):
        store.transition("req-00000000", "approve", "dave", "x")


def test_one_pending_request_per_requester_product_port_and_access(store):
    first = make(store)
    with pytest.raises(RequestConflict, match=first.id):
        make(store)
    make(store, access="write")  # another access level is another request
    store.transition(first.id, "deny", "dave", "no")
    make(store)  # once decided, a new one may be asked


def test_concurrent_approvals_apply_exactly_once(store):
    r = make(store)
    results: list[str] = []
    barrier = threading.Barrier(6)

    def approve(who: str) -> None:
        barrier.wait()
        try:
            store.transition(r.id, "approve", who, f"by {who}")
            results.append("ok")
        except RequestConflict:
            results.append("conflict")

    threads = [threading.Thread(target=approve, args=(f"user{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 5 + ["ok"]
    assert [e.action for e in store.events(r.id)].count("approve") == 1


def test_events_are_append_only(store):
    r = make(store)
    for statement in ("UPDATE request_events SET who = 'mallory'", "DELETE FROM request_events"):
        with pytest.raises(Exception, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(text(statement))
    assert [e.who for e in store.events(r.id)] == ["bob"]


def test_active_approvals_are_approved_and_unexpired(store):
    live = make(store, requester="bob")
    store.transition(live.id, "approve", "dave", "ok")
    last_day = make(store, requester="frank", expires=TODAY)
    store.transition(last_day.id, "approve", "dave", "ok")
    pending = make(store, requester="alice")
    denied = make(store, requester="erin")
    store.transition(denied.id, "deny", "dave", "no")
    active = store.active_approvals(TODAY)
    assert {a.id for a in active} == {live.id, last_day.id}
    assert {a.principal for a in active} == {"bob", "frank"}
    assert {a.id for a in store.active_approvals(TODAY + dt.timedelta(days=1))} == {live.id}
    assert pending.id not in {a.id for a in active}
    assert active[0].to_data()["expires"] in (FUTURE.isoformat(), TODAY.isoformat())


def test_list_filters(store):
    a = make(store, requester="bob")
    b = make(store, requester="frank", product="hcp/hcp_master", port="curated")
    store.transition(b.id, "approve", "heidi", "ok")
    assert {r.id for r in store.find()} == {a.id, b.id}
    assert [r.id for r in store.find(requester="frank")] == [b.id]
    assert [r.id for r in store.find(status="pending")] == [a.id]
    assert [r.id for r in store.find(product="hcp/hcp_master")] == [b.id]


# ---------------------------------------------------------------- into the pipeline

def test_pipeline_combines_the_file_and_the_store(tmp_path, pg_cluster):
    url = new_pg_database(pg_cluster)
    root = copy_mesh(tmp_path, url)
    with RequestStore.for_config(RequestsConfig(url=url), root, migrate=True) as s:
        r = make(s, requester="grace")
        s.transition(r.id, "approve", "dave", "ok")
        expired = make(s, requester="alice", expires=TODAY + dt.timedelta(days=2))
        s.transition(expired.id, "approve", "dave", "ok")
    ids = {a.id for a in pipeline.load_inputs(root).approvals}
    assert ids == {"req-1", "req-4", r.id, expired.id}  # req-1, req-4 from approvals.yaml
    later = pipeline.load_inputs(root, today=TODAY + dt.timedelta(days=3)).approvals
    assert {a.id for a in later} == {"req-1", "req-4", r.id}


def test_one_id_in_the_file_and_the_store_is_an_error():
    from govern.engine.approvals import Approval

    a = Approval(id="req-00000001", principal="bob", product="a/b", port="p", expires=FUTURE)
    with pytest.raises(SpecError, match="both"):
        combine([a], [a])
