"""The connector contract: what every store's connector implements (docs/contract.md). Core
values and a protocol, in the engine; the connectors themselves live in ``govern.connectors``.

Pure (no I/O):  check_names, desired, actual, state_fingerprint, render, addresses
I/O:            read (one login, a bounded number of catalog reads), execute (checks every
                change against the mesh's managed scope first), facts, close
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Protocol, Sequence

from .models import Access, Change, Diagnostic, Grant

if TYPE_CHECKING:
    from .directory import User
    from .errors import Problem
    from .mesh import Mesh


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

    def read(self, mesh: "Mesh | None" = None) -> StoreState:
        """One login and a bounded number of catalog reads; ``mesh`` names what to read (its
        ports on this target) and is checked against the store (the database, the mesh that
        owns the managed roles)."""

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

    # -- what fitness and the catalog need from a store --------------------------------------
    facts_queries: int  # queries the last facts() ran

    def facts(self, mesh: "Mesh", state: StoreState) -> dict[str, dict]:
        """Per product: grants held by others than govern (``foreign_grants``), the datasets
        that exist (``existing``), their freshness and addresses; bounded queries."""

    def addresses(self, mesh: "Mesh") -> dict[str, dict[str, dict[str, str | None]]]:
        """Pure: product -> port -> dataset -> its address in this store (or None)."""

    def close(self) -> None: ...
