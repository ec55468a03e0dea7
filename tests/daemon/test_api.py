"""The HTTP API on a real uvicorn server on loopback: predictions, feedback into the loop, health, metrics,
and clear refusals of bad payloads and missing tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
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


@pytest.fixture
def api(heald: Heald, clock: ManualClock) -> Iterator[tuple[httpx.Client, Capture]]:
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
    capture = Capture(heald.settings.landing)
    server = ApiServer(create_app(lambda: heald, capture, Metrics(heald.store, heald.registry)), "127.0.0.1", 0)
    port = server.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, capture
    server.stop()


def rows(n: int, seed: int = 3) -> list[dict[str, object]]:
    return table(n, seed=seed).drop(columns=["y"]).to_dict(orient="records")  # type: ignore[return-value]


def test_health_and_readiness(api: tuple[httpx.Client, Capture], heald: Heald) -> None:
    """healthz answers; readyz is 200 while the champion verifies and 503 naming the model when it does not."""
    client, _ = api
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    champion = heald.registry.champion("m")
    assert champion is not None
    (heald.settings.artifacts / champion.artifact).write_bytes(b"broken")
    answer = client.get("/readyz")
    # The loop loaded it before the damage: it still serves from memory, and readiness says so.
    problems = ["m: champion v1 does not verify (serving from the in-memory copy)"]
    assert answer.status_code == 503 and answer.json()["problems"] == problems


def test_predict_serves_the_champion_and_captures_rows(api: tuple[httpx.Client, Capture], heald: Heald) -> None:
    """Predictions come from the champion, with one id per row; the rows wait in the capture buffer."""
    client, capture = api
    answer = client.post("/models/m/predict", json={"rows": rows(5)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"] == 1 and len(body["ids"]) == 5 and set(body["predictions"]) <= {0, 1}
    assert capture.pending() == 5


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"rows": [{"a": 1.0, "c": "red"}]}, 422, "rows lack feature columns ['b']"),
        ({"rows": []}, 422, "at least 1 item"),
        ({"rowz": []}, 422, "Field required"),
        ({"rows": [{"a": "high", "b": 1.0, "c": "red"}]}, 422, "rows cannot be predicted"),
    ],
)
def test_bad_predict_payloads_are_refused_by_name(
    api: tuple[httpx.Client, Capture], payload: dict[str, object], status: int, message: str
) -> None:
    """Missing columns, empty or misnamed bodies and values of the wrong type get a 422 that says why."""
    client, capture = api
    answer = client.post("/models/m/predict", json=payload)
    assert answer.status_code == status
    assert message in answer.text
    assert capture.pending() == 0


def test_unknown_model_is_404(api: tuple[httpx.Client, Capture]) -> None:
    """A model that does not exist is named in a 404."""
    client, _ = api
    answer = client.post("/models/ghost/predict", json={"rows": rows(1)})
    assert answer.status_code == 404 and "no model named 'ghost'" in answer.text


def test_feedback_needs_the_token(api: tuple[httpx.Client, Capture]) -> None:
    """State-changing endpoints refuse a missing or wrong token."""
    client, _ = api
    assert client.post("/models/m/feedback", json={"labels": {"x": 1}}).status_code == 401
    wrong = client.post("/models/m/feedback", json={"labels": {"x": 1}}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_served_rows_and_feedback_flow_into_the_loop(
    api: tuple[httpx.Client, Capture], heald: Heald, clock: ManualClock
) -> None:
    """Served rows become an unlabelled batch and their labels a labelled one, which the loop scores."""
    client, capture = api
    served = client.post("/models/m/predict", json={"rows": rows(150)}).json()
    labels = dict.fromkeys(served["ids"], 1) | {"never-served": 0}
    answer = client.post("/models/m/feedback", json={"labels": labels}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.json() == {"accepted": 150, "unknown": ["never-served"]}
    clock.advance(timedelta(hours=1))
    written = capture.flush(clock.now())
    assert sorted(p.name.split("-")[0] for p in written) == ["api", "feedback"]
    heald.loop.tick()
    batches = heald.store.batches("m")
    assert sorted((b.source, b.rows, b.labelled) for b in batches) == [("api", 150, False), ("feedback", 150, True)]
    (performance,) = heald.store.observations("m", metric="performance")
    assert performance.evidence["rows"] == 150


def test_metrics_are_valid_prometheus_text(api: tuple[httpx.Client, Capture]) -> None:
    """/metrics exposes prediction counters and store gauges in the text format."""
    client, _ = api
    client.post("/models/m/predict", json={"rows": rows(3)})
    text = client.get("/metrics").text
    assert 'heald_predictions_total{model="m"} 3.0' in text
    assert 'heald_champion_version{model="m"} 1.0' in text
    assert "heald_predict_request_seconds_bucket" in text
    assert "_created" not in text
