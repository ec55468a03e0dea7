"""Late labels, durably: served rows live in the knowledge store, so feedback joins after a restart; a second
label replaces the first; and captured API traffic is data heald knows, not a data-quality problem."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from daemon.api import ApiServer, create_app
from daemon.capture import Capture
from daemon.compose import Heald, build
from daemon.config import Settings
from daemon.metrics import Metrics
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import SymptomKind
from pipeline.train import TrainParams
from tests.conftest import table

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Daemon:
    """One life of heald over a state folder: its store, its capture and its API on loopback."""

    def __init__(self, settings: Settings, clock: ManualClock) -> None:
        self.heald = build(settings, clock=clock, pool="inline")
        self.capture = Capture(settings.landing, lambda: self.heald.store)
        app = create_app(lambda: self.heald, self.capture, Metrics(self.heald.store, self.heald.registry))
        self.server = ApiServer(app, "127.0.0.1", 0)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.server.start()}", timeout=30)

    def stop(self) -> None:
        self.client.close()
        self.server.stop()
        self.heald.close()


@pytest.fixture
def life(heald: Heald, clock: ManualClock) -> Iterator[tuple[Settings, ManualClock]]:
    """Model m onboarded in the fixture's heald, which is then closed: each test starts its own daemons."""
    onboard(
        heald.store,
        heald.registry,
        name="m",
        frame=table(600),
        target="y",
        now=clock.now(),
        params=TrainParams(n_estimators=10),
    )
    settings = heald.settings.model_copy(update={"api_token": TOKEN})
    yield settings, clock


def rows(n: int, seed: int) -> list[dict[str, object]]:
    return table(n, seed=seed).drop(columns=["y"]).to_dict(orient="records")  # type: ignore[return-value]


def test_feedback_after_a_restart_joins_the_rows_served_before_it(life: tuple[Settings, ManualClock]) -> None:
    """Ids served by one daemon are accepted by the next one, days later, and become a labelled batch that the
    loop scores: the labels meet the rows they belong to."""
    settings, clock = life
    first = Daemon(settings, clock)
    served = first.client.post("/models/m/predict", json={"rows": rows(120, seed=4)}).json()
    first.stop()
    clock.advance(timedelta(days=3))
    second = Daemon(settings, clock)
    try:
        truth = table(120, seed=4)["y"].tolist()
        labels = dict(zip(served["ids"], truth, strict=True))
        answer = second.client.post("/models/m/feedback", json={"labels": labels}, headers=AUTH)
        assert answer.json() == {"accepted": 120, "unknown": []}
        written = second.capture.flush(clock.now())
        assert sorted(p.name.split("-")[0] for p in written) == ["api", "feedback"]
        feedback = pd.read_csv(next(p for p in written if p.name.startswith("feedback")))
        assert feedback.set_index("request_id")["y"].to_dict() == labels
        second.heald.loop.tick()
        batches = second.heald.store.batches("m")
        assert sorted((b.source, b.rows, b.labelled) for b in batches) == [("api", 120, False), ("feedback", 120, True)]
        (performance,) = second.heald.store.observations("m", metric="performance")
        assert performance.evidence["rows"] == 120 and performance.value > 0.8
    finally:
        second.stop()


def test_a_second_label_replaces_the_first_and_a_repeat_changes_nothing(life: tuple[Settings, ManualClock]) -> None:
    """Relabelled ids are written out again with the new label; the same label twice writes nothing new."""
    settings, clock = life
    daemon = Daemon(settings, clock)
    try:
        ids = daemon.client.post("/models/m/predict", json={"rows": rows(10, seed=5)}).json()["ids"]
        daemon.client.post("/models/m/feedback", json={"labels": dict.fromkeys(ids, 0)}, headers=AUTH)
        daemon.capture.flush(clock.now())
        clock.advance(timedelta(minutes=5))
        again = daemon.client.post("/models/m/feedback", json={"labels": dict.fromkeys(ids[:3], 1)}, headers=AUTH)
        assert again.json() == {"accepted": 3, "unknown": []}
        [relabelled] = daemon.capture.flush(clock.now())
        assert pd.read_csv(relabelled).set_index("request_id")["y"].to_dict() == dict.fromkeys(ids[:3], 1)
        clock.advance(timedelta(minutes=5))
        daemon.client.post("/models/m/feedback", json={"labels": dict.fromkeys(ids[:3], 1)}, headers=AUTH)
        assert daemon.capture.flush(clock.now()) == []
    finally:
        daemon.stop()


