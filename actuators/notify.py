"""Alert delivery (Execute, last rung): a generic JSON POST to a webhook, retried, never on the loop's thread.

The alert actuator hands each alert to a ``Notifier``. ``WebhookNotifier`` queues it and returns at once; a
background thread POSTs it as JSON (``Authorization: Bearer <token>`` when a token is set) and retries
with exponential backoff when the receiver fails or cannot be reached, so a slow or dead receiver costs
the loop nothing. The thread starts on the first alert and ends when idle, so a config reload that builds
a new notifier leaves no thread behind. The token and the URL's path and query (where services such as
Slack keep their secret) never reach the log: events name only the receiver's host.

Events: ``alert_delivered``, ``alert_delivery_retried``, ``alert_delivery_failed``, ``alert_dropped``.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog

log = structlog.get_logger("heald.notify")
IDLE_SECONDS = 30.0
QUEUE_LIMIT = 1000


class Notifier(Protocol):
    """Something that tells a person; ``send`` must return at once."""

    def send(self, alert: dict[str, Any]) -> bool:
        """Hand over ``alert``; True if it will be delivered somewhere beyond the log."""
        ...


class LogOnly:
    """No webhook configured: the ``alert_raised`` log line is the only delivery."""

    def send(self, alert: dict[str, Any]) -> bool:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    url: str
    token: str = ""
    attempts: int = 5
    first_delay: float = 1.0
    timeout: float = 10.0


class WebhookNotifier:
    """POSTs alerts as JSON from a background thread, retrying with backoff."""

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.settings = settings
        self.receiver = urlsplit(settings.url).netloc or "?"
        self._sleep = sleep
        self._idle = idle_seconds
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._done = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None

    def send(self, alert: dict[str, Any]) -> bool:
        try:
            self._queue.put_nowait(alert)
        except queue.Full:  # a receiver down for hours must not grow memory without bound
            log.error("alert_dropped", receiver=self.receiver, reason=f"{QUEUE_LIMIT} alerts already waiting")
            return False
        with self._done:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="heald-notify", daemon=True)
                self._thread.start()
        return True

    def wait(self, timeout: float) -> bool:
        """Block until every alert handed over was delivered or given up (for tests and shutdown)."""
        with self._done:
            return self._done.wait_for(lambda: self._pending == 0, timeout=timeout)

    def _run(self) -> None:
        while True:
            try:
                alert = self._queue.get(timeout=self._idle)
            except queue.Empty:
                with self._done:
                    if self._queue.empty():  # idle: end; the next ``send`` starts a new thread
                        self._thread = None
                        return
                continue
            self.deliver(alert)
            with self._done:
                self._pending -= 1
                self._done.notify_all()

    def deliver(self, alert: dict[str, Any]) -> bool:
        """POST one alert, retrying with exponential backoff; True once the receiver answered 2xx."""
        body = json.dumps(alert, default=str).encode()
        for attempt in range(1, self.settings.attempts + 1):
            error = self._post(body)
            if error is None:
                log.info("alert_delivered", receiver=self.receiver, attempts=attempt, **_ids(alert))
                return True
            if attempt < self.settings.attempts:
                log.warning("alert_delivery_retried", receiver=self.receiver, attempt=attempt, error=error)
                self._sleep(self.settings.first_delay * 2 ** (attempt - 1))
        log.error("alert_delivery_failed", receiver=self.receiver, attempts=self.settings.attempts, error=error)
        return False

    def _post(self, body: bytes) -> str | None:
        """None on a 2xx answer, else what went wrong (scrubbed of the token and the URL)."""
        headers = {"content-type": "application/json", "user-agent": "heald"}
        if self.settings.token:
            headers["authorization"] = f"Bearer {self.settings.token}"
        request = urllib.request.Request(self.settings.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as answer:  # the operator's URL
                answer.read()
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return self._scrub(str(getattr(exc, "reason", exc)))
        return None

    def _scrub(self, text: str) -> str:
        for secret in (self.settings.token, self.settings.url):
            if secret:
                text = text.replace(secret, "***")
        return text


def _ids(alert: dict[str, Any]) -> dict[str, Any]:
    return {k: alert[k] for k in ("model", "incident_id", "action_id") if k in alert}
