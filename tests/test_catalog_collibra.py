"""The Collibra publisher: the exact requests of a first publish (golden files written from the
Core REST API 2.0 documentation), idempotency, patches that leave a steward's edits alone,
retire vs delete, paging and one-line errors.

Not live coverage: every test talks to :class:`CollibraDouble` behind ``httpx.MockTransport``.
``tests/test_live_collibra.py`` runs against a real Collibra when one is configured.
Regenerate the goldens with ``GOVERN_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from govern.engine.catalog import CatalogError, desired_entries, plan_publish, publish
from govern.engine.catalog_collibra import CollibraPublisher, fingerprint
from govern.engine.mesh import load_mesh
from govern.engine.spec import CollibraCatalogConfig

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "collibra"
BASE = "https://collibra.test/rest/2.0"
SMALL = ("clinical/trial_results", "hcp/hcp_master")


def _id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "collibra-double:" + ":".join(parts)))


class CollibraDouble:
    """An in-memory stand-in for Collibra's Core REST API 2.0, built from the API
    documentation (developer.collibra.com Core API reference; the generated client docs in
    github.com/chorvathdev/collibra-core). It implements only the endpoints the publisher
    uses, keeps what was sent, and records every request. It is not Collibra: it checks the
    documented required fields, paging (``offset``/``limit``/``total``) and uniqueness of ids,
    asset names in a domain and external ids, nothing more."""

    ASSET_TYPES = ("Data Product", "Table", "Column", "Business Term")
    ATTRIBUTE_TYPES = ("Description", "Definition", "Owner Group", "Stewards",
                       "Security Classification", "Access Policy", "Sharing Agreement",
                       "Distribution", "Data Product Type", "Privacy",
                       "Service Level Objectives", "Input Products", "Fitness", "Location",
                       "Output Port", "Technical Data Type", "Personally Identifiable Information")
    STATUSES = ("Candidate", "Accepted", "Obsolete")
    DOMAIN_TYPES = ("Data Product Catalog", "Glossary")
    RELATION_TYPES = (("Table", "is part of", "contains", "Data Product"),
                      ("Column", "is part of", "contains", "Table"))

    def __init__(self, community: str | None = "Data Mesh"):
        self.log: list[dict[str, Any]] = []
        self.fail: tuple[int, Any] | None = None  # answer every request so ...
        self.fail_method: str | None = None  # ... or only those of this method
        self.communities = {_id("community", community): {"id": _id("community", community),
                                                           "name": community}} \
            if community else {}
        self.meta: dict[str, list[dict]] = {
            "assetTypes": [{"id": _id("assetType", n), "name": n} for n in self.ASSET_TYPES],
            "attributeTypes": [{"id": _id("attributeType", n), "name": n}
                               for n in self.ATTRIBUTE_TYPES],
            "statuses": [{"id": _id("status", n), "name": n} for n in self.STATUSES],
            "domainTypes": [{"id": _id("domainType", n), "name": n} for n in self.DOMAIN_TYPES],
            "relationTypes": [{"id": _id("relationType", s, r, t), "role": r, "coRole": c,
                               "sourceType": {"id": _id("assetType", s), "name": s},
                               "targetType": {"id": _id("assetType", t), "name": t}}
                              for s, r, c, t in self.RELATION_TYPES]}
        self.domains: dict[str, dict] = {}
        self.assets: dict[str, dict] = {}
        self.attributes: dict[str, dict] = {}
        self.relations: dict[str, dict] = {}
        self.mappings: dict[str, dict] = {}
        self._n = 0

    # ------------------------------------------------------------ the transport

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=BASE, transport=httpx.MockTransport(self.handle),
                            auth=httpx.BasicAuth("govern", "secret"))

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        assert path.startswith("/rest/2.0/"), path
        assert "synchronize" not in path, f"the import API's synchronization mode: {path}"
        body = json.loads(request.content) if request.content else None
        query = dict(request.url.params.multi_items())
        self.log.append({"method": request.method, "path": path, "query": query, "json": body})
        if self.fail is not None and self.fail_method in (None, request.method):
            return httpx.Response(self.fail[0], json=self.fail[1])
        route = path[len("/rest/2.0"):]
        try:
            status, payload = self._route(request.method, route, query, body)
        except _Problem as problem:
            status, payload = problem.status, {"statusCode": problem.status,
                                               "titleMessage": "Bad request",
                                               "userMessage": problem.message}
        return httpx.Response(status, json=payload) if payload is not None \
            else httpx.Response(status)

    def _route(self, method: str, route: str, q: dict, body: Any) -> tuple[int, Any]:
        parts = route.strip("/").split("/")
        head = parts[0]
        if method == "GET" and route.strip("/") in self.meta:
            return 200, self._page(self.meta[head], q)
        if (method, head) == ("GET", "communities"):
            rows = [c for c in self.communities.values()
                    if "name" not in q or c["name"] == q["name"]]
            return 200, self._page(rows, q)
        if (method, route) == ("GET", "/domains"):
            rows = [d for d in self.domains.values()
                    if d["community"]["id"] == q.get("communityId", d["community"]["id"])]
            return 200, self._page(rows, q)
        if (method, route) == ("POST", "/domains"):
            _need(body, "name", "communityId", "typeId")
            if body["communityId"] not in self.communities:
                raise _Problem(404, "Community not found")
            return 201, self._add_domain(body)
        if (method, route) == ("GET", "/assets"):
            types = set(request_list(q, "typeId"))
            rows = [a for a in self.assets.values()
                    if (not types or a["type"]["id"] in types)
                    and ("communityId" not in q or self.domains[a["domain"]["id"]]["community"]
                         ["id"] == q["communityId"])]
            return 200, self._page(rows, q)
        if (method, route) == ("POST", "/assets/bulk"):
            return 201, [self._add_asset(a) for a in body]
        if (method, route) == ("PATCH", "/assets/bulk"):
            return 200, [self._change_asset(a) for a in body]
        if (method, route) == ("DELETE", "/assets/bulk"):
            for asset in body:
                if asset not in self.assets:
                    raise _Problem(404, f"Asset {asset} not found")
            for asset in body:
                self._remove_asset(asset)
            return 204, None
        if method == "PUT" and head == "assets" and parts[2:] == ["attributes"]:
            return 200, self._set_attributes(parts[1], body)
        if (method, route) == ("POST", "/attributes/bulk"):
            return 201, [self._add_attribute(a) for a in body]
        if (method, route) == ("POST", "/relations/bulk"):
            return 201, [self._add_relation(r) for r in body]
        if (method, route) == ("GET", "/mappings"):
            rows = [m for m in self.mappings.values()
                    if m["externalSystemId"] == q.get("externalSystemId", m["externalSystemId"])]
            return 200, self._page(rows, q)
        if (method, route) == ("POST", "/mappings/bulk"):
            return 201, [self._add_mapping(m) for m in body]
        if (method, route) == ("PATCH", "/mappings/bulk"):
            return 200, [self._change_mapping(m) for m in body]
        if method == "DELETE" and head == "mappings" and len(parts) == 2:
            self.mappings.pop(parts[1], None)  # documented: no error when it does not exist
            return 204, None
        raise _Problem(404, f"no such endpoint in the double: {method} {route}")

    # ------------------------------------------------------------ the resources

    def _new_id(self, given: str | None, kind: str) -> str:
        if given:
            assert not given.startswith("00000000-0000-0000-"), "reserved id prefix"
            return given
        self._n += 1
        return _id("generated", kind, str(self._n))

    def _page(self, rows: list[dict], q: dict) -> dict:
        offset, limit = int(q.get("offset", 0)), int(q.get("limit", 0)) or 1000
        return {"total": len(rows), "offset": offset, "limit": limit,
                "results": rows[offset:offset + limit]}

    def _named(self, kind: str, id_: str) -> dict:
        row = next((r for r in self.meta[kind] if r["id"] == id_), None)
        if row is None:
            raise _Problem(404, f"{kind} {id_} not found")
        return {"id": row["id"], "name": row.get("name") or row.get("role")}

    def _add_domain(self, body: dict) -> dict:
        new = self._new_id(body.get("id"), "domain")
        if new in self.domains or any(d["name"] == body["name"] and d["community"]["id"]
                                      == body["communityId"] for d in self.domains.values()):
            raise _Problem(400, "Domain already exists")
        self.domains[new] = {"id": new, "resourceType": "Domain", "name": body["name"],
                             "type": self._named("domainTypes", body["typeId"]),
                             "community": {"id": body["communityId"]}}
        return self.domains[new]

    def _add_asset(self, body: dict) -> dict:
        _need(body, "name", "domainId", "typeId")
        new = self._new_id(body.get("id"), "asset")
        if new in self.assets:
            raise _Problem(400, f"Asset with id {new} already exists")
        if body["domainId"] not in self.domains:
            raise _Problem(404, f"Domain {body['domainId']} not found")
        if any(a["name"] == body["name"] and a["domain"]["id"] == body["domainId"]
               for a in self.assets.values()):
            raise _Problem(400, f"Asset {body['name']!r} already exists in the domain")
        status = self._named("statuses", body.get("statusId") or _id("status", "Candidate"))
        self.assets[new] = {"id": new, "resourceType": "Asset", "name": body["name"],
                            "displayName": body.get("displayName") or body["name"],
                            "domain": {"id": body["domainId"]},
                            "type": self._named("assetTypes", body["typeId"]),
                            "status": status}
        return self.assets[new]

    def _change_asset(self, body: dict) -> dict:
        asset = self.assets.get(body.get("id", ""))
        if asset is None:
            raise _Problem(404, f"Asset {body.get('id')} not found")
        if "statusId" in body:
            asset["status"] = self._named("statuses", body["statusId"])
        if "displayName" in body:
            asset["displayName"] = body["displayName"]
        return asset

    def _remove_asset(self, asset: str) -> None:
        del self.assets[asset]
        self.attributes = {k: a for k, a in self.attributes.items() if a["asset"]["id"] != asset}
        self.relations = {k: r for k, r in self.relations.items()
                          if asset not in (r["source"]["id"], r["target"]["id"])}

    def _add_attribute(self, body: dict) -> dict:
        _need(body, "assetId", "typeId", "value")
        if body["assetId"] not in self.assets:
            raise _Problem(404, f"Asset {body['assetId']} not found")
        new = self._new_id(body.get("id"), "attribute")
        self.attributes[new] = {"id": new, "asset": {"id": body["assetId"]},
                                "type": self._named("attributeTypes", body["typeId"]),
                                "value": body["value"]}
        return self.attributes[new]

    def _set_attributes(self, asset: str, body: dict) -> list[dict]:
        _need(body, "typeId", "values")
        if asset not in self.assets:
            raise _Problem(404, f"Asset {asset} not found")
        self.attributes = {k: a for k, a in self.attributes.items()
                           if not (a["asset"]["id"] == asset and a["type"]["id"] == body["typeId"])}
        return [self._add_attribute({"assetId": asset, "typeId": body["typeId"], "value": v})
                for v in body["values"]]

    def _add_relation(self, body: dict) -> dict:
        _need(body, "sourceId", "targetId", "typeId")
        for end in ("sourceId", "targetId"):
            if body[end] not in self.assets:
                raise _Problem(404, f"Asset {body[end]} not found")
        new = self._new_id(None, "relation")
        self.relations[new] = {"id": new, "source": {"id": body["sourceId"]},
                               "target": {"id": body["targetId"]},
                               "type": {"id": self._named("relationTypes", body["typeId"])["id"]}}
        return self.relations[new]

    def _add_mapping(self, body: dict) -> dict:
        _need(body, "externalSystemId", "externalEntityId")
        if any(m["externalSystemId"] == body["externalSystemId"]
               and m["externalEntityId"] == body["externalEntityId"]
               for m in self.mappings.values()):
            raise _Problem(400, "A mapping with the given external ids already exists")
        new = self._new_id(body.get("id"), "mapping")
        self.mappings[new] = {"id": new, "resourceType": "Mapping",
                              "externalSystemId": body["externalSystemId"],
                              "externalEntityId": body["externalEntityId"],
                              "description": body.get("description"),
                              "mappedResource": {"id": body.get("mappedResourceId"),
                                                 "resourceType": "Asset"}}
        return self.mappings[new]

    def _change_mapping(self, body: dict) -> dict:
        mapping = self.mappings.get(body.get("id", ""))
        if mapping is None:
            raise _Problem(404, "Mapping could not be found")
        if body.get("description") is not None:
            mapping["description"] = body["description"]
        if body.get("mappedResourceId") is not None:
            mapping["mappedResource"] = {"id": body["mappedResourceId"], "resourceType": "Asset"}
        return mapping

    # ------------------------------------------------------------ what a steward sees

    def asset(self, key: str) -> dict:
        mapping = next(m for m in self.mappings.values() if m["externalEntityId"] == key)
        return self.assets[mapping["mappedResource"]["id"]]

    def values(self, asset_id: str) -> dict[str, list]:
        found: dict[str, list] = {}
        for a in self.attributes.values():
            if a["asset"]["id"] == asset_id:
                found.setdefault(a["type"]["name"], []).append(a["value"])
        return found

    def ui_add_attribute(self, asset_id: str, type_name: str, value: str) -> None:
        """A steward adds an attribute in Collibra's UI."""
        self._add_attribute({"assetId": asset_id, "typeId": _id("attributeType", type_name),
                             "value": value})

    def writes(self) -> list[dict]:
        return [r for r in self.log if r["method"] != "GET"]


