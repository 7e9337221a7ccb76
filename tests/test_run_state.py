"""Guards that remember the last run must remember it on a fresh CI runner, and must stop a
run when their record cannot be read: the directory shrink guard's state and the audit log
live in the request store (PostgreSQL here, as in CI), not in the checkout."""

from __future__ import annotations

import shutil

import psycopg
import pytest
from sqlalchemy import text

from govern.engine.mesh import load_mesh
from govern.engine.runstate import open_state

from .conftest import assert_migration_matches
from .test_requests_store import new_pg_database


@pytest.fixture
def ci_mesh(mesh, pg_cluster):
    """The example mesh with its request store on PostgreSQL, migrated once, as in CI."""
    url = new_pg_database(pg_cluster)
    mesh.edit_yaml("govern.yaml", lambda d: d.update(requests={"url": url}))
    assert mesh.govern("request", "migrate").exit_code == 0
    return mesh


def fresh_runner(mesh, tmp_path):
    """Another checkout of the same mesh: no .govern/ folder, the same store and target."""
    clone = tmp_path / "fresh-runner"
    shutil.copytree(mesh.root, clone, ignore=shutil.ignore_patterns(".govern"))
    return type(mesh)(clone, mesh.dsn, mesh.prefix, mesh.monkeypatch)


def shrink(mesh, keep: int) -> None:
    """A directory read that came back with most users missing (a broken LDAP filter)."""
    def change(d):
        for user in sorted(d["users"])[keep:]:
            del d["users"][user]
            for group in d["groups"].values():
                if user in group["members"]:
                    group["members"].remove(user)
    mesh.edit_yaml("directory.yaml", change)


def test_the_shrink_guard_fires_on_a_fresh_runner(ci_mesh, tmp_path):
    assert ci_mesh.govern("apply", "--auto-approve").exit_code == 0
    runner = fresh_runner(ci_mesh, tmp_path)
    assert not (runner.root / ".govern").exists()
    shrink(runner, keep=3)
    before = runner.catalog()
    result = runner.govern("apply", "--auto-approve", "--allow-mass-revoke")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "3 users, down from 8 at the last successful read" in result.stderr
    assert runner.catalog() == before
    assert ci_mesh.can_read("alice", "web_engagement.page_views")


@pytest.mark.parametrize("value", ["{not json", "[]", '{"users": "many", "memberships": 3}',
                                   '{"fingerprint": "x"}'])
def test_a_corrupt_guard_record_stops_the_run(ci_mesh, value):
    assert ci_mesh.govern("plan").exit_code == 0  # records the directory
    with open_state(load_mesh(ci_mesh.root)) as state, state.store.transaction(True) as conn:
        conn.execute(text("UPDATE run_state SET value = :v WHERE key = 'directory'"),
                     {"v": value})
    shrink(ci_mesh, keep=1)
    before = ci_mesh.catalog()
    for command in (("plan",), ("apply", "--auto-approve", "--allow-mass-revoke")):
        result = ci_mesh.govern(*command)
        assert result.exit_code == 1, command
        assert result.stderr.count("\n") == 1, result.stderr
        assert "run state 'directory' in postgresql+psycopg://" in result.stderr
        assert "refusing to run without" in result.stderr
    assert ci_mesh.catalog() == before


def test_a_corrupt_legacy_state_file_stops_the_run(mesh):
    legacy = mesh.root / ".govern/directory-state.json"
    legacy.parent.mkdir(exist_ok=True)
    legacy.write_text("{truncated")
    result = mesh.govern("plan")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "directory-state.json cannot be read" in result.stderr


def test_a_store_that_is_down_stops_plan_before_anything(ci_mesh, pg_cluster):
    params = psycopg.conninfo.conninfo_to_dict(pg_cluster)
    dead = f"postgresql+psycopg://{params['user']}@127.0.0.1:1/nowhere"
    ci_mesh.edit_yaml("govern.yaml", lambda d: d.update(requests={"url": dead}))
    before = ci_mesh.catalog()
    result = ci_mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "nowhere" in result.stderr
    assert ci_mesh.catalog() == before


def test_the_audit_log_is_in_the_store_and_append_only(ci_mesh, tmp_path):
    runner = fresh_runner(ci_mesh, tmp_path)
    assert runner.govern("apply", "--auto-approve").exit_code == 0
    with open_state(load_mesh(runner.root)) as state:
        records = state.audit_records()
        assert [r["result"] for r in records] == ["started", "ok"]
        assert records[1]["statements"] and records[1]["who"]
        for statement in ("UPDATE audit_log SET result = 'ok'", "DELETE FROM audit_log"):
            with pytest.raises(Exception, match="audit_log is append-only"):
                with state.store.transaction(True) as conn:
                    conn.execute(text(statement))
    # a second runner sees the first's trail
    other = fresh_runner(ci_mesh, tmp_path / "again")
    with open_state(load_mesh(other.root)) as state:
        assert len(state.audit_records()) == 2


def test_the_migration_matches_the_tables(ci_mesh):
    from govern.engine.runstate import metadata

    with open_state(load_mesh(ci_mesh.root)) as state:
        assert_migration_matches(state.store.engine, metadata)
