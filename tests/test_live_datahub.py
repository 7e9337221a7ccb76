"""Opt-in: publish a tiny mesh to a real DataHub, twice; the second run must send nothing.

Skipped unless GOVERN_LIVE_DATAHUB_URL (GMS, e.g. http://localhost:8080) and
GOVERN_LIVE_DATAHUB_TOKEN are set. Products live in a fresh domain per run and are soft
deleted (``--prune``) at the end."""

from __future__ import annotations

import os
import time
import uuid

import pytest

URL, TOKEN = os.environ.get("GOVERN_LIVE_DATAHUB_URL"), os.environ.get("GOVERN_LIVE_DATAHUB_TOKEN")
pytestmark = pytest.mark.skipif(not (URL and TOKEN), reason="set GOVERN_LIVE_DATAHUB_URL and "
                                "GOVERN_LIVE_DATAHUB_TOKEN to run against a real DataHub")


def test_publish_twice_to_a_real_datahub(tmp_path):
    pytest.importorskip("datahub")
    from govern.engine.catalog import publish
    from govern.engine.catalog_datahub import DataHubPublisher
    from govern.engine.spec import DataHubCatalogConfig

    from .test_catalog_datahub import entry

    domain = f"govern_live_{uuid.uuid4().hex[:8]}"
    desired = {f"{domain}/source": entry(domain, "source", "source", []),
               f"{domain}/derived": entry(domain, "derived", "derived", [f"{domain}/source"])}
    config = DataHubCatalogConfig(kind="datahub", server=URL or "",
                                  token_env="GOVERN_LIVE_DATAHUB_TOKEN", timeout_seconds=30)
    publisher = DataHubPublisher.from_config(config, tmp_path)
    try:
        assert publish(publisher, desired).writes > 0
        deadline = time.monotonic() + 60  # writes are SYNC_WAIT; allow for a slow index
        while set(desired) - set(publisher.read()) and time.monotonic() < deadline:
            time.sleep(2)
        again = publish(publisher, desired)
        assert again.changes == [] and again.writes == 0
    finally:
        _prune(publisher, desired)
        publisher.close()


def _prune(publisher, desired) -> None:
    from govern.engine.catalog import CatalogChange

    current = publisher.read()
    publisher.write([CatalogChange("delete", ref) for ref in desired if ref in current])
