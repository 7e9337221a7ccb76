"""Publishing every product to a catalog: the built-in one (in the request store's database,
full-text searchable) and, behind the same interface, external ones.

Publishing is a diff, like a plan: the desired entries (pure, from the mesh, the stores'
addresses and the latest fitness) against what the catalog holds (one read), giving
create / update (only the fields that differ) / retire / delete (``--prune``) changes.
Nothing changed → nothing written. govern owns the fields of ``doc``; anything else a
catalog keeps (``extra``: a steward's own description, tags) is never overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

from sqlalchemy import (Boolean, Column, MetaData, String, Table, Text, insert, select, text,
                        update)
from sqlalchemy import delete as sql_delete

from .errors import CatalogError, GovernError, first_line  # noqa: F401 (CatalogError: here too)
from .mesh import Mesh, Product

metadata = MetaData()
entries = Table(
    "catalog_entries", metadata,
    Column("ref", String(200), primary_key=True),
    Column("doc", Text, nullable=False),  # govern-owned fields, JSON
    Column("extra", Text, nullable=False, server_default="{}"),  # catalog-owned fields, JSON
    Column("retired", Boolean, nullable=False, server_default="0"),
    Column("updated_at", String(40), nullable=False),
)


# ---------------------------------------------------------------- the entries (pure)

def product_entry(product: Product, addresses: Mapping[str, Mapping[str, str | None]],
                  fitness: Mapping[str, Any] | None) -> dict[str, Any]:
    """Everything a consumer needs to find, judge and request a product."""
    s = product.spec
    return {
        "ref": product.ref, "name": s.name, "domain": s.domain, "description": s.description,
        "owner": s.owner, "stewards": list(getattr(s, "stewards", [])),
        "classification": s.classification.value, "access": s.access.value,
        "sharing_agreement": s.sharing_agreement, "distribution": s.distribution.value,
        "type": s.type.value,
        "privacy": {"contains_pii": s.privacy.contains_pii or any(p.pii for p in s.ports),
                    "regulations": list(s.privacy.regulations)},
        "slos": [{"name": o.name, "target": o.target, "indicator": o.indicator}
                 for o in s.slos],
        "inputs": [i.product for i in s.inputs],
        "ports": [{"name": port.name, "description": port.description, "format": port.format,
                   "target": port.target,
                   "datasets": [{"name": d.name, "description": d.description,
                                 "address": (addresses.get(port.name) or {}).get(d.name),
                                 "columns": [{"name": c.name, "type": c.type,
                                              "description": c.description, "pii": c.pii,
                                              "classification": c.classification.value
                                              if c.classification else None}
                                             for c in d.columns]}
                                for d in port.datasets]}
                  for port in s.ports],
        "fitness": dict(fitness) if fitness else None,
    }


def search_text(doc: Mapping[str, Any], extra: Mapping[str, Any]) -> str:
    """What the search box matches: names, descriptions, columns, owners."""
    words = [doc.get("ref", ""), doc.get("name", ""), doc.get("domain", ""),
             doc.get("description", ""), doc.get("owner", ""), *doc.get("stewards", []),
             str(extra.get("description", ""))]
    for port in doc.get("ports", []):
        words += [port.get("name", ""), port.get("description") or ""]
        for ds in port.get("datasets", []):
            words += [ds.get("name", ""), ds.get("description") or ""]
            for col in ds.get("columns", []):
                words += [col.get("name", ""), col.get("description") or ""]
    return " ".join(w for w in words if w)


def field_fingerprint(value: Any) -> str:
    """sha256 of a field's canonical JSON: what a catalog that cannot hand a field back keeps
    of it, for ``Publisher.comparable`` (DataHub, Collibra)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Current:
    doc: dict[str, Any]
    retired: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CatalogChange:
    action: str  # create | update | retire | unretire | delete
    ref: str
    fields: dict[str, Any] = field(default_factory=dict)  # create: the doc; update: the diff

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "ref": self.ref, "fields": sorted(self.fields)}


def plan_publish(desired: Mapping[str, dict[str, Any]], current: Mapping[str, Current],
                 prune: bool = False,
                 comparable: Callable[[str, Any], Any] | None = None) -> list[CatalogChange]:
    """The changes that make the catalog hold ``desired``; none when it already does.

    ``comparable(field, value)``: what the catalog's read gives back for a field of that
    value, for catalogs that keep a fingerprint of each field rather than the field itself
    (``Publisher.comparable``); an update still carries the real values."""
    same = comparable or (lambda _key, value: value)
    changes: list[CatalogChange] = []
    for ref in sorted(desired):
        doc = desired[ref]
        now = current.get(ref)
        if now is None:
            changes.append(CatalogChange("create", ref, doc))
            continue
        if now.retired:
            changes.append(CatalogChange("unretire", ref))
        diff = {k: v for k, v in doc.items() if now.doc.get(k) != same(k, v)}
        diff.update({k: None for k in now.doc.keys() - doc.keys()})
        if diff:
            changes.append(CatalogChange("update", ref, diff))
    for ref in sorted(current.keys() - desired.keys()):
        if prune:
            changes.append(CatalogChange("delete", ref))
        elif not current[ref].retired:
            changes.append(CatalogChange("retire", ref))
    return changes


