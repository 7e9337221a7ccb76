"""The commands of `govern`. Each one is a thin shell over govern.engine.pipeline."""

from __future__ import annotations

import json
import re
import sys
from importlib import resources
from pathlib import Path

import click

from govern.engine import pipeline
from govern.engine.capabilities import capabilities_file
from govern.engine.errors import GovernError
from govern.engine.mesh import load_config, load_mesh
from govern.engine.opa import find_opa, run_tests
from govern.engine.plan import Plan, render_markdown, render_text
from govern.engine.spec import PRODUCT_REF_PATTERN, MeshConfig, ProductSpec

from .common import FORMATS, handle_errors, mesh_root
from .render import RichReporter, emit_json, warn


def _warn_diagnostics(plan: Plan, fmt: str) -> None:
    if fmt != "json":
        for d in plan.diagnostics:
            warn(f"{d.subject}: {d.message}")


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
@handle_errors
def validate(ctx: click.Context, fmt: str) -> None:
    """Check the mesh: schema of every file, `opa check --strict`, store name limits and
    ownership, the directory names policies and products use (groups, attributes, owners),
    and the mesh-wide guardrails (which need the directory and OPA, but no store).

    Exit 0 when valid, 1 with every problem listed (file: field: message) otherwise.
    """
    inputs = pipeline.load_inputs(mesh_root(ctx))
    pipeline.check_rego(inputs.mesh)  # the same check opa_session runs, with the tests
    pipeline.check_references(inputs)
    with pipeline.opa_session(inputs, rego_checked=True) as client:
        evaluation = pipeline.evaluate(client, inputs.mesh, inputs.snapshot)
        pipeline.check_violations(evaluation.violations)
        for connector in pipeline.connectors_for(inputs.mesh).values():
            pipeline.check_names(connector.desired(evaluation.access, inputs.mesh,
                                                   inputs.snapshot.users, None, None),
                                 inputs.snapshot)
    summary = {"valid": True, "products": len(inputs.mesh.products),
               "users": len(inputs.snapshot.users), "grants": len(evaluation.access)}
    if fmt == "json":
        emit_json(summary)
    else:
        click.echo(f"Valid: {summary['products']} products, {summary['users']} users, "
                   f"{summary['grants']} access grants, no guardrail violations.")


@click.command("test")
@click.option("-v", "--verbose", is_flag=True, help="Show every test.")
@click.pass_context
@handle_errors
def test_cmd(ctx: click.Context, verbose: bool) -> None:
    """Run `opa test` over the platform policies and every product's policy and tests, and
    print the coverage. Exit 0 when every test passes."""
    mesh = load_mesh(mesh_root(ctx))
    platform = Path(str(resources.files("govern.policies")))
    files = sorted(platform.rglob("*.rego"))
    try:
        suites = Path(str(resources.files("govern.rego_tests")))
        files += sorted(suites.rglob("*.rego"))
    except ModuleNotFoundError:
        pass
    for product in mesh.products:
        files.append(product.policy)
        if product.test:
            files.append(product.test)
        else:
            warn(f"{product.ref}: no policy_test.rego")
    binary = find_opa(mesh.config.opa.binary)
    # policies and tests under the product capabilities first, each problem at its line
    pipeline.check_rego(mesh)
    with capabilities_file(binary) as caps:
        result = run_tests(binary, files, verbose, capabilities=caps)
        click.echo(result.stdout.rstrip())
        if result.returncode != 0:
            if result.stderr.strip():
                click.echo(result.stderr.rstrip(), err=True)
            raise GovernError("opa test failed")
        coverage = run_tests(binary, files, coverage=True, capabilities=caps)
    try:
        percent = json.loads(coverage.stdout).get("coverage")
        click.echo(f"coverage: {percent:.1f}%")
    except (ValueError, TypeError):
        pass


def _scope(product: tuple[str, ...], target: tuple[str, ...]):
    return (list(product) or None), (list(target) or None)


@click.command()
@click.option("--product", "-p", multiple=True, metavar="DOMAIN/NAME",
              help="Only this product (repeatable).")
@click.option("--target", "-t", multiple=True, help="Only this target (repeatable).")
@click.option("--format", "fmt", type=FORMATS, default="text")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Save the plan as JSON for "
              "`govern apply PLAN`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 = no changes, 2 = changes, "
              "1 = error.")
@click.option("--allow-mass-revoke", is_flag=True, help="Do not stop a plan that revokes more "
              "than guards.max_revoke_fraction of the managed grants.")
@click.pass_context
@handle_errors
def plan(ctx: click.Context, product, target, fmt, out, detailed_exitcode,
         allow_mass_revoke) -> None:
    """Show what apply would change in each store.

    \b
    Examples:
      govern plan
      govern plan --product hcp/hcp_master --format markdown   # a PR comment
      govern plan --out plan.json && govern apply plan.json
    """
    products, targets = _scope(product, target)
    inputs = pipeline.load_inputs(mesh_root(ctx))
    reporter = RichReporter.for_terminal(fmt)
    try:
        with pipeline.opa_session(inputs) as client:
            result, _ = pipeline.make_plan(inputs, client, products=products, targets=targets,
                                           allow_mass_revoke=allow_mass_revoke,
                                           reporter=reporter)
    finally:
        getattr(reporter, "close", lambda: None)()
    if out:
        result = pipeline.sign(result, inputs.mesh)  # when $GOVERN_PLAN_SIGNING_KEY is set
        result.save(Path(out))
    if fmt == "json":
        emit_json(result.to_dict())
    elif fmt == "markdown":
        click.echo(render_markdown(result), nl=False)
    else:
        click.echo(render_text(result))
        if out:
            click.echo(f"Saved to {out}; apply it with: govern apply {out}")
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


