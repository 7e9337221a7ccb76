"""The plan is data: typed, saved as JSON, rendered for people, applied later.

A saved plan carries the fingerprint of its inputs (mesh files, directory, approvals) and of
each target's state when it was made; ``apply`` refuses it when either has changed since, and
when its changes differ from the ones computed at apply time.

The plan id is the sha256 of the plan's content (everything but the id and the signature), so
a plan file edited after it was made no longer loads. With a signing key, ``signature`` is an
HMAC-SHA256 of the id: only a holder of the key (CI's plan job) can make a plan that verifies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import PlanError
from .models import Action, Change, Diagnostic

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TargetPlan:
    target: str
    state_fingerprint: str
    managed_count: int  # managed grants found in the store (for the mass-revoke guard)
    changes: tuple[Change, ...]
    statements: tuple[str, ...]
    round_trips: int = 0

    @property
    def adds(self) -> int:
        return sum(1 for c in self.changes if c.action is Action.ADD)

    @property
    def removes(self) -> int:
        return sum(1 for c in self.changes if c.action is Action.REMOVE)


@dataclass(frozen=True)
class Plan:
    mesh: str
    inputs_fingerprint: str
    policy_commit: str
    targets: tuple[TargetPlan, ...]
    products: tuple[str, ...] | None = None  # scope; None = whole mesh
    diagnostics: tuple[Diagnostic, ...] = ()
    decision_ids: tuple[str, ...] = ()
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc)
                            .isoformat(timespec="microseconds"))
    signature: str | None = None  # "hmac-sha256:<hex>" of plan_id, when signed

    @cached_property
    def plan_id(self) -> str:
        """sha256 of the content: equal plans made at the same instant have equal ids."""
        body = json.dumps(self._content(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def short_id(self) -> str:
        return self.plan_id[:12]

    def signed(self, key: bytes) -> "Plan":
        return replace(self, signature=f"{SIGNATURE_SCHEME}:{_mac(key, self.plan_id)}")

    def verify(self, key: bytes) -> bool:
        """Whether ``signature`` is this plan's, made with ``key``."""
        if not self.signature or not self.signature.startswith(f"{SIGNATURE_SCHEME}:"):
            return False
        given = self.signature.split(":", 1)[1]
        return hmac.compare_digest(given.encode(), _mac(key, self.plan_id).encode())

    @property
    def has_changes(self) -> bool:
        return any(t.changes for t in self.targets)

    def target(self, name: str) -> TargetPlan:
        return next(t for t in self.targets if t.target == name)

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "plan_id": self.plan_id,
                "signature": self.signature, **self._content()}

    def _content(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at, "mesh": self.mesh,
            "inputs_fingerprint": self.inputs_fingerprint, "policy_commit": self.policy_commit,
            "products": list(self.products) if self.products is not None else None,
            "decision_ids": list(self.decision_ids),
            "diagnostics": [{"severity": d.severity, "subject": d.subject, "message": d.message}
                            for d in self.diagnostics],
            "summary": {"add": sum(t.adds for t in self.targets),
                        "remove": sum(t.removes for t in self.targets)},
            "targets": [{"target": t.target, "state_fingerprint": t.state_fingerprint,
                         "managed_count": t.managed_count, "round_trips": t.round_trips,
                         "changes": [c.to_dict() for c in t.changes],
                         "statements": list(t.statements)} for t in self.targets],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Plan":
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            got = data.get("format_version") if isinstance(data, dict) else None
            raise PlanError(f"plan format {got!r} is not supported "
                            f"(expected {FORMAT_VERSION})")
        try:
            plan = cls(
                mesh=data["mesh"], inputs_fingerprint=data["inputs_fingerprint"],
                policy_commit=data["policy_commit"],
                products=tuple(data["products"]) if data.get("products") is not None else None,
                decision_ids=tuple(data.get("decision_ids", ())),
                diagnostics=tuple(Diagnostic(**d) for d in data.get("diagnostics", ())),
                created_at=data["created_at"], signature=data.get("signature"),
                targets=tuple(TargetPlan(t["target"], t["state_fingerprint"],
                                         int(t["managed_count"]),
                                         tuple(Change.from_dict(c) for c in t["changes"]),
                                         tuple(t["statements"]), int(t.get("round_trips", 0)))
                              for t in data["targets"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanError(f"plan file is malformed: {exc}") from exc
        if plan.signature is not None and not isinstance(plan.signature, str):
            raise PlanError("plan file is malformed: signature is not a string")
        if data.get("plan_id") != plan.plan_id:
            raise PlanError(f"plan {str(data.get('plan_id'))[:12]!r} was modified after it was "
                            "made (its id is not the hash of its content); run plan again")
        return plan

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Plan":
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise PlanError(f"cannot read plan {path}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise PlanError(f"plan {path} is not JSON: {exc.msg} at line {exc.lineno}") from exc


SIGNATURE_SCHEME = "hmac-sha256"


def _mac(key: bytes, plan_id: str) -> str:
    return hmac.new(key, plan_id.encode(), hashlib.sha256).hexdigest()


# -------------------------------------------------------------------- rendering

def _sign(change: Change) -> str:
    return "+" if change.action is Action.ADD else "-"


def render_text(plan: Plan) -> str:
    lines: list[str] = []
    for d in plan.diagnostics:
        lines.append(str(d))
    for t in plan.targets:
        lines.append(f"target {t.target}: {t.adds} to add, {t.removes} to remove")
        for change, stmt in zip(t.changes, t.statements):
            lines.append(f"  {_sign(change)} {change.grant.describe()}")
            lines.append(f"      {stmt}")
    total_add = sum(t.adds for t in plan.targets)
    total_remove = sum(t.removes for t in plan.targets)
    if plan.has_changes:
        lines.append(f"Plan {plan.short_id}: {total_add} to add, {total_remove} to remove.")
    else:
        lines.append("No changes. The stores match the policies.")
    return "\n".join(lines)


def render_markdown(plan: Plan) -> str:
    total_add = sum(t.adds for t in plan.targets)
    total_remove = sum(t.removes for t in plan.targets)
    out = [f"### govern plan `{plan.short_id}`", "",
           f"**{total_add} to add, {total_remove} to remove** "
           f"(policy commit `{plan.policy_commit}`)", ""]
    if plan.diagnostics:
        out += [f"- **{d.severity}** {_md(d.subject)}: {_md(d.message)}" for d in plan.diagnostics]
        out.append("")
    for t in plan.targets:
        out += [f"#### target `{t.target}`: {t.adds} to add, {t.removes} to remove", ""]
        if t.changes:
            out += ["| | change | statement |", "|---|---|---|"]
            out += [f"| {_sign(c)} | {_md(c.grant.describe())} | `{_md(s)}` |"
                    for c, s in zip(t.changes, t.statements)]
            out.append("")
    if not plan.has_changes:
        out.append("No changes. The stores match the policies.")
    return "\n".join(out).rstrip() + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")
