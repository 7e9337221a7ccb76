#!/usr/bin/env python3
"""Time govern phase by phase on synthetic meshes (bench/README.md explains every figure).

    python bench/run.py                                # sizes 100x1000 and 1000x10000
    python bench/run.py --sizes 100x1000,1000x10000    # PRODUCTSxUSERS[xGROUPS], comma-separated
    python bench/run.py --quick                        # 100x1000 only

For each size: generate the mesh (bench/generate.py) into a temp folder, start a throwaway
PostgreSQL (scripts/pgcluster.py), create a database and run seed.sql, then time

1. validate   what `govern validate` does: load, directory, approvals, opa check, opa start,
              opa upload, evaluate, desired; plus, against the same OPA server, a baseline of
              one OPA REST decision per (user, product) pair for a sample of pairs;
2. apply      plan + live apply onto the empty store (what `govern apply --auto-approve` does);
3. plan       a no-change plan right after (what `govern plan` does).

Prints a table and writes bench/results/<timestamp>.json. Uses only the project's own
tools: the virtualenv, .tools/bin/opa and the Debian PostgreSQL 15 server.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402

import pgcluster  # noqa: E402
from generate import default_domains, generate  # noqa: E402

from govern.engine import pipeline  # noqa: E402
from govern.engine.evaluate import (GUARDRAILS_PATH, decision_path,  # noqa: E402
                                    evaluate)
from govern.engine.guards import check_violations  # noqa: E402
from govern.engine.opa import OPAClient, find_opa  # noqa: E402
from govern.engine.pipeline import (Timings, apply, check_rego, connectors_for,  # noqa: E402
                                    load_inputs, make_plan, opa_session)

DEFAULT_SIZES = "100x1000,1000x10000"
RESULTS = ROOT / "bench" / "results"
now = time.perf_counter


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


class PhaseClock(pipeline.Reporter):
    """A Reporter that notes when each phase starts and when the last batch ended (the
    engine's Timings do not cover the execution of statements)."""

    def __init__(self) -> None:
        self.starts: dict[str, float] = {}
        self.last_advance: float | None = None
        self.advanced = 0
        self.batches = 0

    def phase(self, name: str, total: int | None = None) -> None:
        self.starts[name] = now()

    def advance(self, n: int = 1) -> None:
        self.advanced += n
        self.batches += 1
        self.last_advance = now()


class UploadClock:
    """Times every policy and data upload (wraps OPAClient.put_policy / put_data while
    active; the engine itself is untouched). OPA recompiles every module it holds on each
    policy PUT, so the cost of one PUT grows with the number already uploaded."""

    def __init__(self) -> None:
        self.policy: list[float] = []
        self.data: dict[str, float] = {}

    def __enter__(self) -> "UploadClock":
        self._saved = OPAClient.put_policy, OPAClient.put_data
        put_policy, put_data = self._saved
        clock = self

        def timed_policy(client, policy_id, text):
            t0 = now()
            try:
                return put_policy(client, policy_id, text)
            finally:
                clock.policy.append(now() - t0)

        def timed_data(client, path, document):
            t0 = now()
            try:
                return put_data(client, path, document)
            finally:
                clock.data[path] = clock.data.get(path, 0.0) + now() - t0

        OPAClient.put_policy, OPAClient.put_data = timed_policy, timed_data
        return self

    def __exit__(self, *exc: object) -> None:
        OPAClient.put_policy, OPAClient.put_data = self._saved

    def summary(self) -> dict[str, Any]:
        p = self.policy
        tenth = max(1, len(p) // 10)
        return {"policy_puts": len(p), "policies_s": round(sum(p), 4),
                "data_s": {k: round(v, 4) for k, v in self.data.items()},
                "first_tenth_mean_ms": round(sum(p[:tenth]) / tenth * 1000, 2) if p else None,
                "last_tenth_mean_ms": round(sum(p[-tenth:]) / tenth * 1000, 2) if p else None}


def parse_sizes(text: str) -> list[tuple[int, int, int | None]]:
    out = []
    for item in text.split(","):
        parts = [int(p) for p in item.strip().lower().split("x")]
        if len(parts) not in (2, 3) or min(parts) < 1:
            raise SystemExit(f"bad size {item!r}: want PRODUCTSxUSERS or PRODUCTSxUSERSxGROUPS")
        out.append((parts[0], parts[1], parts[2] if len(parts) == 3 else None))
    return out


def rounded(phases: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in phases.items()}


# ------------------------------------------------------------------------ validate

def bench_validate(root: Path, pairs: int, seed: int, breakdown: bool) -> dict[str, Any]:
    t = Timings()
    start = now()
    inputs = load_inputs(root, timings=t)
    with t.measure("opa check"):
        check_rego(inputs.mesh)
    extra: dict[str, Any] = {}
    with UploadClock() as uploads, opa_session(inputs, t, rego_checked=True) as client:
        extra["upload"] = uploads.summary()  # the session uploads once, at its start
        with t.measure("evaluate"):
            evaluation = evaluate(client, inputs.mesh, inputs.snapshot)
        check_violations(evaluation.violations)
        physical = 0
        with t.measure("desired"):
            for connector in connectors_for(inputs.mesh).values():
                desired = connector.desired(evaluation.access, inputs.mesh,
                                            inputs.snapshot.users, None, None)
                errors = [d for d in desired.diagnostics if d.severity == "error"]
                if errors:
                    raise RuntimeError(f"validate: {errors[0].subject}: {errors[0].message}")
                physical += len(desired.grants)
                connector.close()
        validate_end = now()
        # not part of validate: the same server, re-measured piece by piece, and the baseline
        if breakdown:
            extra["evaluate_breakdown"] = evaluate_breakdown(client, inputs, evaluation)
        extra["baseline"] = baseline(client, inputs, evaluation, pairs, seed)
        stop_start = now()
    t.phases["opa stop"] = now() - stop_start
    wall = validate_end - start + t.phases["opa stop"]
    return {"phases": rounded(t.phases), "wall": round(wall, 4),
            "access": len(evaluation.access), "physical_grants": physical,
            "decisions": len(evaluation.decisions), **extra,
            "_evaluation": evaluation, "_inputs": inputs}


def evaluate_breakdown(client, inputs, evaluation) -> dict[str, float]:
    """The evaluate phase again, in its parts: the product decisions (concurrent, as the
    engine issues them) and the one guardrail decision over every desired grant."""
    paths = [decision_path(p) for p in inputs.mesh.products]
    t0 = now()
    client.decide_many(paths)
    t1 = now()
    body = {"grants": [a.to_dict() for a in sorted(evaluation.access)]}
    t2 = now()
    client.decide(GUARDRAILS_PATH, body)
    t3 = now()
    return {"product_decisions": round(t1 - t0, 4), "guardrail_input_build": round(t2 - t1, 4),
            "guardrail_decision": round(t3 - t2, 4)}


def baseline(client, inputs, evaluation, n: int, seed: int) -> dict[str, Any]:
    """One OPA REST decision per (user, product) pair, for n random pairs; extrapolated to
    every pair. Each answer is checked against the engine's evaluation."""
    rng = random.Random(seed)
    users = sorted(inputs.snapshot.users)
    products = list(inputs.mesh.products)
    sample = [(rng.choice(users), rng.choice(products)) for _ in range(n)]
    expected: dict[tuple[str, str], set[tuple[str, str]]] = collections.defaultdict(set)
    for a in evaluation.access:
        expected[(a.product, a.principal)].add((a.port, a.access.value))

    def query(pair):
        user, product = pair
        d, p = product.spec.domain, product.spec.name
        rows = client.query(f"x := [g | some g in data.products.{d}.{p}.grants; "
                            f"g.principal == {json.dumps(user)}]")
        return rows[0]["x"] if rows else None

    for pair in sample[:5]:  # warm-up: connection set up, first-query compilation
        query(pair)
    latencies, answers = [], []
    for pair in sample:
        t0 = now()
        answers.append(query(pair))
        latencies.append(now() - t0)
    seq_total = sum(latencies)
    with ThreadPoolExecutor(max_workers=client.concurrency) as pool:
        t0 = now()
        list(pool.map(query, sample))
        conc_total = now() - t0
    mismatches = 0
    for (user, product), answer in zip(sample, answers):
        got = {(g["port"], g["access"]) for g in (answer or [])}
        if got != expected.get((product.ref, user), set()):
            mismatches += 1
    all_pairs = len(users) * len(products)
    latencies.sort()
    return {
        "pairs_sampled": n, "pairs_with_access": sum(1 for a in answers if a),
        "mismatches": mismatches, "all_pairs": all_pairs,
        "sequential_mean_s": seq_total / n,
        "sequential_p50_s": latencies[n // 2], "sequential_p95_s": latencies[int(n * .95)],
        "concurrency": client.concurrency,
        "concurrent_s_per_pair": conc_total / n,
        "extrapolated_sequential_s": seq_total / n * all_pairs,
        "extrapolated_concurrent_s": conc_total / n * all_pairs,
    }


# ------------------------------------------------------------------------ plan / apply

def bench_apply(root: Path) -> dict[str, Any]:
    t = Timings()
    clock = PhaseClock()
    start = now()
    inputs = load_inputs(root, timings=t)
    with UploadClock() as uploads, opa_session(inputs, t) as client:
        upload = uploads.summary()
        a0 = now()
        result = apply(inputs, client, allow_mass_revoke=True, timings=t, reporter=clock)
        a1 = now()
    end = now()
    planned = sum(t.phases.get(k, 0.0) for k in ("evaluate", "read", "desired", "diff"))
    exec_start = clock.starts.get("apply warehouse")
    if exec_start is not None and clock.last_advance is not None:
        t.phases["plan other"] = exec_start - a0 - planned
        t.phases["execute"] = clock.last_advance - exec_start
        t.phases["audit"] = a1 - clock.last_advance
    else:
        t.phases["plan other"] = a1 - a0 - planned
    t.phases["opa stop"] = end - a1
    return {"phases": rounded(t.phases), "wall": round(end - start, 4), "upload": upload,
            **plan_counts(result.plan), "executed": dict(result.executed),
            "batches": clock.batches}


def bench_plan(root: Path) -> dict[str, Any]:
    t = Timings()
    start = now()
    inputs = load_inputs(root, timings=t)
    with UploadClock() as uploads, opa_session(inputs, t) as client:
        upload = uploads.summary()
        p0 = now()
        plan, evaluation = make_plan(inputs, client, allow_mass_revoke=True, timings=t)
        p1 = now()
    end = now()
    planned = sum(t.phases.get(k, 0.0) for k in ("evaluate", "read", "desired", "diff"))
    t.phases["plan other"] = p1 - p0 - planned
    t.phases["opa stop"] = end - p1
    return {"phases": rounded(t.phases), "wall": round(end - start, 4), "upload": upload,
            "make_plan": round(p1 - p0, 4), "access": len(evaluation.access),
            **plan_counts(plan)}


def plan_counts(plan) -> dict[str, Any]:
    kinds = collections.Counter()
    for tp in plan.targets:
        for c in tp.changes:
            kinds[f"{c.action.value} {c.grant.privilege.value}"] += 1
    return {
        "changes": sum(len(tp.changes) for tp in plan.targets),
        "adds": sum(tp.adds for tp in plan.targets),
        "removes": sum(tp.removes for tp in plan.targets),
        "statements": sum(len(tp.statements) for tp in plan.targets),
        "change_kinds": dict(sorted(kinds.items())),
        "round_trips": {tp.target: tp.round_trips for tp in plan.targets},
        "managed_grants_read": {tp.target: tp.managed_count for tp in plan.targets},
        "diagnostics": len(plan.diagnostics),
    }


# ------------------------------------------------------------------------ one size

class Terminated(Exception):
    """SIGTERM / SIGHUP: stop, clean up, keep the figures measured so far."""


def _terminate(signum, frame):  # noqa: ARG001
    raise Terminated(f"terminated by signal {signal.Signals(signum).name}")


def run_size(out: dict[str, Any], products: int, users: int, groups: int | None, seed: int,
             pairs: int, breakdown: bool, keep: bool, save) -> dict[str, Any]:
    """Fills ``out`` step by step (``save()`` after each, so a stopped run keeps them)."""
    domains = default_domains(products)
    groups = groups if groups is not None else max(domains, users // 10)
    label = f"{products}x{users}"
    out.update({"size": label, "products": products, "users": users,
                "groups": groups, "domains": domains, "seed": seed})
    step = "generate"
    work = Path(tempfile.mkdtemp(prefix="govern-bench-mesh-"))
    pg = Path(tempfile.mkdtemp(prefix="govern-bench-pg-"))
    root = work / "mesh"
    try:
        t0 = now()
        summary = generate(root, products, users, groups, domains, seed)
        expected = summary.pop("expected")
        out["mesh"] = summary
        out["setup"] = {"generate": round(now() - t0, 4)}
        log(f"{label}: generated {summary['ports']} ports, {summary['expected_access']} "
            f"expected grants in {out['setup']['generate']:.1f}s")

        step = "postgres"
        t0 = now()
        cluster = pgcluster.start(pg)
        out["setup"]["postgres start"] = round(now() - t0, 4)
        t0 = now()
        with psycopg.connect(cluster, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        dsn = cluster.replace("dbname=postgres", "dbname=bench")
        seed_sql(dsn, root / "seed.sql")
        out["setup"]["create db + seed.sql"] = round(now() - t0, 4)
        os.environ["GOVERN_WAREHOUSE_DSN"] = dsn

        step = "validate"
        log(f"{label}: validate")
        v = bench_validate(root, pairs, seed, breakdown)
        evaluation = v.pop("_evaluation")
        v.pop("_inputs")
        got = {(a.product, a.port, a.principal, a.access.value) for a in evaluation.access}
        out["checks"] = {"access_matches_generator": got == expected}
        out["validate"] = v
        save()
        log(f"{label}: validate {v['wall']:.1f}s ({v['access']} grants); baseline "
            f"{v['baseline']['sequential_mean_s'] * 1000:.1f} ms/decision")

        step = "apply"
        log(f"{label}: first plan + apply")
        a = bench_apply(root)
        out["apply"] = a
        log(f"{label}: apply {a['wall']:.1f}s ({a['statements']} statements)")
        with psycopg.connect(dsn, autocommit=True) as conn:
            out["store"] = {
                "roles": conn.execute("SELECT count(*) FROM pg_roles").fetchone()[0],
                "memberships": conn.execute("SELECT count(*) FROM pg_auth_members")
                .fetchone()[0],
                "managed_roles": conn.execute(
                    "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, 'dp_')")
                .fetchone()[0],
            }
        save()

        step = "no-change plan"
        log(f"{label}: no-change plan")
        p = bench_plan(root)
        out["plan"] = p
        out["checks"]["no_change_plan_empty"] = p["changes"] == 0
        log(f"{label}: no-change plan {p['wall']:.1f}s ({p['changes']} changes)")

        opa_log = root / ".govern" / "opa.log"
        out["opa_log_bytes"] = opa_log.stat().st_size if opa_log.exists() else 0
        out["ratios"] = ratios(out)
    # report where it failed, keep the figures measured so far
    except (Exception, KeyboardInterrupt) as exc:
        out["error"] = {"step": step, "message": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc()}
        log(f"{label}: FAILED in {step}: {type(exc).__name__}: {exc}")
    finally:
        pgcluster.stop(pg)
        shutil.rmtree(pg, ignore_errors=True)
        if keep:
            out["mesh_dir"] = str(root)
            log(f"{label}: mesh kept in {root}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return out


def seed_sql(dsn: str, path: Path, chunk: int = 200) -> None:
    """Run seed.sql (one statement per line) in chunks: as a single string it would be one
    transaction, and thousands of CREATE TABLE in one transaction exhaust the lock table."""
    statements, current = [], []
    for line in path.read_text().splitlines():
        if line.startswith("--") or not line.strip():
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    with psycopg.connect(dsn, autocommit=True) as conn:
        for start in range(0, len(statements), chunk):
            conn.execute("\n".join(statements[start:start + chunk]))


def ratios(r: dict[str, Any]) -> dict[str, float]:
    b = r["validate"]["baseline"]
    evaluate_s = r["validate"]["phases"]["evaluate"]
    p = r["plan"]["phases"]
    core = p["evaluate"] + p["read"]
    return {
        "per_pair_concurrent_over_evaluate": b["extrapolated_concurrent_s"] / evaluate_s,
        "per_pair_sequential_over_evaluate": b["extrapolated_sequential_s"] / evaluate_s,
        "noop_plan_wall_over_evaluate_plus_read": r["plan"]["wall"] / core,
        "noop_make_plan_over_evaluate_plus_read": r["plan"]["make_plan"] / core,
    }


# ------------------------------------------------------------------------ report

VALIDATE_PHASES = ["load", "directory", "approvals", "opa check", "policy check", "opa start",
                   "opa upload", "evaluate", "desired", "opa stop"]
APPLY_PHASES = ["load", "directory", "approvals", "policy check", "opa start", "opa upload",
                "evaluate", "read", "desired", "diff", "plan other", "execute", "audit",
                "opa stop"]
PLAN_PHASES = ["load", "directory", "approvals", "policy check", "opa start", "opa upload",
               "evaluate", "read", "desired", "diff", "plan other", "opa stop"]


def secs(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f} s" if v < 10 else f"{v:.1f} s"


def count(v: Any) -> str:
    return "-" if v is None else f"{v:,}"


def get(d: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def table(results: list[dict[str, Any]]) -> str:
    rows: list[tuple[str, list[str]]] = []

    def section(title: str) -> None:
        rows.append((f"— {title}", [""] * len(results)))

    def row(label: str, fn) -> None:
        vals = []
        for r in results:
            try:
                vals.append(fn(r))
            except (KeyError, TypeError, AttributeError, ZeroDivisionError):
                vals.append("-")
        rows.append((label, vals))

    section("mesh")
    row("products / ports / datasets", lambda r: f"{r['mesh']['products']:,} / "
        f"{r['mesh']['ports']:,} / {r['mesh']['datasets']:,}")
    row("users / groups / domains", lambda r: f"{r['users']:,} / {r['groups']:,} / "
        f"{r['domains']}")
    row("active approvals", lambda r: count(get(r, "mesh", "active_approvals")))
    row("users granted per product (mean)",
        lambda r: f"{r['mesh']['mean_user_fraction_per_product']:.1%}")
    section("setup (not govern)")
    for k in ("generate", "postgres start", "create db + seed.sql"):
        row(k, lambda r, k=k: secs(get(r, "setup", k)))
    for title, key, phases in (("validate", "validate", VALIDATE_PHASES),
                               ("first plan + apply (empty store)", "apply", APPLY_PHASES),
                               ("no-change plan", "plan", PLAN_PHASES)):
        section(title)
        for ph in phases:
            row(ph, lambda r, ph=ph, key=key: secs(get(r, key, "phases", ph)))
        row("TOTAL (wall)", lambda r, key=key: secs(get(r, key, "wall")))
        row("  opa upload: policy PUTs", lambda r, key=key: secs(get(r, key, "upload",
                                                                   "policies_s")))
        row("  opa upload: data PUTs", lambda r, key=key: secs(
            sum(get(r, key, "upload", "data_s").values())))
        row("  one policy PUT, first / last tenth", lambda r, key=key: (
            f"{get(r, key, 'upload', 'first_tenth_mean_ms'):.0f} / "
            f"{get(r, key, 'upload', 'last_tenth_mean_ms'):.0f} ms"))
        if key == "validate":
            row("  evaluate re-run: product decisions",
                lambda r: secs(get(r, "validate", "evaluate_breakdown", "product_decisions")))
            row("  evaluate re-run: guardrail input (Python)",
                lambda r: secs(get(r, "validate", "evaluate_breakdown", "guardrail_input_build")))
            row("  evaluate re-run: guardrail decision",
                lambda r: secs(get(r, "validate", "evaluate_breakdown", "guardrail_decision")))
    section("counts")
    row("access grants (logical)", lambda r: count(get(r, "validate", "access")))
    row("physical grants desired", lambda r: count(get(r, "validate", "physical_grants")))
    row("OPA decisions per evaluate", lambda r: count(get(r, "validate", "decisions")))
    row("apply: changes", lambda r: count(get(r, "apply", "changes")))
    row("apply: statements rendered", lambda r: count(get(r, "apply", "statements")))
    row("apply: statements executed",
        lambda r: count(sum(r["apply"]["executed"].values())))
    row("apply: transactions (batches)", lambda r: count(get(r, "apply", "batches")))
    row("apply: catalog round trips",
        lambda r: ", ".join(f"{k} {v}" for k, v in r["apply"]["round_trips"].items()))
    row("no-change plan: changes", lambda r: count(get(r, "plan", "changes")))
    row("no-change plan: catalog round trips",
        lambda r: ", ".join(f"{k} {v}" for k, v in r["plan"]["round_trips"].items()))
    row("managed grants read back",
        lambda r: ", ".join(f"{k} {v:,}" for k, v in r["plan"]["managed_grants_read"].items()))
    row("store roles / memberships", lambda r: f"{r['store']['roles']:,} / "
        f"{r['store']['memberships']:,}")
    row("opa.log after the no-change plan (bytes)", lambda r: count(r.get("opa_log_bytes")))
    section("baseline: one OPA REST decision per (user, product)")
    row("pairs sampled (with access)", lambda r: f"{r['validate']['baseline']['pairs_sampled']}"
        f" ({r['validate']['baseline']['pairs_with_access']})")
    row("answers differing from evaluate", lambda r: count(r["validate"]["baseline"]["mismatches"]))
    row("latency mean / p50 / p95", lambda r: " / ".join(
        f"{r['validate']['baseline'][k] * 1000:.1f} ms"
        for k in ("sequential_mean_s", "sequential_p50_s", "sequential_p95_s")))
    row("per pair, at evaluate's concurrency", lambda r: (
        f"{r['validate']['baseline']['concurrent_s_per_pair'] * 1000:.2f} ms "
        f"(x{r['validate']['baseline']['concurrency']})"))
    row("all pairs", lambda r: count(r["validate"]["baseline"]["all_pairs"]))
    row("extrapolated, sequential", lambda r: duration(
        r["validate"]["baseline"]["extrapolated_sequential_s"]))
    row("extrapolated, at evaluate's concurrency", lambda r: duration(
        r["validate"]["baseline"]["extrapolated_concurrent_s"]))
    row("evaluate (validate run)", lambda r: secs(r["validate"]["phases"]["evaluate"]))
    section("ratios")
    row("evaluate vs per-pair (same concurrency)",
        lambda r: f"{r['ratios']['per_pair_concurrent_over_evaluate']:,.0f}× faster")
    row("evaluate vs per-pair (sequential)",
        lambda r: f"{r['ratios']['per_pair_sequential_over_evaluate']:,.0f}× faster")
    row("no-change plan / (evaluate + read)",
        lambda r: f"{r['ratios']['noop_plan_wall_over_evaluate_plus_read']:.2f}")
    row("  make_plan only / (evaluate + read)",
        lambda r: f"{r['ratios']['noop_make_plan_over_evaluate_plus_read']:.2f}")
    section("checks")
    row("access = generator's expectation", lambda r: str(r["checks"]["access_matches_generator"]))
    row("no-change plan is empty", lambda r: str(r["checks"]["no_change_plan_empty"]))
    row("error", lambda r: f"{r['error']['step']}: {r['error']['message']}" if "error" in r
        else "none")

    header = ["", *(r["size"] for r in results)]
    width0 = max(len(h) for h, _ in rows)
    widths = [max(len(header[i + 1]), *(len(v[i]) for _, v in rows)) for i in range(len(results))]
    lines = ["  ".join([header[0].ljust(width0), *(h.rjust(w) for h, w in
                                                   zip(header[1:], widths))])]
    for label, vals in rows:
        if label.startswith("— "):
            lines.append(label)
        else:
            lines.append("  ".join([label.ljust(width0), *(v.rjust(w) for v, w in
                                                          zip(vals, widths))]))
    return "\n".join(lines)


def duration(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def headline(r: dict[str, Any]) -> str:
    if "ratios" not in r:
        return f"{r['size']}: incomplete ({r.get('error', {}).get('step', '?')} failed)"
    x = r["ratios"]
    return (f"{r['size']}: evaluation is {x['per_pair_concurrent_over_evaluate']:,.0f}× faster "
            f"than one decision per (user, product) "
            f"({x['per_pair_sequential_over_evaluate']:,.0f}× against sequential decisions); "
            f"the no-change plan takes {x['noop_plan_wall_over_evaluate_plus_read']:.2f}× "
            f"(evaluate + catalog read)")


def environment() -> dict[str, Any]:
    opa = find_opa()
    version = subprocess.run([opa, "version"], capture_output=True, text=True).stdout
    pg = subprocess.run([str(pgcluster.BIN / "postgres"), "--version"], capture_output=True,
                        text=True).stdout.strip()
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "opa": version.splitlines()[0] if version else opa,
            "postgres": pg}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"PRODUCTSxUSERS[xGROUPS],... (default {DEFAULT_SIZES}; groups "
                        "default to users/10)")
    parser.add_argument("--quick", action="store_true", help="only 100x1000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=200,
                        help="(user, product) pairs timed for the baseline (default 200)")
    parser.add_argument("--no-breakdown", action="store_true",
                        help="skip re-measuring evaluate's parts (product vs guardrail)")
    parser.add_argument("--keep", action="store_true", help="keep the generated meshes")
    args = parser.parse_args(argv)
    sizes = parse_sizes("100x1000" if args.quick else args.sizes)

    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    report: dict[str, Any] = {"started": dt.datetime.now().isoformat(timespec="seconds"),
                              "environment": environment(), "seed": args.seed,
                              "pairs": args.pairs, "results": []}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stamp}.json"

    def save() -> None:
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    for products, users, groups in sizes:
        result: dict[str, Any] = {}
        report["results"].append(result)
        run_size(result, products, users, groups, args.seed, args.pairs,
                 not args.no_breakdown, args.keep, save)
        save()
        if isinstance(result.get("error"), dict) and \
                result["error"]["message"].startswith(("Terminated", "KeyboardInterrupt")):
            break
    report["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")

    env = report["environment"]
    print(f"govern benchmark — {env['opa']}, {env['postgres']}, Python {env['python']}, "
          f"{env['cpus']} CPUs")
    print(table(report["results"]))
    print()
    for r in report["results"]:
        print(headline(r))
    print(f"\nresults: {path.relative_to(ROOT)}")
    return 1 if any("error" in r for r in report["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
