"""The local opa binary: the server govern starts for one run, ``opa check`` and ``opa test``.

The server is reachable by govern only: it listens on a Unix socket in a private directory
(mode 0700; no TCP listener at all), and OPA's token authentication with an authorization
policy (``system.authz``) refuses every request, ``/health`` included, that does not carry
the random token of this run. Every OPA started here gets an empty environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import httpcore
import httpx

from .errors import GovernError, OPAUnavailable, PolicyError, Problem
from .mesh import relative

if TYPE_CHECKING:
    from .opa import OPAClient

#: the decision log of the OPA govern starts keeps ids, paths, times and metrics, not the
#: inputs and results (all the grants of the mesh, every run); they follow from the policy
#: commit and the data, which the audit log records
DECISION_LOG_MASK = """package system.log

mask contains "/input"

mask contains "/result"
"""

#: the authorization policy of the OPA govern starts: only the holder of the run's token
#: (compared by its sha256, so the policy text does not hold the token itself)
AUTHZ_POLICY = """package system.authz

default allow := false

allow if crypto.sha256(input.identity) == "%s"
"""

#: the OPA version govern is built and tested with (Makefile builds exactly this one)
OPA_VERSION = "v1.22.2"

#: the environment of every OPA govern starts (server, check, test): none, so that no policy
#: can read the run's secrets (a DSN, a token) through ``opa.runtime().env``
OPA_ENV: dict[str, str] = {}

#: a Unix socket path is at most 108 bytes (sun_path) on Linux
_MAX_SOCKET_PATH = 100

#: the directory of a server gone for this long (and nobody listening) is removed
_STALE_AFTER = 600.0


class _UnixBackend(httpcore.SyncBackend):
    """httpcore's own backend, except that a connect to a Unix socket nobody listens on
    fails without leaving a socket behind (httpcore 1.0 leaves it to the garbage collector, a
    ResourceWarning): a probe connect of our own first, closed whatever happens."""

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> Any:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(timeout)
            probe.connect(path)
        except socket.timeout as exc:
            raise httpcore.ConnectTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.ConnectError(exc) from exc
        finally:
            probe.close()
        return super().connect_unix_socket(path, timeout, socket_options)


def unix_transport(path: str, limits: httpx.Limits | None = None) -> httpx.HTTPTransport:
    """An httpx transport to the Unix socket at ``path`` (httpx's own, on the pool it would
    make, with the backend above; httpx has no public way to pass one, hence ``_pool``, and
    pyproject.toml bounds httpx and httpcore to the versions that have it)."""
    limits = limits or httpx.Limits()
    transport = httpx.HTTPTransport(uds=path, limits=limits)
    transport._pool = httpcore.ConnectionPool(  # noqa: SLF001
        uds=path, max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry, network_backend=_UnixBackend())
    return transport


def find_opa(configured: str | None = None) -> str:
    """The opa binary: govern.yaml's opa.binary, $GOVERN_OPA, the project tool folder, PATH."""
    candidates = [configured, os.environ.get("GOVERN_OPA"),
                  str(Path(__file__).resolve().parent.parent / ".tools" / "bin" / "opa"),
                  shutil.which("opa")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise OPAUnavailable("opa binary not found: run `make tools`, or set opa.binary in "
                         "govern.yaml or $GOVERN_OPA")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, ask for SIGTERM when govern dies (even by
    SIGKILL), so a killed run never leaves an OPA server behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _private_folder() -> Path:
    """A new directory only this user can enter (mkdtemp: mode 0700), short enough to hold
    a Unix socket."""
    parent = tempfile.gettempdir()
    if len(parent) + len("/govern-opa-XXXXXXXX/opa.sock") > _MAX_SOCKET_PATH:
        parent = "/tmp"
    sweep_stale(Path(parent))
    folder = Path(tempfile.mkdtemp(prefix="govern-opa-", dir=parent))
    os.chmod(folder, 0o700)
    return folder


def sweep_stale(parent: Path, older_than: float = _STALE_AFTER) -> None:
    """Remove the directories of this user's OPA servers that are gone (a run killed with
    SIGKILL takes its OPA along, but its directory stays): older than ``older_than``
    seconds, with no socket or one nobody listens on."""
    now = time.time()
    for folder in parent.glob("govern-opa-*"):
        try:
            info = folder.lstat()
            if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
                    or now - info.st_mtime < older_than or _listening(folder / "opa.sock")):
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _listening(path: Path) -> bool:
    if not os.path.lexists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except ConnectionRefusedError:
            return False
        except OSError:
            return True  # cannot tell: leave it
    return True