def test_served_rows_are_forgotten_after_the_retention_bound(life: tuple[Settings, ManualClock]) -> None:
    """Rows older than the retention bound (once written out) leave the store; their late labels are unknown."""
    settings, clock = life
    daemon = Daemon(settings, clock)
    try:
        ids = daemon.client.post("/models/m/predict", json={"rows": rows(5, seed=6)}).json()["ids"]
        daemon.capture.flush(clock.now())
        assert daemon.heald.store.served_count("m") == 5
        clock.advance(daemon.capture.retention + timedelta(hours=1))
        daemon.capture.flush(clock.now())
        assert daemon.heald.store.served_count("m") == 0
        late = daemon.client.post("/models/m/feedback", json={"labels": {ids[0]: 1}}, headers=AUTH).json()
        assert late == {"accepted": 0, "unknown": [ids[0]]}
    finally:
        daemon.stop()


def test_captured_api_traffic_opens_no_data_quality_incident(life: tuple[Settings, ManualClock]) -> None:
    """Twelve ticks of served rows and their labels (with heald's own request_id and served_at columns) are
    archived and checked, and not one reading calls them a quality problem."""
    settings, clock = life
    daemon = Daemon(settings, clock)
    try:
        for tick in range(12):
            served = daemon.client.post("/models/m/predict", json={"rows": rows(150, seed=100 + tick)}).json()
            truth = table(150, seed=100 + tick)["y"].tolist()
            labels = dict(zip(served["ids"], truth, strict=True))
            daemon.client.post("/models/m/feedback", json={"labels": labels}, headers=AUTH)
            clock.advance(timedelta(hours=1))
            assert len(daemon.capture.flush(clock.now())) == 2
            daemon.heald.loop.tick()
        store = daemon.heald.store
        assert len(store.batches("m")) == 24 and not store.batches("m", status="quarantined")
        quality = store.observations("m", metric="data_quality", limit=100)
        assert len(quality) == 24 and all(o.value == 0 for o in quality), [o.evidence for o in quality if o.value]
        assert not [i for i in store.list_incidents(model="m") if i.kind is SymptomKind.DATA_QUALITY]
    finally:
        daemon.stop()


def test_nan_in_a_served_row_is_stored_as_missing(life: tuple[Settings, ManualClock], tmp_path: Path) -> None:
    """A non-finite number in a request is kept as a missing value (the store's JSON refuses NaN)."""
    settings, clock = life
    daemon = Daemon(settings, clock)
    try:
        capture = daemon.capture
        ids = capture.served("m", [{"a": float("nan"), "b": 1.0, "c": "red"}], at=clock.now())
        [path] = capture.flush(clock.now())
        frame = pd.read_csv(path)
        assert frame["request_id"].tolist() == ids and frame["a"].isna().all()
    finally:
        daemon.stop()


def test_a_few_late_labels_wait_for_more_before_they_are_a_reading(life: tuple[Settings, ManualClock]) -> None:
    """Five labels are not the model's accuracy: they are pooled, and the reading comes once 30 rows are in."""
    settings, clock = life
    daemon = Daemon(settings, clock)
    try:
        ids = daemon.client.post("/models/m/predict", json={"rows": rows(40, seed=8)}).json()["ids"]
        truth = table(40, seed=8)["y"].tolist()
        for chunk in (slice(0, 5), slice(5, 40)):
            labels = dict(zip(ids[chunk], truth[chunk], strict=True))
            daemon.client.post("/models/m/feedback", json={"labels": labels}, headers=AUTH)
            clock.advance(timedelta(hours=1))
            daemon.capture.flush(clock.now())
            daemon.heald.loop.tick()
            if chunk.start == 0:
                assert daemon.heald.store.observations("m", metric="performance") == []
        (performance,) = daemon.heald.store.observations("m", metric="performance")
        assert performance.evidence["rows"] == 40
    finally:
        daemon.stop()
