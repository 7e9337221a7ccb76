"""Shared fixtures: the real OPA binary, a throwaway PostgreSQL cluster, and a copy of the
example mesh wired to its own database and its own managed prefix per test."""

from __future__ import annotations

import glob
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from click.testing import CliRunner, Result
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mesh"
sys.path.insert(0, str(ROOT / "scripts"))

import pgcluster  # noqa: E402
import slapdserver  # noqa: E402

from govern.cli.main import cli  # noqa: E402


@pytest.fixture(scope="session")
def pg_folder():
    """The throwaway cluster's folder (data, socket, server log)."""
    # not under pytest's tmp folder: that one is private to us, and the server runs as postgres
    folder = Path(tempfile.mkdtemp(prefix="govern-pg-"))
    try:
        pgcluster.start(folder)
        yield folder
    finally:
        pgcluster.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster(pg_folder):
    return pgcluster.dsn(pg_folder)


@pytest.fixture(scope="session")
def slapd():
    folder = Path(tempfile.mkdtemp(prefix="govern-slapd-"))
    try:
        yield slapdserver.start(folder), folder
    finally:
        slapdserver.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def assert_migration_matches(engine, metadata) -> None:
    """The tables of ``metadata`` are exactly what the migrations made (columns, types,
    indexes), compared by Alembic on the live database."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    ours = set(metadata.tables)

    def include_name(name, type_, parent_names) -> bool:
        return type_ != "table" or name in ours

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        assert compare_metadata(context, metadata) == []


def dsn_for(cluster_dsn: str, dbname: str) -> str:
    return cluster_dsn.replace("dbname=postgres", f"dbname={dbname}")


CATALOG_QUERY = """
SELECT 'role', rolname, rolcanlogin::text, NULL FROM pg_roles
UNION ALL
SELECT 'member', r.rolname, m.rolname, NULL FROM pg_auth_members am
  JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
UNION ALL
SELECT 'acl', n.nspname || '.' || c.relname, COALESCE(c.relacl::text, ''), NULL
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
UNION ALL
SELECT 'nspacl', nspname, COALESCE(nspacl::text, ''), NULL FROM pg_namespace
"""


@dataclass
class MeshRun:
    """A copy of the example mesh in tmp, with its own database and managed prefix."""

    root: Path
    dsn: str
    prefix: str
    monkeypatch: pytest.MonkeyPatch

    def govern(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--mesh", str(self.root), *args], catch_exceptions=False)

    def edit_yaml(self, relative: str, change) -> None:
        path = self.root / relative
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    def add_namespace(self, domain: str, *schemas: str, target: str = "warehouse") -> None:
        """Let ``domain``'s ports live in exactly these schemas (glob characters escaped)."""
        def change(d):
            entry = d.setdefault("domains", {}).setdefault(domain, {})
            entry.setdefault("namespaces", {}).setdefault(target, []).extend(
                glob.escape(s) for s in schemas)
        self.edit_yaml("govern.yaml", change)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def catalog(self) -> set[tuple]:
        """Every role, membership and ACL in the cluster: compare before/after a run."""
        with self.connect() as conn:
            return set(conn.execute(CATALOG_QUERY).fetchall())

    def can(self, user: str, statement: str) -> bool:
        """Whether ``user`` may run ``statement`` (SET ROLE, then rolled back)."""
        with psycopg.connect(self.dsn) as conn:
            try:
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(user)))
                conn.execute(statement)
                return True
            except psycopg.errors.InsufficientPrivilege:
                return False
            finally:
                conn.rollback()

    def can_read(self, user: str, table: str) -> bool:
        return self.can(user, f"SELECT * FROM {table} LIMIT 1")


@pytest.fixture
def mesh(tmp_path: Path, pg_cluster: str, monkeypatch: pytest.MonkeyPatch) -> MeshRun:
    root = tmp_path / "mesh"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".govern"))
    tag = uuid.uuid4().hex[:8]
    dbname, prefix = f"t_{tag}", f"t{tag}_"
    with psycopg.connect(pg_cluster, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    dsn = dsn_for(pg_cluster, dbname)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((root / "seed.sql").read_text())
        # the store's own login roles for every directory user (cluster-wide, so shared)
        for user in yaml.safe_load((root / "directory.yaml").read_text())["users"]:
            try:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(user)))
            except psycopg.errors.DuplicateObject:
                pass
    run = MeshRun(root, dsn, prefix, monkeypatch)
    run.edit_yaml("govern.yaml", lambda d: d.update(managed_prefix=prefix))
    monkeypatch.setenv("GOVERN_WAREHOUSE_DSN", dsn)
    return run
