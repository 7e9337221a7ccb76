"""govern — policy-as-code access governance for data meshes, on Open Policy Agent.

Every command works on the mesh whose govern.yaml is in the current folder (or a parent), or
the one given with --mesh. Errors are one line on stderr and exit 1.
"""

from __future__ import annotations

import click

from . import catalog, commands, fitness, requests, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--mesh", "-C", "mesh", type=click.Path(file_okay=False), default=None,
              help="Folder of govern.yaml (default: the current folder or a parent).")
@click.version_option(package_name="govern")
@click.pass_context
def cli(ctx: click.Context, mesh: str | None) -> None:
    """Policy-as-code access governance for a data mesh.

    \b
    A typical session:
      govern validate          # schema, opa check --strict, guardrails
      govern test              # opa test over product and platform policies
      govern plan              # what would change in each store (exit 2 = changes,
                               #   with --detailed-exitcode)
      govern apply             # plan, confirm, apply, audit
      govern explain alice hcp/hcp_master
    """
    ctx.ensure_object(dict)
    ctx.obj["mesh"] = mesh


for command in (commands.validate, commands.test_cmd, commands.plan, commands.apply,
                commands.schema, commands.new, commands.explain, commands.directory,
                fitness.fitness, requests.request, serve.serve, catalog.catalog):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="govern")

