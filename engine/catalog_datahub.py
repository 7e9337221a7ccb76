"""Publishing the mesh to DataHub, through DataHub's own Python SDK (``govern[datahub]``).

One DataHub domain per mesh domain (``urn:li:domain:<domain>``), one data product per product
(``urn:li:dataProduct:<domain>.<name>``) whose assets are the product's datasets, and one
dataset per dataset address (``postgresql://host:port/db/schema.table`` → platform
``postgres``, name ``db.schema.table``, the urn DataHub's own PostgreSQL ingestion uses).

What govern writes, every proposal an UPSERT built with ``MetadataChangeProposalWrapper``:
- data product: ``dataProductProperties`` (name, description, ``govern.*`` custom properties,
  among them ``govern.field.<field>`` = sha256 of each field's canonical JSON, which is what
  :meth:`DataHubPublisher.read` gives back and :meth:`comparable` computes), ``domains``,
  ``ownership``, ``globalTags``, ``status``, ``deprecation`` (retire / unretire);
- dataset: ``datasetProperties``, ``schemaMetadata`` (columns, with descriptions and field
  tags), ``domains``, ``ownership``, ``globalTags``, ``upstreamLineage``, ``status``.

govern never writes an ``editable*`` aspect (what a steward edits in DataHub's UI), nor
``glossaryTerms``. In ``ownership``, ``globalTags``, ``upstreamLineage`` and the data product's
assets and custom properties it replaces only its own entries (marked: owner source url
``govern``, tag context ``govern:*``, upstream / asset property ``govern``, key ``govern.*``)
and keeps the rest, read in one batch per entity type before writing. Retire = deprecation,
delete (``--prune``) = soft delete (``status.removed``) of the data product and its datasets.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence
from urllib.parse import urlsplit

from .catalog import CatalogChange, CatalogError, Current
from .catalog import field_fingerprint as fingerprint
from .errors import first_line
from .secrets import read_secret

try:
    from datahub.emitter.mce_builder import (make_data_product_urn, make_dataset_urn,
                                             make_domain_urn, make_tag_urn, make_user_urn)
    from datahub.emitter.mcp import MetadataChangeProposalWrapper as MCP
    from datahub.metadata import schema_classes as dh
    from datahub.metadata.urns import DatasetUrn
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise CatalogError("catalog: kind datahub needs the optional extra: "
                       "pip install 'govern[datahub]'") from exc

MANAGED = "govern.managed"
REF = "govern.ref"
FIELD = "govern.field."
ACTOR = make_user_urn("govern")
OWNED = dh.OwnershipSourceClass(type=dh.OwnershipSourceTypeClass.SERVICE, url="govern")
PRODUCT_ASPECTS = ["dataProductProperties", "domains", "ownership", "globalTags", "deprecation"]
DATASET_ASPECTS = ["ownership", "globalTags", "upstreamLineage"]
PLATFORMS = {"postgresql": "postgres", "postgres": "postgres"}


class Graph(Protocol):
    """What govern asks of DataHub (``DataHubGraph`` in production, a double in tests)."""

    def get_urns_by_filter(self, **kwargs: Any) -> Iterable[str]: ...

    def get_entities(self, entity_name: str, urns: list[str],
                     aspects: list[str] | None = None) -> dict[str, dict[str, Any]]: ...


class Emitter(Protocol):
    def emit(self, item: Any) -> Any: ...


def product_urn(ref: str) -> str:
    return make_data_product_urn(ref.replace("/", "."))


def dataset_urn(address: str | None) -> str | None:
    """The urn of a dataset address; None when the store does not know the address."""
    if not address:
        return None
    url = urlsplit(address)
    parts = [p for p in url.path.split("/") if p]
    if not url.scheme or not parts:
        return None
    return make_dataset_urn(PLATFORMS.get(url.scheme, url.scheme), ".".join(parts))


def _datasets(doc: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(urn, port name, dataset) of every dataset with an address."""
    out = []
    for port in doc.get("ports") or []:
        for ds in port.get("datasets") or []:
            urn = dataset_urn(ds.get("address"))
            if urn:
                out.append((urn, port["name"], ds))
    return out


