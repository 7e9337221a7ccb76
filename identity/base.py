"""The directory contract: a source produces one immutable
:class:`~govern.engine.directory.Snapshot` per run (the values live in the engine; they are
re-exported here for the sources).
"""

from __future__ import annotations

from typing import Protocol

from govern.engine.directory import (MAX_NAME, MAX_VALUE, Group, Snapshot, User,  # noqa: F401
                                     check_shrink, name_problem, stats, template_fields)


class DirectorySource(Protocol):
    """Anything that can produce a snapshot. Must raise IdentityError rather than return a
    partial result."""

    def snapshot(self) -> Snapshot: ...
