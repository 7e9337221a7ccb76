"""Approved access requests, as the policies see them (``data.approvals``).

Until the request workflow lands, approvals come from a YAML file named in govern.yaml:

```yaml
approvals:
  - {id: req-1, principal: frank, product: hcp/hcp_master, port: curated,
     access: read, expires: 2099-12-31, status: approved}
```
Only ``status: approved`` requests whose ``expires`` is today or later reach OPA.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from . import yamlfile
from .errors import Problem, SpecError
from .mesh import validation_problems
from .models import AccessLevel


#: the statuses of an access request, everywhere (store, API, CLI, approvals file)
Status = Literal["pending", "approved", "denied", "revoked"]
STATUS_WORDS: tuple[str, ...] = get_args(Status)


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    principal: str
    product: str
    port: str
    access: AccessLevel = AccessLevel.READ
    expires: dt.date
    status: Status = "approved"

    def to_data(self) -> dict[str, str]:
        return {"id": self.id, "principal": self.principal, "product": self.product,
                "port": self.port, "access": self.access.value,
                "expires": self.expires.isoformat()}


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approvals: list[Approval] = []


def load_approvals(path: Path | None, today: dt.date) -> tuple[Approval, ...]:
    """The approved, unexpired requests of ``path`` (none when no file is configured)."""
    if path is None:
        return ()
    try:
        raw = yamlfile.load(path) or {}
        parsed = _File.model_validate(raw)
    except yamlfile.BadFile as exc:
        raise SpecError([Problem(str(path), exc.where, exc.message)]) from None
    except ValidationError as exc:
        raise SpecError(validation_problems(str(path), exc)) from exc
    return active(parsed.approvals, today)


def active(approvals: list[Approval] | tuple[Approval, ...],
           today: dt.date) -> tuple[Approval, ...]:
    return tuple(sorted((a for a in approvals if a.status == "approved" and a.expires >= today),
                        key=lambda a: a.id))