class Publisher(Protocol):
    """A catalog govern publishes to (the built-in one, DataHub, Collibra).

    ``read`` returns every entry govern published, keyed by product ref, with the fields
    govern owns in ``Current.doc`` (or, when the publisher defines ``comparable``, what that
    function gives for each field), and raises CatalogError when the catalog is unreachable.
    ``write`` applies the changes of :func:`plan_publish` and returns how many writes it sent;
    it never touches fields govern does not own, and ``retire`` never deletes. ``close``
    releases connections. Optional: ``searchable() -> set[str]`` (refs the catalog's search
    finds) and ``comparable(field, value)``.
    """

    name: str

    def read(self) -> dict[str, Current]: ...

    def write(self, changes: Sequence[CatalogChange]) -> int: ...

    def close(self) -> None: ...


@contextmanager
def open_publisher(config: Any, requests_config: Any, root: Path,
                   migrate: bool = True) -> Iterator[Publisher]:
    """The publisher ``govern.yaml``'s ``catalog:`` names, closed on exit."""
    kind = getattr(config, "kind", "builtin")
    publisher: Any
    if kind == "builtin":
        from .requests import RequestStore

        store = RequestStore.for_config(requests_config, root, migrate=migrate)
        publisher = BuiltinCatalog(store.engine, on_close=store.close)
    elif kind == "datahub":
        from .catalog_datahub import DataHubPublisher

        publisher = DataHubPublisher.from_config(config, root)
    elif kind == "collibra":
        from .catalog_collibra import CollibraPublisher

        publisher = CollibraPublisher.from_config(config, root)
    else:  # the config model admits no other kind
        raise CatalogError(f"catalog: unknown kind {kind!r}")
    try:
        yield publisher
    finally:
        publisher.close()


# ---------------------------------------------------------------- the built-in catalog

