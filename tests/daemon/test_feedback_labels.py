"""Feedback labels on the real API: one spelling per class, and labels the model cannot take refused with 422."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pandas as pd
import pytest

from daemon.api import ApiServer, create_app
from daemon.capture import Capture
from daemon.compose import Heald
from daemon.metrics import Metrics
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from pipeline.train import TrainParams
from tests.conftest import table

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(heald: Heald, clock: ManualClock) -> Iterator[tuple[httpx.Client, Capture]]:
    """Model ``m`` (0/1 target) onboarded and served on loopback, with rows already predicted."""
    onboard(
        heald.store,
        heald.registry,
        name="m",
        frame=table(600),
        target="y",
        now=clock.now(),
        params=TrainParams(n_estimators=10),
    )
    object.__setattr__(heald, "settings", heald.settings.model_copy(update={"api_token": TOKEN}))
    capture = Capture(heald.settings.landing, lambda: heald.store)
    server = ApiServer(create_app(lambda: heald, capture, Metrics(heald.store, heald.registry)), "127.0.0.1", 0)
    port = server.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, capture
    server.stop()


def served_ids(client: httpx.Client, n: int) -> list[str]:
    rows = table(n, seed=4).drop(columns=["y"]).to_dict(orient="records")
    ids: list[str] = client.post("/models/m/predict", json={"rows": rows}).json()["ids"]
    return ids


@pytest.mark.parametrize(
    ("bad", "named"),
    [(42, "42"), ("maybe", "'maybe'"), (None, "empty"), (1.5, "1.5"), ([1], "not one value")],
)
def test_bad_labels_get_422_and_nothing_is_stored(
    api: tuple[httpx.Client, Capture], heald: Heald, clock: ManualClock, bad: object, named: str
) -> None:
    """One bad label among good ones refuses the whole request by name; no label of it reaches the loop."""
    client, capture = api
    ids = served_ids(client, 3)
    answer = client.post("/models/m/feedback", json={"labels": {ids[0]: 1, ids[1]: bad, ids[2]: 0}}, headers=AUTH)
    assert answer.status_code == 422 and named in answer.json()["detail"]
    clock.advance(timedelta(hours=1))
    written = capture.flush(clock.now())
    assert [p.name.split("-")[0] for p in written] == ["api"]  # the served rows only, no feedback file
    # The ids were not consumed: the same rows can still be labelled correctly.
    again = client.post("/models/m/feedback", json={"labels": dict.fromkeys(ids, 1)}, headers=AUTH)
    assert again.json() == {"accepted": 3, "unknown": []}


def test_labels_in_any_spelling_of_a_class_are_stored_as_training_spelled_them(
    api: tuple[httpx.Client, Capture], clock: ManualClock
) -> None:
    """1, 1.0, "1" and True are the class 1 of an integer target, written as 1 in the feedback batch."""
    client, capture = api
    ids = served_ids(client, 4)
    labels = dict(zip(ids, [1, 1.0, "1", True], strict=True))
    assert client.post("/models/m/feedback", json={"labels": labels}, headers=AUTH).json()["accepted"] == 4
    clock.advance(timedelta(hours=1))
    [feedback] = [p for p in capture.flush(clock.now()) if p.name.startswith("feedback-")]
    assert pd.read_csv(feedback)["y"].tolist() == [1, 1, 1, 1]
