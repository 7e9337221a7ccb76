"""The directory as the engine sees it: one immutable :class:`Snapshot` per run, of users
and groups with direct memberships. Sources (a YAML file, LDAP/AD; ``govern.identity``)
produce it; the snapshot is pushed to OPA as ``data.directory`` (docs/policy-contract.md) and
drives the store principal names. Core values: nothing here imports an adapter.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import IdentityError, shown

MAX_NAME = 256  # user ids, group names, attribute names
MAX_VALUE = 1024  # attribute values, display names, e-mail addresses
_BAD = re.compile(r"[\x00-\x1f\x7f]")


def name_problem(value: object, limit: int = MAX_NAME) -> str | None:
    """Why ``value`` cannot be a directory name or value, or None: every user id, group name,
    attribute name and value is non-empty text, without control characters, bounded."""
    if not isinstance(value, str) or not value.strip():
        return "is empty"
    if _BAD.search(value):
        return "has a control character"
    if len(value) > limit:
        return f"is {len(value)} characters long (at most {limit})"
    return None


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
        self._check_names()
        for group in self.groups.values():
            unknown = sorted(group.members - self.users.keys())
            if unknown:
                raise IdentityError(f"directory {self.source}: group {group.name} has unknown "
                                    f"member {unknown[0]}")
            unknown = sorted(group.subgroups - self.groups.keys())
            if unknown:
                raise IdentityError(f"directory {self.source}: group {group.name} has unknown "
                                    f"subgroup {unknown[0]}")

    def _check_names(self) -> None:
        where = f"directory {self.source or '(unnamed)'}"

        def check(what: str, value: object, limit: int = MAX_NAME) -> None:
            problem = name_problem(value, limit)
            if problem:
                raise IdentityError(f"{where}: {what} {shown(str(value))} {problem}")

        for user in self.users.values():
            check("user id", user.id)
            if user.display_name:
                check(f"user {user.id}: display name", user.display_name, MAX_VALUE)
            if user.email:
                check(f"user {user.id}: email", user.email, MAX_VALUE)
            for key, value in user.attributes.items():
                check(f"user {user.id}: attribute name", key)
                for v in (value if isinstance(value, tuple) else (value,)):
                    check(f"user {user.id}: attribute {key}", v, MAX_VALUE)
        for group in self.groups.values():
            check("group name", group.name)

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
