"""The DataHub publisher, tested on what it sends: every proposal goes through the SDK's file
sink format (``write_metadata_file``) and is read back with the SDK's own reader
(``read_metadata_file``) before anything is asserted. No DataHub runs here (see
tests/test_live_datahub.py for the opt-in live suite)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import pytest

# the extra is part of `make tools` (.[dev,datahub]): a missing SDK fails here, never skips
from datahub.emitter.mce_builder import make_dataset_urn, make_tag_urn, make_user_urn
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.ingestion.sink.file import write_metadata_file
from datahub.ingestion.source.file import read_metadata_file
from datahub.metadata import schema_classes as dh

from govern.engine.catalog import CatalogError, publish
from govern.engine.catalog_datahub import DataHubPublisher, fingerprint, product_urn
from govern.engine.opa import free_port
from govern.engine.spec import DataHubCatalogConfig

HCP = make_dataset_urn("postgres", "pharma.hcp.hcp")
TRIALS = make_dataset_urn("postgres", "pharma.clinical.trial_results")
STATUS = {"discoverable": "green", "addressable": "green", "trustworthy": "amber",
          "self_describing": "green", "interoperable": "n/a", "secure": "red"}


def entry(domain: str, name: str, table: str, inputs: list[str], **more: Any) -> dict:
    """A desired document, shaped exactly like ``catalog.product_entry`` builds it."""
    doc = {
        "ref": f"{domain}/{name}", "name": name, "domain": domain,
        "description": f"The {name} product", "owner": f"{domain}-owner",
        "stewards": ["sam"], "classification": "confidential", "access": "restricted",
        "sharing_agreement": "internal", "distribution": "internal", "type": "source",
        "privacy": {"contains_pii": True, "regulations": ["gdpr"]},
        "slos": [{"name": "freshness", "target": "24h", "indicator": "age"}],
        "inputs": inputs,
        "ports": [{"name": "main", "description": "tables", "format": "table",
                   "target": "warehouse",
                   "datasets": [{"name": table, "description": f"{table} rows",
                                 "address": f"postgresql://db.example:5432/pharma/{domain}.{table}",
                                 "columns": [
                                     {"name": "id", "type": "bigint", "description": "key",
                                      "pii": False, "classification": None},
                                     {"name": "email", "type": "text", "description": "mail",
                                      "pii": True, "classification": "restricted"}]}]}],
        "fitness": {"status": STATUS, "checks": {"opaque": [1, 2]}},
    }
    doc.update(more)
    return doc


def mesh() -> dict[str, dict]:
    return {"hcp/hcp_master": entry("hcp", "hcp_master", "hcp", []),
            "clinical/trial_results": entry("clinical", "trial_results", "trial_results",
                                            ["hcp/hcp_master"])}


class FileEmitter:
    """Collects what the publisher emits, then round-trips it through the SDK's file format."""

    def __init__(self, path: Path):
        self.path = path
        self.pending: list[MetadataChangeProposalWrapper] = []

    def emit(self, item: MetadataChangeProposalWrapper) -> None:
        self.pending.append(item)

    def take(self) -> list[MetadataChangeProposalWrapper]:
        write_metadata_file(self.path, self.pending)
        self.pending = []
        back = list(read_metadata_file(self.path))
        assert all(isinstance(m, MetadataChangeProposalWrapper) for m in back)
        return back  # type: ignore[return-value]


