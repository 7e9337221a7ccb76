"""Why a user has, or lacks, access to a product's ports.

The answer is computed by OPA itself, not by re-implementing the policy: the product's
decision is evaluated once as is, then once per fact about the user (each direct group
membership, each attribute, each approval) with that fact removed, through Rego's ``with``.
A fact whose removal takes the access away is what grants it. The policy lines that mention
the facts found are quoted as the rule.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .approvals import Approval
from .directory import Snapshot
from .errors import GovernError, PolicyError
from .mesh import Mesh, Product
from .opa import OPAClient


@dataclass(frozen=True)
class Fact:
    kind: str  # "group" | "attribute" | "approval"
    name: str
    detail: Any = field(default=None, compare=False)  # group path, attribute value, request

    def describe(self) -> str:
        if self.kind == "group":
            nested = ", ".join(self.detail[1:])
            return f"member of group {self.name}" + (f" (nested in {nested})" if nested else "")
        if self.kind == "attribute":
            return f"attribute {self.name} = {self.detail!r}"
        return f"approved request {self.name} (until {self.detail['expires']})"


@dataclass
class PortAnswer:
    port: str
    access: list[str]
    paths: list[list[Fact]] = field(default_factory=list)  # each path alone grants access
    rules: list[str] = field(default_factory=list)


@dataclass
class Explanation:
    user: str
    product: str
    ports: list[PortAnswer]
    facts: list[Fact]
    policy_mentions: list[str]

    def to_dict(self) -> dict[str, Any]:
        def fact(f: Fact) -> dict[str, Any]:
            return {"kind": f.kind, "name": f.name, "detail": f.detail, "text": f.describe()}

        return {"user": self.user, "product": self.product,
                "ports": [{"port": p.port, "access": p.access, "granted": bool(p.access),
                           "paths": [[fact(f) for f in path] for path in p.paths],
                           "rules": p.rules}
                          for p in self.ports],
                "facts": [fact(f) for f in self.facts],
                "policy_mentions": self.policy_mentions}


def owner_of(mesh: Mesh, name: str) -> tuple[str, str, str]:
    """The one (product, port, target) whose port holds store object ``name``
    (``[TARGET:]SCHEMA.TABLE`` or ``[TARGET:]SCHEMA``). Validation makes every object belong
    to exactly one port, so the owner's policy is every path govern grants it by."""
    target, _, rest = name.rpartition(":")
    schema, _, table = rest.partition(".")
    found = sorted({(p.ref, port.name, port.target) for p in mesh.products
                    for port in p.spec.ports
                    if (not target or port.target == target) and port.location.schema_ == schema
                    and (not table or any(d.name == table for d in port.datasets))})
    if not found:
        raise GovernError(f"no port of the mesh holds {name!r}: govern grants nothing on it "
                          "(a grant there was made by hand)")
    if len({(ref, port) for ref, port, _ in found}) > 1:
        ports = ", ".join(f"{ref} port {port}" for ref, port, _ in found)
        raise GovernError(f"{name!r} is in several ports ({ports}): name the table")
    return found[0]


def user_facts(user: str, snapshot: Snapshot, approvals: tuple[Approval, ...],
               product: str) -> list[Fact]:
    paths = snapshot.groups_of(user)
    facts = [Fact("group", g, [g, *sorted(n for n, p in paths.items() if p[0] == g and n != g)])
             for g in snapshot.direct_groups(user)]
    facts += [Fact("attribute", k, list(v) if isinstance(v, tuple) else v)
              for k, v in sorted(snapshot.users[user].attributes.items())]
    facts += [Fact("approval", a.id, a.to_data()) for a in approvals
              if a.principal == user and a.product == product]
    return facts


class _Oracle:
    """Evaluates the product's grants for one user with only some of the user's facts kept."""

    def __init__(self, client: OPAClient, product: Product, user: str, facts: list[Fact],
                 snapshot: Snapshot, approvals: tuple[Approval, ...]):
        self.client, self.user, self.facts = client, user, facts
        self.snapshot, self.approvals = snapshot, approvals
        self.base = f"data.products.{product.spec.domain}.{product.spec.name}.grants"

    def query(self, kept: frozenset[Fact] | None) -> tuple[str, dict[str, Any]]:
        if kept is None:
            return f"x := {self.base}", {}
        # without the engine's precomputed index, so the library sees the overrides below
        overrides, values = ["with data.directory.index as {}"], {}
        for i, fact in enumerate(f for f in self.facts if f.kind == "group" and f not in kept):
            ref = f"data.directory.groups[{json.dumps(fact.name)}].members"
            values[f"g{i}"] = sorted(self.snapshot.groups[fact.name].members - {self.user})
            overrides.append(f"with {ref} as input.g{i}")
        attrs = {f.name: f.detail for f in self.facts if f.kind == "attribute" and f in kept}
        if len(attrs) < sum(1 for f in self.facts if f.kind == "attribute"):
            ref = f"data.directory.users[{json.dumps(self.user)}].attributes"
            values["attrs"] = attrs
            overrides.append(f"with {ref} as input.attrs")
        dropped = {f.name for f in self.facts if f.kind == "approval" and f not in kept}
        if dropped:
            values["approvals"] = [a.to_data() for a in self.approvals if a.id not in dropped]
            overrides.append("with data.approvals as input.approvals")
        return " ".join([f"x := {self.base}", *overrides]), values

    def access(self, kept_sets: list[frozenset[Fact] | None]) -> list[dict[str, set[str]]]:
        queries = [self.query(k) for k in kept_sets]
        with ThreadPoolExecutor(max_workers=self.client.concurrency) as pool:
            return list(pool.map(lambda q: _access_of(self.client.query(*q), self.user),
                                 queries))


