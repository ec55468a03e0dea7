"""Sensing processes (``tick_processes``): each model's Monitor and Analyze phase runs in a process of its own
shard, and the tick decides exactly as when every model is sensed in the loop's process, one after another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from daemon.sensing import shard
from knowledge.clock import ManualClock
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ModelRecord, SymptomKind
from sensors.intake import Level
from sensors.sources.puller import Pulled
from tests.daemon.test_loop_scale import MODELS, feed, many, outcome


def test_models_sensed_in_processes_decide_as_one_after_another(tmp_path: Path) -> None:
    """With two sensing processes (not the test's own), the incidents, actions and readings of six ticks (one model
    drifting, retrains acting) equal those of the same ticks sensed one model after another in one process; batch
    events come back to the loop's log and the readings of the loop's own process (host, backlog) are stored."""
    clock_a, clock_b = ManualClock(), ManualClock()
    sequential = many(tmp_path / "a", clock_a, tick_threads=1)
    split = many(tmp_path / "b", clock_b, tick_processes=2)
    try:
        feed(sequential, clock_a, 6)
        with capture_logs() as logs:
            feed(split, clock_b, 6)
        sensing = split.loop.p.sensing
        assert sensing is not None
        pids = sensing.pids()
        assert len(pids) == len({shard(n, 2) for n in MODELS}) and os.getpid() not in pids
        seen = outcome(split)
        assert seen == outcome(sequential)
        assert ("m2", SymptomKind.DATA_DRIFT.value) in {(m, k) for m, k, _ in seen["incidents"]}  # type: ignore[attr-defined]
        accepted = [e for e in logs if e["event"] == "batch_accepted"]
        assert sorted(e["model"] for e in accepted) == sorted(MODELS * 6)
        for name in MODELS:
            assert len(split.store.observations(name, metric="host_pressure")) == 6
            assert len(split.store.observations(name, metric="backlog")) == 6
    finally:
        sequential.close()
        split.close()


def test_a_killed_sensing_process_is_replaced_and_the_tick_completes(tmp_path: Path) -> None:
    """When a sensing process dies between ticks, the next tick starts a new one (sensing_process_lost is logged),
    senses every model and records no failure."""
    clock = ManualClock()
    heald = many(tmp_path, clock, tick_processes=1)
    try:
        feed(heald, clock, 1)
        sensing = heald.loop.p.sensing
        assert sensing is not None
        [first] = sensing.pids()
        os.kill(first, signal.SIGKILL)
        clock.advance(timedelta(hours=1))
        with capture_logs() as logs:
            report = heald.loop.tick()
        assert report.failed == []
        assert "sensing_process_lost" in [e["event"] for e in logs]
        [second] = sensing.pids()
        assert second != first
        for name in MODELS:
            assert len(heald.store.observations(name, metric="artifact_ok")) == 2
    finally:
        heald.close()


CHILD = """
import sys, time
from pathlib import Path
from daemon.compose import build
from daemon.config import ModelSettings
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from pipeline.train import TrainParams
from tests.conftest import make_settings, table

state = Path(sys.argv[1])
entries = [ModelSettings(name="m", target="y", task="classification", min_accuracy=0.8)]
heald = build(make_settings(state, models=entries, tick_processes=1), clock=ManualClock(), pool="inline")
onboard(heald.store, heald.registry, name="m", frame=table(600), target="y", now=heald.clock.now(),
        params=TrainParams(n_estimators=5, max_depth=4))
heald.loop.tick()
print("sensing:", *heald.loop.p.sensing.pids(), flush=True)
time.sleep(600)
"""


def test_a_sensing_process_ends_when_its_daemon_is_killed(tmp_path: Path) -> None:
    """A daemon killed with SIGKILL cannot stop its sensing processes: each notices its parent is gone and ends,
    instead of waiting for work forever with a store connection open."""
    root = Path(__file__).resolve().parents[2]
    daemon = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "state")], cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        assert daemon.stdout is not None
        line = next(line for line in daemon.stdout if line.startswith("sensing:"))  # log lines come first
        pids = [int(p) for p in line.split()[1:]]
        assert len(pids) == 1 and psutil.pid_exists(pids[0])
    finally:
        daemon.kill()
        daemon.wait()
        if daemon.stdout is not None:
            daemon.stdout.close()
    sensing = psutil.Process(pids[0])
    deadline = time.monotonic() + 60  # it looks once a second; the bound only stops a broken test from hanging
    while sensing.is_running() and sensing.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sensing.is_running() or sensing.status() == psutil.STATUS_ZOMBIE


class _ReportingPuller:
    """Stands in for SourcePuller (same ``pull``): every pull pulls nothing and reports one event."""

    def pull(self, model: ModelRecord, store: SqlKnowledgeStore, now: datetime) -> Pulled:
        pulled = Pulled()
        pulled.event("source_pulled", Level.INFO, model=model.name, rows=0)
        return pulled

    def close(self) -> None:
        """Nothing to release."""


@pytest.mark.parametrize("mode", [{"tick_threads": 1}, {"tick_processes": 1}])
def test_a_sources_pull_events_are_logged_in_either_mode(tmp_path: Path, mode: dict[str, int]) -> None:
    """What a source's pull reports is logged by the loop whether the models are sensed in its own process or in
    sensing processes (the pull always runs in the loop's process)."""
    clock = ManualClock()
    heald = many(tmp_path, clock, **mode)
    try:
        heald.loop.p = replace(heald.loop.p, sources=_ReportingPuller())  # type: ignore[arg-type]
        with capture_logs() as logs:
            feed(heald, clock, 1)
        assert sorted(e["model"] for e in logs if e["event"] == "source_pulled") == sorted(MODELS)
    finally:
        heald.close()
