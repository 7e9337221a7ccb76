"""Fitness functions: every product against the mesh's six characteristics.

The checks are Rego (``policies/fitness/``, package ``govern.fitness``), evaluated in ONE OPA
decision for the whole mesh over the metamodel (``data.mesh``) and facts gathered here from
the real systems (store privileges, existence, freshness; the catalog). A fact that cannot be
gathered makes its check amber, never green. Results are kept (JSON lines), so a cell can say
"red since 3 runs".
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .connector import Connector
from .errors import ConnectorError, PolicyError, shown
from .mesh import Mesh
from .models import Access
from .opa import OPAClient

CHARACTERISTICS = ("discoverable", "addressable", "self-describing", "secure", "trustworthy",
                   "interoperable")
REPORT_PATH = "govern/fitness/report"
STATUS_ICON = {"green": "●", "amber": "◐", "red": "○", "n/a": "–", "waived": "◌"}


@dataclass
class Facts:
    by_product: dict[str, dict[str, Any]]
    round_trips: int = 0


def gather(mesh: Mesh, connectors: Mapping[str, Connector],
           catalog: Mapping[str, bool] | None = None, catalog_error: str | None = None) -> Facts:
    """Facts per product from every target (and the catalog, when one is given). A target
    that fails leaves its products' store facts unreachable, with the reason."""
    out: dict[str, dict[str, Any]] = {
        p.ref: {"store": {"reachable": True, "error": None, "foreign_grants": [],
                          "existing": []},
                "freshness": {}, "addresses": {},
                "catalog": ({"published": bool(catalog.get(p.ref))} if catalog is not None
                            else {"published": None,
                                  "error": catalog_error or "no catalog has been checked"})}
        for p in mesh.products}
    trips = 0
    for name, connector in connectors.items():
        refs = {p.ref for p in mesh.products if any(port.target == name for port in p.spec.ports)}
        try:
            state = connector.read(mesh)
            found = connector.facts(mesh, state)
            trips += state.round_trips + connector.facts_queries
        except ConnectorError as exc:
            for ref in refs:
                out[ref]["store"] = {"reachable": False, "error": str(exc),
                                     "foreign_grants": [], "existing": []}
            continue
        for ref, f in found.items():
            if not out[ref]["store"]["reachable"]:
                continue
            out[ref]["store"]["foreign_grants"] += f["foreign_grants"]
            out[ref]["store"]["existing"] += f["existing"]
            out[ref]["freshness"].update(f["freshness"])
            out[ref]["addresses"].update(f["addresses"])
    return Facts(out, trips)


@dataclass
class Report:
    """report[product][characteristic] = {"status": …, "checks": [...]}."""

    cells: dict[str, dict[str, dict[str, Any]]]
    today: dt.date
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier runs, oldest first

    @property
    def any_red(self) -> bool:
        return self.red_cells > 0

    @property
    def red_cells(self) -> int:
        return sum(1 for row in self.cells.values() for c in row.values() if c["status"] == "red")

    def statuses(self) -> dict[str, dict[str, str]]:
        return {ref: {ch: row[ch]["status"] for ch in CHARACTERISTICS}
                for ref, row in self.cells.items()}

    def red_since(self, ref: str, ch: str) -> int:
        """How many runs in a row, this one included, the cell has been red."""
        if self.cells[ref][ch]["status"] != "red":
            return 0
        runs = 1
        for past in reversed(self.history):
            if past.get("products", {}).get(ref, {}).get(ch) != "red":
                break
            runs += 1
        return runs

    def to_dict(self) -> dict[str, Any]:
        return {"today": self.today.isoformat(), "all_green": not self.any_red and all(
                    c["status"] in ("green", "n/a") for row in self.cells.values()
                    for c in row.values()),
                "any_red": self.any_red,
                "products": {ref: {ch: {**cell, "red_since_runs": self.red_since(ref, ch)}
                                   for ch, cell in row.items()}
                             for ref, row in self.cells.items()}}


def fitness_input(access: Iterable[Access], facts: Facts, today: dt.date,
                  approvals_error: str | None = None) -> dict[str, Any]:
    return {"today": today.isoformat(), "grants": [a.to_dict() for a in sorted(access)],
            "facts": facts.by_product, "approvals_error": approvals_error}


def evaluate(client: OPAClient, mesh: Mesh, access: Iterable[Access], facts: Facts,
             today: dt.date, products: Sequence[str] | None = None,
             approvals_error: str | None = None) -> Report:
    decision = client.decide(REPORT_PATH, fitness_input(access, facts, today, approvals_error))
    result = decision.result
    if not isinstance(result, dict):
        raise PolicyError("fitness: `report` must be an object keyed by product")
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for product in mesh.products:
        if products is not None and product.ref not in products:
            continue
        row = result.get(product.ref)
        if not isinstance(row, dict) or set(row) != set(CHARACTERISTICS):
            raise PolicyError(f"fitness: report for {product.ref} lacks a characteristic")
        cells[product.ref] = {ch: _checked_cell(product.ref, ch, row[ch])
                              for ch in CHARACTERISTICS}
    return Report(cells, today)


