#!/usr/bin/env python3
"""Time `govern fitness` and `govern catalog publish` phase by phase on a synthetic mesh.

    .venv/bin/python bench/fitness_publish.py --products 1000 [--users N] [--runs 3] [--seed 0]

Setup (not timed per run): generate the mesh (bench/generate.py, with freshness columns), start
a throwaway PostgreSQL (scripts/pgcluster.py), run seed.sql, give every freshness column one
row, and apply the mesh's grants with the engine's own apply path (bench/run.py). Then, --runs
times on that store, in this process: what `govern fitness` does (load, directory, OPA,
evaluate, catalog facts, store facts, the one fitness decision, render, results), a baseline
decision (a trivial rule of the same package with the same input), and what `govern catalog
publish` does twice (the second must write nothing). Between runs the catalog and the fitness
results are deleted, so every run starts the same way.

Round trips are counted where they happen: OPA decisions by wrapping OPAClient.decide (and in
OPA's own decision log), PostgreSQL statements in the server's log (log_statement = all, for
application_name govern), catalog statements with a SQLAlchemy cursor event. Prints a table
(medians over the runs) and one JSON line with every figure. bench/README.md has the results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import run  # bench/run.py (also puts scripts/ and bench/ on sys.path)
from run import environment, log, now, pgcluster, psycopg, seed_sql

from generate import default_domains, generate  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from govern.cli import catalog as cli_catalog  # noqa: E402
from govern.cli import fitness as cli_fitness  # noqa: E402
from govern.engine import catalog as cat  # noqa: E402
from govern.engine import fitness as fit  # noqa: E402
from govern.engine import pipeline  # noqa: E402
from govern.engine.mesh import load_mesh  # noqa: E402
from govern.engine.opa import OPAClient  # noqa: E402
from govern.engine.requests import store_url  # noqa: E402

BASELINE_PATH = "govern/fitness/characteristics"  # a constant of the same package


# ------------------------------------------------------------------------ counters

class Decisions:
    """Every OPAClient.decide while active: (path, start, end)."""

    def __enter__(self) -> "Decisions":
        self.calls: list[tuple[str, float, float]] = []  # path, start, end
        self._saved = OPAClient.decide

        def counted(client, path, input=None):
            t0 = now()
            try:
                return self._saved(client, path, input)
            finally:
                self.calls.append((path, t0, now()))

        OPAClient.decide = counted
        return self

    def __exit__(self, *exc: object) -> None:
        OPAClient.decide = self._saved

    def count(self, path: str) -> int:
        return sum(1 for p, _, _ in self.calls if p == path)

    def wall(self, prefix: str) -> float:
        """From the first start to the last end of the calls on paths under ``prefix``
        (the product decisions are concurrent: their latencies do not add up)."""
        spans = [(s, e) for p, s, e in self.calls if p.startswith(prefix)]
        return max(e for _, e in spans) - min(s for s, _ in spans)


class SqlStatements:
    """Statements (and commits) any SQLAlchemy engine sends while active."""

    def __enter__(self) -> "SqlStatements":
        self.statements = self.selects = self.commits = 0
        event.listen(Engine, "before_cursor_execute", self._statement)
        event.listen(Engine, "commit", self._commit)
        return self

    def _statement(self, conn, cursor, statement, *args) -> None:
        self.statements += 1
        self.selects += statement.lstrip().upper().startswith("SELECT")

    def _commit(self, conn) -> None:
        self.commits += 1

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._statement)
        event.remove(Engine, "commit", self._commit)

    def figures(self) -> dict[str, int]:
        return {"sql_statements": self.statements, "sql_selects": self.selects,
                "sql_commits": self.commits}


def decision_log_count(root: Path, path: str) -> int:
    """Decisions on ``path`` in OPA's own decision log (govern starts OPA with
    decision_logs.console=true, into .govern/opa.log)."""
    needle = f'"path":"{path}"'.encode()
    with open(root / ".govern" / "opa.log", "rb") as fh:
        return sum(1 for line in fh if b'"Decision Log"' in line and needle in line)


# ------------------------------------------------------------------------ one run

def one_run(root: Path, pg: Path, dsn: str) -> dict[str, Any]:
    t = pipeline.Timings()
    counts: dict[str, Any] = {}
    day = dt.date.today()
    start = now()
    # ---- govern fitness (cli/fitness.py), phase by phase
    inputs = pipeline.load_inputs(root, today=day, timings=t, approvals_optional=True)
    mesh = inputs.mesh
    connectors = pipeline.connectors_for(mesh)
    try:
        with Decisions() as decisions, pipeline.opa_session(inputs, t) as client:
            with t.measure("evaluate"):
                evaluation = pipeline.evaluate(client, mesh, inputs.snapshot)
            with SqlStatements() as sql, t.measure("catalog facts"):
                published, catalog_error = cli_fitness._catalog_facts(mesh)
            counts["catalog facts"] = sql.figures()
            with pgcluster.statement_log(pg) as logged:
                with t.measure("gather store facts"):
                    facts = fit.gather(mesh, connectors, published, catalog_error)
            counts["gather store facts"] = {"reported_round_trips": facts.round_trips,
                                            "server_statements": logged["statements"]}
            with t.measure("fitness decision"):
                report = fit.evaluate(client, mesh, evaluation.access, facts, day,
                                      approvals_error=inputs.approvals_error)
            fitness_end = now()
            # baseline, not part of the command: the same input, a trivial rule
            with t.measure("fitness input build"):
                body = fit.fitness_input(evaluation.access, facts, day, inputs.approvals_error)
            with t.measure("baseline decision"):
                client.decide(BASELINE_PATH, body)
            if DUMP is not None:
                dump(client, body)
            stop_start = now()
        t.phases["opa stop"] = now() - stop_start
    finally:
        for connector in connectors.values():
            connector.close()
    paths = [p for p, _, _ in decisions.calls]
    t.phases["fitness decision: OPA request"] = decisions.wall(fit.REPORT_PATH)
    t.phases["baseline: OPA request"] = decisions.wall(BASELINE_PATH)
    t.phases["evaluate: product decisions"] = decisions.wall("products/")
    counts["evaluate"] = {"product_decisions": sum(p.startswith("products/") for p in paths),
                          "other_decisions": len(evaluation.decisions) - len(mesh.products)}
    counts["fitness decision"] = {"decide_calls": decisions.count(fit.REPORT_PATH),
                                  "opa_decision_log": decision_log_count(root, fit.REPORT_PATH),
                                  # MB, rounded: the freshness ages differ by a digit or so
                                  "input_mb": round(len(json.dumps(body)) / 1e6, 1),
                                  "grants": len(body["grants"])}
    counts["baseline decision"] = {"decide_calls": decisions.count(BASELINE_PATH)}
    history_path = mesh.resolve(mesh.config.fitness.history_path)
    report.history = fit.load_history(history_path)
    with t.measure("render"):
        rendered = [fit.render_text(report), fit.render_markdown(report), fit.render_html(report)]
    with t.measure("write results"):
        fit.append_history(history_path, report)
        fit.write_latest(mesh.resolve(mesh.config.fitness.latest_path), report)
    fitness_wall = (fitness_end - start) + t.phases["opa stop"] + t.phases["render"] \
        + t.phases["write results"]
    counts["render"] = {"bytes": sum(len(r) for r in rendered)}
    counts["report"] = {s: sum(1 for row in report.cells.values() for c in row.values()
                               if c["status"] == s) for s in ("green", "amber", "red", "n/a")}

    # ---- govern catalog publish (cli/catalog.py), twice
    for label in ("publish", "second publish"):
        p0 = now()
        with t.measure(f"{label}: load + desired"):
            pmesh = load_mesh(root)
            desired = cat.desired_entries(pmesh, cli_catalog.addresses(pmesh),
                                          cli_catalog.latest_fitness(pmesh))
        with SqlStatements() as opening, t.measure(f"{label}: open catalog"):
            cm = cat.open_publisher(pmesh.config.catalog, pmesh.config.requests, pmesh.root)
            pub = cm.__enter__()
        try:
            with SqlStatements() as sql, t.measure(f"{label}: read + write"):
                result = cat.publish(pub, desired)
        finally:
            cm.__exit__(None, None, None)
        t.phases[f"{label} (wall)"] = now() - p0
        counts[label] = {"changes": len(result.changes), "writes": result.writes,
                         "catalog_reads": pub.reads, "catalog_writes": pub.writes,
                         **sql.figures(), "open_sql_statements": opening.statements}
    amesh = load_mesh(root)
    with SqlStatements() as sql, t.measure("catalog facts after publish"):
        after, _ = cli_fitness._catalog_facts(amesh)
    counts["catalog facts after publish"] = {**sql.figures(),
                                             "published": sum(after.values()) if after else 0}
    t.phases["fitness (wall)"] = fitness_wall
    return {"phases": run.rounded(t.phases), "counts": counts}


DUMP: Path | None = None  # --dump: where the fitness decision's data and input go


def dump(client: OPAClient, body: dict[str, Any]) -> None:
    """The fitness decision's input and the data it reads, as files, to profile the decision
    with `opa eval --profile` (see bench/README.md)."""
    assert DUMP is not None
    DUMP.mkdir(parents=True, exist_ok=True)
    (DUMP / "input.json").write_text(json.dumps(body))
    data = {name: client.decide(name).result for name in ("directory", "approvals", "mesh")}
    (DUMP / "data.json").write_text(json.dumps(data))
    log(f"fitness decision's data and input written to {DUMP}")


def reset(root: Path) -> None:
    """Remove the catalog (the request store's SQLite file) and the fitness results."""
    mesh = load_mesh(root)
    db = Path(store_url(mesh.config.requests, root).database or "")
    for path in (db, mesh.resolve(mesh.config.fitness.history_path),
                 mesh.resolve(mesh.config.fitness.latest_path)):
        path.unlink(missing_ok=True)


def freshness_rows(root: Path, out: Path) -> int:
    """One row per dataset with a freshness column, 0 to 9 days old (some SLOs are met, some
    not), as SQL lines for run.seed_sql."""
    lines = []
    for product in load_mesh(root).products:
        for port in product.spec.ports:
            for d in port.datasets:
                if d.freshness_column:
                    hours = (len(lines) * 37) % 220
                    lines.append(f'INSERT INTO "{port.location.schema_}"."{d.name}" '
                                 f'("{d.freshness_column}") VALUES '
                                 f"(now() - interval '{hours} hours');")
    out.write_text("\n".join(lines) + "\n")
    return len(lines)


# ------------------------------------------------------------------------ report

ROWS = [  # (label, phase, counts key, how to show the counts)
    ("load", "load", None, None),
    ("directory", "directory", None, None),
    ("approvals", "approvals", None, None),
    ("opa start", "opa start", None, None),
    ("opa upload", "opa upload", None, None),
    ("evaluate", "evaluate", "evaluate",
     lambda c: f"{c['product_decisions']} product + {c['other_decisions']} guardrail decisions"),
    ("  of which product decisions", "evaluate: product decisions", None, None),
    ("catalog facts (no catalog yet)", "catalog facts", "catalog facts",
     lambda c: f"{c['sql_statements']} catalog statements"),
    ("gather store facts", "gather store facts", "gather store facts",
     lambda c: f"{c['server_statements']} PostgreSQL statements logged "
     f"(gather reports {c['reported_round_trips']})"),
    ("fitness decision (fit.evaluate)", "fitness decision", "fitness decision",
     lambda c: f"{c['decide_calls']} decision (OPA log: {c['opa_decision_log']}), "
     f"{c['grants']:,} grants, {c['input_mb']} MB input"),
    ("  of which the OPA request", "fitness decision: OPA request", None, None),
    ("render (text, markdown, html)", "render", "render", lambda c: f"{c['bytes']:,} bytes"),
    ("write history + latest", "write results", None, None),
    ("opa stop", "opa stop", None, None),
    ("FITNESS (wall)", "fitness (wall)", None, None),
    ("baseline: fitness input build (Python)", "fitness input build", None, None),
    ("baseline: trivial decision, same input", "baseline: OPA request", "baseline decision",
     lambda c: f"{c['decide_calls']} decision on data.{BASELINE_PATH.replace('/', '.')}"),
]
for _label in ("publish", "second publish"):
    ROWS += [
        (f"{_label}: load + desired", f"{_label}: load + desired", None, None),
        (f"{_label}: open catalog", f"{_label}: open catalog", None, None),
        (f"{_label}: read + write", f"{_label}: read + write", _label,
         lambda c: f"{c['catalog_reads']} read, {c['catalog_writes']} writes "
         f"({c['changes']} changes); {c['sql_statements']} SQL statements, "
         f"{c['sql_commits']} commits"),
        (f"{_label.upper()} (wall)", f"{_label} (wall)", None, None),
    ]
ROWS.append(("catalog facts after publish", "catalog facts after publish",
             "catalog facts after publish",
             lambda c: f"{c['sql_statements']} catalog statements, {c['published']} published"))


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {k: round(statistics.median(r["phases"][k] for r in runs), 4)
            for k in runs[0]["phases"]}


def ratios(m: dict[str, float]) -> dict[str, float]:
    return {"fitness_decision_over_baseline":
            m["fitness decision: OPA request"] / m["baseline: OPA request"],
            "fitness_decision_over_product_decisions":
            m["fitness decision: OPA request"] / m["evaluate: product decisions"],
            "fitness_decision_over_evaluate": m["fitness decision: OPA request"] / m["evaluate"],
            "fitness_wall_over_evaluate": m["fitness (wall)"] / m["evaluate"],
            "first_publish_over_second": m["publish (wall)"] / m["second publish (wall)"]}


def table(runs: list[dict[str, Any]], m: dict[str, float]) -> str:
    last = runs[-1]["counts"]
    lines = [f"{'phase':<42} {'median s':>9} {'min–max s':>15}  round trips (every run)"]
    for label, phase, key, show in ROWS:
        values = [r["phases"][phase] for r in runs]
        same = all(r["counts"].get(key) == last.get(key) for r in runs) if key else True
        note = (show(last[key]) + ("" if same else "  (differs between runs!)")) if key else ""
        lines.append(f"{label:<42} {m[phase]:>9.3f} {min(values):>7.3f}–{max(values):<7.3f}  "
                     f"{note}")
    return "\n".join(lines)


def checks(runs: list[dict[str, Any]]) -> dict[str, bool]:
    c = [r["counts"] for r in runs]
    return {
        "fitness_is_one_decision": all(x["fitness decision"]["decide_calls"] == 1
                                       and x["fitness decision"]["opa_decision_log"] == 1
                                       for x in c),
        "store_round_trips_as_reported": all(
            x["gather store facts"]["server_statements"]
            == x["gather store facts"]["reported_round_trips"] for x in c),
        "first_publish_creates_every_product": all(
            x["publish"]["writes"] == x["evaluate"]["product_decisions"] for x in c),
        "second_publish_writes_nothing": all(x["second publish"]["writes"] == 0
                                             and x["second publish"]["catalog_writes"] == 0
                                             for x in c),
        "published_after_publish": all(x["catalog facts after publish"]["published"]
                                       == x["evaluate"]["product_decisions"] for x in c),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--users", type=int, default=None, help="default 10 × products")
    parser.add_argument("--runs", type=int, default=3, help="measured runs (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dump", metavar="DIR", default=None, help="write the fitness "
                        "decision's data.json and input.json there (for opa eval --profile)")
    args = parser.parse_args(argv)
    global DUMP
    DUMP = Path(args.dump).resolve() if args.dump else None
    users = args.users or 10 * args.products
    domains = default_domains(args.products)
    groups = max(domains, users // 10)
    work = Path(tempfile.mkdtemp(prefix="govern-bench-fp-"))
    pg = Path(tempfile.mkdtemp(prefix="govern-bench-pg-"))
    root = work / "mesh"
    setup: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    try:
        t0 = now()
        generate(root, args.products, users, groups, domains, args.seed, freshness=True)
        setup["generate"] = now() - t0
        t0 = now()
        cluster = pgcluster.start(pg)
        with psycopg.connect(cluster, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        dsn = cluster.replace("dbname=postgres", "dbname=bench")
        seed_sql(dsn, root / "seed.sql")
        setup["timed datasets"] = freshness_rows(root, work / "freshness.sql")
        seed_sql(dsn, work / "freshness.sql")
        setup["postgres + seed"] = now() - t0
        os.environ["GOVERN_WAREHOUSE_DSN"] = dsn
        log(f"{args.products}x{users}: applying the mesh's grants (engine apply path)")
        applied = run.bench_apply(root)
        setup.update({"apply (wall)": applied["wall"], "apply statements": applied["statements"]})
        for i in range(args.runs):
            reset(root)
            log(f"{args.products}x{users}: run {i + 1}/{args.runs}")
            runs.append(one_run(root, pg, dsn))
    finally:
        pgcluster.stop(pg)
        shutil.rmtree(pg, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    m = medians(runs)
    env = environment()
    print(f"govern fitness + catalog publish — {args.products} products, {users:,} users, "
          f"{groups:,} groups; {env['opa']}, {env['postgres']}, Python {env['python']}, "
          f"{env['cpus']} CPUs; median of {len(runs)} runs")
    print("setup (not timed per run): " + ", ".join(
        f"{k} {v:.1f} s" if isinstance(v, float) else f"{k} {v:,}" for k, v in setup.items()))
    print(table(runs, m))
    x, ok = ratios(m), checks(runs)
    print("ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in x.items()))
    print("checks: " + ", ".join(f"{k} {v}" for k, v in ok.items()))
    print(json.dumps({"products": args.products, "users": users, "groups": groups,
                      "runs": len(runs), "environment": env, "setup": run.rounded(
                          {k: v for k, v in setup.items() if isinstance(v, float)}),
                      "median_s": m, "ratios": {k: round(v, 3) for k, v in x.items()},
                      "counts": runs[-1]["counts"], "checks": ok,
                      "per_run_s": [r["phases"] for r in runs]}, default=str))
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
