"""Kill the process in the middle of an apply: the next run converges, nothing left over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg

from .test_end_to_end import EXPECTED_READERS, TABLES, USERS


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_kill_during_apply_then_rerun_converges(mesh):
    mesh.edit_yaml("govern.yaml", lambda d: d["targets"]["warehouse"].update(batch_size=3))
    blocked_role = f"{mesh.prefix}hcp_hcp_master_curated_read"
    # another session creates the same role and keeps its transaction open: govern's
    # CREATE ROLE for it waits on that lock, in the middle of the apply
    blocker = psycopg.connect(mesh.dsn)
    blocker.execute(f'CREATE ROLE "{blocked_role}"')
    proc = subprocess.Popen([sys.executable, "-m", "govern.cli", "--mesh", str(mesh.root),
                             "apply", "--auto-approve"], env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def waiting() -> bool:
            with mesh.connect() as conn:
                return bool(conn.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'govern' "
                    "AND wait_event_type = 'Lock'").fetchone())
        if not wait_for(lambda: waiting() or proc.poll() is not None) or proc.poll() is not None:
            _, err = proc.communicate(timeout=10)
            raise AssertionError(f"govern never reached the blocked statement: {err.decode()}")
        with mesh.connect() as conn:  # some batches are already committed
            created = conn.execute("SELECT count(*) FROM pg_roles WHERE starts_with(rolname, %s)",
                                   (mesh.prefix,)).fetchone()[0]
        assert created >= 1
        opa = _opa_children(proc.pid)
        assert len(opa) == 1, "govern runs its own OPA server"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
        blocker.rollback()
        blocker.close()
    # the killed run's OPA server went with it
    assert wait_for(lambda: not _alive(opa[0])), "OPA outlived govern"
    result = mesh.govern("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert mesh.govern("plan", "--detailed-exitcode").exit_code == 0
    for key, table in TABLES.items():
        assert {u for u in USERS if mesh.can_read(u, table)} == EXPECTED_READERS[key]


def _opa_children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines()[1:]]
    return [int(r[0]) for r in rows if len(r) == 3 and r[1] == str(pid) and "run --server" in r[2]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