def _field_type(native: str) -> dh.SchemaFieldDataTypeClass:
    t = native.lower()
    kind: Any
    if t.endswith("[]"):
        kind = dh.ArrayTypeClass()
    elif t.startswith(("bool",)):
        kind = dh.BooleanTypeClass()
    elif t.startswith(("int", "bigint", "smallint", "numeric", "decimal", "real", "double",
                       "float", "serial", "bigserial", "money")):
        kind = dh.NumberTypeClass()
    elif t == "date":
        kind = dh.DateTypeClass()
    elif t.startswith(("timestamp", "time", "interval")):
        kind = dh.TimeTypeClass()
    elif t.startswith(("bytea",)):
        kind = dh.BytesTypeClass()
    else:
        kind = dh.StringTypeClass()
    return dh.SchemaFieldDataTypeClass(type=kind)


def _tag(name: str, context: str) -> dh.TagAssociationClass:
    return dh.TagAssociationClass(tag=make_tag_urn(name), context=context)


def _is_ours(item: Any) -> bool:
    if isinstance(item, dh.OwnerClass):
        return item.source is not None and item.source.url == "govern"
    if isinstance(item, dh.TagAssociationClass):
        return (item.context or "").startswith("govern:")
    return bool((getattr(item, "properties", None) or {}).get("govern"))


def _merge(current: Sequence[Any], ours: Sequence[Any],
           replaced: Callable[[Any], bool] = _is_ours) -> list[Any]:
    """Everything in ``current`` govern does not (re)place, then govern's own entries."""
    return [item for item in current if not replaced(item)] + list(ours)


