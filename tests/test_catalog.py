"""The built-in catalog: publish is a diff, idempotent, keeps catalog-owned fields, retires,
and backs the discoverable fitness check. On SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from typing import Iterator

import psycopg
import pytest
from psycopg import sql

from govern.engine.catalog import BuiltinCatalog
from govern.engine.opa import free_port
from govern.engine.requests import RequestStore
from govern.engine.spec import RequestsConfig


@pytest.fixture(params=["sqlite", "postgresql"])
def store_mesh(request, mesh, pg_cluster):
    """The example mesh with its catalog in SQLite (default) or in a PostgreSQL database."""
    if request.param == "postgresql":
        db = f"cat_{mesh.prefix.rstrip('_')}"
        with psycopg.connect(pg_cluster, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        port = pg_cluster.split("port=")[1].split()[0]
        url = f"postgresql://postgres@127.0.0.1:{port}/{db}"
        mesh.edit_yaml("govern.yaml", lambda d: d.update(requests={"url": url}))
    return mesh


def publish(mesh, *args):
    result = mesh.govern("catalog", "publish", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@contextmanager
def builtin(mesh) -> Iterator[BuiltinCatalog]:
    """The mesh's built-in catalog, read the way a catalog UI would, closed afterwards."""
    import yaml

    config = yaml.safe_load((mesh.root / "govern.yaml").read_text()).get("requests") or {}
    store = RequestStore.for_config(RequestsConfig.model_validate(config), mesh.root,
                                    migrate=False)
    try:
        yield BuiltinCatalog(store.engine)
    finally:
        store.close()


def test_publish_twice_writes_nothing_the_second_time(store_mesh):
    first = publish(store_mesh)
    assert first["writes"] == 5
    assert {c["action"] for c in first["changes"]} == {"create"}
    again = publish(store_mesh)
    assert again == {"dry_run": False, "writes": 0, "changes": []}


def test_dry_run_shows_fields_and_writes_nothing(store_mesh):
    publish(store_mesh)
    path = store_mesh.root / "products/hcp/hcp_master/product.yaml"
    path.write_text(path.read_text().replace("owner: hcp-stewards", "owner: heidi"))
    dry = publish(store_mesh, "--dry-run")
    assert dry["changes"] == [{"action": "update", "ref": "hcp/hcp_master",
                               "fields": ["owner"]}] and dry["writes"] == 0
    with builtin(store_mesh) as cat:
        assert cat.read()["hcp/hcp_master"].doc["owner"] == "hcp-stewards"


def test_a_field_the_catalog_owns_survives_publish(store_mesh):
    publish(store_mesh)
    with builtin(store_mesh) as cat:
        cat.edit_extra("hcp/hcp_master", "description", "Steward's note: use hcp_id to join")
    path = store_mesh.root / "products/hcp/hcp_master/product.yaml"
    path.write_text(path.read_text().replace("Golden record", "The golden record"))
    assert publish(store_mesh)["writes"] == 1
    with builtin(store_mesh) as cat:
        entry = cat.read()["hcp/hcp_master"]
        assert entry.extra == {"description": "Steward's note: use hcp_id to join"}
        assert entry.doc["description"].startswith("The golden record")
        assert cat.search("steward") == ["hcp/hcp_master"]


def test_search_finds_a_product_by_a_column_name(store_mesh):
    publish(store_mesh)
    with builtin(store_mesh) as cat:
        assert cat.search("specialty") == ["hcp/hcp_master"]  # a column of hcp_master.hcp
        assert set(cat.search("hcp")) >= {"hcp/hcp_master"}
        assert cat.search('"; DROP TABLE catalog_entries; --') == []
        assert cat.search("nothing-matches-this") == []


