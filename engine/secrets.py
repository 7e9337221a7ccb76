"""Secrets named in govern.yaml: from an environment variable or a file, never inline."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import GovernError


def read_secret(env: str | None, file: str | None, root: Path, what: str,
                error: type[GovernError]) -> str | None:
    """The secret in ``$env`` or in ``file`` (relative to the mesh ``root``); None when
    neither is configured. A configured source that is empty or unreadable raises ``error``
    naming ``what`` (e.g. ``opa.token``), never returns nothing."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise error(f"{what}_env: ${env} is not set")
        return value
    if file:
        path = Path(file)
        path = path if path.is_absolute() else root / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise error(f"{what}_file {path}: {exc.strerror or exc}") from exc
        if not value:
            raise error(f"{what}_file {path} is empty")
        return value
    return None