class GraphDouble:
    """A test double of ``DataHubGraph``: an in-memory store of aspects, fed only from the
    round-tripped proposals file (so it holds exactly what was sent), answering the two calls
    the publisher makes — the customProperties search and the batch get."""

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, Any]] = {}
        self.reads = 0

    def apply(self, mcps: Iterable[MetadataChangeProposalWrapper]) -> None:
        for mcp in mcps:
            assert mcp.changeType == dh.ChangeTypeClass.UPSERT and mcp.aspect is not None
            self.entities.setdefault(mcp.entityUrn, {})[mcp.aspect.get_aspect_name()] = \
                copy.deepcopy(mcp.aspect)

    def get_urns_by_filter(self, *, entity_types: list[str], extraFilters: list[dict],
                           **_: Any) -> list[str]:
        self.reads += 1
        [rule] = extraFilters
        key, value = rule["values"][0].split("=", 1)
        out = []
        for urn, aspects in self.entities.items():
            props, status = aspects.get("dataProductProperties"), aspects.get("status")
            if urn.startswith("urn:li:dataProduct:") and props is not None \
                    and (props.customProperties or {}).get(key) == value \
                    and not (status is not None and status.removed):
                out.append(urn)
        return out

    def get_entities(self, entity_name: str, urns: list[str],
                     aspects: list[str] | None = None) -> dict[str, dict[str, Any]]:
        self.reads += 1
        return {urn: {name: (copy.deepcopy(a), None) for name, a in self.entities[urn].items()
                      if aspects is None or name in aspects}
                for urn in urns if urn in self.entities}


@pytest.fixture
def datahub(tmp_path):
    graph, emitter = GraphDouble(), FileEmitter(tmp_path / "mcps.json")

    def run(desired: dict[str, dict], prune: bool = False):
        publisher = DataHubPublisher(graph, emitter)
        result = publish(publisher, desired, prune=prune)
        sent = emitter.take()
        assert result.writes == len(sent)
        graph.apply(sent)
        return result, sent

    run.graph = graph  # type: ignore[attr-defined]
    return run


