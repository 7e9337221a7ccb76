"""A bound on request bodies, enforced while they are read (pure ASGI middleware).

A request whose ``Content-Length`` says more than :data:`MAX_BODY` bytes is answered 413 at
once, without reading any of its body (and the connection is closed). A body without a
length (chunked) is counted as it arrives: the first chunk that goes over the bound ends the
read with :class:`BodyTooLarge`, an HTTP 413 the app's error handler answers in one line; the
rest is never read. A ``Content-Length`` that is not a number is 400.
"""

from __future__ import annotations

import json

from fastapi.exceptions import HTTPException  # what FastAPI lets through a body read
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 64 * 1024  # bytes: a request's JSON or form is a few KiB at most
TOO_LARGE = f"request body larger than {MAX_BODY // 1024} KiB"


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE, headers={"Connection": "close"})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
        if lengths:
            text = lengths[0].decode("latin-1").strip()
            if len(lengths) > 1 or not text.isdigit() or not text.isascii():
                await _answer(scope, send, 400, "invalid Content-Length")
                return
            if int(text) > self.max_body:
                await _answer(scope, send, 413, TOO_LARGE)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counted, send)


async def _answer(scope: Scope, send: Send, status: int, message: str) -> None:
    """One line: JSON under /api, plain text elsewhere; the connection is closed."""
    path = scope.get("path", "")
    if path == "/api" or path.startswith("/api/"):
        body, kind = json.dumps({"detail": message}).encode(), b"application/json"
    else:
        body, kind = message.encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
