"""A small, typed, fail-closed client for OPA's REST API (httpx), and the local OPA runtime.

Why not opa-python-client: see docs/decisions/0001-opa-client.md. In short, an undefined
decision here is an error (:class:`PolicyError`), never an empty result; timeouts, bearer
token and CA bundle are the caller's; policies are uploaded exactly as given.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import httpx

from .errors import GovernError, OPAUnavailable, PolicyError, Problem

#: the decision log of the OPA govern starts keeps ids, paths, times and metrics, not the
#: inputs and results (all the grants of the mesh, every run); they follow from the policy
#: commit and the data, which the audit log records
DECISION_LOG_MASK = """package system.log

mask contains "/input"

mask contains "/result"
"""

#: the OPA version govern is built and tested with (Makefile builds exactly this one)
OPA_VERSION = "v1.22.2"

#: the environment of every OPA govern starts (server, check, test): none, so that no policy
#: can read the run's secrets (a DSN, a token) through ``opa.runtime().env``
OPA_ENV: dict[str, str] = {}


@dataclass(frozen=True)
class Decision:
    path: str
    result: Any
    decision_id: str | None


class OPAClient:
    """Talks to one OPA server. Thread-safe; reuse it for the whole run."""

    def __init__(self, url: str, *, token: str | None = None, ca_file: str | None = None,
                 timeout: float = 30.0, concurrency: int = 8):
        if ca_file and not Path(ca_file).is_file():
            raise OPAUnavailable(f"opa.ca_file {ca_file}: no such file")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify: Any = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self.url = url.rstrip("/")
        self.concurrency = concurrency
        self._http = httpx.Client(base_url=self.url, headers=headers, verify=verify,
                                  timeout=httpx.Timeout(timeout),
                                  limits=httpx.Limits(max_connections=concurrency))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "OPAClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise OPAUnavailable(f"OPA at {self.url} timed out on {path}") from exc
        except httpx.HTTPError as exc:
            raise OPAUnavailable(f"OPA at {self.url} unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise PolicyError(f"OPA {method} {path}: {_opa_message(response)}")
        return response

    def health(self) -> None:
        self._request("GET", "/health")

    # -- uploads ---------------------------------------------------------------------------
    def put_policy(self, policy_id: str, text: str) -> None:
        self._request("PUT", f"/v1/policies/{quote(policy_id, safe='/')}", content=text.encode(),
                      headers={"Content-Type": "text/plain"})

    def put_data(self, path: str, document: Any) -> None:
        self._request("PUT", f"/v1/data/{path.strip('/')}",
                      content=json.dumps(document).encode(),
                      headers={"Content-Type": "application/json"})

    # -- decisions -------------------------------------------------------------------------
    def decide(self, path: str, input: Any = None) -> Decision:
        """Evaluate ``data.<path>``; raise PolicyError when it is undefined or fails."""
        body = {} if input is None else {"input": input}
        response = self._request("POST", f"/v1/data/{path.strip('/')}",
                                 params={"strict-builtin-errors": "true"},
                                 content=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
        payload = response.json()
        if "result" not in payload:
            dotted = path.strip("/").replace("/", ".")
            raise PolicyError(f"decision data.{dotted} is undefined (missing package or rule?)")
        return Decision(path, payload["result"], payload.get("decision_id"))

    def decide_many(self, paths: Sequence[str]) -> list[Decision]:
        """One decision per path, issued concurrently; the first failure is raised."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self.decide, paths))

    def query(self, query: str, input: Any = None) -> list[dict[str, Any]]:
        """An ad-hoc query (``POST /v1/query``); returns the list of bindings."""
        body: dict[str, Any] = {"query": query}
        if input is not None:
            body["input"] = input
        response = self._request("POST", "/v1/query", content=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
        return response.json().get("result", [])


def _opa_message(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    message = payload.get("message", f"HTTP {response.status_code}")
    errors = payload.get("errors") or []
    if errors:
        err = errors[0]
        loc = err.get("location") or {}
        where = f"{loc.get('file', '')}:{loc.get('row', '')}" if loc else ""
        message = f"{where} {err.get('message', message)}".strip()
    return f"{payload.get('code', 'error')}: {message}"


# ---------------------------------------------------------------- local runtime

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


class OPAServer:
    """``opa run --server`` on a free loopback port, for one run; stopped on exit."""

    def __init__(self, binary: str, log_file: Path | None = None, start_timeout: float = 60.0,
                 policies: Sequence[Path] = (), cwd: Path | None = None):
        """``policies`` are compiled once, at start (``PUT /v1/policies`` recompiles every
        module on each upload, which grows with the square of the mesh)."""
        self.binary = binary
        self.log_file = log_file
        self.start_timeout = start_timeout
        self.policies = list(policies)
        self.cwd = cwd
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "OPAServer":
        self.port = free_port()
        # stdout and stderr (where OPA writes its decision log) go to a file: a pipe nobody
        # reads would fill up and stop OPA mid-run. The file holds the last run only.
        log = open(self.log_file, "w+b") if self.log_file else tempfile.TemporaryFile()
        offset = 0
        files = [str(_relative(p, self.cwd)) for p in self.policies]
        if self.log_file:
            mask = self.log_file.with_name("decision-log-mask.rego")
            mask.write_text(DECISION_LOG_MASK)
            files.append(str(mask))
        try:
            self._proc = subprocess.Popen(
                [self.binary, "run", "--server", "--skip-version-check",
                 "--addr", f"127.0.0.1:{self.port}", "--log-level", "error",
                 "--set", "decision_logs.console=true", *files],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=OPA_ENV,
                cwd=self.cwd, preexec_fn=_die_with_parent)
        except OSError as exc:
            log.close()
            raise OPAUnavailable(f"cannot start {self.binary}: {exc.strerror or exc}") from exc
        try:
            self._wait_healthy(log, offset)
        finally:
            log.close()
        return self

    def _wait_healthy(self, log: Any, offset: int) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log.seek(offset)
                raise _start_error(log.read().decode(errors="replace"), self._proc.returncode)
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise OPAUnavailable(f"opa did not become healthy within {self.start_timeout:.0f}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

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
        try:
            file = str(Path(file).resolve().relative_to(root))
        except ValueError:
            pass
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
