"""Evaluate the mesh in OPA: upload once, one decision per product (concurrently), then one
guardrail decision over every desired grant.

The data documents (``data.directory``, ``data.approvals``, ``data.mesh``) are built by pure
functions here; docs/policy-contract.md describes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

from .approvals import Approval
from .directory import Snapshot
from .errors import PolicyError
from .mesh import Mesh, Product, relative
from .models import Access, AccessLevel, Diagnostic
from .opa import Decision, OPAClient

GRANTS_RULE = "grants"
GUARDRAILS_PATH = "govern/guardrails/violations"


@dataclass(frozen=True)
class Evaluation:
    access: frozenset[Access]
    violations: tuple[dict[str, str], ...]
    decisions: tuple[Decision, ...]
    diagnostics: tuple[Diagnostic, ...] = ()


def platform_policies() -> list[Path]:
    """The platform's Rego (``govern.lib``, guardrails), without its tests."""
    root = Path(str(resources.files("govern.policies")))
    files = (p for p in root.rglob("*.rego") if not p.name.endswith("_test.rego"))
    # OPA compiles each upload against what it has: the library goes first
    return sorted(files, key=lambda p: (p.parent.name != "lib", str(p)))


def mesh_data(mesh: Mesh) -> dict[str, Any]:
    """The ``data.mesh`` document (docs/policy-contract.md)."""
    domains = {p.spec.domain for p in mesh.products} | set(mesh.config.domains)
    fitness = mesh.config.fitness
    return {
        "domains": {d: {"team": (mesh.config.domains[d].team if d in mesh.config.domains
                                 and mesh.config.domains[d].team else f"{d}-team")}
                    for d in sorted(domains)},
        "products": {p.ref: _product_data(p, mesh) for p in mesh.products},
        "fitness": {"allowed_formats": list(fitness.allowed_formats),
                    "waivers": [_waiver(w) | {"product": w.product} for w in fitness.waivers]},
    }


def _product_data(product: Product, mesh: Mesh) -> dict[str, Any]:
    s = product.spec
    file = relative(product.folder / "product.yaml", mesh.root)
    return {
        "domain": s.domain, "name": s.name, "owner": s.owner, "file": file,
        "stewards": list(s.stewards),  # who approves requests (govern.requests)
        "description": s.description,
        "classification": s.classification.value, "access": s.access.value,
        "type": s.type.value,
        "contains_pii": s.privacy.contains_pii or any(port.pii for port in s.ports),
        "inputs": [{"product": i.product, "exception": i.exception} for i in s.inputs],
        "slos": [{"name": o.name, "target": o.target, "indicator": o.indicator,
                  "target_seconds": duration_seconds(o.target)} for o in s.slos],
        "waivers": [_waiver(w) for w in s.waivers],
        "ports": {port.name: {
            "name": port.name, "index": i, "target": port.target, "pii": port.pii,
            "format": port.format,
            "datasets": [{"index": j, "name": d.name, "description": d.description,
                          "sample": d.sample, "freshness_column": d.freshness_column,
                          "pii_columns": [c.name for c in d.columns if c.pii],
                          "columns": [{"name": c.name, "type": c.type,
                                       "description": c.description, "pii": c.pii}
                                      for c in d.columns]}
                         for j, d in enumerate(port.datasets)]}
            for i, port in enumerate(s.ports)},
    }


def _waiver(w: Any) -> dict[str, str]:
    return {"check": w.check, "reason": w.reason, "approver": w.approver,
            "expires": w.expires.isoformat()}


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str) -> int | None:
    """``24h`` → 86400; None when the text is not a duration (a number and s/m/h/d/w)."""
    text = text.strip().lower()
    if len(text) >= 2 and text[-1] in _UNITS and text[:-1].isdigit():
        return int(text[:-1]) * _UNITS[text[-1]]
    return None


