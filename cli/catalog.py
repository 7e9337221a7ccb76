"""`govern catalog`: publish every product to the configured catalog (built in, DataHub or
Collibra), and search the built-in one."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from govern.engine import catalog as cat
from govern.engine import fitness as fit
from govern.engine import pipeline
from govern.engine.requests import RequestStore, store_url

from .common import handle_errors, mesh_root
from .render import emit_json


@click.group()
def catalog() -> None:
    """The catalog where consumers find products: the built-in one (searchable here and in
    `govern serve`), DataHub or Collibra (govern.yaml `catalog:`; docs/catalog.md)."""


def addresses(mesh) -> dict:
    out: dict = {}
    for connector in pipeline.connectors_for(mesh).values():
        for ref, ports in connector.addresses(mesh).items():
            out.setdefault(ref, {}).update(ports)
    return out


def latest_fitness(mesh) -> dict | None:
    return fit.published_fitness(mesh.resolve(mesh.config.fitness.latest_path))


@contextmanager
def existing_catalog(mesh) -> Iterator[cat.Publisher | None]:
    """The configured catalog, without creating anything: for the built-in one, None when it
    has never been created (nothing has been published); a catalog that is there but
    unreachable raises."""
    config = mesh.config.catalog
    if config.kind != "builtin":
        with cat.open_publisher(config, mesh.config.requests, mesh.root) as publisher:
            yield publisher
        return
    url = store_url(mesh.config.requests, mesh.root)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        yield None
        return
    store = RequestStore(url)
    try:
        if store.revision() is None:
            yield None
            return
        store.check_current()
        yield cat.BuiltinCatalog(store.engine)
    finally:
        store.close()


def _dry_run(mesh, desired: dict, prune: bool) -> cat.PublishResult:
    """What publishing would change, from one read of the catalog; nothing is written."""
    with existing_catalog(mesh) as publisher:
        if publisher is None:
            return cat.PublishResult(cat.plan_publish(desired, {}, prune), 0, True)
        return cat.publish(publisher, desired, prune=prune, dry_run=True)


@catalog.command("publish")
@click.option("--dry-run", is_flag=True, help="Show what would change, per product and field.")
@click.option("--prune", is_flag=True, help="Delete entries of products no longer in the mesh "
              "(by default they are only marked retired).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
@handle_errors
def publish(ctx: click.Context, dry_run: bool, prune: bool, fmt: str) -> None:
    """Publish every product's metadata: description, owner, classification, sharing
    agreement, ports, datasets and columns (PII flags), lineage, addresses and the latest
    fitness result. Idempotent: a second run writes nothing. Fields the catalog owns (a
    steward's own description) are never overwritten."""
    from govern.engine.mesh import load_mesh

    mesh = load_mesh(mesh_root(ctx))
    desired = cat.desired_entries(mesh, addresses(mesh), latest_fitness(mesh))
    if dry_run:
        result = _dry_run(mesh, desired, prune)
    else:
        with cat.open_publisher(mesh.config.catalog, mesh.config.requests, mesh.root) as pub:
            result = cat.publish(pub, desired, prune=prune)
    if fmt == "json":
        emit_json({"dry_run": dry_run, "writes": result.writes,
                   "changes": [c.to_dict() for c in result.changes]})
        return
    for change in result.changes:
        fields = f" ({', '.join(sorted(change.fields))})" if change.action == "update" else ""
        click.echo(f"  {change.action} {change.ref}{fields}")
    if not result.changes:
        click.echo("Catalog: up to date, nothing written.")
    elif dry_run:
        click.echo(f"Catalog: {len(result.changes)} changes (dry run: nothing written).")
    else:
        click.echo(f"Catalog: {len(result.changes)} changes, {result.writes} writes.")


@catalog.command("search")
@click.argument("query")
@click.pass_context
@handle_errors
def search(ctx: click.Context, query: str) -> None:
    """Find products by name, description, column or owner."""
    from govern.engine.mesh import load_config

    root = mesh_root(ctx)
    config = load_config(root)
    if config.catalog.kind != "builtin":
        raise cat.CatalogError(f"catalog search: searches the built-in catalog; this mesh "
                               f"publishes to {config.catalog.kind} (catalog.kind): search there")
    store = RequestStore.for_config(config.requests, root, migrate=False)
    try:
        for ref in cat.BuiltinCatalog(store.engine).search(query):
            click.echo(ref)
    finally:
        store.close()