class OPAServer:
    """``opa run --server`` for one run, on a Unix socket in a private directory, behind a
    random token; stopped (and its directory removed) on exit."""

    def __init__(self, binary: str, log_file: Path | None = None, start_timeout: float = 60.0,
                 policies: Sequence[Path] = (), cwd: Path | None = None):
        """``policies`` are compiled once, at start (``PUT /v1/policies`` recompiles every
        module on each upload, which grows with the square of the mesh)."""
        self.binary = binary
        self.log_file = log_file
        self.start_timeout = start_timeout
        self.policies = list(policies)
        self.cwd = cwd
        self.token = ""
        self.folder: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False

    @property
    def socket(self) -> Path:
        if self.folder is None:
            raise OPAUnavailable("the OPA server is not started")
        return self.folder / "opa.sock"

    @property
    def url(self) -> str:
        """``unix:///…/opa.sock``, for :class:`OPAClient` (with :attr:`token`)."""
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def client(self, **options: Any) -> "OPAClient":
        """A client of this server, with its token."""
        from .opa import OPAClient

        return OPAClient(self.url, token=self.token, **options)

    def start(self) -> "OPAServer":
        self.token = secrets.token_urlsafe(32)
        self.folder = _private_folder()
        authz = self.folder / "authz.rego"
        authz.write_text(AUTHZ_POLICY % hashlib.sha256(self.token.encode()).hexdigest())
        mask = self.folder / "decision-log-mask.rego"
        mask.write_text(DECISION_LOG_MASK)
        # stdout and stderr (where OPA writes its decision log) go to a file: a pipe nobody
        # reads would fill up and stop OPA mid-run. The file holds the last run only.
        log = open(self.log_file, "w+b") if self.log_file else tempfile.TemporaryFile()
        files = [str(_relative(p, self.cwd)) for p in self.policies] + [str(authz), str(mask)]
        try:
            self._proc = subprocess.Popen(
                [self.binary, "run", "--server", "--skip-version-check",
                 "--addr", self.url, "--unix-socket-perm", "600",
                 "--authentication=token", "--authorization=basic", "--log-level", "error",
                 "--set", "decision_logs.console=true", *files],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=OPA_ENV,
                cwd=self.cwd, preexec_fn=_die_with_parent)
        except OSError as exc:
            log.close()
            self._remove_folder()
            raise OPAUnavailable(f"cannot start {self.binary}: {exc.strerror or exc}") from exc
        try:
            self._wait_healthy(log)
        finally:
            log.close()
        return self

    def _wait_healthy(self, log: Any) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(transport=unix_transport(str(self.socket)), base_url="http://opa",
                          timeout=1.0, headers=headers) as http:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    log.seek(0)
                    error = _start_error(log.read().decode(errors="replace"),
                                         self._proc.returncode)
                    self.stop()
                    raise error
                try:
                    if http.get("/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise OPAUnavailable(f"opa did not become healthy within {self.start_timeout:.0f}s")

    def watch(self, on_exit: Callable[[int], None]) -> None:
        """Call ``on_exit(status)`` from a thread of its own if OPA exits before
        :meth:`stop` (a crash, a kill). The thread reaps the process: no zombie is left."""
        proc = self._proc
        if proc is None:
            raise OPAUnavailable("the OPA server is not started")

        def wait() -> None:
            status = proc.wait()
            if not self._stopping:
                on_exit(status)

        threading.Thread(target=wait, name="opa-watch", daemon=True).start()

    def stop(self) -> None:
        self._stopping = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        self._remove_folder()

    def _remove_folder(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "OPAServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _relative(path: Path, cwd: Path | None) -> Path:
    if cwd is None:
        return path
    try:
        return path.resolve().relative_to(cwd.resolve())
    except ValueError:
        return path


_REGO_ERROR = re.compile(r"[^\s:]+\.rego:\d+: .*")


def _start_error(stderr: str, status: int | None) -> GovernError:
    """What OPA said when it refused to start: a policy error is a PolicyError naming the
    file and line; anything else means OPA is unavailable."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    found = next((m for m in map(_REGO_ERROR.search, lines) if m), None)
    if found:
        return PolicyError(f"OPA refused the policies: {found.group(0)}")
    last = lines[-1] if lines else f"status {status}"
    return OPAUnavailable(f"opa exited at start: {last}")


def check(binary: str, paths: Iterable[Path], root: Path,
          capabilities: Path | None = None) -> list[Problem]:
    """``opa check --strict`` over Rego files (under ``capabilities``, a capabilities file,
    when given); each compile error becomes a Problem."""
    files = [str(p) for p in paths]
    caps = ["--capabilities", str(capabilities)] if capabilities else []
    proc = subprocess.run([binary, "check", "--strict", "--format", "json", *caps, *files],
                          capture_output=True, text=True, env=OPA_ENV, check=False)
    if proc.returncode == 0:
        return []
    try:
        errors = json.loads(proc.stdout or proc.stderr).get("errors", [])
    except ValueError:
        return [Problem("opa check", "", (proc.stderr or proc.stdout).strip().splitlines()[0])]
    problems = []
    for err in errors:
        loc = err.get("location") or {}
        file = loc.get("file", "")
        if file:
            file = relative(Path(file), root)
        problems.append(Problem(file, f"line {loc.get('row', '?')}",
                                f"{err.get('code', 'rego_error')}: {err.get('message', '')}"))
    return problems or [Problem("opa check", "", "failed without a message")]


def run_tests(binary: str, paths: Iterable[Path], verbose: bool = False,
              coverage: bool = False, capabilities: Path | None = None,
              ) -> subprocess.CompletedProcess[str]:
    """``opa test`` over the given Rego files (only those: YAML beside them is not data),
    under ``capabilities`` (a capabilities file) when given."""
    args = [binary, "test", *(str(p) for p in paths)]
    if capabilities:
        args += ["--capabilities", str(capabilities)]
    if verbose:
        args.append("-v")
    if coverage:
        args += ["--coverage", "--format", "json"]
    return subprocess.run(args, capture_output=True, text=True, env=OPA_ENV, check=False)
