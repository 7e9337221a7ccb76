"""The connector contract. See docs/contract.md.

Pure (no I/O):  check_names, desired, actual, render, scope_roles
I/O:            read (one login, a bounded number of catalog reads), execute, close
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Protocol, Sequence

from govern.engine.errors import Problem, SpecError
from govern.engine.models import Access, Change, Diagnostic, Grant

if TYPE_CHECKING:
    from govern.engine.mesh import Mesh
    from govern.engine.spec import TargetConfig
    from govern.identity.base import User


class StoreState(Protocol):
    """What one read of the store's catalog returned; opaque to the engine."""

    round_trips: int


@dataclass(frozen=True)
class Desired:
    grants: frozenset[Grant]
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass
class ExecuteReport:
    target: str
    executed: list[str] = field(default_factory=list)
    batches: int = 0
    error: str | None = None


Progress = Callable[[int], None]


class Connector(Protocol):
    name: str

    def check_names(self, mesh: "Mesh") -> list[Problem]:
        """Names the store cannot hold (length, collisions after folding/truncation)."""

    def desired(self, access: Iterable[Access], mesh: "Mesh", principals: "Mapping[str, User]",
                state: StoreState | None, products: Sequence[str] | None) -> Desired:
        """Physical grants for the logical ones. ``state`` None = validate without a store."""

    def read(self) -> StoreState: ...

    def actual(self, state: StoreState, desired: Desired,
               products: Sequence[str] | None, mesh: "Mesh") -> frozenset[Grant]:
        """The managed part of ``state`` as grants (scoped to ``products`` when given)."""

    def state_fingerprint(self, state: StoreState, actual: frozenset[Grant]) -> str: ...

    def render(self, changes: Sequence[Change]) -> list[str]:
        """The statements (or API calls) that carry out ``changes``, in order, as text."""

    def execute(self, changes: Sequence[Change], mesh: "Mesh",
                progress: Progress | None = None) -> ExecuteReport:
        """Refuse the whole list when any change is outside ``mesh``'s managed scope, then run
        it. The check is the executor's own, whatever produced the changes."""

    def close(self) -> None: ...


def make_connector(name: str, config: "TargetConfig", prefix: str,
                   mesh_name: str = "mesh") -> Connector:
    """The connector for a target of govern.yaml. Unknown types are an error, never a default."""
    if config.type == "postgresql":
        from .postgres import PostgresConnector

        return PostgresConnector(name, config, prefix, mesh_name)
    raise SpecError([Problem("govern.yaml", f"targets.{name}.type",
                             f"unsupported target type {config.type!r}")])
