"""A product's lineage as an inline SVG: its inputs (upstream, left) and the products that
read it (downstream, right), a few layers each way. Pure: entries in, markup out; every
text escaped; no script (the pages' CSP allows none)."""

from __future__ import annotations

import html
from typing import Any, Mapping

DEPTH = 3
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 250, 34, 70, 16, 10


def layers(ref: str, entries: Mapping[str, Mapping[str, Any]],
           depth: int = DEPTH) -> dict[str, int]:
    """Each product shown, with its layer: 0 for ``ref``, -1 for its inputs, +1 for the
    products that read it, and so on up to ``depth`` (the nearest layer wins)."""
    upstream = {r: list(doc.get("inputs") or []) for r, doc in entries.items()}
    downstream: dict[str, list[str]] = {}
    for r, inputs in upstream.items():
        for source in inputs:
            downstream.setdefault(source, []).append(r)
    found = {ref: 0}
    for step, edges in ((-1, upstream), (1, downstream)):
        frontier = [ref]
        for level in range(1, depth + 1):
            frontier = sorted({n for f in frontier for n in edges.get(f, []) if n not in found})
            for node in frontier:
                found[node] = step * level
    return found


def edges(shown: Mapping[str, int],
          entries: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(input, reader) pairs between shown products, drawn left to right."""
    return sorted((source, r) for r, doc in entries.items() if r in shown
                  for source in doc.get("inputs") or []
                  if source in shown and shown[source] < shown[r])


def lineage_svg(ref: str, entries: Mapping[str, Mapping[str, Any]]) -> str:
    shown = layers(ref, entries)
    columns: dict[int, list[str]] = {}
    for node, layer in sorted(shown.items(), key=lambda kv: (kv[1], kv[0])):
        columns.setdefault(layer, []).append(node)
    first = min(columns)
    rows = max(len(c) for c in columns.values())
    width = PAD * 2 + len(columns) * NODE_W + (len(columns) - 1) * GAP_X
    height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y
    where: dict[str, tuple[int, int]] = {}
    for layer, nodes in columns.items():
        x = PAD + (layer - first) * (NODE_W + GAP_X)
        top = PAD + (rows - len(nodes)) * (NODE_H + GAP_Y) // 2
        for i, node in enumerate(nodes):
            where[node] = (x, top + i * (NODE_H + GAP_Y))
    e = html.escape
    up = sum(1 for v in shown.values() if v < 0)
    down = sum(1 for v in shown.values() if v > 0)
    out = [f'<svg class="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="Lineage of {e(ref)}: {up} upstream, {down} downstream">'
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#5a5a5a"/>'
           '</marker></defs>']
    for source, target in edges(shown, entries):
        (x1, y1), (x2, y2) = where[source], where[target]
        sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
        mid = (sx + tx) // 2
        out.append(f'<path class="edge" data-from="{e(source)}" data-to="{e(target)}" '
                   f'd="M{sx},{sy} C{mid},{sy} {mid},{ty} {tx},{ty}" fill="none" '
                   'stroke="#5a5a5a" stroke-width="1.5" marker-end="url(#arrow)"/>')
    for node, (x, y) in where.items():
        kind = "focus" if node == ref else "known" if node in entries else "unknown"
        fill = {"focus": "#0b5cad", "known": "#ffffff", "unknown": "#eeeeee"}[kind]
        ink = "#ffffff" if kind == "focus" else "#1a1a1a"
        label = node if len(node) <= 32 else node[:31] + "…"
        box = (f'<g class="node node-{kind}" data-ref="{e(node)}"><title>{e(node)}'
               f'{" (not in the catalog)" if kind == "unknown" else ""}</title>'
               f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="5" '
               f'fill="{fill}" stroke="#0b5cad"/><text x="{x + 10}" y="{y + 22}" '
               f'fill="{ink}" font-size="13">{e(label)}</text></g>')
        out.append(f'<a href="/catalog/{e(node)}">{box}</a>' if kind == "known" else box)
    out.append("</svg>")
    return "".join(out)
