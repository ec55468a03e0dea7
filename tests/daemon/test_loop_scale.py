"""Many models per tick: models are sensed at once on threads, the leader collects garbage once a day, and a tick
that overruns its interval makes the scheduler skip the next one instead of overlapping it."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from structlog.testing import capture_logs

from daemon.compose import Heald, build
from daemon.config import ModelSettings, Settings
from daemon.loop import Loop
from daemon.onboard import onboard
from daemon.scheduler import TickScheduler
from knowledge.clock import ManualClock
from knowledge.values import Observation, SymptomKind
from pipeline.train import TrainParams
from sensors.base import SenseContext
from sensors.host import FixedHostGauge
from tests.conftest import CALM_HOST, make_settings, table

MODELS = ("m1", "m2", "m3")


def many(tmp: Path, clock: ManualClock, **overrides: object) -> Heald:
    """A heald managing three onboarded models (each with its own data, some of it shifted later)."""
    entries = [ModelSettings(name=n, target="y", task="classification", min_accuracy=0.8) for n in MODELS]
    settings: Settings = make_settings(tmp, models=entries, **overrides)
    heald = build(settings, clock=clock, pool="inline", host_gauge=FixedHostGauge([CALM_HOST]))
    for k, name in enumerate(MODELS):
        onboard(
            heald.store,
            heald.registry,
            name=name,
            frame=table(1200, seed=k),
            target="y",
            now=clock.now(),
            params=TrainParams(n_estimators=10, max_depth=6),
        )
    return heald


def feed(heald: Heald, clock: ManualClock, ticks: int) -> None:
    """Hourly batches for every model; m2's data shifts after the second tick."""
    for i in range(ticks):
        clock.advance(timedelta(hours=1))
        for k, name in enumerate(MODELS):
            folder = heald.settings.landing / name
            folder.mkdir(parents=True, exist_ok=True)
            table(300, shifted=name == "m2" and i >= 2, seed=100 * k + i).to_csv(folder / f"b{i}.csv", index=False)
        heald.loop.tick()


def outcome(heald: Heald) -> dict[str, object]:
    """What the ticks concluded and did, per model: comparable between two stores."""
    return {
        "incidents": sorted((i.model, i.kind.value, i.status.value) for i in heald.store.list_incidents()),
        "actions": sorted((a.model, a.kind.value, a.state.value) for a in heald.store.actions()),
        "readings": {
            name: [round(o.value, 9) for o in heald.store.observations(name, metric="performance")] for name in MODELS
        },
    }


class Rendezvous:
    """A sensor that waits until every model's thread has reached it: it returns only if they run at once."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=60)
        self.threads: set[str] = set()

    def sense(self, ctx: SenseContext) -> list[Observation]:
        self.threads.add(threading.current_thread().name)
        self.barrier.wait()  # a sequential tick would break it (BrokenBarrierError: a sensor_failed reading)
        return []


def test_models_are_sensed_at_once_and_decide_as_one_after_another(tmp_path: Path) -> None:
    """With three threads every model is sensed concurrently (a barrier all three must reach), and the incidents,
    actions and readings are exactly those of the same ticks run one model after another."""
    clock_a, clock_b = ManualClock(), ManualClock()
    sequential = many(tmp_path / "a", clock_a, tick_threads=1)
    threaded = many(tmp_path / "b", clock_b, tick_threads=3)
    meeting = Rendezvous(len(MODELS))
    threaded.loop.p = replace(threaded.loop.p, sensors=[*threaded.loop.p.sensors, meeting])
    try:
        feed(sequential, clock_a, 6)
        with capture_logs() as logs:
            feed(threaded, clock_b, 6)
        assert not [e for e in logs if e["event"] == "sensor_failed"], "every tick met all three threads"
        assert len(meeting.threads) == 3 and all(t.startswith("heald-tick") for t in meeting.threads)
        seen = outcome(threaded)
        assert seen == outcome(sequential)
        assert ("m2", SymptomKind.DATA_DRIFT.value) in {(m, k) for m, k, _ in seen["incidents"]}  # type: ignore[attr-defined]
    finally:
        sequential.close()
        threaded.close()


def test_one_model_failing_on_its_thread_leaves_the_others(tmp_path: Path) -> None:
    """A model whose sensing raises on a worker thread is recorded as failed; the other models' ticks complete."""
    clock = ManualClock()
    heald = many(tmp_path, clock, tick_threads=3)
    original = heald.loop.p.intake.collect

    def collect(model, store, now):  # type: ignore[no-untyped-def]
        if model.name == "m2":
            raise RuntimeError("landing folder of m2 unreadable")
        return original(model, store, now)

    heald.loop.p = replace(heald.loop.p, intake=_Intake(collect, heald.loop.p.intake))
    try:
        clock.advance(timedelta(hours=1))
        report = heald.loop.tick()
        assert report.failed == ["m2"]
        failed = heald.store.observations("m2", metric="tick_failed")
        assert "landing folder of m2 unreadable" in failed[-1].evidence["error"]
        assert all(heald.store.observations(n, metric="artifact_ok") for n in ("m1", "m3"))
    finally:
        heald.close()


