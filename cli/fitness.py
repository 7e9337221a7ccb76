"""`govern fitness`: the six fitness functions, red / amber / green per product."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from govern.engine import fitness as fit
from govern.engine import pipeline

from .common import handle_errors, mesh_root
from .render import emit_json


def _catalog_facts(mesh) -> tuple[dict[str, bool] | None, str | None]:
    """Whether each product is live and searchable in the built-in catalog, asked of the
    catalog itself (never created = nothing published); (None, why) when it cannot be asked."""
    from govern.engine import catalog as cat
    from govern.engine.errors import GovernError

    from .catalog import existing_catalog

    refs = [p.ref for p in mesh.products]
    try:
        with existing_catalog(mesh) as builtin:
            if builtin is None:
                return {ref: False for ref in refs}, None
            return cat.published(builtin, refs), None
    except GovernError as exc:
        return None, f"catalog unavailable: {exc}"


@click.command()
@click.option("--product", "-p", multiple=True, metavar="DOMAIN/NAME", help="Only this product.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text")
@click.option("--html", "html_out", type=click.Path(dir_okay=False),
              help="Also write the dashboard as a self-contained HTML page.")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None, hidden=True)
@click.pass_context
@handle_errors
def fitness(ctx: click.Context, product, fmt, html_out, today) -> None:
    """Check every product against the mesh's fitness functions (Rego under
    policies/fitness/, one OPA evaluation for the whole mesh) and show red / amber / green.

    Exit 0 when no check is red (amber = a fact could not be gathered), 1 when any is red.
    The markdown fits a PR comment; --html writes the dashboard.
    """
    day = today.date() if today else dt.date.today()
    inputs = pipeline.load_inputs(mesh_root(ctx), today=day, approvals_optional=True)
    products = list(product) or None
    connectors = pipeline.connectors_for(inputs.mesh)
    try:
        with pipeline.opa_session(inputs) as client:
            evaluation = pipeline.evaluate(client, inputs.mesh, inputs.snapshot)
            published, catalog_error = _catalog_facts(inputs.mesh)
            facts = fit.gather(inputs.mesh, connectors, published, catalog_error)
            report = fit.evaluate(client, inputs.mesh, evaluation.access, facts, day, products,
                                  approvals_error=inputs.approvals_error)
    finally:
        for connector in connectors.values():
            connector.close()
    history_path = inputs.mesh.resolve(inputs.mesh.config.fitness.history_path)
    report.history = fit.load_history(history_path)
    if products is None:
        fit.append_history(history_path, report)
        fit.write_latest(inputs.mesh.resolve(inputs.mesh.config.fitness.latest_path), report)
    if html_out:
        Path(html_out).write_text(fit.render_html(report), encoding="utf-8")
    if fmt == "json":
        emit_json(report.to_dict())
    elif fmt == "markdown":
        click.echo(fit.render_markdown(report), nl=False)
    else:
        click.echo(fit.render_text(report))
    if report.any_red:
        sys.exit(1)