class DataHubPublisher:
    """The Publisher for DataHub; ``graph`` reads, ``emitter`` writes (both injectable)."""

    name = "datahub"

    def __init__(self, graph: Graph, emitter: Emitter, server: str = "datahub",
                 on_close: Callable[[], None] | None = None):
        self.graph = graph
        self.emitter = emitter
        self.server = server
        self.writes = 0
        self._on_close = on_close
        self._products: dict[str, dict[str, Any]] = {}  # ref -> aspects, from the last read

    @classmethod
    def from_config(cls, config: Any, root: Path, *,
                    retries: int | None = None) -> "DataHubPublisher":
        """``DataHubGraph`` (itself a ``DatahubRestEmitter``) on ``config.server``; writes are
        synchronous (``SYNC_WAIT``: stored and indexed before the call returns), so a second
        publish right after the first reads what the first wrote."""
        from datahub.emitter.emit_mode import EmitMode
        from datahub.ingestion.graph.client import DataHubGraph, DatahubClientConfig

        token = read_secret(config.token_env, config.token_file, root, "catalog.token",
                            CatalogError)
        graph = DataHubGraph(DatahubClientConfig(
            server=config.server, token=token, timeout_sec=config.timeout_seconds,
            retry_max_times=config.retries if retries is None else retries,
            default_emit_mode=EmitMode.SYNC_WAIT))
        return cls(graph, graph, config.server, on_close=graph.close)

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except CatalogError:
            raise
        except Exception as exc:  # requests / SDK errors: one line, at the edge
            raise CatalogError(f"catalog: datahub {self.server}: {what}: "
                               f"{first_line(exc)}") from exc

    # ------------------------------------------------------------------ read

    def comparable(self, field: str, value: Any) -> str | None:
        return None if value is None else fingerprint(value)

    def read(self) -> dict[str, Current]:
        """Every data product govern published (one search, one batch get)."""
        def fetch() -> dict[str, dict[str, Any]]:
            urns = list(self.graph.get_urns_by_filter(
                entity_types=["dataProduct"],
                extraFilters=[{"field": "customProperties", "condition": "EQUAL",
                               "values": [f"{MANAGED}=true"]}]))
            return self.graph.get_entities("dataProduct", urns, PRODUCT_ASPECTS) \
                if urns else {}

        entities = self._call("read", fetch)
        self._products = {}
        out: dict[str, Current] = {}
        for entity in entities.values():
            aspects = {name: pair[0] for name, pair in entity.items()}
            props = aspects.get("dataProductProperties")
            custom = (props.customProperties or {}) if props else {}
            ref = custom.get(REF)
            if not ref or custom.get(MANAGED) != "true":
                continue
            self._products[ref] = aspects
            dep = aspects.get("deprecation")
            out[ref] = Current(
                doc={k[len(FIELD):]: v for k, v in custom.items() if k.startswith(FIELD)},
                retired=bool(dep and dep.deprecated and dep.actor == ACTOR))
        return out

    # ------------------------------------------------------------------ write

    def write(self, changes: Sequence[CatalogChange]) -> int:
        if not changes:
            return 0
        missing = [c.ref for c in changes if c.action != "create" and c.ref not in self._products]
        if missing:
            self.read()
        batch = {c.ref: c.fields for c in changes if c.action in ("create", "update")}
        datasets = sorted({urn for ref, fields in batch.items()
                           for urn in self._asset_urns(ref, fields)}
                          | {urn for c in changes if c.action == "delete"
                             for urn in self._assets_now(c.ref, {})})
        domains = sorted({make_domain_urn(c.fields["domain"]) for c in changes
                          if c.fields.get("domain")})
        current_ds = self._call("read datasets", lambda: self.graph.get_entities(
            "dataset", datasets, DATASET_ASPECTS)) if datasets else {}
        known_domains = self._call("read domains", lambda: self.graph.get_entities(
            "domain", domains, ["domainProperties"])) if domains else {}
        mcps: list[MCP] = []
        for urn in domains:
            if "domainProperties" not in known_domains.get(urn, {}):
                mcps.append(MCP(entityUrn=urn, aspect=dh.DomainPropertiesClass(
                    name=urn.rsplit(":", 1)[1])))
        for change in changes:
            mcps += self._proposals(change, batch, current_ds)
        emit_mcps = getattr(self.emitter, "emit_mcps", None)
        if emit_mcps is not None:
            self._call("write", lambda: emit_mcps(mcps))
        else:
            for mcp in mcps:
                self._call("write", lambda mcp=mcp: self.emitter.emit(mcp))
        self.writes += len(mcps)
        return len(mcps)

    def _asset_urns(self, ref: str, fields: Mapping[str, Any]) -> list[str]:
        """The product's datasets, new (when its ports change) and published."""
        new = [urn for urn, _, _ in _datasets(fields)] if "ports" in fields else []
        return list(dict.fromkeys(new + self._assets_now(ref, {})))

    def _assets_now(self, ref: str, batch: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """The product's datasets once this write is done: from its new ports when this batch
        changes them, else the assets govern published (none for a product not published)."""
        fields = batch.get(ref) or {}
        if "ports" in fields:
            return list(dict.fromkeys(urn for urn, _, _ in _datasets(fields)))
        props = self._products.get(ref, {}).get("dataProductProperties")
        return [a.destinationUrn for a in (props.assets or []) if _is_ours(a)] if props else []

    def _proposals(self, change: CatalogChange, batch: Mapping[str, Mapping[str, Any]],
                   current_ds: Mapping[str, Mapping[str, Any]]) -> list[MCP]:
        ref, urn, fields = change.ref, product_urn(change.ref), change.fields
        now = self._products.get(ref, {}) if change.action != "create" else {}
        if change.action in ("retire", "unretire"):
            return [MCP(entityUrn=urn, aspect=dh.DeprecationClass(
                deprecated=change.action == "retire", actor=ACTOR,
                note="removed from the mesh (govern)" if change.action == "retire" else ""))]
        if change.action == "delete":
            return [MCP(entityUrn=u, aspect=dh.StatusClass(removed=True))
                    for u in [urn, *self._assets_now(ref, {})]]
        if change.action not in ("create", "update"):
            raise CatalogError(f"catalog: unknown change {change.action!r}")

        out: list[MCP] = []
        props = self._product_properties(ref, fields, now.get("dataProductProperties"))
        out.append(MCP(entityUrn=urn, aspect=props))
        custom = props.customProperties or {}

        domain = self._aspect_if("domain", fields, now, "domains", lambda: dh.DomainsClass(
            domains=[make_domain_urn(fields["domain"])]))
        owners = self._aspect_if(("owner", "stewards"), fields, now, "ownership",
                                 lambda: dh.OwnershipClass(owners=self._owners(fields, now)))
        tags = self._aspect_if("classification", fields, now, "globalTags",
                               lambda: dh.GlobalTagsClass(tags=_merge(
                                   getattr(now.get("globalTags"), "tags", []),
                                   [_tag(f"classification:{fields['classification']}",
                                         "govern:classification")])))
        for aspect, changed in (domain, owners, tags):
            if changed:
                out.append(MCP(entityUrn=urn, aspect=aspect))
        if change.action == "create":
            out += [MCP(entityUrn=urn, aspect=dh.StatusClass(removed=False)),
                    MCP(entityUrn=urn, aspect=dh.DeprecationClass(deprecated=False, note="",
                                                                  actor=ACTOR))]

        # the datasets: their own aspects when the ports change, shared ones when theirs do
        inputs = fields["inputs"] if "inputs" in fields else json.loads(
            custom.get("govern.inputs") or "[]")
        upstream = sorted({u for i in inputs for u in self._assets_now(i, batch)})
        ports = "ports" in fields
        lineage = ports or "inputs" in fields
        specific = {u: (port, ds) for u, port, ds in _datasets(fields)} if ports else {}
        for ds_urn in (list(specific) if ports else self._assets_now(ref, {})):
            have = {k: v[0] for k, v in current_ds.get(ds_urn, {}).items()}
            if ds_urn in specific:
                port, ds = specific[ds_urn]
                out += [MCP(entityUrn=ds_urn, aspect=self._dataset_properties(ref, port, ds)),
                        MCP(entityUrn=ds_urn, aspect=_schema(ds_urn, ds)),
                        MCP(entityUrn=ds_urn, aspect=dh.StatusClass(removed=False))]
            if (ports or domain[1]) and domain[0] is not None:
                out.append(MCP(entityUrn=ds_urn, aspect=domain[0]))
            if ports or owners[1]:
                out.append(MCP(entityUrn=ds_urn, aspect=dh.OwnershipClass(owners=_merge(
                    getattr(have.get("ownership"), "owners", []),
                    [o for o in getattr(owners[0], "owners", []) if _is_ours(o)]))))
            if ports or tags[1]:
                ours = [t for t in getattr(tags[0], "tags", []) if _is_ours(t)]
                replaced: Callable[[Any], bool] = _is_ours
                if ds_urn in specific:
                    if any(c.get("pii") for c in specific[ds_urn][1].get("columns") or []):
                        ours.append(_tag("pii", "govern:pii"))
                else:  # the ports did not change: keep the pii tag as it is
                    replaced = lambda t: _is_ours(t) and t.context != "govern:pii"  # noqa: E731
                out.append(MCP(entityUrn=ds_urn, aspect=dh.GlobalTagsClass(tags=_merge(
                    getattr(have.get("globalTags"), "tags", []), ours, replaced))))
            if lineage:
                now_up = getattr(have.get("upstreamLineage"), "upstreams", [])
                if upstream or any(_is_ours(u) for u in now_up):
                    out.append(MCP(entityUrn=ds_urn, aspect=dh.UpstreamLineageClass(
                        upstreams=_merge(now_up, [dh.UpstreamClass(
                            dataset=u, type=dh.DatasetLineageTypeClass.TRANSFORMED,
                            properties={"govern": "inputs"}) for u in upstream]))))
        return out

    def _aspect_if(self, keys: str | tuple[str, ...], fields: Mapping[str, Any],
                   now: Mapping[str, Any], name: str, build: Callable[[], Any]) -> tuple[Any, bool]:
        """(the aspect, whether it changes): built from ``fields`` when one of ``keys`` is
        among them, else what DataHub holds."""
        keys = (keys,) if isinstance(keys, str) else keys
        if any(k in fields for k in keys):
            return build(), True
        return now.get(name), False

    def _owners(self, fields: Mapping[str, Any], now: Mapping[str, Any]) -> list[Any]:
        current = getattr(now.get("ownership"), "owners", [])
        kept = {dh.OwnershipTypeClass.BUSINESS_OWNER: "owner",
                dh.OwnershipTypeClass.DATA_STEWARD: "stewards"}
        ours: list[Any] = []
        for kind, key in kept.items():
            if key in fields:
                users = [fields[key]] if key == "owner" else list(fields[key] or [])
                ours += [dh.OwnerClass(owner=make_user_urn(u), type=kind, source=OWNED)
                         for u in users if u]
            else:
                ours += [o for o in current if _is_ours(o) and o.type == kind]
        return _merge(current, ours)

    def _product_properties(self, ref: str, fields: Mapping[str, Any],
                            now: Any) -> dh.DataProductPropertiesClass:
        custom = dict(now.customProperties or {}) if now is not None else {}
        for key, value in fields.items():
            custom.pop(FIELD + key, None)
            if value is not None:
                custom[FIELD + key] = fingerprint(value)
            shown = _shown(key, value)
            for old in [k for k in custom if k == f"govern.{key}"
                        or k.startswith(f"govern.{key}.")]:
                del custom[old]
            custom.update(shown)
        custom.update({MANAGED: "true", REF: ref})
        assets = list(now.assets or []) if now is not None else []
        if "ports" in fields:
            assets = _merge(assets, [dh.DataProductAssociationClass(
                destinationUrn=u, sourceUrn=product_urn(ref), properties={"govern": "port"})
                for u in dict.fromkeys(u for u, _, _ in _datasets(fields))])
        return dh.DataProductPropertiesClass(
            name=fields["name"] if "name" in fields else getattr(now, "name", None),
            description=fields["description"] if "description" in fields
            else getattr(now, "description", None),
            customProperties=custom, assets=assets,
            externalUrl=getattr(now, "externalUrl", None),
            parentDataProduct=getattr(now, "parentDataProduct", None))

    def _dataset_properties(self, ref: str, port: str,
                            ds: Mapping[str, Any]) -> dh.DatasetPropertiesClass:
        return dh.DatasetPropertiesClass(
            name=ds["name"], description=ds.get("description"), qualifiedName=ds.get("address"),
            customProperties={"govern.product": ref, "govern.port": port})


def _shown(key: str, value: Any) -> dict[str, str]:
    """The custom properties a person reads for a field (its fingerprint aside)."""
    if value is None:
        return {}
    if key in ("classification", "access", "sharing_agreement", "distribution", "type"):
        return {f"govern.{key}": str(value)}
    if key == "inputs":
        return {"govern.inputs": json.dumps(list(value))}
    if key == "privacy":
        return {"govern.privacy.contains_pii": str(bool(value.get("contains_pii"))).lower(),
                "govern.privacy.regulations": ",".join(value.get("regulations") or [])}
    if key == "fitness":
        status = value.get("status") if isinstance(value, Mapping) else None
        return {f"govern.fitness.{name}": str(s) for name, s in (status or {}).items()}
    return {}


def _schema(urn: str, ds: Mapping[str, Any]) -> dh.SchemaMetadataClass:
    fields = []
    for col in ds.get("columns") or []:
        tags = ([_tag("pii", "govern:pii")] if col.get("pii") else []) + (
            [_tag(f"classification:{col['classification']}", "govern:classification")]
            if col.get("classification") else [])
        fields.append(dh.SchemaFieldClass(
            fieldPath=col["name"], nativeDataType=col.get("type") or "",
            type=_field_type(col.get("type") or ""), description=col.get("description"),
            globalTags=dh.GlobalTagsClass(tags=tags) if tags else None))
    body = json.dumps(ds.get("columns") or [], sort_keys=True)
    return dh.SchemaMetadataClass(
        schemaName=ds["name"], platform=DatasetUrn.from_string(urn).platform,
        version=0, hash=hashlib.sha256(body.encode()).hexdigest(),
        platformSchema=dh.OtherSchemaClass(rawSchema=""), fields=fields)
