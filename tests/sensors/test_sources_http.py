"""A model whose source is a JSON API served on loopback by a real threaded HTTP server: rows become batches
exactly once with the bearer token sent (and never logged), an API that goes down and comes back opens and
resolves one ``source_failed`` incident, answers that are not JSON, too large or not rows are failures that
lose nothing, a cursor is followed, and rows that fail validation are quarantined with their reason."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog

from daemon.compose import Heald
from daemon.config import ModelSettings, SourceSettings
from knowledge.clock import ManualClock
from knowledge.values import SymptomKind
from sensors.sources.base import Stream
from tests.sensing import MODEL, TARGET, quiet_settings, shop_rows
from tests.sources import archived_ids, onboard_shop, start, tick

TOKEN = "s3cr3t-token-for-tests"


@dataclass
class Api:
    """What the fake service holds and how it answers: rows with an increasing ``seq``, and a mode."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"  # ok | garbage | huge | object | cursor
    asked: list[dict[str, str]] = field(default_factory=list)

    def add(self, count: int, rng: np.random.Generator, **override: Any) -> list[int]:
        first = len(self.rows) + 1
        frame = shop_rows(count, rng)
        for n, r in enumerate(frame.to_dict("records")):
            self.rows.append({"id": first + n, "seq": first + n, **{str(k): v for k, v in r.items()}, **override})
        return list(range(first, first + count))

    def answer(self, query: dict[str, str]) -> bytes:
        self.asked.append(query)
        if self.mode == "garbage":
            return b"<html>maintenance</html>"
        if self.mode == "huge":
            return json.dumps([{"pad": "x" * 100}] * 100).encode()
        if self.mode == "object":
            return json.dumps({"error": "nope"}).encode()
        limit = int(query["limit"])
        if self.mode == "cursor":
            begin = int(query.get("since", "0"))
            page = self.rows[begin : begin + limit]
            return json.dumps({"rows": page, "next": str(begin + len(page))}).encode()
        since = int(query.get("since", "0"))
        return json.dumps([r for r in self.rows if r["seq"] >= since][:limit]).encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        api: Api = self.server.api  # type: ignore[attr-defined]
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            return
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        body = api.answer(query)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server:
    """A threaded HTTP server on loopback that can be stopped and started again on the same port."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.port = 0
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.api = self.api  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.httpd is not None
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/rows"


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server(Api())
    running.start()
    yield running
    running.stop()


def http_heald(state: Path, clock: ManualClock, url: str, **source: Any) -> Heald:
    config = {"kind": "http", "url": url, "watermark": "seq", "key": "id", "token_env": "SHOP_API_TOKEN", **source}
    model = ModelSettings(
        name=MODEL, target=TARGET, task="classification", min_accuracy=0.8, source=SourceSettings(**config)
    )
    settings = quiet_settings(state, anomaly=False).model_copy(update={"models": [model]})
    heald = start(settings, clock)
    onboard_shop(heald, clock)
    return heald


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)


@pytest.mark.usefixtures("token")
def test_rows_from_an_api_become_batches_exactly_once_and_the_token_is_never_logged(
    tmp_path: Path, clock: ManualClock, server: Server
) -> None:
    """Pages of at most 100 rows, rows added between ticks, a restart: every id is archived once, each page is
    asked with the bearer token and the watermark, and no log line carries the token."""
    rng = np.random.default_rng(1)
    ids = server.api.add(150, rng)
    with structlog.testing.capture_logs() as logs:
        heald = http_heald(tmp_path / "state", clock, server.url, max_rows_per_tick=100)
        tick(heald, clock)
        ids += server.api.add(30, rng)
        heald.close()
        heald = start(heald.settings, clock)
        try:
            tick(heald, clock)
            tick(heald, clock)
            batches = heald.store.batches(MODEL)
        finally:
            heald.close()
    assert [b.rows for b in batches] == [100, 80]
    assert all(b.source == "http" for b in batches)
    assert sorted(archived_ids(batches)) == ids
    assert server.api.asked[0] == {"limit": "100"} and server.api.asked[1]["since"] == "100"
    assert TOKEN not in json.dumps(logs, default=str)


@pytest.mark.usefixtures("token")
def test_an_api_that_goes_down_and_comes_back_opens_and_resolves_one_incident(
    tmp_path: Path, clock: ManualClock, server: Server
) -> None:
    """With the service stopped every pull fails (the tick goes on, the stream backs off, doubling), one
    ``source_failed`` incident opens; once it answers again the rows come in once and the incident resolves."""
    heald = http_heald(tmp_path / "state", clock, server.url, backoff_seconds=3600, max_backoff_seconds=4 * 3600)
    try:
        ids = server.api.add(50, np.random.default_rng(2))
        server.stop()
        for _ in range(4):
            tick(heald, clock)
        down = heald.store.source_state(MODEL, Stream.ROWS)
        opened = heald.store.active_incidents(MODEL)
        server.start()
        for _ in range(8):
            tick(heald, clock)
        incidents = [i for i in heald.store.list_incidents() if i.kind is SymptomKind.SOURCE_FAILED]
        batches = heald.store.batches(MODEL)
    finally:
        heald.close()
    # Failures at ticks 1, 2 (after 1 h), 4 (after 2 h): the fourth tick was waiting.
    assert down is not None and down.failures == 3 and "cannot be read" in down.last_error
    assert [i.kind for i in opened] == [SymptomKind.SOURCE_FAILED]
    assert len(incidents) == 1 and incidents[0].status.value == "resolved"
    assert sorted(archived_ids(batches)) == ids


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize(
    ("mode", "message"),
    [("garbage", "is not JSON"), ("huge", "larger than max_bytes"), ("object", "not a list of row objects")],
)
def test_bad_answers_are_failures_that_lose_nothing(
    tmp_path: Path, clock: ManualClock, server: Server, mode: str, message: str
) -> None:
    """An answer that is not JSON, larger than ``max_bytes`` or not rows is a ``source_failed`` reading naming
    the problem; nothing is recorded, and once the service answers well every row comes in once."""
    heald = http_heald(tmp_path / "state", clock, server.url, max_bytes=2048, max_rows_per_tick=10)
    try:
        ids = server.api.add(10, np.random.default_rng(3))
        server.api.mode = mode
        tick(heald, clock)
        [reading] = heald.store.observations(MODEL, metric="source_failed")
        nothing = heald.store.batches(MODEL, status=None)
        server.api.mode = "ok"
        tick(heald, clock)
        batches = heald.store.batches(MODEL)
    finally:
        heald.close()
    assert reading.value == 1.0 and message in str(reading.evidence["error"])
    assert nothing == []
    assert sorted(archived_ids(batches)) == ids


@pytest.mark.usefixtures("token")
def test_a_cursor_answer_is_followed(tmp_path: Path, clock: ManualClock, server: Server) -> None:
    """An answer ``{"rows": [...], "next": <cursor>}``: the next pull sends that cursor, and rows come once."""
    server.api.mode = "cursor"
    heald = http_heald(tmp_path / "state", clock, server.url, watermark="", max_rows_per_tick=40)
    try:
        ids = server.api.add(100, np.random.default_rng(4))
        for _ in range(4):
            tick(heald, clock)
        batches = heald.store.batches(MODEL)
    finally:
        heald.close()
    assert [b.rows for b in batches] == [40, 40, 20]
    assert [q.get("since") for q in server.api.asked] == [None, "40", "80", "100"]
    assert sorted(archived_ids(batches)) == ids


@pytest.mark.usefixtures("token")
def test_rows_that_fail_validation_are_quarantined_with_the_reason_and_not_pulled_again(
    tmp_path: Path, clock: ManualClock, server: Server
) -> None:
    """A page whose prices are words is kept whole in the quarantine with a ``.reason.json``; the watermark
    moves past it, so the next page (good rows) is accepted and the bad rows are not asked for again."""
    heald = http_heald(tmp_path / "state", clock, server.url)
    try:
        rng = np.random.default_rng(5)
        server.api.add(20, rng, price="lots")
        tick(heald, clock)
        good = server.api.add(20, rng)
        tick(heald, clock)
        batches = heald.store.batches(MODEL, status=None)
    finally:
        heald.close()
    bad, accepted = batches
    assert bad.status == "quarantined" and "price" in bad.reason
    reason = json.loads(Path(bad.path + ".reason.json").read_text())
    assert reason["reason"] == bad.reason and reason["file"] == "http-rows-00000001.csv"
    assert accepted.status == "accepted" and archived_ids([accepted]) == good
