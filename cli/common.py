"""What every command shares: the mesh it works on, its output formats, and one mapping of
GovernError to one line on stderr and an exit code."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable

import click

from govern.engine.errors import GovernError, GuardrailViolation, SpecError
from govern.engine.mesh import find_root

from .render import error

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