#: every status a cell or a check may have, each with the CSS class pages give it
STATUS_CLASS = {"green": "green", "amber": "amber", "red": "red", "n/a": "na",
                "waived": "waived"}


def _checked_cell(ref: str, ch: str, cell: Any) -> dict[str, Any]:
    """A cell as the policy returned it, refused unless every status is a known one (a check
    added as Rego may return anything; it reaches text, markdown and HTML reports)."""
    checks = cell.get("checks") if isinstance(cell, dict) else None
    if not isinstance(checks, list) or not all(isinstance(c, dict) and isinstance(
            c.get("check"), str) for c in checks):
        raise PolicyError(f"fitness: report for {ref} {ch}: malformed checks")
    for status in [cell.get("status"), *(c.get("status") for c in checks)]:
        if status not in STATUS_CLASS:
            raise PolicyError(f"fitness: report for {ref} {ch}: unknown status "
                              f"{shown(str(status))} (want one of {', '.join(STATUS_CLASS)})")
    return {"status": cell["status"], "checks": sorted(checks, key=lambda c: c["check"])}


# ---------------------------------------------------------------- history

def load_history(path: Path, limit: int = 20) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines()[-limit:]:
        try:
            runs.append(json.loads(line))
        except ValueError:
            continue
    return runs


def append_history(path: Path, report: Report) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                             "products": report.statuses()}, sort_keys=True) + "\n")


TREND_RUNS = 10


def write_latest(path: Path, report: Report) -> None:
    """The last whole-mesh run, reasons included: what `catalog publish` publishes and what
    the dashboard of `govern serve` shows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = report.to_dict()
    runs = [r.get("products", {}) for r in report.history] + [report.statuses()]
    for ref, row in body["products"].items():
        row_trend = [run[ref] for run in runs[-TREND_RUNS:] if ref in run]
        body["products"][ref] = {"cells": row, "trend": row_trend}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def published_fitness(path: Path) -> dict[str, dict[str, Any]] | None:
    """Per product, the fitness a catalog entry carries: the day, the status of each
    characteristic, the reasons and the recent trend; None when fitness never ran."""
    if not path.exists():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return {ref: {"at": body["today"],
                      "status": {ch: row["cells"][ch]["status"] for ch in CHARACTERISTICS},
                      "cells": row["cells"], "trend": row["trend"]}
                for ref, row in body["products"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise PolicyError(f"fitness: {path} is not a fitness result ({exc}); run govern "
                          "fitness again") from exc


def report_from_published(fitness: Mapping[str, Mapping[str, Any] | None],
                          today: dt.date) -> Report:
    """The dashboard of what a catalog holds (the products that have a fitness result)."""
    cells = {ref: {ch: {"status": f["cells"][ch]["status"], "checks": f["cells"][ch]["checks"]}
                   for ch in CHARACTERISTICS}
             for ref, f in fitness.items() if f and "cells" in f}
    depth = max([len(fitness[ref].get("trend", [])) for ref in cells] + [1]) - 1
    history: list[dict[str, Any]] = [{"products": {}} for _ in range(depth)]
    for ref in cells:
        past = list(fitness[ref].get("trend", []))[:-1]
        for offset, statuses in enumerate(reversed(past)):
            history[depth - 1 - offset]["products"][ref] = statuses
    days = sorted(f["at"] for f in fitness.values() if f and "at" in f)
    day = dt.date.fromisoformat(days[-1]) if days else today
    return Report(cells, day, history)


def domain_trend(report: Report, domain: str) -> list[dict[str, int]]:
    """Per run (oldest first, this run last): how many cells of the domain were each colour."""
    runs = [r.get("products", {}) for r in report.history] + [report.statuses()]
    trend = []
    for statuses in runs:
        counts = {"green": 0, "amber": 0, "red": 0}
        for ref, row in statuses.items():
            if ref.split("/")[0] == domain:
                for status in row.values():
                    if status in counts:
                        counts[status] += 1
        trend.append(counts)
    return trend


# ---------------------------------------------------------------- rendering

def _failing(report: Report) -> list[tuple[str, str, dict[str, Any]]]:
    return [(ref, ch, c) for ref, row in sorted(report.cells.items())
            for ch in CHARACTERISTICS for c in row[ch]["checks"]
            if c["status"] in ("red", "amber", "waived")]


def render_text(report: Report) -> str:
    width = max([len(r) for r in report.cells] + [7])
    lines = [f"{'product':<{width}}  " + "  ".join(f"{ch:<15}" for ch in CHARACTERISTICS)]
    for ref, row in sorted(report.cells.items()):
        lines.append(f"{ref:<{width}}  " + "  ".join(
            f"{STATUS_ICON[row[ch]['status']]} {row[ch]['status']:<13}" for ch in CHARACTERISTICS))
    for ref, _, c in _failing(report):
        since = report.red_since(ref, c["check"].split(".")[0]) if c["status"] == "red" else 0
        extra = f" (red for {since} runs)" if since > 1 else ""
        lines.append(f"  {c['status']}: {ref}: {c['check']}: {c.get('reason', '')}{extra}")
    red = report.red_cells
    lines.append(f"{len(report.cells)} products, {red} red cells." if red else
                 f"{len(report.cells)} products, none red.")
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    head = "| product | " + " | ".join(CHARACTERISTICS) + " |"
    rule = "|---|" + "---|" * len(CHARACTERISTICS)
    emoji = {"green": "🟢", "amber": "🟠", "red": "🔴", "n/a": "⚪", "waived": "⚪"}
    rows = [f"| `{ref}` | " + " | ".join(emoji[row[ch]["status"]] for ch in CHARACTERISTICS)
            + " |" for ref, row in sorted(report.cells.items())]
    out = ["### govern fitness", "", head, rule, *rows, ""]
    failing = _failing(report)
    if failing:
        out += ["<details><summary>reasons</summary>", ""]
        out += [f"- {emoji.get(c['status'], '⚪')} `{ref}` **{c['check']}**: "
                f"{_md(c.get('reason', ''))}" for ref, _, c in failing]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return html.escape(text).replace("|", "\\|").replace("\n", " ")


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1d1d1f}
table{border-collapse:collapse;margin-bottom:1.5rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;
vertical-align:top}th{background:#f3f3f3;text-align:left}.green{background:#d8f3dc}
.amber{background:#ffe8a3}.red{background:#ffccd5}.n\\/a,.na{background:#eee;color:#666}
details summary{cursor:pointer;font-weight:600}ul{margin:.3rem 0 0 1rem;padding:0}
.trend span{display:inline-block;width:.9rem;height:.9rem;margin-right:2px;border-radius:2px}
"""