def policy_id(path: Path, mesh: Mesh) -> str:
    try:
        return "govern/mesh/" + str(path.resolve().relative_to(mesh.root))
    except ValueError:
        return "govern/platform/" + path.name


def run_policies(mesh: Mesh, platform: bool = True) -> list[Path]:
    """Every Rego module a run needs, library first: platform, the mesh's own, products."""
    return (platform_policies() if platform else []) + mesh.extra_policies() + \
        [p.policy for p in mesh.products]


def upload(client: OPAClient, mesh: Mesh, snapshot: Snapshot,
           approvals: Sequence[Approval], policies: bool = True) -> None:
    """Data (and, unless the server loaded them at start, policies), once per run."""
    if policies:
        for path in platform_policies():
            client.put_policy(f"govern/platform/{path.parent.name}/{path.name}", path.read_text())
        for path in run_policies(mesh, platform=False):
            client.put_policy(policy_id(path, mesh), path.read_text())
    client.put_data("directory", snapshot.to_data())
    client.put_data("approvals", [a.to_data() for a in approvals])
    client.put_data("mesh", mesh_data(mesh))


def decision_path(product: Product) -> str:
    return f"products/{product.spec.domain}/{product.spec.name}/{GRANTS_RULE}"


def evaluate(client: OPAClient, mesh: Mesh, snapshot: Snapshot,
             products: Sequence[str] | None = None) -> Evaluation:
    """Desired logical access of the (selected) products, and the mesh guardrails."""
    selected = [p for p in mesh.products if products is None or p.ref in products]
    decisions = client.decide_many([decision_path(p) for p in selected])
    access: set[Access] = set()
    notes: list[Diagnostic] = []
    for product, decision in zip(selected, decisions):
        found, product_notes = parse_grants(product, decision.result, snapshot.users.keys())
        access.update(found)
        notes += product_notes
    guard = client.decide(GUARDRAILS_PATH, {"grants": [a.to_dict() for a in sorted(access)]})
    violations = parse_violations(guard.result)
    if products is not None:  # a scoped run is blocked only by its own products' violations
        violations = tuple(v for v in violations if v.get("product") in products)
    return Evaluation(frozenset(access), violations, (*decisions, guard), tuple(notes))


def parse_grants(product: Product, result: Any,
                 users: Iterable[str]) -> tuple[set[Access], list[Diagnostic]]:
    """A product decision → Access values. Anything malformed fails the run, naming the file."""
    where = f"{product.ref} ({product.policy.name})"
    if not isinstance(result, list):
        raise PolicyError(f"{where}: `grants` must be a set of objects, got "
                          f"{type(result).__name__}")
    ports = {p.name for p in product.spec.ports}
    known = set(users)
    out: set[Access] = set()
    notes: list[Diagnostic] = []
    for item in result:
        if not (isinstance(item, dict) and isinstance(item.get("principal"), str)
                and isinstance(item.get("port"), str) and item.get("access") in ("read", "write")):
            raise PolicyError(f"{where}: malformed grant {item!r}: want "
                              "{principal, port, access: read|write}")
        if item["port"] not in ports:
            raise PolicyError(f"{where}: grant names unknown port {item['port']!r}")
        if item["principal"] not in known:
            notes.append(Diagnostic("warning", product.ref, f"grants {item['principal']!r}, "
                                    "who is not in the directory; ignored"))
            continue
        out.add(Access(product.ref, item["port"], item["principal"], AccessLevel(item["access"])))
    return out, notes


def parse_violations(result: Any) -> tuple[dict[str, str], ...]:
    if not isinstance(result, list):
        raise PolicyError("guardrails: `violations` must be a set of objects")
    for v in result:
        if not isinstance(v, dict) or "rule" not in v or "message" not in v:
            raise PolicyError(f"guardrails: malformed violation {v!r}")
    return tuple(sorted(result, key=lambda v: (v.get("product", ""), v["rule"], v["message"])))