class BuiltinCatalog:
    """Entries in the request store's database: SQLite FTS5 or PostgreSQL tsvector search."""

    name = "builtin"

    def __init__(self, engine: Any, on_close: Callable[[], None] | None = None):
        self.engine = engine
        self.sqlite = engine.url.get_backend_name() == "sqlite"
        self.writes = 0
        self.reads = 0
        self._on_close = on_close

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def transaction(self):
        return _guard(self.engine)

    def read(self) -> dict[str, Current]:
        self.reads += 1
        with self.transaction() as conn:
            rows = conn.execute(select(entries.c.ref, entries.c.doc, entries.c.retired,
                                       entries.c.extra)).fetchall()
        return {r.ref: Current(json.loads(r.doc), bool(r.retired), json.loads(r.extra or "{}"))
                for r in rows}

    def write(self, changes: Sequence[CatalogChange]) -> int:
        if not changes:
            return 0
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        sent = 0
        with self.transaction() as conn:
            for change in changes:
                ref = change.ref
                if change.action == "create":
                    conn.execute(insert(entries).values(ref=ref, doc=_dump(change.fields),
                                                        extra="{}", retired=False,
                                                        updated_at=now))
                    self._reindex(conn, ref, change.fields, {})
                elif change.action in ("update", "retire", "unretire"):
                    row = conn.execute(select(entries.c.doc, entries.c.extra, entries.c.retired)
                                       .where(entries.c.ref == ref)).one()
                    doc, retired = json.loads(row.doc), bool(row.retired)
                    values: dict[str, Any] = {"updated_at": now}
                    if change.action == "update":
                        for key, value in change.fields.items():
                            if value is None:
                                doc.pop(key, None)
                            else:
                                doc[key] = value
                        values["doc"] = _dump(doc)
                    else:
                        retired = values["retired"] = change.action == "retire"
                    conn.execute(update(entries).where(entries.c.ref == ref).values(**values))
                    self._reindex(conn, ref, None if retired else doc,
                                  json.loads(row.extra or "{}"))
                elif change.action == "delete":
                    conn.execute(sql_delete(entries).where(entries.c.ref == ref))
                    self._reindex(conn, ref, None, {}, deleted=True)
                else:
                    raise CatalogError(f"catalog: unknown change {change.action!r}")
                sent += 1
        self.writes += sent
        return sent

    def edit_extra(self, ref: str, key: str, value: Any) -> None:
        """A field the catalog owns (e.g. a steward's description), as its own UI would."""
        with self.transaction() as conn:
            row = conn.execute(select(entries.c.doc, entries.c.extra, entries.c.retired)
                               .where(entries.c.ref == ref)).one()
            extra = json.loads(row.extra or "{}")
            extra[key] = value
            conn.execute(update(entries).where(entries.c.ref == ref).values(extra=_dump(extra)))
            self._reindex(conn, ref, None if row.retired else json.loads(row.doc), extra)

    def _reindex(self, conn: Any, ref: str, doc: Mapping[str, Any] | None,
                 extra: Mapping[str, Any], deleted: bool = False) -> None:
        """The search index of one entry: its words, or none when ``doc`` is None (retired)."""
        body = search_text(doc, extra) if doc is not None else None
        if self.sqlite:
            conn.execute(text("DELETE FROM catalog_search WHERE ref = :ref"), {"ref": ref})
            if body is not None:
                conn.execute(text("INSERT INTO catalog_search (ref, body) VALUES (:ref, :body)"),
                             {"ref": ref, "body": body})
        elif not deleted:
            conn.execute(text("UPDATE catalog_entries SET search = to_tsvector('simple', :body) "
                              "WHERE ref = :ref"), {"ref": ref, "body": body or ""})

    def searchable(self) -> set[str]:
        """Refs the search index holds (one query)."""
        with self.transaction() as conn:
            if self.sqlite:
                rows = conn.execute(text("SELECT ref FROM catalog_search")).fetchall()
            else:
                rows = conn.execute(text("SELECT ref FROM catalog_entries WHERE NOT retired "
                                         "AND search IS NOT NULL AND search <> ''::tsvector"))
        return {r.ref for r in rows}

    def search(self, query: str, limit: int = 50) -> list[str]:
        """Refs of live (not retired) entries matching every word of ``query``, best first.
        Control characters separate words (neither FTS5 nor tsvector takes a NUL)."""
        words = [w for w in re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", query).split() if w]
        if not words:
            return []
        with self.transaction() as conn:
            if self.sqlite:
                match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
                rows = conn.execute(text("SELECT ref FROM catalog_search WHERE catalog_search "
                                         "MATCH :q ORDER BY rank LIMIT :n"),
                                    {"q": match, "n": limit}).fetchall()
            else:
                rows = conn.execute(text(
                    "SELECT ref FROM catalog_entries WHERE NOT retired AND search @@ "
                    "plainto_tsquery('simple', :q) ORDER BY ts_rank(search, "
                    "plainto_tsquery('simple', :q)) DESC LIMIT :n"),
                    {"q": " ".join(words), "n": limit}).fetchall()
        return [r.ref for r in rows]


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class _guard:
    """One transaction; any database error becomes a one-line CatalogError."""

    def __init__(self, engine: Any):
        self.engine = engine

    def __enter__(self) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        self._errors = SQLAlchemyError
        try:
            self._conn = self.engine.connect()
            self._tx = self._conn.begin()
        except SQLAlchemyError as exc:
            raise CatalogError(f"catalog: {first_line(exc)}") from exc
        return self._conn

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        try:
            if kind is None:
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            self._conn.close()
        if exc is not None and isinstance(exc, self._errors):
            raise CatalogError(f"catalog: {first_line(exc)}") from exc
        return False


# ---------------------------------------------------------------- publish

@dataclass
class PublishResult:
    changes: list[CatalogChange]
    writes: int
    dry_run: bool


def desired_entries(mesh: Mesh, addresses: Mapping[str, Mapping[str, Mapping[str, str | None]]],
                    fitness: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict]:
    return {p.ref: product_entry(p, addresses.get(p.ref, {}),
                                 (fitness or {}).get(p.ref)) for p in mesh.products}


def publish(publisher: Publisher, desired: Mapping[str, dict], prune: bool = False,
            dry_run: bool = False) -> PublishResult:
    changes = plan_publish(desired, publisher.read(), prune,
                           getattr(publisher, "comparable", None))
    writes = 0 if dry_run else publisher.write(changes)
    return PublishResult(changes, writes, dry_run)


def published(publisher: Publisher, refs: Iterable[str]) -> dict[str, bool]:
    """For the discoverable fitness check: is each product live in the catalog, and (where
    the catalog can say) found by its search? Asked of the catalog itself, in one or two reads."""
    current = publisher.read()
    searchable = getattr(publisher, "searchable", None)
    indexed = searchable() if searchable else None
    return {ref: ref in current and not current[ref].retired
            and (indexed is None or ref in indexed) for ref in refs}
