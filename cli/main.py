"""govern — policy-as-code access governance for data meshes, on Open Policy Agent.

Every command works on the mesh whose govern.yaml is in the current folder (or a parent), or
the one given with --mesh. Errors are one line on stderr and exit 1.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from govern.engine.errors import GovernError, GuardrailViolation, SpecError
from govern.engine.mesh import find_root

from .render import RichReporter, emit_json, error

FORMATS = click.Choice(["text", "json", "markdown"])


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """GovernError → one line per problem on stderr, exit 1. Nothing else is caught."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpecError as exc:
            for problem in exc.problems:
                error(str(problem))
            sys.exit(1)
        except GuardrailViolation as exc:
            for v in exc.violations:
                error(f"guardrail {v.get('rule')}: {v.get('message')}")
            sys.exit(1)
        except GovernError as exc:
            error(str(exc))
            sys.exit(exc.exit_code)

    return wrapper


def mesh_root(ctx: click.Context) -> Path:
    given = ctx.obj.get("mesh")
    return find_root(Path(given) if given else Path.cwd())


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


from . import commands  # noqa: E402,F401  (registers the commands on `cli`)


def main() -> None:
    cli(prog_name="govern")

