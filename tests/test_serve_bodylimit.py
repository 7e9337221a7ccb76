"""The bound on request bodies, on a real `govern serve` (uvicorn, in its own process): a
body over 64 KiB is answered 413 in one line before the rest of it is sent, whether its
Content-Length says so or it comes chunked; requests of the usual size are served as before."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from govern.service.bodylimit import MAX_BODY

from .test_requests_store import FUTURE, copy_mesh
from .test_serve_api import basic
from .test_serve_crash import Server

AUTH = basic("bob")["Authorization"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bodylimit")
    running = Server(copy_mesh(folder), folder / "serve.log").start()
    try:
        yield running
    finally:
        running.stop()


def exchange(server: Server, head: str, body_parts: list[bytes]) -> bytes:
    """Send the head and only ``body_parts`` (never the whole body the head announces);
    what the server answers, read until it closes (a server waiting for the rest of the
    body would time out here)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        for part in body_parts:
            sock.sendall(part)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    return answer


def head(path: str, *lines: str) -> str:
    return "\r\n".join([f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: {AUTH}",
                        "Content-Type: application/json", *lines, "", ""])


def status_and_body(answer: bytes) -> tuple[int, bytes]:
    top, _, body = answer.partition(b"\r\n\r\n")
    return int(top.split(b" ", 2)[1]), body


def test_a_content_length_over_the_bound_is_413_without_reading_the_body(server):
    answer = exchange(server, head("/api/requests", "Content-Length: 10485760"), [b"{" * 1024])
    status, body = status_and_body(answer)
    assert status == 413, answer[:300]
    assert json.loads(body) == {"detail": "request body larger than 64 KiB"}
    assert b"content-security-policy" in answer.lower()


def test_a_chunked_body_over_the_bound_is_413_after_the_bound(server):
    chunk = b"x" * 16384
    parts = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * (MAX_BODY // len(chunk) + 2)
    answer = exchange(server, head("/api/requests", "Transfer-Encoding: chunked"), parts)
    status, body = status_and_body(answer)
    assert status == 413, answer[:300]
    assert b"request body larger than 64 KiB" in body and b"\n" not in body.strip()


def test_a_form_over_the_bound_is_413_too(server):
    answer = exchange(server, head("/requests/new", "Content-Length: 70000"), [b"a=1"])
    status, body = status_and_body(answer)
    assert status == 413 and body == b"request body larger than 64 KiB"


def test_usual_requests_are_served_as_before(server):
    created = httpx.post(f"{server.url}/api/requests", headers=basic("bob"), timeout=30, json={
        "product": "clinical/trial_results", "purpose": "Safety review " + "é" * 1900,
        "until": FUTURE.isoformat(), "accept_dsa": True})
    assert created.status_code == 201, created.text
    decided = httpx.post(f"{server.url}/api/requests/{created.json()['id']}/deny", timeout=30,
                         headers=basic("dave"), json={"reason": "r" * 2000})
    assert decided.status_code == 200, decided.text
    too_long = httpx.post(f"{server.url}/api/requests", headers=basic("bob"), timeout=30,
                          json={"product": "clinical/trial_results", "purpose": "p" * 60000,
                                "until": FUTURE.isoformat(), "accept_dsa": True})
    assert too_long.status_code == 400  # under the bound: the field's own limit says no
    assert "purpose" in too_long.json()["detail"]
