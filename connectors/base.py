"""The registry of connectors: a target's ``type`` in govern.yaml -> its connector. The
contract they implement (``Connector``, ``Desired``, ``ExecuteReport``, ``StoreState``) is
the engine's (``govern.engine.connector``), re-exported here for the connectors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from govern.engine.connector import (Connector, Desired, ExecuteReport, Progress,  # noqa: F401
                                     StoreState)
from govern.engine.errors import Problem, SpecError

if TYPE_CHECKING:
    from govern.engine.spec import TargetConfig


def make_connector(name: str, config: "TargetConfig", prefix: str,
                   mesh_name: str = "mesh") -> Connector:
    """The connector for a target of govern.yaml. Unknown types are an error, never a default."""
    if config.type == "postgresql":
        from .postgres import PostgresConnector

        return PostgresConnector(name, config, prefix, mesh_name)
    raise SpecError([Problem("govern.yaml", f"targets.{name}.type",
                             f"unsupported target type {config.type!r}")])