class _Intake:
    """The real intake with its ``collect`` replaced (to make one model fail)."""

    def __init__(self, collect: object, real: object) -> None:
        self.collect = collect
        self.health = real.health  # type: ignore[attr-defined]


def test_the_leader_collects_garbage_once_a_day(tmp_path: Path) -> None:
    """The first tick folds readings older than raw_days (gc_completed names what went); the next tick within a
    day does not collect, a tick a day later does; a standby daemon never collects."""
    clock = ManualClock()
    heald = many(tmp_path, clock)
    old = clock.now() - timedelta(days=10)
    heald.store.add_observations(
        Observation(at=old + timedelta(minutes=m), model="m1", source="t", metric="drift_share", value=0.1)
        for m in range(0, 120, 10)
    )
    standby = build(heald.settings, clock=clock, pool="inline", store=heald.store, holder="standby:2")
    try:
        with capture_logs() as logs:
            clock.advance(timedelta(minutes=1))
            heald.loop.tick()
            clock.advance(timedelta(hours=1))
            heald.loop.tick()
            standby.loop.tick()
        done = [e for e in logs if e["event"] == "gc_completed"]
        assert len(done) == 1 and done[0]["rows"]["observations"] == 12
        assert heald.store.history_size("m1")["observation_rollups"] == 2
        with capture_logs() as logs:
            clock.advance(timedelta(hours=24))
            heald.loop.tick()
        assert [e["event"] for e in logs].count("gc_completed") == 1
    finally:
        heald.close()


def test_no_collection_when_the_config_turns_it_off(tmp_path: Path) -> None:
    """retention.gc_every_hours = 0 leaves collection to `healctl gc`: ticks never collect."""
    clock = ManualClock()
    heald = many(tmp_path, clock, retention={"gc_every_hours": 0})
    try:
        assert heald.loop.p.gc_every is None
        with capture_logs() as logs:
            clock.advance(timedelta(hours=1))
            heald.loop.tick()
        assert "gc_completed" not in [e["event"] for e in logs]
    finally:
        heald.close()


def test_a_tick_longer_than_the_interval_skips_the_next_instead_of_overlapping() -> None:
    """While a tick is still running, the scheduler's next run is skipped (on_overlap is told) and no two ticks
    ever run at the same time."""
    running, most = 0, 0
    lock = threading.Lock()
    overlapped = threading.Event()
    finished = threading.Event()

    def tick() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        overlapped.wait(timeout=60)  # the tick runs until the scheduler has refused the next one
        with lock:
            running -= 1
        finished.set()

    scheduler = TickScheduler(tick, 0.05, on_overlap=overlapped.set)
    scheduler.start()
    try:
        assert overlapped.wait(timeout=60), "the scheduler reported the skipped run"
        assert finished.wait(timeout=60)
    finally:
        scheduler.stop()
    assert most == 1


def test_loop_defaults_to_one_thread_per_core(settings: Settings, tmp_path: Path) -> None:
    """Without tick_threads the loop senses as many models at once as this process may use cores."""
    import os

    heald = build(settings, clock=ManualClock(), pool="inline")
    try:
        assert isinstance(heald.loop, Loop) and heald.loop.p.concurrency == len(os.sched_getaffinity(0))
    finally:
        heald.close()
