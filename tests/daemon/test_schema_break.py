"""Serving through a schema break: a renamed feature column is answered in degraded mode, the data_quality
incident names it and proposes the rename, and once `healctl map` accepts it, batches are served and learned
normally again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import structlog

from daemon import config as configuration
from daemon.api import ApiServer, create_app
from daemon.capture import Capture
from daemon.cli import main
from daemon.compose import Heald
from daemon.metrics import Metrics
from daemon.onboard import onboard
from daemon.serving import answer
from knowledge.clock import ManualClock
from knowledge.values import SymptomKind, Version
from pipeline.train import TrainParams
from tests.conftest import table
from tests.sensing import MODEL, TARGET, drop, shop_rows, tick

RENAMED_FROM = 10
MAPPED_AT = 20
BATCHES = 30
ROWS = 300


def healctl_map(heald: Heald, tmp_path: Path, *args: str) -> None:
    """Run `healctl map` as an operator would, on a config pointing at this heald's state."""
    path = tmp_path / "operator.toml"
    configuration.write(path, configuration.with_model(heald.settings, heald.settings.models[0]))
    try:
        main(["map", *args, "--config", str(path)])
    except SystemExit as exc:
        assert not exc.code, f"healctl map exited {exc.code}"
    finally:
        structlog.reset_defaults()  # healctl pointed the logs at this test's captured stderr


def test_a_renamed_column_is_served_degraded_then_mapped_and_learned(
    watched: Heald, champion: Version, clock: ManualClock, tmp_path: Path
) -> None:
    """From batch 10 on 'visits' arrives as 'visit_count'. Every row is still answered; until the mapping is
    accepted accuracy stays within 15 % of the champion's on the unrenamed rows, and after it within 1 point;
    the mapped batches are archived and scored by the loop like any other."""
    rng = np.random.default_rng(7)
    model = watched.store.get_model(MODEL)
    answered = sent_rows = 0
    degraded: list[tuple[float, float]] = []
    mapped: list[tuple[float, float]] = []
    for i in range(BATCHES):
        frame = shop_rows(ROWS, rng)
        sent = frame.rename(columns={"visits": "visit_count"}) if i >= RENAMED_FROM else frame
        given = answer(watched.store, watched.registry, model, sent.drop(columns=TARGET))
        unrenamed = watched.registry.load(champion).predict(frame[list(model.features)])
        accuracy = float(np.mean(np.asarray(given.predictions) == frame[TARGET].to_numpy()))
        baseline = float(np.mean(unrenamed == frame[TARGET].to_numpy()))
        if i >= RENAMED_FROM:
            answered += len(given.predictions)
            sent_rows += len(sent)
            (degraded if i < MAPPED_AT else mapped).append((accuracy, baseline))
            assert given.degraded == (i < MAPPED_AT) and given.filled == (["visits"] if i < MAPPED_AT else [])
        drop(watched, f"batch-{i:02d}.csv", sent)
        tick(watched, clock)
        if i == MAPPED_AT - 1:
            [incident] = [x for x in watched.store.active_incidents(MODEL) if x.kind is SymptomKind.DATA_QUALITY]
            assert "missing columns 'visits'" in incident.summary
            assert f"healctl map {MODEL} --from visit_count --to visits" in incident.summary
            healctl_map(watched, tmp_path, MODEL, "--from", "visit_count", "--to", "visits")
    assert answered / sent_rows >= 0.9
    assert np.mean([a for a, _ in degraded]) >= 0.85 * np.mean([b for _, b in degraded])
    assert all(abs(a - b) <= 0.01 for a, b in mapped)
    assert watched.registry.champion(MODEL) == champion  # the unrenamed run's answers are this champion's
    batches = watched.store.batches(MODEL, status=None)
    assert [b.status for b in batches[RENAMED_FROM:MAPPED_AT]] == ["quarantined"] * (MAPPED_AT - RENAMED_FROM)
    assert all(b.status == "accepted" and b.labelled for b in batches[MAPPED_AT:])
    scored = [o for o in watched.store.observations(MODEL, metric="performance", limit=1000)]
    assert len(scored) == BATCHES - (MAPPED_AT - RENAMED_FROM)  # mapped batches are learned from again
    assert watched.store.column_mappings(MODEL) == {"visit_count": "visits"}


def test_map_is_journaled_and_reversible(watched: Heald, champion: Version, tmp_path: Path) -> None:
    """Accepting and undoing a mapping are operator controls on record; after the undo the column is unknown."""
    healctl_map(watched, tmp_path, MODEL, "--from", "visit_count", "--to", "visits")
    assert watched.store.column_mappings(MODEL) == {"visit_count": "visits"}
    healctl_map(watched, tmp_path, MODEL, "--from", "visit_count", "--to", "visits", "--undo")
    assert watched.store.column_mappings(MODEL) == {}
    history = watched.store.mapping_history(MODEL)
    assert len(history) == 1 and history[0].removed_at is not None and history[0].actor == "healctl"
    assert watched.store.last_control(MODEL, "map") is not None
    assert watched.store.last_control(MODEL, "unmap") is not None


def test_map_refuses_a_column_the_model_does_not_have(
    watched: Heald, champion: Version, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mapping onto a column that is not a feature fails as not found (exit 3), naming it; nothing is stored."""
    path = tmp_path / "operator.toml"
    configuration.write(path, configuration.with_model(watched.settings, watched.settings.models[0]))
    with pytest.raises(SystemExit) as exited:
        try:
            main(["map", MODEL, "--from", "x", "--to", "nope", "--config", str(path)])
        finally:
            structlog.reset_defaults()
    assert exited.value.code == 3 and "no feature column 'nope'" in capsys.readouterr().err  # not found
    assert watched.store.column_mappings(MODEL) == {}


@pytest.fixture
def api(heald: Heald, clock: ManualClock) -> Iterator[httpx.Client]:
    onboard(
        heald.store,
        heald.registry,
        name="m",
        frame=table(600),
        target="y",
        now=clock.now(),
        params=TrainParams(n_estimators=10),
    )
    metrics = Metrics(heald.store, heald.registry)
    server = ApiServer(
        create_app(lambda: heald, Capture(heald.settings.landing, lambda: heald.store), metrics), "127.0.0.1", 0
    )
    port = server.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client
    server.stop()


def test_a_request_lacking_a_feature_is_answered_degraded_and_counted(api: httpx.Client) -> None:
    """The answer says degraded and names the column; /metrics counts the degraded rows per column."""
    rows = table(4, seed=2).drop(columns=["y", "b"]).to_dict(orient="records")
    answered = api.post("/models/m/predict", json={"rows": rows})
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["degraded"] is True and body["missing"] == ["b"] and len(body["predictions"]) == 4
    assert 'heald_predictions_degraded_total{column="b",model="m"} 4.0' in api.get("/metrics").text


def test_a_proposal_needs_a_matching_distribution() -> None:
    """An unknown column is proposed for a missing one only when its kind and distribution match."""
    from pipeline.mapping import propose
    from pipeline.profile import build_profile

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"a": rng.normal(0, 1, 2000), "c": rng.choice(["x", "y"], 2000)})
    profile = build_profile(reference)
    current = pd.DataFrame(
        {"a_new": rng.normal(0, 1, 300), "other": rng.normal(5, 1, 300), "c_new": rng.choice(["x", "y"], 300)}
    )
    assert propose(profile, current, ["a", "c"], known=[]) == {"a_new": "a", "c_new": "c"}
    assert propose(profile, current.drop(columns="a_new"), ["a"], known=[]) == {}
