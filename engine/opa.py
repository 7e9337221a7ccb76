"""A small, typed, fail-closed client for OPA's REST API (httpx).

Why not opa-python-client: see docs/decisions/0001-opa-client.md. In short, an undefined
decision here is an error (:class:`PolicyError`), never an empty result; timeouts, bearer
token and CA bundle are the caller's; policies are uploaded exactly as given. The OPA govern
starts itself (a Unix socket, a token per run) and the opa binary's other commands are in
:mod:`govern.engine.opa_local`, re-exported here.
"""

from __future__ import annotations

import json
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

import httpx

from .errors import OPAUnavailable, PolicyError
from .opa_local import (DECISION_LOG_MASK, OPA_ENV, OPA_VERSION, OPAServer, check,  # noqa: F401
                        find_opa, free_port, run_tests, unix_transport)

#: ``opa.url`` of a server on a Unix socket (the one govern starts): ``unix:///path/opa.sock``
UNIX = "unix://"


@dataclass(frozen=True)
class Decision:
    path: str
    result: Any
    decision_id: str | None


class OPAClient:
    """Talks to one OPA server. Thread-safe; reuse it for the whole run."""

    def __init__(self, url: str, *, token: str | None = None, ca_file: str | None = None,
                 timeout: float = 30.0, concurrency: int = 8):
        """``url``: ``http(s)://host:port``, or ``unix:///path`` for a Unix socket."""
        if ca_file and not Path(ca_file).is_file():
            raise OPAUnavailable(f"opa.ca_file {ca_file}: no such file")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify: Any = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self.url = url.rstrip("/")
        self.concurrency = concurrency
        limits = httpx.Limits(max_connections=concurrency)
        options: dict[str, Any] = {"base_url": self.url, "verify": verify, "limits": limits}
        if self.url.startswith(UNIX):
            options = {"base_url": "http://opa",
                       "transport": unix_transport(self.url.removeprefix(UNIX), limits)}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout), **options)

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

    def create_data(self, path: str, document: Any) -> bool:
        """Write ``data.<path>`` only if it does not exist (``If-None-Match: *``); False
        when it does (OPA answers 304 and leaves it as it was)."""
        response = self._request("PUT", f"/v1/data/{path.strip('/')}",
                                 content=json.dumps(document).encode(),
                                 headers={"Content-Type": "application/json",
                                          "If-None-Match": "*"})
        return response.status_code != 304

    def get_data(self, path: str) -> Any:
        """``data.<path>`` as stored, or None when it is undefined."""
        return self._request("GET", f"/v1/data/{path.strip('/')}").json().get("result")

    def delete_data(self, path: str) -> None:
        self._request("DELETE", f"/v1/data/{path.strip('/')}")

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
