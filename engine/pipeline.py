"""The pipeline, stage by stage: load → directory → approvals → evaluate → desired → actual →
diff → plan → apply. Each stage is a function; only OPA, the directory and the connectors do
I/O, and every stage raises a GovernError rather than return a partial result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from govern.connectors.base import make_connector
from govern.identity import open_source

from . import audit, lease
from .approvals import Approval, load_approvals
from .connector import Connector, Desired
from .diff import diff
from .directory import Snapshot, check_shrink, stats
from .errors import (ConnectorError, GovernError, OPAUnavailable, PlanError, Problem,
                     SpecError, StalePlan, StateCorrupt, StoreUnavailable)
from .capabilities import check_restricted, refusal
from .evaluate import Evaluation, evaluate, run_policies, upload
from .guards import check_mass_revoke, check_violations
from .mesh import Mesh, load_mesh
from .models import Diagnostic
from .opa import OPAClient
from .opa_local import OPAServer, find_opa
from .plan import Plan, TargetPlan
from .references import check_references as missing_references
from .runstate import RunState, open_state
from .secrets import read_secret


class Reporter:
    """Progress of long work. The CLI draws it with rich; the default says nothing."""

    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, n: int = 1) -> None: ...


@dataclass(frozen=True)
class Inputs:
    mesh: Mesh
    snapshot: Snapshot
    approvals: tuple[Approval, ...]
    approvals_error: str | None = None

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for part in (self.mesh.fingerprint(), self.snapshot.fingerprint(),
                     *(a.model_dump_json() for a in self.approvals)):
            digest.update(part.encode())
            digest.update(b"\n")
        return digest.hexdigest()


@dataclass
class Timings:
    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start


# ------------------------------------------------------------------------ load

def connectors_for(mesh: Mesh, targets: Sequence[str] | None = None) -> dict[str, Connector]:
    if targets is not None:
        unknown = sorted(set(targets) - set(mesh.config.targets))
        if unknown:
            raise SpecError([Problem("govern.yaml", "targets", f"unknown target {unknown[0]!r}")])
    return {name: make_connector(name, cfg, mesh.config.managed_prefix, mesh.config.name)
            for name, cfg in sorted(mesh.config.targets.items())
            if targets is None or name in targets}


def load_inputs(root: Path, today: dt.date | None = None, timings: Timings | None = None,
                approvals_optional: bool = False) -> Inputs:
    """The mesh, a fresh directory snapshot and the active approvals. Anything missing
    raises; ``approvals_optional`` (reports only, never plan or apply) instead records why
    the request store could not be read in ``Inputs.approvals_error``."""
    timings = timings or Timings()
    with timings.measure("load"):
        mesh = load_mesh(root)
        problems = [p for c in connectors_for(mesh).values() for p in c.check_names(mesh)]
        if problems:
            raise SpecError(problems)
    with timings.measure("directory"):
        snapshot = read_directory(mesh, guard_optional=approvals_optional)
    with timings.measure("approvals"):
        from .requests import combine, store_approvals

        # the approvals file (if configured) and the request store's approved requests,
        # both only those unexpired on `today`
        day = today or dt.date.today()
        path = mesh.config.approvals.path
        from_file = load_approvals(mesh.resolve(path) if path else None, day)
        try:
            approvals = combine(from_file, store_approvals(mesh.config.requests, mesh.root, day))
        except GovernError as exc:
            if not approvals_optional:
                raise
            # only for reports (fitness): the checks that need approvals turn amber
            return Inputs(mesh, snapshot, from_file, approvals_error=str(exc))
    return Inputs(mesh, snapshot, approvals)


LEGACY_DIRECTORY_STATE = ".govern/directory-state.json"  # before the record moved to the store


def read_directory(mesh: Mesh, guard_optional: bool = False) -> Snapshot:
    """A fresh snapshot, refused when it shrank too much since the last good one; the new
    one's size and fingerprint are then kept, in the request store (engine/runstate.py), for
    the next run's comparison. A record that cannot be read stops the run; so does a store
    that cannot be reached, unless ``guard_optional`` (reports only, never plan or apply)."""
    snapshot = open_source(mesh.config.directory, mesh.root).snapshot()
    try:
        _shrink_guard(mesh, snapshot)
    except StoreUnavailable:
        if not guard_optional:
            raise
    return snapshot


def _shrink_guard(mesh: Mesh, snapshot: Snapshot) -> None:
    with open_state(mesh) as state:
        previous = state.get("directory")
        where = f"run state 'directory' in {state.label}"
        legacy = mesh.resolve(LEGACY_DIRECTORY_STATE)
        if previous is None and legacy.exists():
            where = str(legacy)
            try:
                previous = json.loads(legacy.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise StateCorrupt(f"{where} cannot be read ({exc}); refusing to run without "
                                   "the directory shrink guard") from exc
        if previous is not None and not all(
                isinstance(previous.get(k), int) and previous[k] >= 0
                for k in ("users", "memberships")):
            raise StateCorrupt(f"{where} has no valid users / memberships counts; refusing to "
                               "run without the directory shrink guard")
        check_shrink(snapshot, previous, mesh.config.directory.max_shrink_fraction)
        state.put("directory", {**stats(snapshot), "fingerprint": snapshot.fingerprint(),
                                "source": snapshot.source})


def policy_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


# ------------------------------------------------------------------------ OPA

@contextmanager
def opa_session(inputs: Inputs, timings: Timings | None = None,
                on_exit: Callable[[int], None] | None = None,
                rego_checked: bool = False) -> Iterator[OPAClient]:
    """An OPA client with the run's policies and data uploaded: a server govern starts (on a
    private Unix socket, behind a token of this run), or the server named by ``opa.url``.
    ``on_exit(status)`` is called if the server govern started exits before the session ends
    (long-running callers, ``govern serve``, stop on it rather than serve without OPA).
    The policies are checked under the product capabilities first, unless the caller has
    just done so with :func:`check_rego` (``rego_checked``: validate)."""
    cfg = inputs.mesh.config.opa
    timings = timings or Timings()
    server = None
    if not rego_checked:
        with timings.measure("policy check"):
            check_before_load(inputs.mesh)
    try:
        if cfg.url:
            url, token = cfg.url, _token(cfg, inputs.mesh)
        else:
            log_dir = inputs.mesh.resolve(".govern")
            log_dir.mkdir(exist_ok=True)
            with timings.measure("opa start"):  # compiles every policy once
                server = OPAServer(find_opa(cfg.binary), log_dir / "opa.log",
                                   policies=run_policies(inputs.mesh),
                                   cwd=inputs.mesh.root).start()
            if on_exit is not None:
                server.watch(on_exit)
            url, token = server.url, server.token
        with OPAClient(url, token=token, ca_file=cfg.ca_file, timeout=cfg.timeout_seconds,
                       concurrency=cfg.concurrency) as client:
            if server is not None:
                with timings.measure("opa upload"):
                    upload(client, inputs.mesh, inputs.snapshot, inputs.approvals,
                           policies=False)
                yield client
            elif cfg.upload:  # a shared server: one writer at a time (engine/lease.py)
                with lease.hold(client) as held:
                    with timings.measure("opa upload"):
                        upload(client, inputs.mesh, inputs.snapshot, inputs.approvals)
                    lease.confirm(client, held)  # nobody cleared it and wrote meanwhile
                    yield client
            else:
                yield client
    finally:
        if server is not None:
            server.stop()


def _token(cfg, mesh: Mesh) -> str | None:
    return read_secret(cfg.token_env, cfg.token_file, mesh.root, "opa.token", OPAUnavailable)


def check_names(desired: Desired, snapshot: Snapshot) -> None:
    """A connector's errors about principals it cannot hold (too long, reserved) stop the
    run, naming the directory and the principal."""
    errors = [Problem(snapshot.source, d.subject, d.message)
              for d in desired.diagnostics if d.severity == "error"]
    if errors:
        raise SpecError(errors)


def check_references(inputs: Inputs) -> None:
    """Groups, attributes, owners and stewards the mesh names and the directory lacks."""
    problems = missing_references(inputs.mesh, inputs.snapshot)
    if problems:
        raise SpecError(problems)


def check_rego(mesh: Mesh) -> None:
    """``opa check --strict`` over every module a run loads and the product tests, under the
    product capabilities: every problem, each at its file and line."""
    problems = rego_problems(mesh, tests=True)
    if problems:
        raise SpecError(problems)


def rego_problems(mesh: Mesh, tests: bool = False) -> list[Problem]:
    """``opa check --strict`` under the product capabilities of every module a run loads
    into OPA (platform, the mesh's own, products: products call and extend the others), and
    the product tests: a network, environment, clock or randomness builtin is a problem."""
    files = run_policies(mesh) + ([p.test for p in mesh.products if p.test] if tests else [])
    return check_restricted(find_opa(mesh.config.opa.binary), files, mesh.root)


def check_before_load(mesh: Mesh) -> None:
    """Before any policy is loaded into OPA: refuse, in one line naming the file and line, a
    policy outside the product capabilities."""
    problems = rego_problems(mesh)
    if problems:
        raise refusal(problems)


# ------------------------------------------------------------------------ plan

def make_plan(inputs: Inputs, client: OPAClient, *, products: Sequence[str] | None = None,
              targets: Sequence[str] | None = None, allow_mass_revoke: bool = False,
              connectors: dict[str, Connector] | None = None,
              reporter: Reporter | None = None, timings: Timings | None = None,
              ) -> tuple[Plan, Evaluation]:
    mesh = inputs.mesh
    reporter = reporter or Reporter()
    timings = timings or Timings()
    if products is not None:
        unknown = sorted(set(products) - {p.ref for p in mesh.products})
        if unknown:
            raise SpecError([Problem("govern.yaml", "products", f"no product {unknown[0]!r} "
                                     "in the mesh")])
    # a plan still runs when a group is gone (its members lose access), but it says so
    dangling = [Diagnostic("warning", p.file, f"{p.path}: {p.message}")
                for p in missing_references(mesh, inputs.snapshot, products)]
    reporter.phase("evaluate", len(mesh.products))
    with timings.measure("evaluate"):
        evaluation = evaluate(client, mesh, inputs.snapshot, products)
    check_violations(evaluation.violations)
    own = connectors is None
    connectors = connectors if connectors is not None else connectors_for(mesh, targets)
    target_plans, notes = [], [*dangling, *evaluation.diagnostics]
    try:
        for name, connector in connectors.items():
            reporter.phase(f"read {name}")
            with timings.measure("read"):
                state = connector.read(mesh)
            with timings.measure("desired"):
                desired = connector.desired(evaluation.access, mesh, inputs.snapshot.users,
                                            state, products)
            check_names(desired, inputs.snapshot)
            notes += desired.diagnostics
            with timings.measure("diff"):
                actual = connector.actual(state, desired, products, mesh)
                changes = diff(desired.grants, actual)
                statements = connector.render(changes)
            target_plans.append(TargetPlan(name, connector.state_fingerprint(state, actual),
                                           len(actual), changes, tuple(statements),
                                           state.round_trips))
    finally:
        if own:
            for connector in connectors.values():
                connector.close()
    plan = Plan(mesh=mesh.config.name, inputs_fingerprint=inputs.fingerprint(),
                policy_commit=policy_commit(mesh.root), targets=tuple(target_plans),
                products=tuple(products) if products is not None else None,
                diagnostics=tuple(dict.fromkeys(notes)),
                decision_ids=tuple(d.decision_id for d in evaluation.decisions if d.decision_id))
    check_mass_revoke(plan, mesh.config.guards, allow_mass_revoke)
    return plan, evaluation


# ------------------------------------------------------------------------ apply

@dataclass
class ApplyResult:
    plan: Plan
    executed: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def signing_key(mesh: Mesh) -> bytes | None:
    """The plan-signing key from the environment variable govern.yaml names, if set."""
    value = os.environ.get(mesh.config.plan_signing.key_env, "")
    return value.encode() if value else None


def sign(plan: Plan, mesh: Mesh) -> Plan:
    """The plan, signed when a signing key is set (``plan --out``)."""
    key = signing_key(mesh)
    return plan.signed(key) if key else plan


def check_saved(saved: Plan, inputs: Inputs) -> None:
    """Refuse a saved plan that is unsigned where signatures are required, signed with
    another key, or made from other inputs."""
    cfg = inputs.mesh.config.plan_signing
    key = signing_key(inputs.mesh)
    if key is None and cfg.required:
        raise PlanError(f"plan_signing.required is set but ${cfg.key_env} is empty: cannot "
                        f"verify plan {saved.short_id}")
    if key is not None and not saved.verify(key):
        what = "is not signed" if not saved.signature else "has a signature that does not verify"
        raise PlanError(f"plan {saved.short_id} {what} with the key in ${cfg.key_env}; "
                        "apply only plans made by your plan job")
    if saved.mesh != inputs.mesh.config.name:
        raise StalePlan(f"plan {saved.short_id} was made for mesh {saved.mesh!r}, not "
                        f"{inputs.mesh.config.name!r}")
    if saved.inputs_fingerprint != inputs.fingerprint():
        raise StalePlan(f"plan {saved.short_id}: the mesh, directory or approvals changed "
                        "since it was made; run plan again")


def check_same(saved: Plan, fresh: Plan) -> None:
    """A saved plan is applied only when it is exactly the plan computed now: same targets,
    same store state, same changes and statements (Terraform's promise, and more: a plan
    file edited by hand can never carry a change nobody computed)."""
    if [t.target for t in saved.targets] != [t.target for t in fresh.targets]:
        raise StalePlan(f"plan {saved.short_id}: its targets differ from the mesh's; run plan "
                        "again")
    for t in saved.targets:
        now = fresh.target(t.target)
        if t.state_fingerprint != now.state_fingerprint:
            raise StalePlan(f"plan {saved.short_id}: target {t.target} changed since the "
                            "plan was made; run plan again")
        if t.changes != now.changes or t.statements != now.statements:
            extra = len(set(t.changes) - set(now.changes))
            missing = len(set(now.changes) - set(t.changes))
            raise StalePlan(f"plan {saved.short_id}: target {t.target}: its changes differ "
                            f"from the ones computed now ({extra} not computed, {missing} "
                            "missing); run plan again")


def apply(inputs: Inputs, client: OPAClient, saved: Plan | None = None, *,
          products: Sequence[str] | None = None, targets: Sequence[str] | None = None,
          allow_mass_revoke: bool = False, confirm: Callable[[Plan], bool] | None = None,
          reporter: Reporter | None = None, timings: Timings | None = None) -> ApplyResult:
    """Apply a saved plan (refused unless it equals the plan computed now, and verified when
    signing is on) or a fresh one. Targets are applied in turn; a failed target is reported
    and the others still run; any failure raises at the end. Only the freshly computed
    changes are ever executed, and every connector refuses a change outside managed scope."""
    reporter = reporter or Reporter()
    if saved is not None:
        check_saved(saved, inputs)
        products = saved.products
        targets = [t.target for t in saved.targets]
    connectors = connectors_for(inputs.mesh, targets)
    try:
        fresh, _ = make_plan(inputs, client, products=products, targets=targets,
                             allow_mass_revoke=allow_mass_revoke, connectors=connectors,
                             reporter=reporter, timings=timings)
        if saved is not None:
            check_same(saved, fresh)
        # a saved plan names what runs (its id is in the audit log); what runs is always the
        # changes computed now, which check_same found equal to it
        plan = saved if saved is not None else fresh
        result = ApplyResult(plan)
        if not plan.has_changes or (confirm is not None and not confirm(plan)):
            return result
        log = inputs.mesh.resolve(inputs.mesh.config.audit.path)
        with open_state(inputs.mesh) as state:
            _execute(plan, fresh, connectors, inputs.mesh, state, log, reporter, result)
        if result.errors:
            more = f" (and {len(result.errors) - 1} more)" if len(result.errors) > 1 else ""
            raise PlanError(f"apply failed: {result.errors[0]}{more}")
        return result
    finally:
        for connector in connectors.values():
            connector.close()


def _execute(plan: Plan, fresh: Plan, connectors: dict[str, Connector], mesh: Mesh,
             state: RunState, log: Path, reporter: Reporter, result: ApplyResult) -> None:
    """Each target in turn: an audit record that it starts (no record, no statement), the
    changes, an audit record of the result."""
    def record(entry: dict) -> None:
        entry = audit.stamp(entry)
        state.audit(entry)
        audit.append(log, entry)

    for t in fresh.targets:
        if not t.changes:
            continue
        reporter.phase(f"apply {t.target}", len(t.changes))
        base = {"plan_id": plan.plan_id, "target": t.target,
                "policy_commit": plan.policy_commit,
                "inputs_fingerprint": plan.inputs_fingerprint,
                "decision_ids": list(plan.decision_ids)}
        record({**base, "result": "started", "changes": len(t.changes)})
        try:
            report = connectors[t.target].execute(t.changes, mesh,
                                                  progress=reporter.advance)
        except ConnectorError as exc:
            result.errors.append(str(exc))
            result.executed[t.target] = len(exc.executed)
            record({**base, "result": "failed", "error": str(exc),
                    "failed_statement": exc.statement, "statements": exc.executed})
            continue
        result.executed[t.target] = len(report.executed)
        record({**base, "result": "ok", "statements": report.executed})


__all__ = ["Inputs", "Reporter", "Timings", "load_inputs", "opa_session", "check_rego",
           "make_plan", "sign", "apply", "ApplyResult", "GovernError"]
