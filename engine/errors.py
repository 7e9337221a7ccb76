"""The one exception tree of govern. Every error a user can meet is one of these.

    GovernError                      exit 1, one line
    ├── SpecError                    govern.yaml / product.yaml invalid (every problem at once)
    ├── PolicyError                  Rego does not compile, a decision is undefined or fails
    │   └── OPAUnavailable           the OPA server cannot be reached or started
    │       └── OPAInUse             a shared OPA server is leased by another run
    ├── IdentityError                the directory is missing, unreachable or implausible
    ├── ConnectorError               a target failed (carries target and statement)
    │   ├── StoreUnreachable         cannot connect or read: nothing changed
    │   ├── ChangeRefused            outside managed scope, or not the mesh's store
    │   └── ApplyFailed              a statement failed; ``executed`` what committed before
    ├── PlanError                    the plan cannot be applied
    │   ├── StalePlan                store or inputs changed since the plan was saved
    │   ├── GuardrailViolation       mesh-wide guardrails produced violations
    │   └── MassRevoke               more revokes than the configured threshold
    ├── StateCorrupt                 a guard's record (run state) cannot be read
    ├── CatalogError                 the catalog is unreachable or refused a write
    └── RequestError                 the request workflow; each with its HTTP status
        ├── InvalidRequest      400  bad input: unknown product or port, date, text
        ├── NotAuthenticated    401  not signed in, or not a directory user
        ├── NotAllowed          403  the policy (govern.requests) says no
        ├── RequestNotFound     404
        ├── RequestConflict     409  not in a state that allows the action
        └── StoreUnavailable    503  the request store cannot be reached or is not migrated

Lower-level exceptions (httpx, psycopg, OSError) are translated at the edge with
``raise ... from exc``; library code never calls ``sys.exit``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
MAX_LINE = 600  # characters of one error line; a value echoed in it gets far fewer


def _escape(text: str) -> str:
    return _CONTROL.sub(lambda m: _ESCAPES.get(m.group(), f"\\x{ord(m.group()):02x}")
                        if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text)


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` as one bounded line: control characters escaped, the rest cut."""
    text = _escape(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def first_line(exc: BaseException) -> str:
    """What a lower-level error says, in one line: its first non-blank line (of the driver's
    own error for SQLAlchemy's wrappers), or its class name when it says nothing."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return next((line.strip() for line in text.splitlines() if line.strip()),
                type(exc).__name__)


def shown(value: str, limit: int = 80) -> str:
    """A value from input, quoted for an error message: escaped and cut."""
    text = _escape(str(value))
    cut = f"…({len(text) - limit} more)" if len(text) > limit else ""
    return f"'{text[:limit]}'{cut}"


class GovernError(Exception):
    """Base of every error govern reports; ``str(err)`` is the one-line message."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One problem in one file, at one field path (``ports[0].datasets[1].name``)."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class SpecError(GovernError):
    """The mesh is invalid. ``problems`` holds every problem found, not only the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.path, p.message))
        first = self.problems[0] if self.problems else "invalid mesh"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first}{more}")


class PolicyError(GovernError):
    """A policy failed to compile or to evaluate, or its decision was undefined."""


class OPAUnavailable(PolicyError):
    """OPA could not be started or reached."""


class OPAInUse(OPAUnavailable):
    """The shared OPA server (``opa.url``, ``opa.upload: true``) is leased by another run."""


class IdentityError(GovernError):
    """The directory could not be read, or what it returned cannot be trusted."""


class ConnectorError(GovernError):
    """A storage target failed. ``statement`` is the statement that failed, if any."""

    def __init__(self, target: str, message: str, statement: str | None = None,
                 executed: list[str] | None = None):
        self.target = target
        self.statement = statement
        self.executed = executed or []  # statements committed before the failure
        where = f" (at: {statement})" if statement else ""
        super().__init__(f"target {target}: {message}{where}")


class StoreUnreachable(ConnectorError):
    """The store could not be reached or read: nothing was changed."""


class ChangeRefused(ConnectorError):
    """govern refused to change the store: a change outside managed scope, a store that is
    not the one the mesh names. Nothing was changed."""


class ApplyFailed(ConnectorError):
    """A statement failed while applying; ``executed`` holds what committed before it (empty:
    nothing was applied; otherwise the target is partially applied, and the next apply
    converges)."""

    @property
    def partial(self) -> bool:
        return bool(self.executed)


class PlanError(GovernError):
    """The plan cannot be made or applied."""


class StalePlan(PlanError):
    """A saved plan no longer matches the store or the inputs."""


class GuardrailViolation(PlanError):
    """Mesh-wide guardrails produced violations; ``violations`` lists them all."""

    def __init__(self, violations: list[dict[str, str]]):
        self.violations = violations
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        super().__init__(f"guardrail {first.get('rule')}: {first.get('message')}{more}")


class StateCorrupt(GovernError):
    """A guard's record exists but cannot be read: the guard cannot run, so neither can we."""


class CatalogError(GovernError):
    """The catalog is unreachable or refused a write."""


class RequestError(GovernError):
    """A request-workflow error; ``http_status`` is what the API answers with."""

    http_status = 400


class InvalidRequest(RequestError):
    """Bad input: unknown product or port, a date out of range, unusable text."""

    http_status = 400


class NotAuthenticated(RequestError):
    """Not signed in, a failed sign-in, or an identity that is not a directory user."""

    http_status = 401


class NotAllowed(RequestError):
    """The authorisation policy (``govern.requests``) refuses the action."""

    http_status = 403


class RequestNotFound(RequestError):
    http_status = 404


class RequestConflict(RequestError):
    """The request is not in a state that allows the action (or a duplicate is pending)."""

    http_status = 409


class StoreUnavailable(RequestError):
    """The request store cannot be reached, or its schema is not the one govern needs."""

    http_status = 503


class MassRevoke(PlanError):
    """The plan revokes more managed grants than the configured threshold allows."""