def aspects(sent: list[MetadataChangeProposalWrapper], urn: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mcp in sent:
        if mcp.entityUrn == urn:
            assert mcp.aspect is not None
            name = mcp.aspect.get_aspect_name()
            assert name not in out, f"{name} sent twice to {urn}"
            out[name] = mcp.aspect
    return out


def test_publish_maps_the_mesh_and_twice_sends_nothing(datahub):
    result, sent = datahub(mesh())
    assert {c.action for c in result.changes} == {"create"}
    assert not [m for m in sent if m.aspectName.startswith("editable")]

    domains = {m.entityUrn: m.aspect.name for m in sent if m.aspectName == "domainProperties"}
    assert domains == {"urn:li:domain:clinical": "clinical", "urn:li:domain:hcp": "hcp"}

    product = aspects(sent, product_urn("clinical/trial_results"))
    assert product_urn("clinical/trial_results") == "urn:li:dataProduct:clinical.trial_results"
    props = product["dataProductProperties"]
    assert props.name == "trial_results" and props.description == "The trial_results product"
    assert [a.destinationUrn for a in props.assets] == [TRIALS]
    custom = props.customProperties
    assert custom["govern.ref"] == "clinical/trial_results" and custom["govern.managed"] == "true"
    assert {k: custom[k] for k in ("govern.classification", "govern.access",
                                   "govern.sharing_agreement", "govern.distribution")} == {
        "govern.classification": "confidential", "govern.access": "restricted",
        "govern.sharing_agreement": "internal", "govern.distribution": "internal"}
    assert {k[len("govern.fitness."):]: v for k, v in custom.items()
            if k.startswith("govern.fitness.")} == STATUS  # statuses only, not the checks
    assert custom["govern.field.ports"] == fingerprint(mesh()["clinical/trial_results"]["ports"])
    assert product["domains"].domains == ["urn:li:domain:clinical"]
    assert product["deprecation"].deprecated is False and product["status"].removed is False

    ds = aspects(sent, TRIALS)
    assert set(ds) == {"datasetProperties", "schemaMetadata", "domains", "ownership",
                       "globalTags", "upstreamLineage", "status"}
    assert ds["datasetProperties"].description == "trial_results rows"
    fields = {f.fieldPath: f for f in ds["schemaMetadata"].fields}
    assert {p: (f.nativeDataType, f.description) for p, f in fields.items()} == {
        "id": ("bigint", "key"), "email": ("text", "mail")}
    assert isinstance(fields["id"].type.type, dh.NumberTypeClass)
    assert fields["id"].globalTags is None
    assert {t.tag for t in fields["email"].globalTags.tags} == {
        make_tag_urn("pii"), make_tag_urn("classification:restricted")}
    assert {(o.owner, o.type) for o in ds["ownership"].owners} == {
        (make_user_urn("clinical-owner"), dh.OwnershipTypeClass.BUSINESS_OWNER),
        (make_user_urn("sam"), dh.OwnershipTypeClass.DATA_STEWARD)}
    assert {t.tag for t in ds["globalTags"].tags} == {
        make_tag_urn("classification:confidential"), make_tag_urn("pii")}
    assert [u.dataset for u in ds["upstreamLineage"].upstreams] == [HCP]
    assert "upstreamLineage" not in aspects(sent, HCP)  # no inputs, no lineage

    again, sent = datahub(mesh())
    assert again.changes == [] and again.writes == 0 and sent == []


def test_a_change_sends_only_its_aspects_and_keeps_what_datahub_owns(datahub):
    datahub(mesh())
    graph = datahub.graph
    # what a steward does in DataHub's UI: an editable description, an own tag and owner
    graph.entities[TRIALS]["editableDatasetProperties"] = dh.EditableDatasetPropertiesClass(
        description="Steward's note: join on hcp_id")
    graph.entities[TRIALS]["globalTags"].tags.append(dh.TagAssociationClass(make_tag_urn("gold")))
    graph.entities[TRIALS]["ownership"].owners.append(
        dh.OwnerClass(make_user_urn("ursula"), dh.OwnershipTypeClass.TECHNICAL_OWNER))

    desired = mesh()
    desired["clinical/trial_results"].update(owner="olga", classification="restricted")
    result, sent = datahub(desired)
    assert [(c.action, sorted(c.fields)) for c in result.changes] == [
        ("update", ["classification", "owner"])]
    assert not [m for m in sent if m.aspectName.startswith("editable")]
    assert {(m.entityUrn, m.aspectName) for m in sent} == {
        (product_urn("clinical/trial_results"), "dataProductProperties"),
        (product_urn("clinical/trial_results"), "ownership"),
        (product_urn("clinical/trial_results"), "globalTags"),
        (TRIALS, "ownership"), (TRIALS, "globalTags")}
    ds = aspects(sent, TRIALS)
    assert {(o.owner, o.type) for o in ds["ownership"].owners} == {
        (make_user_urn("olga"), dh.OwnershipTypeClass.BUSINESS_OWNER),
        (make_user_urn("sam"), dh.OwnershipTypeClass.DATA_STEWARD),
        (make_user_urn("ursula"), dh.OwnershipTypeClass.TECHNICAL_OWNER)}
    assert {t.tag for t in ds["globalTags"].tags} == {
        make_tag_urn("classification:restricted"), make_tag_urn("pii"), make_tag_urn("gold")}
    assert graph.entities[TRIALS]["editableDatasetProperties"].description \
        == "Steward's note: join on hcp_id"
    assert datahub(desired)[0].writes == 0


def test_new_ports_rewrite_the_datasets_and_lineage_follows_the_inputs(datahub):
    datahub(mesh())
    desired = mesh()
    desired["clinical/trial_results"]["inputs"] = []
    desired["clinical/trial_results"]["ports"][0]["datasets"][0]["description"] = "Rows"
    result, sent = datahub(desired)
    assert [(c.action, sorted(c.fields)) for c in result.changes] == [
        ("update", ["inputs", "ports"])]
    ds = aspects(sent, TRIALS)
    assert ds["datasetProperties"].description == "Rows"
    assert ds["upstreamLineage"].upstreams == []  # govern's lineage gone
    assert datahub(desired)[0].writes == 0


def test_a_removed_product_is_deprecated_then_soft_deleted_only_when_pruned(datahub):
    datahub(mesh())
    desired = mesh()
    del desired["clinical/trial_results"]
    result, sent = datahub(desired)
    assert [(c.action, c.ref) for c in result.changes] == [("retire", "clinical/trial_results")]
    assert [(m.entityUrn, m.aspectName) for m in sent] == [
        (product_urn("clinical/trial_results"), "deprecation")]
    assert sent[0].aspect.deprecated is True and not [m for m in sent
                                                      if m.aspectName == "status"]
    assert datahub(desired)[0].writes == 0  # retired stays retired, nothing sent

    result, sent = datahub(desired, prune=True)
    assert [(c.action, c.ref) for c in result.changes] == [("delete", "clinical/trial_results")]
    assert {(m.entityUrn, m.aspectName, m.aspect.removed) for m in sent} == {
        (product_urn("clinical/trial_results"), "status", True), (TRIALS, "status", True)}
    assert datahub(desired, prune=True)[0].writes == 0


def test_a_returning_product_is_undeprecated(datahub):
    datahub(mesh())
    datahub({"hcp/hcp_master": mesh()["hcp/hcp_master"]})
    result, sent = datahub(mesh())
    assert [c.action for c in result.changes] == ["unretire"]
    assert [(m.aspectName, m.aspect.deprecated) for m in sent] == [("deprecation", False)]


def test_unreachable_datahub_is_one_line(tmp_path):
    config = DataHubCatalogConfig(kind="datahub", server=f"http://127.0.0.1:{free_port()}",
                                  timeout_seconds=0.5)
    publisher = DataHubPublisher.from_config(config, tmp_path, retries=0)
    try:
        with pytest.raises(CatalogError) as err:
            publish(publisher, mesh())
    finally:
        publisher.close()
    message = str(err.value)
    assert "\n" not in message and message.startswith("catalog: datahub http://127.0.0.1:")
    assert "refused" in message.lower()


def test_a_token_that_is_not_there_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("GOVERN_NO_SUCH_TOKEN", raising=False)
    config = DataHubCatalogConfig(kind="datahub", server="http://127.0.0.1:1",
                                  token_env="GOVERN_NO_SUCH_TOKEN")
    with pytest.raises(CatalogError, match=r"catalog\.token_env: \$GOVERN_NO_SUCH_TOKEN"):
        DataHubPublisher.from_config(config, tmp_path)


def test_the_example_mesh_as_govern_builds_it_publishes_and_settles(datahub):
    """The documents of the real example mesh (engine.catalog.desired_entries), with addresses
    as the PostgreSQL connector gives them and a fitness result as `govern fitness` writes it."""
    from govern.engine.catalog import desired_entries
    from govern.engine.mesh import load_mesh

    example = load_mesh(Path(__file__).resolve().parents[1] / "examples" / "mesh")
    addresses = {p.ref: {port.name: {d.name: f"postgresql://db.example:5432/pharma/"
                                              f"{port.location.schema_}.{d.name}"
                                     for d in port.datasets} for port in p.spec.ports}
                 for p in example.products}
    fitness = {p.ref: {"at": "2026-12-02", "status": STATUS, "cells": {}, "trend": []}
               for p in example.products}
    desired = desired_entries(example, addresses, fitness)
    result, sent = datahub(desired)
    assert len(result.changes) == len(example.products) == 5
    urns = {m.entityUrn for m in sent if m.aspectName == "schemaMetadata"}
    assert make_dataset_urn("postgres", "pharma.hcp_master.hcp") in urns
    lineage = {m.entityUrn: [u.dataset for u in m.aspect.upstreams] for m in sent
               if m.aspectName == "upstreamLineage"}
    assert make_dataset_urn("postgres", "pharma.hcp_master.hcp") in next(
        ups for urn, ups in lineage.items() if "campaign_performance" in urn)
    assert datahub(desired)[0].writes == 0
