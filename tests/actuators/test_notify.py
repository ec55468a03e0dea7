"""Webhook alerts reach a real HTTP receiver on loopback, are retried when it fails, keep the token out of
the log, and never hold up the loop, even when the receiver hangs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from structlog.testing import capture_logs

from actuators.alert import AlertActuator
from actuators.base import ActContext
from actuators.notify import WebhookNotifier, WebhookSettings
from daemon.compose import Heald, act_settings
from knowledge.values import ActionKind, Version
from tests.sensing import MODEL

TOKEN = "s3cret-token-for-the-test"


@dataclass
class Receiver:
    """A webhook on loopback: answers ``fail_first`` requests with 503, then 200; can be made to hang."""

    fail_first: int = 0
    hang: threading.Event | None = None
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            if state.hang is not None:
                state.hang.wait(timeout=30)
            code = 503 if len(state.requests) <= state.fail_first else 200
            self.send_response(code)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest's output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/heald?key={TOKEN}"
    yield state
    if state.hang is not None:
        state.hang.set()
    server.shutdown()
    server.server_close()


def notifier(url: str, attempts: int = 4) -> WebhookNotifier:
    sleeps: list[float] = []
    settings = WebhookSettings(url=url, token=TOKEN, attempts=attempts, first_delay=0.01, timeout=5)
    return WebhookNotifier(settings, sleep=sleeps.append, idle_seconds=0.5)


def test_an_alert_is_posted_as_json_with_the_token(receiver: Receiver) -> None:
    """One POST with the alert as JSON and `Authorization: Bearer <token>`."""
    hook = notifier(receiver.url)
    assert hook.send({"event": "alert_raised", "model": "churn", "incident_id": 3, "reason": "escalated"})
    assert hook.wait(timeout=30)
    ((headers, body),) = receiver.requests
    assert headers["authorization"] == f"Bearer {TOKEN}" and headers["content-type"] == "application/json"
    assert body == {"event": "alert_raised", "model": "churn", "incident_id": 3, "reason": "escalated"}


def test_a_failing_receiver_is_retried_and_the_token_stays_out_of_the_log(receiver: Receiver) -> None:
    """Two 503s, then 200: three attempts, two `alert_delivery_retried`, one `alert_delivered`; no secret logged."""
    receiver.fail_first = 2
    hook = notifier(receiver.url)
    with capture_logs() as logs:
        hook.send({"model": "churn", "incident_id": 1})
        assert hook.wait(timeout=30)
    assert len(receiver.requests) == 3
    events = [e["event"] for e in logs]
    assert events == ["alert_delivery_retried", "alert_delivery_retried", "alert_delivered"]
    assert logs[-1]["attempts"] == 3 and logs[0]["error"] == "HTTP 503"
    assert TOKEN not in repr(logs) and "/hooks/heald" not in repr(logs)


def test_an_unreachable_receiver_gives_up_after_its_attempts(receiver: Receiver) -> None:
    """Nothing listens: every attempt fails, `alert_delivery_failed` says so, without the URL's secret."""
    server_port = receiver.url.split(":")[2].split("/")[0]
    dead = receiver.url.replace(server_port, "1")
    hook = notifier(dead, attempts=3)
    with capture_logs() as logs:
        hook.send({"model": "churn"})
        assert hook.wait(timeout=30)
    assert [e["event"] for e in logs] == ["alert_delivery_retried"] * 2 + ["alert_delivery_failed"]
    assert logs[-1]["receiver"] == "127.0.0.1:1" and TOKEN not in repr(logs)


def test_a_hanging_receiver_never_blocks_the_alert_action(
    receiver: Receiver, watched: Heald, champion: Version
) -> None:
    """The alert action returns (and logs `alert_raised`) while the receiver still holds the request open."""
    receiver.hang = threading.Event()
    hook = notifier(receiver.url)
    ctx = ActContext(
        now=watched.clock.now(),
        model=watched.store.get_model(MODEL),
        registry=watched.registry,
        store=watched.store,
        settings=act_settings(watched.settings, MODEL),
    )
    action = watched.store.plan_action(
        model=MODEL, kind=ActionKind.ALERT, at=ctx.now, actor="heald", reason="retrain failed twice"
    )
    with capture_logs() as logs:
        outcome = AlertActuator(hook).execute(action, ctx)
    assert outcome.ok and "webhook" in outcome.detail
    assert not receiver.hang.is_set()  # the POST has not been answered, yet the action is done
    assert [e["event"] for e in logs] == ["alert_raised"]
    receiver.hang.set()
    assert hook.wait(timeout=30)
    assert receiver.requests[0][1]["reason"] == "retrain failed twice"
