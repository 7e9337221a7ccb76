"""Publishing to Collibra through its Core REST API 2.0 (``/rest/2.0``), with httpx.

The asset model, in the configured community (which must exist; govern never creates or
removes communities):

* one Collibra domain (type ``Data Product Catalog``) per mesh domain, created when missing;
* one ``Data Product`` asset per product, one ``Table`` per dataset of each port and one
  ``Column`` per column, related ``Table is part of Data Product`` / ``Column is part of
  Table``;
* every asset govern creates is keyed by a stable external id: a Collibra *mapping*
  (``externalSystemId`` = ``catalog.external_system``, ``externalEntityId`` = the product ref
  ``clinical/trial_results``, ``<ref>/<port>/<dataset>`` for a table, ``…/<column>`` for a
  column). A display name renamed in Collibra's UI therefore never duplicates an asset;
* govern owns only the attribute types named in ``PRODUCT_ATTRIBUTES``, ``TABLE_ATTRIBUTES``
  and ``COLUMN_ATTRIBUTES`` (``Description``, never ``Definition``), each replaced per type
  with ``PUT /assets/{id}/attributes``; every other attribute, relation, tag, responsibility
  or status a steward sets survives;
* what govern last wrote is kept as one fingerprint per govern-owned field in the mapping's
  ``description``; ``read`` returns those and :meth:`CollibraPublisher.comparable` computes
  the same from a desired field, so an unchanged mesh sends no write at all;
* a product removed from the mesh gets status ``Obsolete`` (``RETIRED_STATUS``; back to
  ``Accepted`` when it returns); only a ``delete`` change (``--prune``) removes its assets.

Writes are patches through the Core API's bulk endpoints. The import API's synchronization
mode (``/import/synchronize/...``) is never used: it removes whatever a batch omits, which
would delete what stewards and other integrations put in the same domains.

Owner and stewards are written as text attributes, not Collibra responsibilities: they are
directory users and groups, and mapping them to Collibra user ids is not done here.
"""

from __future__ import annotations

import json
import os
import ssl
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import httpx

from .catalog import CatalogChange, CatalogError, Current, field_fingerprint
from .secrets import read_secret

PRODUCT_TYPE, TABLE_TYPE, COLUMN_TYPE = "Data Product", "Table", "Column"
DOMAIN_TYPE = "Data Product Catalog"
RETIRED_STATUS, ACTIVE_STATUS = "Obsolete", "Accepted"
# doc field -> the attribute type govern owns on the asset (all rendered as text)
PRODUCT_ATTRIBUTES = {
    "description": "Description", "owner": "Owner Group", "stewards": "Stewards",
    "classification": "Security Classification", "access": "Access Policy",
    "sharing_agreement": "Sharing Agreement", "distribution": "Distribution",
    "type": "Data Product Type", "privacy": "Privacy", "slos": "Service Level Objectives",
    "inputs": "Input Products", "fitness": "Fitness",
}
TABLE_ATTRIBUTES = {"description": "Description", "address": "Location", "port": "Output Port"}
COLUMN_ATTRIBUTES = {"description": "Description", "type": "Technical Data Type",
                     "pii": "Personally Identifiable Information",
                     "classification": "Security Classification"}
# child kind -> (source asset type, role, target asset type): the child is the source
RELATIONS = {"table": (TABLE_TYPE, "is part of", PRODUCT_TYPE),
             "column": (COLUMN_TYPE, "is part of", TABLE_TYPE)}
PAGE = 1000
_NS = uuid.UUID("5b0d7a6e-3f4c-4c59-9a57-0c1d6e2f8a10")


def fingerprint(value: Any) -> str:
    """What govern remembers of a field it wrote: 16 hex digits of its canonical JSON (kept
    short: all of an asset's fit in its mapping's description)."""
    return field_fingerprint(value)[:16]


