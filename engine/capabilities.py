"""What product policies may call: OPA's own capabilities minus every builtin that reaches
outside the evaluation.

Product policies are committed by many teams and run, in every command, next to the run's
secrets. They are compiled under a capabilities set derived from the OPA binary itself
(``opa capabilities --current``): every builtin OPA marks *nondeterministic* (network, clock,
randomness, ``opa.runtime``, remote JSON schemas, …) is removed, and so are the network and
environment builtins by name, whatever a future OPA marks; ``allow_net`` is empty. A product
calling one of them is refused with its file and line (docs/policy-contract.md lists them).

Every module a run loads is compiled under this set, the platform's too: products call and
extend the platform packages, and no platform policy needs any of the refused builtins.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .errors import OPAUnavailable, PolicyError, Problem
from .opa_local import OPA_ENV, check

#: refused even if OPA stopped marking them nondeterministic: they reach the network or
#: read the environment of the OPA process
NETWORK_AND_ENVIRONMENT = frozenset({"http.send", "net.lookup_ip_addr", "opa.runtime"})

_UNDEFINED = re.compile(r"undefined function ([\w.]+)")


@functools.lru_cache(maxsize=4)
def _derive(binary: str) -> tuple[str, tuple[str, ...]]:
    proc = subprocess.run([binary, "capabilities", "--current"], capture_output=True,
                          text=True, env=OPA_ENV, check=False)
    try:
        caps = json.loads(proc.stdout)
        builtins = caps["builtins"]
        names = {b["name"] for b in builtins}
    except (ValueError, KeyError, TypeError) as exc:
        raise OPAUnavailable(f"{binary} capabilities --current: no capabilities "
                             f"({(proc.stderr or proc.stdout).strip()[:200]})") from exc
    refused = {b["name"] for b in builtins if b.get("nondeterministic")}
    refused |= NETWORK_AND_ENVIRONMENT & names
    caps["builtins"] = [b for b in builtins if b["name"] not in refused]
    caps["allow_net"] = []
    return json.dumps(caps), tuple(sorted(refused))


def refused_builtins(binary: str) -> tuple[str, ...]:
    """The builtins product policies may not call, with this OPA binary."""
    return _derive(binary)[1]


def product_capabilities(binary: str) -> dict:
    """The capabilities document product policies are compiled under."""
    return json.loads(_derive(binary)[0])


@contextmanager
def capabilities_file(binary: str) -> Iterator[Path]:
    """The product capabilities as a file, for ``opa check|test --capabilities``."""
    with tempfile.TemporaryDirectory(prefix="govern-caps-") as folder:
        path = Path(folder) / "capabilities.json"
        path.write_text(_derive(binary)[0])
        yield path


def check_restricted(binary: str, files: Iterable[Path], root: Path) -> list[Problem]:
    """``opa check --strict`` under the product capabilities. ``files`` are the product
    policies (and tests) with every module they call or extend (the platform's): a refused
    builtin anywhere among them is a Problem at its file and line."""
    refused = set(refused_builtins(binary))
    with capabilities_file(binary) as caps:
        problems = check(binary, files, root, capabilities=caps)
    return [_explain(p, refused) for p in problems]


def _explain(problem: Problem, refused: set[str]) -> Problem:
    found = _UNDEFINED.search(problem.message)
    if not found or found.group(1) not in refused:
        return problem
    return Problem(problem.file, problem.path,
                   f"{found.group(1)} is not allowed: policies run without network, "
                   "environment, clock or randomness builtins (docs/policy-contract.md)")


def refusal(problems: list[Problem]) -> PolicyError:
    """One line for a run that loads policies into OPA: the first problem's file:line."""
    first = problems[0]
    line = first.path.removeprefix("line ")
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    where = f"{first.file}:{line}" if line else first.file
    return PolicyError(f"OPA refused the policies: {where}: {first.message}{more}")