def render_html(report: Report) -> str:
    """A self-contained dashboard page: no script, no network at view time."""
    return "\n".join([
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>govern fitness</title>", f"<style>{_CSS}</style></head><body>",
        f"<h1>Mesh fitness <small>{html.escape(report.today.isoformat())}</small></h1>",
        dashboard_body(report), "</body></html>"])


def dashboard_body(report: Report, link: Callable[[str], str] | None = None) -> str:
    """The dashboard's tables, one per domain (every text escaped); ``link(ref)``, when
    given, makes each product's name a link (the product page of `govern serve`)."""
    e = html.escape
    domains: dict[str, list[str]] = {}
    for ref in sorted(report.cells):
        domains.setdefault(ref.split("/")[0], []).append(ref)
    parts = []
    for domain, refs in domains.items():
        trend = domain_trend(report, domain)
        cells = "".join(
            f'<span class="{_worst(t)}" title="run {i + 1}: {t["red"]} red, {t["amber"]} amber, '
            f'{t["green"]} green"></span>' for i, t in enumerate(trend))
        parts.append(f'<h2>{e(domain)}</h2><p class="trend" aria-label="trend over the last '
                     f'{len(trend)} runs">trend: {cells}</p>')
        parts.append(cells_table(report, refs, link))
    return "\n".join(parts)


def cells_table(report: Report, refs: Sequence[str],
                link: Callable[[str], str] | None = None) -> str:
    """Products × the six characteristics; each cell opens its reasons."""
    e = html.escape
    parts = ['<table class="fitness"><thead><tr><th scope=col>product</th>' +
             "".join(f"<th scope=col>{e(ch)}</th>" for ch in CHARACTERISTICS) +
             "</tr></thead><tbody>"]
    for ref in refs:
        name = f'<a href="{e(link(ref))}">{e(ref)}</a>' if link else e(ref)
        parts.append(f"<tr><th scope=row>{name}</th>")
        parts += [_cell(report, ref, ch) for ch in CHARACTERISTICS]
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _cell(report: Report, ref: str, ch: str) -> str:
    e = html.escape
    cell = report.cells[ref][ch]
    status = cell["status"]
    since = report.red_since(ref, ch)
    label = status + (f" since {since} runs" if since > 1 else "")
    items = "".join(
        f"<li><b>{e(c['check'])}</b>: {e(c['status'])}"
        + (f" — {e(c.get('reason') or '')}" if c.get("reason") else "")
        + (f" (waived by {e(c['waiver']['approver'])} until "
           f"{e(c['waiver']['expires'])}: {e(c['waiver']['reason'])})"
           if c.get("waiver") else "") + "</li>"
        for c in cell["checks"])
    css = STATUS_CLASS.get(status, "unknown")
    return (f'<td class="{css}" data-product="{e(ref)}" data-characteristic="{e(ch)}">'
            f"<details><summary>{e(label)}</summary><ul>{items}</ul></details></td>")


def _worst(counts: dict[str, int]) -> str:
    return "red" if counts["red"] else "amber" if counts["amber"] else "green"