@click.command()
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option("--product", "-p", multiple=True, metavar="DOMAIN/NAME")
@click.option("--target", "-t", multiple=True)
@click.option("--allow-mass-revoke", is_flag=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
@handle_errors
def apply(ctx: click.Context, plan_file, auto_approve, product, target, allow_mass_revoke,
          fmt) -> None:
    """Apply a saved plan, or plan and apply now. Every applied change is appended to the
    audit log.

    A saved plan is applied only when it equals the plan computed now: refused when the
    store, the mesh, the directory or the approvals changed since, or when the file was
    edited (its id is the hash of its content). With $GOVERN_PLAN_SIGNING_KEY set (see
    plan_signing in govern.yaml), it must also carry a signature made with that key.

    Without --auto-approve, apply shows the plan and asks; in a pipeline (no terminal) it
    refuses to run unasked.
    """
    products, targets = _scope(product, target)
    saved = Plan.load(Path(plan_file)) if plan_file else None
    inputs = pipeline.load_inputs(mesh_root(ctx))

    def confirm(p: Plan) -> bool:
        if auto_approve or saved is not None:
            return True
        click.echo(render_text(p))
        if not sys.stdin.isatty():
            raise GovernError("apply needs --auto-approve when not run from a terminal")
        return click.confirm("Apply these changes?", default=False)

    reporter = RichReporter.for_terminal(fmt)
    try:
        with pipeline.opa_session(inputs) as client:
            result = pipeline.apply(inputs, client, saved, products=products, targets=targets,
                                    allow_mass_revoke=allow_mass_revoke, confirm=confirm,
                                    reporter=reporter)
    finally:
        getattr(reporter, "close", lambda: None)()
    total = sum(result.executed.values())
    _warn_diagnostics(result.plan, fmt)
    if fmt == "json":
        emit_json({"plan_id": result.plan.plan_id, "executed": result.executed,
                   "diagnostics": result.plan.to_dict()["diagnostics"]})
    elif not result.plan.has_changes:
        click.echo("No changes. The stores match the policies.")
    elif total:
        click.echo(f"Applied plan {result.plan.short_id}: {total} statements "
                   f"({', '.join(f'{t}: {n}' for t, n in result.executed.items())}).")
    else:
        click.echo("Nothing applied.")


@click.command()
@click.option("--config", "what", flag_value="config", help="Schema of govern.yaml.")
@click.option("--product", "what", flag_value="product", default=True,
              help="Schema of product.yaml (default).")
def schema(what: str) -> None:
    """Print the JSON Schema of product.yaml (or govern.yaml with --config), for editors."""
    model = MeshConfig if what == "config" else ProductSpec
    emit_json(model.model_json_schema(by_alias=True))


@click.group()
def new() -> None:
    """Scaffold new mesh content."""


PRODUCT_TEMPLATE = """\
name: {name}
domain: {domain}
description: TODO one sentence on what this product holds and for whom.
owner: {domain}-team
classification: internal
access: approval-required
sharing_agreement: TODO link to the data sharing agreement
distribution: none
type: source-aligned
ports:
  - name: main
    target: {target}
    location: {{schema: {name}}}
    datasets:
      - name: {name}
        columns:
          - {{name: id, type: text, description: TODO}}
"""

POLICY_TEMPLATE = """\
# {domain}/{name}: who may read which port.
package products.{domain}.{name}

import data.govern.lib

# Members of the domain team (incl. nested groups) read port main.
grants contains lib.read(user, "main") if some user in lib.domain_members("{domain}")

# Anyone with an approved access request reads port main.
grants contains lib.read(user, "main") if some user in lib.approved("{domain}/{name}", "main", "read")
"""  # noqa: E501  (Rego, as it is written into policy.rego)

TEST_TEMPLATE = """\
package products.{domain}.{name}_test

import data.products.{domain}.{name}

directory := {{
\t"users": {{"ann": {{"id": "ann", "attributes": {{}}, "groups": ["{domain}-team"]}}, "zed": {{"id": "zed", "attributes": {{}}, "groups": []}}}},
\t"groups": {{"{domain}-team": {{"members": ["ann"], "subgroups": []}}}},
}}

test_team_member_reads if {{
\t{{"principal": "ann", "port": "main", "access": "read"}} in {name}.grants with data.directory as directory
\t\twith data.approvals as []
}}

test_outsider_denied if {{
\tcount({{g | some g in {name}.grants; g.principal == "zed"}}) == 0 with data.directory as directory
\t\twith data.approvals as []
}}
"""  # noqa: E501  (Rego, as it is written into policy_test.rego)


@new.command("product")
@click.argument("ref", metavar="DOMAIN/NAME")
@click.pass_context
@handle_errors
def new_product(ctx: click.Context, ref: str) -> None:
    """Scaffold products/DOMAIN/NAME with product.yaml, policy.rego and policy_test.rego."""
    if not re.match(PRODUCT_REF_PATTERN, ref):
        raise GovernError(f"{ref!r}: want DOMAIN/NAME, lower-case letters, digits and _")
    root = mesh_root(ctx)
    config = load_config(root)
    domain, name = ref.split("/")
    folder = root / "products" / domain / name
    if folder.exists():
        raise GovernError(f"{folder} already exists")
    target = sorted(config.targets)[0]
    folder.mkdir(parents=True)
    values = {"domain": domain, "name": name, "target": target}
    (folder / "product.yaml").write_text(PRODUCT_TEMPLATE.format(**values))
    (folder / "policy.rego").write_text(POLICY_TEMPLATE.format(**values))
    (folder / "policy_test.rego").write_text(TEST_TEMPLATE.format(**values))
    click.echo(f"Created {folder.relative_to(root)}/ (product.yaml, policy.rego, "
               "policy_test.rego). Next: fill in the TODOs, then `govern validate`.")
    domain_config = config.domains.get(domain)
    if domain_config is None or target not in domain_config.namespaces:
        click.echo(f"Domain {domain} has no namespace on target {target} yet: the platform "
                   f"team adds `domains: {{{domain}: {{namespaces: {{{target}: [{name}]}}}}}}` "
                   "to govern.yaml (each domain's ports live only in its own schemas).")


@click.command()
@click.argument("user")
@click.argument("product", metavar="DOMAIN/NAME|SCHEMA.TABLE")
@click.option("--port", help="Only this port.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
@handle_errors
def explain(ctx: click.Context, user: str, product: str, port: str | None, fmt: str) -> None:
    """Why USER has or lacks access to a product: which group (and nesting path), attribute
    or approval grants it, and which policy lines. Computed by OPA, by evaluating the policy
    with each of the user's facts removed.

    Name a store object instead ([TARGET:]SCHEMA.TABLE) to ask about whatever holds it:
    every object belongs to exactly one port of the mesh, and that port's policy is every
    path govern grants it by.

    \b
    Examples:
      govern explain alice commercial/campaign_performance
      govern explain grace hcp_master.hcp
    """
    from govern.engine import explain as ex

    inputs = pipeline.load_inputs(mesh_root(ctx))
    if "/" not in product:
        product, port, target = ex.owner_of(inputs.mesh, product)
        if fmt != "json":
            click.echo(f"{product} port {port} (target {target}) holds it.")
    with pipeline.opa_session(inputs) as client:
        answer = ex.explain(client, inputs.mesh, inputs.snapshot, inputs.approvals, user.lower(),
                            product, port)
    if fmt == "json":
        emit_json(answer.to_dict())
    else:
        click.echo(ex.render_text(answer))


@click.group()
def directory() -> None:
    """What the engine sees in the directory (file or LDAP / Active Directory)."""


def _snapshot(ctx: click.Context):
    from govern.engine.mesh import load_config
    from govern.identity import open_source

    root = mesh_root(ctx)
    return open_source(load_config(root).directory, root).snapshot()


@directory.command("show")
@click.argument("user")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
@handle_errors
def directory_show(ctx: click.Context, user: str, fmt: str) -> None:
    """One principal as policies see it: attributes, and groups incl. nested ones with the
    path through which the user is in each."""
    snapshot = _snapshot(ctx)
    uid = user.lower()
    if uid not in snapshot.users:
        raise GovernError(f"user {uid!r} is not in the directory {snapshot.source}")
    u = snapshot.users[uid]
    groups = snapshot.groups_of(uid)
    attributes = {k: list(v) if isinstance(v, tuple) else v for k, v in u.attributes.items()}
    if fmt == "json":
        emit_json({"id": u.id, "display_name": u.display_name, "email": u.email,
                   "attributes": attributes, "groups": groups, "source": snapshot.source})
        return
    click.echo(f"{u.id}  {u.display_name}  <{u.email or '-'}>  (from {snapshot.source})")
    for name, value in sorted(attributes.items()):
        click.echo(f"  {name}: {value}")
    if not groups:
        click.echo("  groups: none")
    for name, path in sorted(groups.items()):
        via = f"  (via {' ⊂ '.join(path)})" if len(path) > 1 else "  (direct)"
        click.echo(f"  group {name}{via}")


@directory.command("export")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="-",
              help="File to write (default: stdout).")
@click.pass_context
@handle_errors
def directory_export(ctx: click.Context, out: str) -> None:
    """Write the current snapshot in the YAML file format (`directory: {source: file}`), for
    tests and air-gapped runs."""
    from govern.identity.file import dump_snapshot

    text = dump_snapshot(_snapshot(ctx))
    if out == "-":
        click.echo(text, nl=False)
    else:
        Path(out).write_text(text, encoding="utf-8")