def _text(value: Any) -> str | None:
    """An attribute value: text, lists of names joined, structures as canonical JSON."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _attribute_text(attribute: str, value: Any) -> str | None:
    """The fitness result as a steward reads it (each characteristic's status and the day it
    was measured; the reasons stay on govern's dashboard); any other field as :func:`_text`."""
    status = value.get("status") if isinstance(value, Mapping) else None
    if attribute == PRODUCT_ATTRIBUTES["fitness"] and isinstance(status, Mapping):
        day = f" (measured {value['at']})" if value.get("at") else ""
        return ", ".join(f"{name}: {state}" for name, state in status.items()) + day
    return _text(value)


@dataclass(frozen=True)
class _Entity:
    """One asset govern owns, as the mesh wants it."""

    key: str  # externalEntityId; also the asset's full name (unique in its domain)
    kind: str  # product | table | column
    display: str
    parent: str | None
    fields: dict[str, Any]  # what is fingerprinted
    attributes: dict[str, str]  # field -> attribute type name


def _product(doc: Mapping[str, Any]) -> _Entity:
    return _Entity(doc["ref"], "product", doc["name"], None, dict(doc), PRODUCT_ATTRIBUTES)


def _children(doc: Mapping[str, Any]) -> Iterator[_Entity]:
    ref = doc["ref"]
    for port in doc.get("ports") or []:
        for ds in port.get("datasets") or []:
            table = f"{ref}/{port['name']}/{ds['name']}"
            yield _Entity(table, "table", ds["name"], ref,
                          {"description": ds.get("description"), "address": ds.get("address"),
                           "port": port["name"]}, TABLE_ATTRIBUTES)
            for col in ds.get("columns") or []:
                yield _Entity(f"{table}/{col['name']}", "column", col["name"], table,
                              {k: col.get(k) for k in COLUMN_ATTRIBUTES}, COLUMN_ATTRIBUTES)


@dataclass
class _Mapped:
    mapping_id: str
    asset_id: str
    prints: dict[str, str]


@dataclass
class _Batch:
    """The writes of one ``write`` call, sent in a fixed order by :meth:`_flush`."""

    assets: list[dict] = field(default_factory=list)
    attributes: list[dict] = field(default_factory=list)
    relations: list[dict] = field(default_factory=list)
    put_attributes: list[tuple[str, dict]] = field(default_factory=list)
    statuses: list[dict] = field(default_factory=list)
    deleted_assets: list[str] = field(default_factory=list)
    deleted_mappings: list[str] = field(default_factory=list)
    changed_mappings: list[dict] = field(default_factory=list)
    new_mappings: list[dict] = field(default_factory=list)


class CollibraPublisher:
    """A :class:`~govern.engine.catalog.Publisher` for Collibra's Core REST API 2.0."""

    name = "collibra"

    def __init__(self, client: httpx.Client, community: str = "Data Mesh",
                 external_system: str = "govern", page_size: int = PAGE):
        self.client = client
        self.community = community
        self.external_system = external_system
        self.page_size = page_size
        self.writes = 0  # every write sent by this publisher
        self._sent = 0  # ... by the current ``write`` call
        self._meta: dict[str, dict[Any, str]] | None = None
        self._community_id: str | None = None
        self._mapped: dict[str, _Mapped] | None = None

    @classmethod
    def from_config(cls, config: Any, root: Path) -> "CollibraPublisher":
        if not config.username_env:
            raise CatalogError("catalog.username_env is required for kind: collibra")
        username = os.environ.get(config.username_env)
        if not username:
            raise CatalogError(f"catalog.username_env: ${config.username_env} is not set")
        password = read_secret(config.password_env, config.password_file, root,
                               "catalog.password", CatalogError)
        if password is None:
            raise CatalogError("catalog.password_env or catalog.password_file is required "
                               "for kind: collibra")
        verify: ssl.SSLContext | bool = True
        if config.ca_file:
            ca = Path(config.ca_file)
            ca = ca if ca.is_absolute() else root / ca
            try:
                verify = ssl.create_default_context(cafile=str(ca))
            except (OSError, ssl.SSLError) as exc:
                raise CatalogError(f"catalog.ca_file {ca}: {exc.strerror or exc}") from exc
        client = httpx.Client(base_url=config.url.rstrip("/") + "/rest/2.0",
                              auth=httpx.BasicAuth(username, password), verify=verify,
                              timeout=config.timeout_seconds,
                              headers={"Accept": "application/json"})
        return cls(client, config.community, config.external_system)

    def close(self) -> None:
        self.client.close()

    def comparable(self, field_name: str, value: Any) -> str:
        return fingerprint(value)

    # ------------------------------------------------------------ HTTP

    def _call(self, method: str, path: str, params: Mapping[str, Any] | None = None,
              body: Any = None) -> Any:
        try:
            response = self.client.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:
            detail = str(exc).strip().splitlines()
            raise CatalogError(f"catalog: collibra at {self.client.base_url} unreachable: "
                               f"{detail[0] if detail else type(exc).__name__}") from exc
        if method != "GET":
            self.writes += 1
            self._sent += 1
        if response.status_code >= 400:
            message = _message(response)
            if response.status_code == 401:
                raise CatalogError(f"catalog: collibra authentication failed (HTTP 401) on "
                                   f"{method} {path}: {message}")
            raise CatalogError(f"catalog: collibra {method} {path} answered HTTP "
                               f"{response.status_code}: {message}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise CatalogError(f"catalog: collibra {method} {path} answered HTTP "
                               f"{response.status_code} with a body that is not JSON") from exc

    def _paged(self, path: str, params: Mapping[str, Any]) -> list[dict]:
        """Every result of a paged search (``offset``/``limit``, ``total``)."""
        results: list[dict] = []
        while True:
            page = self._call("GET", path, {**params, "offset": len(results),
                                            "limit": self.page_size}) or {}
            got = list(page.get("results") or [])
            results += got
            if len(got) < self.page_size or len(results) >= int(page.get("total") or 0):
                return results

    # ------------------------------------------------------------ read

    def _community(self) -> str:
        if self._community_id is None:
            found = self._call("GET", "/communities",
                               {"name": self.community, "nameMatchMode": "EXACT"}) or {}
            ids = [c["id"] for c in found.get("results") or [] if c.get("name") == self.community]
            if not ids:
                raise CatalogError(f"catalog: collibra community {self.community!r} not found "
                                   "(create it, or set catalog.community)")
            self._community_id = ids[0]
        return self._community_id

    def _metadata(self, kinds: Sequence[str]) -> dict[str, dict[Any, str]]:
        """Ids of asset types, attribute types, statuses, domain types and relation types, by
        name (one paged GET each, once per publisher)."""
        meta = self._meta if self._meta is not None else {}
        for kind in kinds:
            if kind in meta:
                continue
            rows = self._paged(f"/{kind}", {})
            if kind == "relationTypes":
                meta[kind] = {((r.get("sourceType") or {}).get("name"), r.get("role"),
                               (r.get("targetType") or {}).get("name")): r["id"] for r in rows}
            else:
                meta[kind] = {r["name"]: r["id"] for r in rows}
        self._meta = meta
        return meta

    def read(self) -> dict[str, Current]:
        community = self._community()
        types = self._metadata(["assetTypes"])["assetTypes"]
        if PRODUCT_TYPE not in types:
            raise CatalogError(f"catalog: collibra asset type {PRODUCT_TYPE!r} not found")
        mappings = self._paged("/mappings", {"externalSystemId": self.external_system,
                                             "mappedResourceType": "Asset"})
        assets = {a["id"]: (a.get("status") or {}).get("name")
                  for a in self._paged("/assets", {"communityId": community,
                                                   "typeId": types[PRODUCT_TYPE]})}
        self._mapped = {}
        current: dict[str, Current] = {}
        for m in mappings:
            key, asset = m.get("externalEntityId"), (m.get("mappedResource") or {}).get("id")
            if not key or not asset:
                continue
            prints = _prints(m.get("description"))
            self._mapped[key] = _Mapped(m["id"], asset, prints)
            if key.count("/") == 1 and asset in assets:
                current[key] = Current(prints, assets[asset] == RETIRED_STATUS)
        return current

    # ------------------------------------------------------------ write

    def write(self, changes: Sequence[CatalogChange]) -> int:
        if not changes:
            return 0
        self._sent = 0
        if self._mapped is None:
            self.read()
        mapped = self._mapped or {}
        meta = self._metadata(["assetTypes", "attributeTypes", "statuses", "relationTypes",
                               "domainTypes"])
        _check(meta)
        batch = _Batch()
        domains: dict[str, str] | None = None
        for change in changes:
            if change.action == "create":
                if domains is None:
                    domains = self._domains()
                doc = change.fields
                domain = self._domain(domains, doc["domain"], meta)
                for entity in (_product(doc), *_children(doc)):
                    self._create(batch, entity, domain, meta, mapped)
            elif change.action == "update":
                self._update(batch, change, meta, mapped)
            elif change.action in ("retire", "unretire"):
                status = RETIRED_STATUS if change.action == "retire" else ACTIVE_STATUS
                batch.statuses.append({"id": mapped[change.ref].asset_id,
                                       "statusId": meta["statuses"][status]})
            elif change.action == "delete":
                for key in sorted(k for k in mapped
                                  if k == change.ref or k.startswith(change.ref + "/")):
                    batch.deleted_assets.append(mapped[key].asset_id)
                    batch.deleted_mappings.append(mapped[key].mapping_id)
            else:
                raise CatalogError(f"catalog: unknown change {change.action!r}")
        self._flush(batch)
        self._mapped = None  # what Collibra holds now is read again next time
        return self._sent

    def _domains(self) -> dict[str, str]:
        rows = self._paged("/domains", {"communityId": self._community()})
        return {r["name"]: r["id"] for r in rows}

    def _domain(self, domains: dict[str, str], name: str, meta: dict[str, dict[Any, str]]) -> str:
        if name not in domains:
            new = str(uuid.uuid5(_NS, f"{self.external_system}:domain:{self.community}/{name}"))
            self._call("POST", "/domains", body={"id": new, "name": name,
                                                 "communityId": self._community(),
                                                 "typeId": meta["domainTypes"][DOMAIN_TYPE]})
            domains[name] = new
        return domains[name]

    def _asset_id(self, key: str) -> str:
        return str(uuid.uuid5(_NS, f"{self.external_system}:{key}"))

    def _create(self, batch: _Batch, entity: _Entity, domain: str,
                meta: dict[str, dict[Any, str]], mapped: Mapping[str, _Mapped]) -> None:
        asset = self._asset_id(entity.key)
        type_name = {"product": PRODUCT_TYPE, "table": TABLE_TYPE, "column": COLUMN_TYPE}
        batch.assets.append({"id": asset, "name": entity.key, "displayName": entity.display,
                             "domainId": domain,
                             "typeId": meta["assetTypes"][type_name[entity.kind]]})
        for key, attribute in entity.attributes.items():
            value = _attribute_text(attribute, entity.fields.get(key))
            if value is not None:
                batch.attributes.append({"assetId": asset,
                                         "typeId": meta["attributeTypes"][attribute],
                                         "value": value})
        if entity.parent is not None:
            batch.relations.append({"sourceId": asset, "targetId": self._asset_id(entity.parent),
                                    "typeId": meta["relationTypes"][RELATIONS[entity.kind]]})
        description = _dump({k: fingerprint(v) for k, v in entity.fields.items()})
        stale = mapped.get(entity.key)
        if stale is not None:  # a mapping left by an asset removed in Collibra
            batch.changed_mappings.append({"id": stale.mapping_id, "mappedResourceId": asset,
                                           "description": description})
        else:
            batch.new_mappings.append({"externalSystemId": self.external_system,
                                       "externalEntityId": entity.key,
                                       "mappedResourceId": asset, "description": description})

    def _update(self, batch: _Batch, change: CatalogChange, meta: dict[str, dict[Any, str]],
                mapped: dict[str, _Mapped]) -> None:
        product = mapped[change.ref]
        for key, value in change.fields.items():
            if key in PRODUCT_ATTRIBUTES:
                self._put(batch, product.asset_id, PRODUCT_ATTRIBUTES[key], value, meta)
        if "ports" in change.fields:
            self._sync_children(batch, change.ref, change.fields["ports"] or [], meta, mapped)
        prints = dict(product.prints)
        for key, value in change.fields.items():
            if value is None:
                prints.pop(key, None)
            else:
                prints[key] = fingerprint(value)
        batch.changed_mappings.append({"id": product.mapping_id, "description": _dump(prints)})

    def _sync_children(self, batch: _Batch, ref: str, ports: list, meta: dict[str, dict[Any, str]],
                       mapped: dict[str, _Mapped]) -> None:
        desired = {e.key: e for e in _children({"ref": ref, "ports": ports})}
        domain: str | None = None
        for key, entity in desired.items():
            now = mapped.get(key)
            if now is None:
                if domain is None:  # the product's own domain
                    domain = self._domain(self._domains(), ref.split("/")[0], meta)
                self._create(batch, entity, domain, meta, {})
                continue
            prints = {k: fingerprint(v) for k, v in entity.fields.items()}
            if prints == now.prints:
                continue
            for name, attribute in entity.attributes.items():
                if now.prints.get(name) != prints[name]:
                    self._put(batch, now.asset_id, attribute, entity.fields.get(name), meta)
            batch.changed_mappings.append({"id": now.mapping_id, "description": _dump(prints)})
        for key in sorted(k for k in mapped if k.startswith(ref + "/") and k not in desired):
            batch.deleted_assets.append(mapped[key].asset_id)
            batch.deleted_mappings.append(mapped[key].mapping_id)

    def _put(self, batch: _Batch, asset: str, attribute: str, value: Any,
             meta: dict[str, dict[Any, str]]) -> None:
        text = _attribute_text(attribute, value)
        batch.put_attributes.append((asset, {"typeId": meta["attributeTypes"][attribute],
                                             "values": [] if text is None else [text]}))

    def _flush(self, b: _Batch) -> None:
        """Assets, then what hangs on them, then the mappings that record them last: a
        failure midway never leaves a mapping for an asset that is not complete."""
        if b.assets:
            self._call("POST", "/assets/bulk", body=b.assets)
        if b.attributes:
            self._call("POST", "/attributes/bulk", body=b.attributes)
        if b.relations:
            self._call("POST", "/relations/bulk", body=b.relations)
        for asset, body in b.put_attributes:
            self._call("PUT", f"/assets/{asset}/attributes", body=body)
        if b.statuses:
            self._call("PATCH", "/assets/bulk", body=b.statuses)
        if b.deleted_assets:
            self._call("DELETE", "/assets/bulk", body=b.deleted_assets)
        for mapping in b.deleted_mappings:
            self._call("DELETE", f"/mappings/{mapping}")
        if b.changed_mappings:
            self._call("PATCH", "/mappings/bulk", body=b.changed_mappings)
        if b.new_mappings:
            self._call("POST", "/mappings/bulk", body=b.new_mappings)


def _check(meta: Mapping[str, Mapping[Any, str]]) -> None:
    """Every type govern writes exists in Collibra's operating model, or one line naming
    what is missing."""
    wanted = [("assetTypes", t, f"asset type {t!r}") for t in (PRODUCT_TYPE, TABLE_TYPE,
                                                                 COLUMN_TYPE)]
    wanted += [("domainTypes", DOMAIN_TYPE, f"domain type {DOMAIN_TYPE!r}")]
    wanted += [("statuses", s, f"status {s!r}") for s in (RETIRED_STATUS, ACTIVE_STATUS)]
    names = sorted({*PRODUCT_ATTRIBUTES.values(), *TABLE_ATTRIBUTES.values(),
                    *COLUMN_ATTRIBUTES.values()})
    wanted += [("attributeTypes", n, f"attribute type {n!r}") for n in names]
    wanted += [("relationTypes", r, f"relation type {' '.join(r)!r}") for r in RELATIONS.values()]
    missing = [label for kind, key, label in wanted if key not in meta[kind]]
    if missing:
        raise CatalogError("catalog: collibra lacks in its operating model: " + ", ".join(missing))


def _prints(description: Any) -> dict[str, str]:
    try:
        value = json.loads(description or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _message(response: httpx.Response) -> str:
    """Collibra's own words for an error (``userMessage`` / ``titleMessage``), one line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = ""
    if isinstance(body, dict):
        text = str(body.get("userMessage") or body.get("titleMessage") or body.get("message")
                   or body.get("errorCode") or "")
    if not text:
        text = response.text or response.reason_phrase
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else response.reason_phrase
