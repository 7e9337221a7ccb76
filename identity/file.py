"""The directory as a YAML file (tests, demos, air-gapped runs, `directory export`).

```yaml
users:
  alice: {display_name: Alice, email: alice@example.com,
          attributes: {department: Commercial, country: DE}}
groups:
  commercial-analysts: {members: [bob], subgroups: [campaign-managers]}
```
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from govern.engine import yamlfile
from govern.engine.errors import IdentityError, shown

from .base import Group, Snapshot, User

UserId = str  # the rules of every directory name are the snapshot's (identity/base.py)


class _User(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str = ""
    email: str | None = None
    attributes: dict[str, str | list[str]] = Field(default_factory=dict)


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[UserId] = Field(default_factory=list)
    subgroups: list[str] = Field(default_factory=list)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: dict[UserId, _User] = Field(default_factory=dict)
    groups: dict[str, _Group] = Field(default_factory=dict)


class FileDirectory:
    def __init__(self, path: Path):
        self.path = path

    def snapshot(self) -> Snapshot:
        try:
            raw = yamlfile.load(self.path)
        except yamlfile.BadFile as exc:
            raise IdentityError(f"directory file {self.path}: {exc}") from None
        try:
            parsed = _File.model_validate(raw or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(shown(str(p), 40) if not str(p).isidentifier() else str(p)
                             for p in err["loc"])
            raise IdentityError(f"directory file {self.path}: {where}: {err['msg']}") from None
        users = {}
        for uid, u in parsed.users.items():
            if uid != uid.lower():
                raise IdentityError(f"directory file {self.path}: user id {shown(uid)} must be "
                                    "lower-case")
            attrs = {k: tuple(v) if isinstance(v, list) else v for k, v in u.attributes.items()}
            users[uid] = User(uid, u.display_name, u.email, attrs)
        groups = {name: Group(name, frozenset(g.members), frozenset(g.subgroups))
                  for name, g in parsed.groups.items()}
        return Snapshot(users, groups, source=str(self.path))


def dump_snapshot(snapshot: Snapshot) -> str:
    """A snapshot in the file format above (`govern directory export`); loading it back gives
    an equal snapshot."""
    data = snapshot.to_data()
    out = {"users": {uid: {k: v for k, v in u.items() if k not in ("id", "groups")}
                     for uid, u in data["users"].items()},
           "groups": data["groups"]}
    return yaml.safe_dump(out, sort_keys=True, allow_unicode=True)
