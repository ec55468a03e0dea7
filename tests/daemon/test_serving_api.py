"""Serving over real HTTP on loopback: concurrent requests answered right one by one, the cached champion
following every alias move, and a champion file that does not verify still refused."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pandas as pd
import pytest

from daemon.api import ApiServer, create_app
from daemon.capture import Capture
from daemon.compose import Heald
from daemon.metrics import Metrics
from daemon.onboard import onboard
from daemon.serving import answer
from knowledge.artifacts import ArtifactStore
from knowledge.clock import ManualClock
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from pipeline.train import TrainParams, train
from tests.conftest import table


def serve(heald: Heald, capture: Capture) -> tuple[ApiServer, httpx.Client]:
    server = ApiServer(create_app(lambda: heald, capture, Metrics(heald.store, heald.registry)), "127.0.0.1", 0)
    port = server.start()
    return server, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)


@pytest.fixture
def onboarded(heald: Heald, clock: ManualClock) -> Heald:
    onboard(
        heald.store,
        heald.registry,
        name="m",
        frame=table(600),
        target="y",
        now=clock.now(),
        params=TrainParams(n_estimators=10),
    )
    return heald


@pytest.fixture
def api(onboarded: Heald) -> Iterator[tuple[httpx.Client, Capture]]:
    capture = Capture(onboarded.settings.landing, lambda: onboarded.store)
    server, client = serve(onboarded, capture)
    with client:
        yield client, capture
    server.stop()


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    return table(n, seed=seed).drop(columns=["y"]).to_dict(orient="records")  # type: ignore[return-value]


def test_concurrent_requests_get_their_own_answers_and_a_bad_one_its_422(
    api: tuple[httpx.Client, Capture], onboarded: Heald
) -> None:
    """Twenty-four requests sent at once: the one holding a null feature gets 422 naming it; every other gets 200 with
    the predictions its rows get alone, its own ids, and its rows captured."""
    client, capture = api
    payloads = [rows(1 + i % 3, seed=i) for i in range(24)]
    payloads[5] = [dict(payloads[5][0], a=None)]

    def post(payload: list[dict[str, Any]]) -> httpx.Response:
        return client.post("/models/m/predict", json={"rows": payload})

    with ThreadPoolExecutor(24) as threads:
        answers = list(threads.map(post, payloads))
    assert answers[5].status_code == 422 and "row 0: feature 'a' is null" in answers[5].text
    model = onboarded.store.get_model("m")
    ids: set[str] = set()
    for i, response in enumerate(answers):
        if i == 5:
            continue
        assert response.status_code == 200, response.text
        alone = answer(onboarded.store, onboarded.registry, model, pd.DataFrame(payloads[i]))
        assert response.json()["predictions"] == alone.predictions
        assert len(response.json()["ids"]) == len(payloads[i])
        ids |= set(response.json()["ids"])
    assert len(ids) == sum(len(p) for i, p in enumerate(payloads) if i != 5) == capture.pending()


def new_version(heald: Heald, clock: ManualClock, seed: int) -> int:
    made = train(table(400, seed=seed), target="y", task="classification", params=TrainParams(n_estimators=5))
    return heald.registry.register("m", made.estimator, at=clock.now(), reference=table(50)).number


def test_a_promotion_is_served_by_the_next_request(
    api: tuple[httpx.Client, Capture], onboarded: Heald, clock: ManualClock
) -> None:
    """After a promotion (and a rollback) in the daemon, the very next request is answered by the new champion."""
    client, _ = api
    assert client.post("/models/m/predict", json={"rows": rows(2, 1)}).json()["version"] == 1
    number = new_version(onboarded, clock, seed=4)
    onboarded.registry.promote("m", number, at=clock.now(), actor="operator", reason="test")
    assert client.post("/models/m/predict", json={"rows": rows(2, 1)}).json()["version"] == number
    onboarded.registry.rollback("m", at=clock.now(), actor="operator", reason="back", to=1)
    assert client.post("/models/m/predict", json={"rows": rows(2, 1)}).json()["version"] == 1


def test_a_promotion_by_another_process_is_followed(onboarded: Heald, clock: ManualClock) -> None:
    """A move written through another connection (a leader daemon, healctl) is served once the refresh interval
    has passed; here the interval is a microsecond, so the next request sees it."""
    number = new_version(onboarded, clock, seed=5)
    settings = onboarded.settings.model_copy(update={"serving_refresh_ms": 0.001})
    object.__setattr__(onboarded, "settings", settings)
    server, client = serve(onboarded, Capture(onboarded.settings.landing, lambda: onboarded.store))
    try:
        assert client.post("/models/m/predict", json={"rows": rows(1, 1)}).json()["version"] == 1
        other = SqlKnowledgeStore.open(onboarded.store.url)
        ModelRegistry(other, ArtifactStore(onboarded.settings.artifacts)).promote(
            "m", number, at=clock.now(), actor="operator", reason="elsewhere"
        )
        assert client.post("/models/m/predict", json={"rows": rows(1, 1)}).json()["version"] == number
    finally:
        client.close()
        server.stop()


def test_a_mapping_is_applied_by_the_next_request(
    api: tuple[httpx.Client, Capture], onboarded: Heald, clock: ManualClock
) -> None:
    """A renamed column is degraded until its mapping is accepted, and served whole by the next request after."""
    client, _ = api
    renamed = [{("a_new" if k == "a" else k): v for k, v in row.items()} for row in rows(3, 2)]
    assert client.post("/models/m/predict", json={"rows": renamed}).json()["missing"] == ["a"]
    onboarded.store.add_mapping(model="m", new="a_new", old="a", at=clock.now(), actor="operator", reason="renamed")
    body = client.post("/models/m/predict", json={"rows": renamed}).json()
    assert body["degraded"] is False
    assert body["predictions"] == client.post("/models/m/predict", json={"rows": rows(3, 2)}).json()["predictions"]


def test_a_champion_file_that_does_not_verify_is_refused(onboarded: Heald) -> None:
    """A daemon that never loaded the champion refuses to serve a tampered file: 503 naming it, every time."""
    champion = onboarded.registry.champion("m")
    assert champion is not None
    path = onboarded.settings.artifacts / champion.artifact
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    fresh = ModelRegistry(onboarded.store, ArtifactStore(onboarded.settings.artifacts))
    object.__setattr__(onboarded, "registry", fresh)
    server, client = serve(onboarded, Capture(onboarded.settings.landing, lambda: onboarded.store))
    try:
        for _ in range(2):
            refused = client.post("/models/m/predict", json={"rows": rows(1, 1)})
            assert refused.status_code == 503 and champion.artifact in refused.text
    finally:
        client.close()
        server.stop()