class _Problem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _need(body: Any, *names: str) -> None:
    missing = [n for n in names if not isinstance(body, dict) or body.get(n) is None]
    if missing:
        raise _Problem(400, f"missing required field(s): {', '.join(missing)}")


def request_list(q: dict, name: str) -> list[str]:
    value = q.get(name)
    return [] if value is None else [value]


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def example():
    return load_mesh(ROOT / "examples" / "mesh")


@pytest.fixture
def desired(example) -> dict[str, dict]:
    small = dataclasses.replace(example, products=tuple(p for p in example.products
                                                        if p.ref in SMALL))
    return desired_entries(small, {}, None)


@pytest.fixture
def double() -> CollibraDouble:
    return CollibraDouble()


def publisher(double: CollibraDouble, **kwargs: Any) -> CollibraPublisher:
    return CollibraPublisher(double.client(), **kwargs)


def run(double: CollibraDouble, desired: dict, prune: bool = False, **kwargs: Any):
    pub = publisher(double, **kwargs)
    try:
        return publish(pub, desired, prune=prune)
    finally:
        pub.close()


def golden(name: str, actual: list[dict]) -> None:
    path = GOLDEN / f"{name}.json"
    if os.environ.get("GOVERN_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
    assert json.loads(path.read_text()) == actual, f"requests differ from {path}"


# ---------------------------------------------------------------- the tests

def test_first_publish_sends_the_golden_requests(double, desired):
    result = run(double, desired)
    assert [c.action for c in result.changes] == ["create", "create"]
    golden("first_publish", double.log)
    assert result.writes == len(double.writes()) == 6
    product = double.asset("clinical/trial_results")
    assert product["displayName"] == "trial_results"
    assert product["type"]["name"] == "Data Product"
    values = double.values(product["id"])
    assert values["Description"] == [desired["clinical/trial_results"]["description"]]
    assert values["Stewards"] == ["heidi"]
    assert "Definition" not in values
    column = double.asset("clinical/trial_results/results/outcomes/trial_id")
    assert double.values(column["id"])["Technical Data Type"] == ["text"]
    domains = {d["name"] for d in double.domains.values()}
    assert domains == {"clinical", "hcp"}
    table = double.asset("clinical/trial_results/results/outcomes")
    assert {(r["source"]["id"], r["target"]["id"]) for r in double.relations.values()} >= {
        (table["id"], product["id"]), (column["id"], table["id"])}


def test_second_publish_sends_no_write(double, desired):
    run(double, desired)
    before = len(double.log)
    again = run(double, desired)
    assert (again.changes, again.writes) == ([], 0)
    assert double.log[before:] and all(r["method"] == "GET" for r in double.log[before:])
    # read is a bounded number of round trips: community, asset types, mappings, assets
    assert [r["path"] for r in double.log[before:]] == [
        "/rest/2.0/communities", "/rest/2.0/assetTypes", "/rest/2.0/mappings",
        "/rest/2.0/assets"]


def test_read_follows_pages(double, desired):
    run(double, desired)
    everything = publisher(double).read()
    before = len(double.log)
    paged = publisher(double, page_size=2).read()
    assert paged == everything and set(paged) == set(SMALL)
    pages = sum(r["path"] == "/rest/2.0/mappings" for r in double.log[before:])
    assert pages == 7  # 14 mappings, 2 a page
    assert publish(publisher(double, page_size=2), desired).writes == 0


def test_a_stewards_edits_in_collibra_survive_an_update(double, desired):
    run(double, desired)
    product = double.asset("clinical/trial_results")
    double.ui_add_attribute(product["id"], "Definition", "Outcomes, as the steward puts it.")
    product["displayName"] = "Trial results (phase III)"  # renamed in the UI
    changed = json.loads(json.dumps(desired))
    changed["clinical/trial_results"]["description"] = "Unblinded phase III outcomes."
    before = len(double.log)
    result = run(double, changed)
    assert [(c.action, c.ref, sorted(c.fields)) for c in result.changes] == [
        ("update", "clinical/trial_results", ["description"])]
    golden("update_description", double.log[before:])
    values = double.values(product["id"])
    assert values["Definition"] == ["Outcomes, as the steward puts it."]
    assert values["Description"] == ["Unblinded phase III outcomes."]
    assert double.asset("clinical/trial_results")["displayName"] == "Trial results (phase III)"
    assert len(double.assets) == 2 + 2 + 10  # no duplicate from the rename
    assert run(double, changed).writes == 0


def test_a_changed_column_set_patches_only_the_columns(double, desired):
    run(double, desired)
    changed = json.loads(json.dumps(desired))
    columns = changed["hcp/hcp_master"]["ports"][0]["datasets"][0]["columns"]
    email = next(c for c in columns if c["name"] == "email")
    columns.remove(email)
    columns[0]["description"] = "Stable HCP id"
    columns.append({"name": "npi", "type": "text", "description": "US NPI number",
                    "pii": False, "classification": None})
    survivor = double.asset("hcp/hcp_master/curated/hcp/hcp_id")["id"]
    gone = double.asset("hcp/hcp_master/curated/hcp/email")["id"]
    before = len(double.log)
    result = run(double, changed)
    assert [(c.action, sorted(c.fields)) for c in result.changes] == [("update", ["ports"])]
    writes = [(r["method"], r["path"]) for r in double.log[before:] if r["method"] != "GET"]
    assert writes == [("POST", "/rest/2.0/assets/bulk"), ("POST", "/rest/2.0/attributes/bulk"),
                      ("POST", "/rest/2.0/relations/bulk"),
                      ("PUT", f"/rest/2.0/assets/{survivor}/attributes"),
                      ("DELETE", "/rest/2.0/assets/bulk"),
                      ("DELETE", f"/rest/2.0/mappings/{_mapping_of(double, 'email', before)}"),
                      ("PATCH", "/rest/2.0/mappings/bulk"), ("POST", "/rest/2.0/mappings/bulk")]
    assert gone not in double.assets
    assert double.values(survivor)["Description"] == ["Stable HCP id"]
    assert double.values(double.asset("hcp/hcp_master/curated/hcp/npi")["id"])[
        "Description"] == ["US NPI number"]
    assert run(double, changed).writes == 0


def _mapping_of(double: CollibraDouble, column: str, since: int) -> str:
    deleted = [r["path"].rsplit("/", 1)[1] for r in double.log[since:]
               if r["method"] == "DELETE" and "/mappings/" in r["path"]]
    assert len(deleted) == 1 and deleted[0] not in double.mappings
    return deleted[0]


def test_a_product_removed_from_the_mesh_is_retired_never_deleted(double, desired):
    run(double, desired)
    assets, mappings = dict(double.assets), dict(double.mappings)
    fewer = {"clinical/trial_results": desired["clinical/trial_results"]}
    before = len(double.log)
    result = run(double, fewer)
    assert [(c.action, c.ref) for c in result.changes] == [("retire", "hcp/hcp_master")]
    golden("retire", double.log[before:])
    assert not any(r["method"] == "DELETE" for r in double.log)
    assert double.assets.keys() == assets.keys() and double.mappings.keys() == mappings.keys()
    assert double.asset("hcp/hcp_master")["status"]["name"] == "Obsolete"
    assert publisher(double).read()["hcp/hcp_master"].retired
    assert run(double, fewer).writes == 0
    back = run(double, desired)
    assert [(c.action, c.ref) for c in back.changes] == [("unretire", "hcp/hcp_master")]
    assert double.asset("hcp/hcp_master")["status"]["name"] == "Accepted"


def test_only_prune_deletes(double, desired):
    run(double, desired)
    fewer = {"clinical/trial_results": desired["clinical/trial_results"]}
    run(double, fewer)
    before = len(double.log)
    result = run(double, fewer, prune=True)
    assert [(c.action, c.ref) for c in result.changes] == [("delete", "hcp/hcp_master")]
    deletes = [r for r in double.log[before:] if r["method"] == "DELETE"]
    assert deletes[0]["path"] == "/rest/2.0/assets/bulk" and len(deletes[0]["json"]) == 1 + 1 + 6
    assert result.writes == len(deletes) == 1 + 8
    assert not any(m["externalEntityId"].startswith("hcp/") for m in double.mappings.values())
    assert set(publisher(double).read()) == {"clinical/trial_results"}
    assert double.asset("clinical/trial_results")  # the other product is untouched
    assert run(double, fewer, prune=True).writes == 0


def test_comparable_is_the_fingerprint_read_gives_back(double, desired):
    run(double, desired)
    pub = publisher(double)
    current = pub.read()
    assert plan_publish(desired, current, False, pub.comparable) == []
    doc = desired["hcp/hcp_master"]
    assert current["hcp/hcp_master"].doc == {k: fingerprint(v) for k, v in doc.items()}


@pytest.mark.parametrize("status, body, words", [
    (500, {"statusCode": 500, "titleMessage": "Internal error",
           "userMessage": "Unexpected error\nat com.collibra..."},
     ["HTTP 500", "Unexpected error"]),
    (401, {"statusCode": 401, "userMessage": "Invalid credentials"},
     ["authentication", "401", "Invalid credentials"]),
    (403, {"userMessage": "You lack the permission to view communities"}, ["HTTP 403"]),
])
def test_an_error_status_is_one_line(double, desired, status, body, words):
    double.fail = (status, body)
    with pytest.raises(CatalogError) as caught:
        run(double, desired)
    message = str(caught.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_an_error_on_write_is_one_line_and_names_the_request(double, desired):
    pub = publisher(double)
    changes = plan_publish(desired, pub.read(), False, pub.comparable)
    double.fail = (400, {"userMessage": "Asset type not allowed in this domain"})
    double.fail_method = "POST"
    with pytest.raises(CatalogError, match=r"^catalog: collibra POST /domains answered HTTP 400: "
                                           r"Asset type not allowed in this domain$"):
        pub.write(changes)


def test_a_collibra_refusing_connections_is_one_line():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pub = CollibraPublisher(httpx.Client(base_url=f"http://127.0.0.1:{port}/rest/2.0",
                                         timeout=5))
    with pytest.raises(CatalogError, match=r"^catalog: collibra at http://127\.0\.0\.1:\d+"
                                           r"/rest/2\.0/ unreachable: ") as caught:
        pub.read()
    assert "\n" not in str(caught.value)
    pub.close()


def test_a_missing_community_or_type_is_one_line(desired):
    with pytest.raises(CatalogError, match="^catalog: collibra community 'Data Mesh' not found"):
        run(CollibraDouble(community=None), desired)
    double = CollibraDouble()
    double.meta["attributeTypes"] = [t for t in double.meta["attributeTypes"]
                                     if t["name"] != "Sharing Agreement"]
    with pytest.raises(CatalogError, match="^catalog: collibra lacks in its operating model: "
                                           "attribute type 'Sharing Agreement'$"):
        run(double, desired)
    assert double.writes() == []


def test_never_the_import_apis_synchronization_mode(double, desired):
    run(double, desired)
    fewer = {"clinical/trial_results": desired["clinical/trial_results"]}
    run(double, fewer)
    run(double, fewer, prune=True)
    assert double.log and not any("synchronize" in r["path"] or "/import" in r["path"]
                                  for r in double.log)
    source = (ROOT / "engine" / "catalog_collibra.py").read_text()
    assert '"/import' not in source


def test_from_config_reads_the_credentials(tmp_path, monkeypatch):
    (tmp_path / "pw").write_text("s3cret\n")
    config = CollibraCatalogConfig(kind="collibra", url="https://acme.collibra.com/",
                                   username_env="GOVERN_TEST_COLLIBRA_USER",
                                   password_file="pw", community="Mesh")
    with pytest.raises(CatalogError, match=r"^catalog.username_env: "
                                           r"\$GOVERN_TEST_COLLIBRA_USER is not set$"):
        CollibraPublisher.from_config(config, tmp_path)
    monkeypatch.setenv("GOVERN_TEST_COLLIBRA_USER", "svc-govern")
    pub = CollibraPublisher.from_config(config, tmp_path)
    assert str(pub.client.base_url) == "https://acme.collibra.com/rest/2.0/"
    assert pub.client.auth is not None and pub.community == "Mesh"
    pub.close()
    no_password = config.model_copy(update={"password_file": None,
                                            "password_env": "GOVERN_TEST_COLLIBRA_PW"})
    with pytest.raises(CatalogError, match=r"^catalog.password_env: "
                                           r"\$GOVERN_TEST_COLLIBRA_PW is not set$"):
        CollibraPublisher.from_config(no_password, tmp_path)


def test_a_missing_ca_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVERN_TEST_COLLIBRA_USER", "svc-govern")
    monkeypatch.setenv("GOVERN_TEST_COLLIBRA_PW", "s3cret")
    config = CollibraCatalogConfig(kind="collibra", url="https://acme.collibra.com",
                                   username_env="GOVERN_TEST_COLLIBRA_USER",
                                   password_env="GOVERN_TEST_COLLIBRA_PW", ca_file="ca.pem")
    with pytest.raises(CatalogError, match=r"^catalog.ca_file .*ca.pem: ") as caught:
        CollibraPublisher.from_config(config, tmp_path)
    assert "\n" not in str(caught.value)


def test_a_product_deleted_by_hand_in_collibra_is_recreated(double, desired):
    run(double, desired)
    for key in [k for k, a in double.assets.items() if a["name"].startswith("hcp/")]:
        double._remove_asset(key)  # a steward deletes them; the mappings stay
    before = len(double.log)
    result = run(double, desired)
    assert [(c.action, c.ref) for c in result.changes] == [("create", "hcp/hcp_master")]
    writes = [(r["method"], r["path"]) for r in double.log[before:] if r["method"] != "GET"]
    assert ("POST", "/rest/2.0/mappings/bulk") not in writes  # the old mappings are re-pointed
    assert double.asset("hcp/hcp_master")["status"]["name"] == "Candidate"
    assert run(double, desired).writes == 0


def test_the_fitness_result_reads_as_statuses_not_json(double, desired):
    measured = json.loads(json.dumps(desired))
    measured["hcp/hcp_master"]["fitness"] = {
        "at": "2026-12-01", "status": {"discoverable": "green", "secure": "red"},
        "cells": {"secure": {"status": "red", "checks": [{"check": "secure.x"}]}}, "trend": []}
    run(double, measured)
    values = double.values(double.asset("hcp/hcp_master")["id"])
    assert values["Fitness"] == ["discoverable: green, secure: red (measured 2026-12-01)"]
    assert "Fitness" not in double.values(double.asset("clinical/trial_results")["id"])
