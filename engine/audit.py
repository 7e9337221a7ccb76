"""The audit log: one record when a target's apply starts and one with its result, appended,
never rewritten: to the request store's ``audit_log`` table (engine/runstate.py, the record
of reference) and, as JSON lines, to ``audit.path`` (a local copy)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from pathlib import Path
from typing import Any


def actor() -> str:
    """Who runs govern: $GOVERN_ACTOR (CI sets it to the pipeline's identity), else the OS user."""
    explicit = os.environ.get("GOVERN_ACTOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def stamp(record: dict[str, Any]) -> dict[str, Any]:
    """The record with when and who."""
    return {"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "who": actor(), **record}


def append(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
