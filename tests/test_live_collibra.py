"""Opt-in: the Collibra publisher against a real Collibra (REST API 2.0).

Skipped unless GOVERN_LIVE_COLLIBRA_URL, GOVERN_LIVE_COLLIBRA_USER and
GOVERN_LIVE_COLLIBRA_PASSWORD are set. The user needs to create a community (or set
GOVERN_LIVE_COLLIBRA_COMMUNITY to an existing one it may add domains to), and the operating
model must hold the types the publisher names (see docs/catalogs/collibra.md). Everything is
published under a throwaway external system id and removed again at the end.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import httpx
import pytest

from govern.engine.catalog import desired_entries, publish
from govern.engine.catalog_collibra import CollibraPublisher
from govern.engine.mesh import load_mesh
from govern.engine.spec import CollibraCatalogConfig

ROOT = Path(__file__).resolve().parent.parent
URL = os.environ.get("GOVERN_LIVE_COLLIBRA_URL")
pytestmark = pytest.mark.skipif(
    not (URL and os.environ.get("GOVERN_LIVE_COLLIBRA_USER")
         and os.environ.get("GOVERN_LIVE_COLLIBRA_PASSWORD")),
    reason="set GOVERN_LIVE_COLLIBRA_URL, _USER and _PASSWORD to run against a real Collibra")


def test_publish_twice_against_a_real_collibra(tmp_path):
    run = uuid.uuid4().hex[:8]
    given = os.environ.get("GOVERN_LIVE_COLLIBRA_COMMUNITY")
    config = CollibraCatalogConfig(kind="collibra", url=URL or "",
                                   username_env="GOVERN_LIVE_COLLIBRA_USER",
                                   password_env="GOVERN_LIVE_COLLIBRA_PASSWORD",
                                   community=given or f"govern-live-{run}",
                                   external_system=f"govern-live-{run}")
    admin = httpx.Client(base_url=(URL or "").rstrip("/") + "/rest/2.0", timeout=60,
                         auth=(os.environ["GOVERN_LIVE_COLLIBRA_USER"],
                               os.environ["GOVERN_LIVE_COLLIBRA_PASSWORD"]))
    if given:
        found = admin.get("/communities", params={"name": given, "nameMatchMode": "EXACT"})
        found.raise_for_status()
        community = found.json()["results"][0]["id"]
    else:
        created = admin.post("/communities", json={"name": config.community})
        assert created.status_code == 201, created.text
        community = created.json()["id"]
    domains_before = _domains(admin, community)

    example = load_mesh(ROOT / "examples" / "mesh")
    tiny = dataclasses.replace(example, products=tuple(p for p in example.products
                                                       if p.ref == "clinical/trial_results"))
    desired = desired_entries(tiny, {}, None)
    try:
        with _publisher(config, tmp_path) as pub:
            first = publish(pub, desired)
        assert [c.action for c in first.changes] == ["create"] and first.writes > 0
        with _publisher(config, tmp_path) as pub:
            second = publish(pub, desired)
        assert (second.changes, second.writes) == ([], 0)
    finally:
        with _publisher(config, tmp_path) as pub:
            publish(pub, {}, prune=True)  # removes the assets and mappings govern created
            assert pub.read() == {}
        if not given:
            admin.delete(f"/communities/{community}").raise_for_status()
        else:
            for domain in _domains(admin, community).keys() - domains_before.keys():
                admin.delete(f"/domains/{domain}").raise_for_status()
        admin.close()


def _domains(admin: httpx.Client, community: str) -> dict[str, str]:
    answer = admin.get("/domains", params={"communityId": community, "limit": 1000})
    answer.raise_for_status()
    return {d["id"]: d["name"] for d in answer.json()["results"]}


class _publisher:
    def __init__(self, config: CollibraCatalogConfig, root: Path):
        self.pub = CollibraPublisher.from_config(config, root)

    def __enter__(self) -> CollibraPublisher:
        return self.pub

    def __exit__(self, *exc: object) -> None:
        self.pub.close()
