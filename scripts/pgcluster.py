#!/usr/bin/env python3
"""A throwaway PostgreSQL 15 cluster (initdb + pg_ctl) on a free loopback port.

    python scripts/pgcluster.py start DIR    # prints the DSN; data, socket and log in DIR
    python scripts/pgcluster.py stop DIR

Used by the tests, the demo and bench/. Debian's server binaries live in
/usr/lib/postgresql/15/bin and, when run as root, must run as the postgres user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

BIN = Path(os.environ.get("GOVERN_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dsn(folder: Path) -> str:
    port = (folder / "port").read_text().strip()
    return f"host=127.0.0.1 port={port} user=postgres dbname=postgres"


@contextmanager
def statement_log(folder: Path, application: str = "govern", database: str | None = None):
    """Statements the server itself logs for ``application`` (and ``database``) while
    active: ``log_statement = all`` with both in the line prefix. Yields a dict that holds
    ``statements`` (the count) and ``lines`` on exit. Not for concurrent use."""
    import psycopg

    def configure(*settings: str) -> None:
        with psycopg.connect(dsn(folder), autocommit=True) as conn:
            for setting in settings:
                conn.execute(setting)
            conn.execute("SELECT pg_reload_conf()")

    configure("ALTER SYSTEM SET log_statement = 'all'",
              "ALTER SYSTEM SET log_line_prefix = '%a|%d|'")
    for _ in range(50):  # the reload is asynchronous: wait until a new session sees it
        with psycopg.connect(dsn(folder), autocommit=True) as conn:
            if conn.execute("SHOW log_line_prefix").fetchone()[0] == "%a|%d|":
                break
        time.sleep(0.05)
    logfile = folder / "log"
    offset = logfile.stat().st_size
    box: dict = {}
    try:
        yield box
    finally:
        with open(logfile, "rb") as fh:
            fh.seek(offset)
            lines = fh.read().decode("utf-8", "replace").splitlines()
        prefix = f"{application}|{database}|" if database else f"{application}|"
        mine = [line for line in lines if line.startswith(prefix) and "LOG:  " in line
                and ("statement: " in line or "execute " in line)]
        box.update(statements=len(mine), lines=mine)
        configure("ALTER SYSTEM RESET log_statement", "ALTER SYSTEM RESET log_line_prefix")


def start(folder: Path) -> str:
    folder = folder.resolve()
    if (folder / "port").exists() and status(folder):
        return dsn(folder)
    if not (BIN / "initdb").exists():
        raise SystemExit(f"PostgreSQL server not found in {BIN}: run `make tools`")
    folder.mkdir(parents=True, exist_ok=True)
    data, sock = folder / "data", folder / "sock"
    sock.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
    if not data.exists():
        subprocess.run(_as_owner([str(BIN / "initdb"), "-D", str(data), "-U", "postgres",
                                  "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL)
    port = _free_port()
    (folder / "port").write_text(str(port))
    opts = (f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sock} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=50")
    subprocess.run(_as_owner([str(BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
                              "-o", opts, "-w", "-t", "60", "start"]),
                   check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not status(folder):
        time.sleep(0.1)
    return dsn(folder)


def status(folder: Path) -> bool:
    data = folder / "data"
    if not data.exists():
        return False
    out = subprocess.run(_as_owner([str(BIN / "pg_ctl"), "-D", str(data), "status"]),
                         capture_output=True, check=False)
    return out.returncode == 0


def stop(folder: Path) -> None:
    data = folder.resolve() / "data"
    if data.exists() and status(folder.resolve()):
        subprocess.run(_as_owner([str(BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                                  "stop"]), check=False, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop", "dsn"):
        raise SystemExit(__doc__)
    where = Path(sys.argv[2])
    if sys.argv[1] == "start":
        print(start(where))
    elif sys.argv[1] == "dsn":
        print(dsn(where))
    else:
        stop(where)