def _access_of(result: list[dict[str, Any]], user: str) -> dict[str, set[str]]:
    if not result or "x" not in result[0]:
        raise PolicyError("explain: the product decision is undefined")
    out: dict[str, set[str]] = {}
    for grant in result[0]["x"]:
        if grant.get("principal") == user:
            out.setdefault(grant["port"], set()).add(grant["access"])
    return out


def explain(client: OPAClient, mesh: Mesh, snapshot: Snapshot, approvals: tuple[Approval, ...],
            user: str, product_ref: str, port: str | None = None) -> Explanation:
    if user not in snapshot.users:
        raise PolicyError(f"explain: user {user!r} is not in the directory {snapshot.source}")
    try:
        product = mesh.product(product_ref)
    except KeyError:
        raise PolicyError(f"explain: no product {product_ref!r} in the mesh") from None
    ports = [p.name for p in product.spec.ports]
    if port is not None and port not in ports:
        raise PolicyError(f"explain: {product_ref} has no port {port!r} (it has: "
                          f"{', '.join(ports)})")
    facts = user_facts(user, snapshot, approvals, product_ref)
    oracle = _Oracle(client, product, user, facts, snapshot, approvals)
    attrs = frozenset(f for f in facts if f.kind == "attribute")
    # candidate paths: nothing, each group alone, each approval alone, the attributes alone
    singles = [frozenset({f}) for f in facts if f.kind != "attribute"]
    candidates = [frozenset(), *singles, attrs]
    full, *tried = oracle.access([None, *candidates])
    text = product.policy.read_text(encoding="utf-8").splitlines()
    answers = []
    for name in ports if port is None else [port]:
        answer = PortAnswer(name, sorted(full.get(name, ())))
        if answer.access:
            answer.paths = _paths(oracle, name, set(answer.access), candidates, tried, attrs,
                                  facts)
            answer.rules = _rules(text, product, [f for p in answer.paths for f in p])
        answers.append(answer)
    return Explanation(user, product_ref, answers, facts, _mentions(text))


def _paths(oracle: _Oracle, port: str, access: set[str], candidates: list[frozenset[Fact]],
           tried: list[dict[str, set[str]]], attrs: frozenset[Fact],
           facts: list[Fact]) -> list[list[Fact]]:
    def grants(result: dict[str, set[str]]) -> bool:
        return access <= result.get(port, set())

    if grants(tried[0]):
        return [[]]  # granted with none of the user's facts: by name, or to everyone
    paths = [sorted(c, key=facts.index) for c, r in zip(candidates[1:], tried[1:])
             if c and grants(r) and c != attrs]
    if attrs and grants(tried[-1]):  # which attributes matter
        minus = [attrs - {a} for a in sorted(attrs, key=facts.index)]
        results = oracle.access(list(minus))
        needed = [a for a, r in zip(sorted(attrs, key=facts.index), results) if not grants(r)]
        paths.append(needed or sorted(attrs, key=facts.index))
    if paths:
        return paths
    # no single fact suffices: the facts each of which is needed (e.g. a group AND an attribute)
    everything = frozenset(facts)
    results = oracle.access([everything - {f} for f in facts])
    needed = [f for f, r in zip(facts, results) if not grants(r)]
    return [needed] if needed else [list(facts)]


def _rules(lines: list[str], product: Product, facts: list[Fact]) -> list[str]:
    """Lines of policy.rego that mention one of the facts (a group on its path, an
    attribute name, or approvals), as ``policy.rego:LINE: text``."""
    needles: list[str] = []
    for f in facts:
        if f.kind == "group":
            needles += [json.dumps(g) for g in f.detail]
        elif f.kind == "attribute":
            needles.append(json.dumps(f.name))
        else:
            needles.append("lib.approved(")
    found = []
    for i, line in enumerate(lines, 1):
        if not line.lstrip().startswith("#") and any(n in line for n in needles):
            found.append(f"{product.policy.name}:{i}: {line.strip()}")
    return found


_MENTION = re.compile(r'lib\.(members|member_of|users_where|domain_members|approved|attr|'
                      r'has_attr)\(([^)]*)\)')


def _mentions(lines: list[str]) -> list[str]:
    """What the policy's rules are written over, e.g. ``lib.members("commercial-analysts")``."""
    seen: dict[str, None] = {}
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        for m in _MENTION.finditer(line):
            seen[f"lib.{m.group(1)}({m.group(2)})"] = None
    return list(seen)


def render_text(ex: Explanation) -> str:
    out = []
    for p in ex.ports:
        if not p.access:
            out.append(f"{ex.user} has no access to {ex.product} port {p.port}")
            continue
        out.append(f"{ex.user} has {' and '.join(p.access)} on {ex.product} port {p.port}")
        for path in p.paths:
            out.append("  because: " + (" and ".join(f.describe() for f in path)
                                        or "granted by name or to everyone"))
        out += [f"  rule: {r}" for r in p.rules]
    if not any(p.access for p in ex.ports):
        out.append("  the policy grants through: " + (", ".join(ex.policy_mentions) or "nothing"))
        out.append(f"  {ex.user}: " + ("; ".join(f.describe() for f in ex.facts)
                                      or "no groups, attributes or approvals"))
    return "\n".join(out)
