"""Optional notifications: a webhook POSTed one JSON event per state change.

A notification is a courtesy, never part of the flow: it is sent after the change is
committed, a failure is logged and forgotten, and no webhook configured means none sent.

    {"event": "approve", "request": {...}, "who": "dave", "reason": "...", "at": "..."}
"""

from __future__ import annotations

import logging
import os
from typing import Protocol

import httpx

from govern.engine.errors import first_line
from govern.engine.requests import Request, utcnow
from govern.engine.spec import WebhookConfig

log = logging.getLogger("govern.requests")


class Notifier(Protocol):
    def notify(self, action: str, request: Request, who: str, reason: str | None) -> None: ...


class NullNotifier:
    def notify(self, action: str, request: Request, who: str, reason: str | None) -> None:
        return None


class WebhookNotifier:
    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url
        self.timeout = timeout

    def notify(self, action: str, request: Request, who: str, reason: str | None) -> None:
        payload = {"event": action, "request": request.to_dict(), "who": who,
                   "reason": reason, "at": utcnow().isoformat()}
        try:
            response = httpx.post(self.url, json=payload, timeout=self.timeout)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("webhook for %s %s failed: %s", action, request.id,
                        first_line(exc))


def make_notifier(config: WebhookConfig | None) -> Notifier:
    if config is None:
        return NullNotifier()
    url = config.url
    if config.url_env:
        url = os.environ.get(config.url_env) or None
        if url is None:
            log.warning("requests.webhook.url_env: $%s is not set; no notifications",
                        config.url_env)
    return WebhookNotifier(url, config.timeout_seconds) if url else NullNotifier()
