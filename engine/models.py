"""The values the pipeline passes along. All frozen, hashable and JSON-serialisable.

Two levels of grant:

* :class:`Access` — the *logical* decision of a product policy: principal P may
  ``read``/``write`` port X of product D/P. Store-independent.
* :class:`Grant` — a *physical* fact in one store (a privilege on an object, a role
  membership, a managed role's existence). Connectors translate Access → Grant; desired and
  actual state are ``frozenset[Grant]`` and the diff is set arithmetic on them.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable


class AccessLevel(str, enum.Enum):
    READ = "read"
    WRITE = "write"


class Privilege(str, enum.Enum):
    """What a physical grant confers. ``EXISTS`` means the principal (a role) exists."""

    EXISTS = "EXISTS"
    MEMBER = "MEMBER"  # principal is a member of the role named by ``object``
    USAGE = "USAGE"
    SELECT = "SELECT"
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    TRUNCATE = "TRUNCATE"
    REFERENCES = "REFERENCES"
    TRIGGER = "TRIGGER"
    CREATE = "CREATE"


@dataclass(frozen=True, order=True)
class Access:
    """A product policy's decision: ``principal`` may ``access`` ``product``'s ``port``."""

    product: str  # "domain/name"
    port: str
    principal: str  # directory user id
    access: AccessLevel

    def to_dict(self) -> dict[str, str]:
        return {"product": self.product, "port": self.port, "principal": self.principal,
                "access": self.access.value}


@dataclass(frozen=True, order=True)
class Grant:
    """One physical fact in one store, normalised so that equal facts compare equal.

    ``object`` is a tuple whose first element is the object kind, e.g.
    ``("table", "schema", "table")``, ``("schema", "schema")``, ``("role", "dp_x_read")``.
    Names inside are exact (case preserved, unquoted): quoting is the renderer's job.
    """

    target: str
    principal: str
    privilege: Privilege
    object: tuple[str, ...]
    conditions: str = ""  # a canonical hash of row/column conditions; "" = unconditional

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "principal": self.principal,
                "privilege": self.privilege.value, "object": list(self.object),
                "conditions": self.conditions}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Grant":
        return cls(target=str(data["target"]), principal=str(data["principal"]),
                   privilege=Privilege(data["privilege"]),
                   object=tuple(str(part) for part in data["object"]),
                   conditions=str(data.get("conditions", "")))

    def describe(self) -> str:
        kind, *names = self.object
        obj = f"{kind} {'.'.join(names)}"
        if self.privilege is Privilege.EXISTS:
            return f"role {self.principal}"
        if self.privilege is Privilege.MEMBER:
            return f"{self.principal} member of {names[0]}"
        return f"{self.privilege.value} on {obj} to {self.principal}"


class Action(str, enum.Enum):
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True, order=True)
class Change:
    action: Action
    grant: Grant

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action.value, **self.grant.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Change":
        return cls(Action(data["action"]), Grant.from_dict(data))


@dataclass(frozen=True)
class Diagnostic:
    """A warning attached to what it concerns (product, principal, target)."""

    severity: str  # "warning" | "error"
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.subject}: {self.message}"


def fingerprint(items: Iterable[Any]) -> str:
    """A stable sha256 over JSON-able items, independent of their order."""
    lines = sorted(json.dumps(item, sort_keys=True, default=_jsonable) for item in items)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


@dataclass(frozen=True)
class DecisionRecord:
    """One OPA decision, kept for the audit log."""

    path: str
    decision_id: str | None = field(default=None)