def test_a_removed_product_is_retired_not_deleted_unless_pruned(store_mesh):
    publish(store_mesh)
    shutil.rmtree(store_mesh.root / "products/digital")
    assert publish(store_mesh)["changes"] == [
        {"action": "retire", "ref": "digital/web_engagement", "fields": []}]
    with builtin(store_mesh) as cat:
        entry = cat.read()["digital/web_engagement"]
        assert entry.retired and cat.search("page_views") == []
    assert publish(store_mesh)["writes"] == 0
    assert publish(store_mesh, "--prune")["changes"] == [
        {"action": "delete", "ref": "digital/web_engagement", "fields": []}]
    with builtin(store_mesh) as cat:
        assert "digital/web_engagement" not in cat.read()


def test_discoverable_follows_the_catalog(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    publish(mesh)
    result = mesh.govern("fitness", "--format", "json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0
    assert {ref: row["discoverable"]["status"] for ref, row in report["products"].items()} == {
        ref: "green" for ref in report["products"]}
    # a new product not published yet: red, with the reason
    shutil.copytree(mesh.root / "products/digital/web_engagement",
                    mesh.root / "products/digital/web_sessions")
    for name in ("product.yaml", "policy.rego", "policy_test.rego"):
        path = mesh.root / "products/digital/web_sessions" / name
        path.write_text(path.read_text().replace("web_engagement", "web_sessions"))
    report = json.loads(mesh.govern("fitness", "--format", "json").stdout)
    cell = report["products"]["digital/web_sessions"]["discoverable"]
    assert cell["status"] == "red"
    assert cell["checks"][0]["reason"].startswith("not published in the catalog")


def test_a_catalog_that_is_down_fails_publish_and_makes_discoverable_amber(mesh):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    mesh.edit_yaml("govern.yaml", lambda d: d.update(requests={"url": url}))
    result = mesh.govern("catalog", "publish")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "nowhere" in result.stderr
    report = json.loads(mesh.govern("fitness", "--format", "json").stdout)
    assert len(report["products"]) == 5  # the loop below is over every product
    for row in report["products"].values():
        assert row["discoverable"]["status"] == "amber"
        assert row["discoverable"]["checks"][0]["reason"].startswith("catalog unavailable: ")


@pytest.mark.parametrize("kind", ["collibra", "datahub"])
def test_an_external_catalog_that_is_down_fails_publish_and_dry_run_and_is_amber(
        mesh, monkeypatch, kind):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("CATALOG_USER", "govern")
    monkeypatch.setenv("CATALOG_SECRET", "secret")
    config = ({"kind": "collibra", "url": url, "username_env": "CATALOG_USER",
               "password_env": "CATALOG_SECRET", "timeout_seconds": 2}
              if kind == "collibra" else
              {"kind": "datahub", "server": url, "token_env": "CATALOG_SECRET",
               "timeout_seconds": 2, "retries": 0})
    mesh.edit_yaml("govern.yaml", lambda d: d.update(catalog=config))
    for args in ((), ("--dry-run",)):
        result = mesh.govern("catalog", "publish", *args)
        assert result.exit_code == 1, result.stdout
        assert result.stderr.count("\n") == 1 and f"catalog: {kind}" in result.stderr
    report = json.loads(mesh.govern("fitness", "--format", "json").stdout)
    assert len(report["products"]) == 5  # the loop below is over every product
    for row in report["products"].values():
        assert row["discoverable"]["status"] == "amber"
        assert kind in row["discoverable"]["checks"][0]["reason"]


def test_search_says_where_to_search_when_the_mesh_publishes_elsewhere(mesh):
    mesh.edit_yaml("govern.yaml", lambda d: d.update(
        catalog={"kind": "collibra", "url": "https://acme.collibra.example"}))
    result = mesh.govern("catalog", "search", "specialty")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("this mesh publishes to collibra (catalog.kind): "
                                          "search there")


def test_search_from_the_command_line_takes_control_characters_as_spaces(store_mesh):
    publish(store_mesh)
    result = store_mesh.govern("catalog", "search", "hcp\x00master")
    assert result.exit_code == 0, result.output
    assert "hcp/hcp_master" in result.stdout
