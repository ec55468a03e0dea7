"""A batch is checked against the champion's profile once per tick: intake's check is the quality sensor's."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from daemon.compose import Heald
from knowledge.clock import ManualClock
from knowledge.values import Batch
from pipeline import quality
from sensors import intake as intake_module
from sensors import quality as quality_sensor
from sensors.base import LoadedBatch, SenseContext
from sensors.quality import QualitySensor
from tests.conftest import table
from tests.sensors.test_profile_cache import small_model


def _land(heald: Heald, rows: Any, name: str) -> None:
    folder = heald.settings.landing / "m"
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / name, index=False)


def test_a_tick_checks_each_batch_once_and_reports_what_the_check_found(
    heald: Heald, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a batch whose column is mostly missing, one tick runs the profile check once (in intake), and the
    sensor's ``data_quality`` reading still names the problem that check found."""
    small_model(heald, clock)
    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> quality.QualityReport:
        calls.append(1)
        return quality.check(*args, **kwargs)

    monkeypatch.setattr(intake_module, "quality_check", counted)
    monkeypatch.setattr(quality_sensor, "check", counted)
    rows = table(200, seed=3)
    rows.loc[rows.index[:150], "b"] = None
    _land(heald, rows, "gappy.csv")
    clock.advance(timedelta(hours=1))
    heald.loop.tick()
    assert len(calls) == 1
    reading = heald.store.observations("m", metric="data_quality")[-1]
    assert reading.value >= 1
    assert any(p["check"] == "missing_share" and p["column"] == "b" for p in reading.evidence["problems"])


def test_a_report_judged_with_other_limits_is_not_reused(heald: Heald, clock: ManualClock) -> None:
    """A batch carrying a report made with other limits (another configuration) is checked again with the
    sensor's own: its reading follows the sensor's settings, not the stale report."""
    small_model(heald, clock)
    champion = heald.registry.champion("m")
    model = heald.store.list_models()[0]
    assert champion is not None
    rows = table(200, seed=4)
    rows.loc[rows.index[:60], "b"] = None  # 30 % missing: a problem under a 0.2 increase, not under 0.9
    profile = heald.loop.p.intake.profiles.get(champion)
    assert profile is not None
    lenient = quality.check(
        profile,
        rows,
        ignore=quality_sensor.ignored_columns(model, champion),
        settings=quality.QualitySettings(max_missing_increase=0.9),
    )
    assert not lenient.problems
    batch = Batch(
        id=1,
        model="m",
        received_at=clock.now(),
        source="landing",
        path="b.csv",
        rows=200,
        labelled=True,
        fingerprint="f",
    )
    loaded = LoadedBatch(batch=batch, frame=rows, quality=lenient)
    ctx = SenseContext(now=clock.now(), model=model, registry=heald.registry, batches=[loaded])
    [reading] = QualitySensor().sense(ctx)
    assert reading.value == 1 and reading.evidence["problems"][0]["check"] == "missing_share"
    reused = replace(lenient, settings=quality.QualitySettings())  # made with the sensor's limits: taken as is
    ctx = SenseContext(now=clock.now(), model=model, registry=heald.registry, batches=[replace(loaded, quality=reused)])
    [reading] = QualitySensor().sense(ctx)
    assert reading.value == 0
