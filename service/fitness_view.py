"""Published fitness results as the pages show them: every status one of a fixed set.

A catalog entry's fitness is data from the request store's database (what `govern catalog
publish` wrote, or anyone with write access to that database). Its statuses end up in
``class`` attributes and labels, so before a page sees them each one is mapped to a known
status, and anything else to :data:`UNKNOWN` (a neutral grey); a result that is not shaped
like one (missing cells, checks that are not objects) is shown as not measured.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from govern.engine.fitness import CHARACTERISTICS, STATUS_CLASS

UNKNOWN = "unknown"
#: status -> its CSS class (the only classes a status can become)
CSS = {**STATUS_CLASS, UNKNOWN: UNKNOWN}


def status(value: Any) -> str:
    """A known status, or :data:`UNKNOWN`."""
    return value if isinstance(value, str) and value in CSS else UNKNOWN


def css_class(value: Any) -> str:
    """The CSS class of a status (a template filter): never the status's own text."""
    return CSS[status(value)]


def _row(statuses: Any) -> dict[str, str]:
    given = statuses if isinstance(statuses, Mapping) else {}
    return {ch: status(given.get(ch)) for ch in CHARACTERISTICS}


def _check(check: Any) -> dict[str, Any] | None:
    if not isinstance(check, Mapping):
        return None
    out = {"check": str(check.get("check", "")), "status": status(check.get("status"))}
    if check.get("reason"):
        out["reason"] = str(check["reason"])
    waiver = check.get("waiver")
    if isinstance(waiver, Mapping):
        out["waiver"] = {k: str(waiver.get(k, "")) for k in ("approver", "expires", "reason")}
    return out


def clean(fitness: Any) -> dict[str, Any] | None:
    """A published fitness result with every status known, or None when it is not one."""
    if not isinstance(fitness, Mapping) or not isinstance(fitness.get("cells"), Mapping):
        return None
    cells: dict[str, Any] = {}
    for ch in CHARACTERISTICS:
        cell = fitness["cells"].get(ch)
        if not isinstance(cell, Mapping) or not isinstance(cell.get("checks", []), list):
            return None
        checks = [_check(c) for c in cell.get("checks", [])]
        cells[ch] = {"status": status(cell.get("status")),
                     "checks": [c for c in checks if c is not None]}
    trend = fitness.get("trend")
    out: dict[str, Any] = {"status": {ch: c["status"] for ch, c in cells.items()},
                           "cells": cells,
                           "trend": [_row(t) for t in trend] if isinstance(trend, list) else []}
    try:
        out["at"] = dt.date.fromisoformat(str(fitness.get("at"))).isoformat()
    except ValueError:
        pass  # no day: the dashboard says today
    return out


def shown(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog entry with its fitness cleaned (for the catalog's list)."""
    return {**doc, "fitness": clean(doc.get("fitness"))}
