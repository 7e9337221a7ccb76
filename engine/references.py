"""Names a mesh uses that the directory does not have: a policy's group or attribute (a case
typo such as ``lib.members("trivadis lab developers")`` grants nobody, and the plan would
revoke every member without a word), a product's owner or steward.

Policies are read for the library calls whose arguments are literal strings; a name computed
at evaluation time cannot be checked here. Pure: mesh and snapshot in, problems out.
"""

from __future__ import annotations

import json
import re
from typing import Sequence

from .directory import Snapshot
from .errors import Problem
from .mesh import Mesh, Product, relative

_STRING = r'"((?:[^"\\\n]|\\.)*)"'
_ANY = r"[^,()]+"  # one argument that is not a literal we check
# (library function, regex over its arguments, what the literal names)
_CALLS = [
    ("members", rf"\(\s*{_STRING}\s*\)", "group"),
    ("groups_within", rf"\(\s*{_STRING}\s*\)", "group"),
    ("subgroups", rf"\(\s*{_STRING}\s*\)", "group"),
    ("member_of", rf"\(\s*{_ANY},\s*{_STRING}\s*\)", "group"),
    ("domain_members", rf"\(\s*{_STRING}\s*\)", "domain"),
    ("users_where", rf"\(\s*{_STRING}\s*,", "attribute"),
    ("attr", rf"\(\s*{_ANY},\s*{_STRING}\s*\)", "attribute"),
    ("has_attr", rf"\(\s*{_ANY},\s*{_STRING}\s*,", "attribute"),
]
_PATTERNS = [(re.compile(rf"\blib\.{name}{args}"), name, kind) for name, args, kind in _CALLS]


def check_references(mesh: Mesh, snapshot: Snapshot,
                     products: Sequence[str] | None = None) -> list[Problem]:
    """Every name of the (selected) products that the directory lacks."""
    attributes = {key for u in snapshot.users.values() for key in u.attributes}
    problems: list[Problem] = []
    for product in mesh.products:
        if products is not None and product.ref not in products:
            continue
        problems += _policy_references(product, mesh, snapshot, attributes)
        file = relative(product.folder / "product.yaml", mesh.root)
        for path, who in [("owner", product.spec.owner),
                          *((f"stewards[{i}]", s) for i, s in enumerate(product.spec.stewards))]:
            if who not in snapshot.groups and who.lower() not in snapshot.users:
                problems.append(Problem(file, path, f"{who!r} is neither a user nor a group "
                                        f"of the directory {snapshot.source}"))
    return problems


def _policy_references(product: Product, mesh: Mesh, snapshot: Snapshot,
                       attributes: set[str]) -> list[Problem]:
    file = relative(product.policy, mesh.root)
    problems = []
    for number, line in enumerate(product.policy.read_text(encoding="utf-8").splitlines(), 1):
        code = _code(line)
        for pattern, name, kind in _PATTERNS:
            for match in pattern.finditer(code):
                value = _unquote(match.group(1))
                missing = _missing(kind, value, mesh, snapshot, attributes)
                if missing:
                    problems.append(Problem(file, f"line {number}",
                                            f"lib.{name}: {missing}"))
    return problems


def _missing(kind: str, value: str, mesh: Mesh, snapshot: Snapshot,
             attributes: set[str]) -> str | None:
    source = snapshot.source
    if kind == "group" and value not in snapshot.groups:
        return f"no group {value!r} in the directory {source}{_near(value, snapshot.groups)}"
    if kind == "attribute" and value not in attributes:
        return f"no user of the directory {source} has attribute {value!r}" \
            f"{_near(value, attributes)}"
    if kind == "domain":
        config = mesh.config.domains.get(value)
        team = config.team if config and config.team else f"{value}-team"
        if team not in snapshot.groups:
            return f"domain {value}'s team group {team!r} is not in the directory {source}"
    return None


def _near(value: str, names) -> str:
    """A hint for the usual mistake, a name that differs only in case."""
    same = sorted(n for n in names if n.lower() == value.lower() and n != value)
    return f" (did you mean {same[0]!r}?)" if same else ""


def _code(line: str) -> str:
    """The line without its comment (a # outside a string)."""
    inside = False
    for i, ch in enumerate(line):
        if ch == '"' and (i == 0 or line[i - 1] != "\\"):
            inside = not inside
        elif ch == "#" and not inside:
            return line[:i]
    return line


def _unquote(text: str) -> str:
    try:
        return json.loads(f'"{text}"')
    except ValueError:
        return text
