"""The directory contract: a source produces one immutable :class:`Snapshot` per run.

A source (YAML file, LDAP/AD) implements :class:`DirectorySource`. The snapshot is pushed to
OPA as ``data.directory`` (see docs/policy-contract.md) and drives the store principal names.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from govern.engine.errors import IdentityError


@dataclass(frozen=True)
class User:
    id: str
    display_name: str = ""
    email: str | None = None
    attributes: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    name: str
    members: frozenset[str] = frozenset()  # direct user members
    subgroups: frozenset[str] = frozenset()  # direct member groups


@dataclass(frozen=True)
class Snapshot:
    """Users and groups as the directory returned them, with direct memberships only."""

    users: Mapping[str, User]
    groups: Mapping[str, Group]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.users:
            raise IdentityError(f"directory {self.source or '(unnamed)'} has no users: refusing "
                                "to plan on an empty directory")
        for group in self.groups.values():
            unknown = sorted(group.members - self.users.keys())
            if unknown:
                raise IdentityError(f"directory {self.source}: group {group.name} has unknown "
                                    f"member {unknown[0]}")
            unknown = sorted(group.subgroups - self.groups.keys())
            if unknown:
                raise IdentityError(f"directory {self.source}: group {group.name} has unknown "
                                    f"subgroup {unknown[0]}")

    def direct_groups(self, user: str) -> list[str]:
        return sorted(g.name for g in self.groups.values() if user in g.members)

    def groups_of(self, user: str) -> dict[str, list[str]]:
        """Every group the user is in, incl. nested, each with one membership path."""
        parents: dict[str, set[str]] = {}
        for group in self.groups.values():
            for sub in group.subgroups:
                parents.setdefault(sub, set()).add(group.name)
        paths = {g: [g] for g in self.direct_groups(user)}
        queue = list(paths)
        while queue:  # breadth-first; `paths` doubles as the visited set, so cycles end
            current = queue.pop(0)
            for parent in sorted(parents.get(current, ())):
                if parent not in paths:
                    paths[parent] = paths[current] + [parent]
                    queue.append(parent)
        return paths

    def to_data(self) -> dict[str, Any]:
        """The ``data.directory`` document uploaded to OPA."""
        direct: dict[str, list[str]] = {u: [] for u in self.users}
        for group in self.groups.values():
            for member in group.members:
                direct[member].append(group.name)
        return {
            "users": {
                u.id: {"id": u.id, "display_name": u.display_name, "email": u.email,
                       "attributes": {k: list(v) if isinstance(v, tuple) else v
                                      for k, v in sorted(u.attributes.items())},
                       "groups": sorted(direct[u.id])}
                for u in self.users.values()
            },
            "groups": {
                g.name: {"members": sorted(g.members), "subgroups": sorted(g.subgroups)}
                for g in self.groups.values()
            },
            "index": self.index(),
        }

    def index(self) -> dict[str, Any]:
        """Derived once per run so policies need not recompute them per decision:
        ``members`` = every group's users through nesting (cycle-safe), ``attributes`` =
        attribute -> value -> users (each element of a list-valued attribute)."""
        members = {name: sorted(_reach(self.groups, name)) for name in self.groups}
        attributes: dict[str, dict[str, list[str]]] = {}
        for user in self.users.values():
            for key, value in user.attributes.items():
                for v in (value if isinstance(value, tuple) else (value,)):
                    attributes.setdefault(key, {}).setdefault(v, []).append(user.id)
        return {"members": members,
                "attributes": {k: {v: sorted(us) for v, us in vals.items()}
                               for k, vals in attributes.items()}}

    def fingerprint(self) -> str:
        blob = json.dumps(self.to_data(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _reach(groups: Mapping[str, Group], start: str) -> set[str]:
    """Users of ``start`` and of every group reachable from it through subgroups."""
    seen, stack, users = {start}, [start], set()
    while stack:
        group = groups[stack.pop()]
        users |= group.members
        for sub in group.subgroups:
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return users


class DirectorySource(Protocol):
    """Anything that can produce a snapshot. Must raise IdentityError rather than return a
    partial result."""

    def snapshot(self) -> Snapshot: ...


def stats(snapshot: Snapshot) -> dict[str, int]:
    return {"users": len(snapshot.users), "groups": len(snapshot.groups),
            "memberships": sum(len(g.members) + len(g.subgroups)
                               for g in snapshot.groups.values())}


def check_shrink(snapshot: Snapshot, previous: Mapping[str, Any] | None, fraction: float) -> None:
    """Refuse a snapshot with ``fraction`` fewer users or memberships than the last good one:
    a directory that suddenly shrank is more likely broken than reorganised."""
    if not previous:
        return
    now = stats(snapshot)
    for key in ("users", "memberships"):
        before = int(previous.get(key, 0))
        if before and now[key] < before * (1 - fraction):
            raise IdentityError(
                f"directory {snapshot.source}: {now[key]} {key}, down from {before} at the last "
                f"successful read (more than {fraction:.0%} fewer); refusing to revoke on it "
                "(raise max_shrink_fraction if intended)")


def template_fields(user: User) -> dict[str, Any]:
    """What a principal template (``{id}``, ``{email}``, ``{attr[dept]}``) may use."""
    return {"id": user.id, "email": user.email or "", "display_name": user.display_name,
            "attr": {k: (v if isinstance(v, str) else ",".join(v))
                     for k, v in user.attributes.items()}}
