"""Per-model isolation: one model's failure is recorded and the tick goes on for the others; the watchdog
follows the loop's progress, not every model's health."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from daemon.compose import Heald, build
from daemon.config import Monitor
from daemon.heartbeat import Heartbeat
from daemon.loop import Loop
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import ActionKind, Alias, IncidentStatus, ModelRecord, SymptomKind
from pipeline.train import TrainParams
from tests.conftest import make_settings, table

HEALD = str(Path(sys.executable).parent / "heald")
QUIET = Monitor(memory_percent=0, disk_percent=0, load_per_cpu=0, rss_mb=0, anomaly=False)


class PlannerBrokenFor:
    """The real planner, except that planning for one model raises (a bug reached only by that model)."""

    def __init__(self, planner: Any, broken: str) -> None:
        self.planner = planner
        self.broken = broken

    def plan(self, model: ModelRecord, *args: Any, **kwargs: Any) -> Any:
        if model.name == self.broken:
            raise RuntimeError(f"planner bug for {model.name}")
        return self.planner.plan(model, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.planner, name)


def onboard_with_damaged_champion(heald: Heald, clock: ManualClock, name: str) -> None:
    """``name`` with a stable v1 and a champion v2 whose file is then damaged (artifact_corrupt)."""
    onboard(
        heald.store,
        heald.registry,
        name=name,
        frame=table(600, seed=3),
        target="y",
        now=clock.now(),
        params=TrainParams(n_estimators=10, max_depth=6),
    )
    v1 = heald.registry.version(name, 1)
    v2 = heald.registry.register(name, heald.registry.load(v1), at=clock.now(), reference=table(200)[["a", "b", "c"]])
    heald.registry.promote(name, v2.number, at=clock.now(), actor="healctl", reason="test")
    (heald.settings.artifacts / v2.artifact).write_bytes(b"not a model")


@pytest.fixture
def quiet(tmp_path: Path, clock: ManualClock) -> Iterator[Heald]:
    """A heald whose host checks are off: the machine's own load must not open incidents here."""
    built = build(make_settings(tmp_path / "state", monitor=QUIET), clock=clock, pool="inline")
    yield built
    built.close()


def test_a_model_raising_in_planning_does_not_stop_another_from_being_healed(quiet: Heald, clock: ManualClock) -> None:
    """Both champions are damaged; planning raises for "a" (ticked first). In the very tick "a" fails, "b" is
    rolled back to its stable v1; "a"'s failure is a tick_failed observation and log event naming the model
    and the error, every tick."""
    heald = quiet
    for name in ("a", "b"):
        onboard_with_damaged_champion(heald, clock, name)
    loop = Loop(replace(heald.loop.p, planner=PlannerBrokenFor(heald.loop.p.planner, "a")))
    healed_in: list[int] = []
    with capture_logs() as logged:
        for i in range(4):
            clock.advance(timedelta(hours=1))
            report = loop.tick()
            assert report.failed == (["a"] if heald.store.active_incidents("a") else [])
            if heald.store.alias("b", Alias.CHAMPION) == 1 and not healed_in:
                healed_in.append(i)
                assert report.failed == ["a"]  # healed in a tick in which "a" failed
    assert healed_in, "model b was never healed"
    [incident] = [i for i in heald.store.list_incidents(model="b") if i.kind is SymptomKind.ARTIFACT_CORRUPT]
    assert incident.status is IncidentStatus.RESOLVED
    assert [a.kind for a in heald.store.actions(incident_id=incident.id)] == [ActionKind.ROLLBACK]
    assert heald.store.actions(model="a") == []
    failures = heald.store.observations("a", metric="tick_failed")
    assert failures and all("RuntimeError: planner bug for a" in o.evidence["error"] for o in failures)
    events = [e for e in logged if e["event"] == "tick_failed"]
    assert events and {e["model"] for e in events} == {"a"}
    assert "planner bug for a" in events[0]["error"]
    assert heald.store.observations("b", metric="tick_failed") == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_heartbeat_follows_progress_not_health() -> None:
    """Progress holds while a tick runs within its bound and while the next tick is not overdue; a hung tick
    or a dead scheduler stops it; a tick that ends (however it went) restores it."""
    clock = FakeClock()
    beat = Heartbeat(interval=60, stall_after=300, clock=clock)
    assert beat.progressing()
    beat.tick_started()
    clock.now = 299
    assert beat.progressing()  # a slow tick within the bound
    clock.now = 301
    assert not beat.progressing()  # a hung tick
    beat.tick_ended()
    assert beat.progressing()  # it ended after all (the next start is due within interval + stall_after)
    clock.now = 301 + 60 + 300
    assert not beat.progressing()  # no tick started for an interval plus the bound: the scheduler is dead
    beat.tick_started()
    beat.tick_ended()
    assert beat.progressing()


def break_versions(database: Path, model: str) -> None:
    """Damage the version rows of ``model`` so that every read of its champion fails (bad JSON)."""
    with sqlite3.connect(database) as db:
        db.execute("UPDATE versions SET params = '{not json' WHERE model = ?", (model,))


@pytest.mark.slow
def test_the_watchdog_keeps_being_pinged_while_one_model_fails_every_tick(tmp_path: Path) -> None:
    """The real daemon under a notify socket: model "a" fails every tick (its version rows are damaged),
    "b" goes on; WATCHDOG=1 keeps coming, tick_failed names "a" and its error, STATUS says which model failed."""
    settings = make_settings(tmp_path / "state", tick_seconds=0.3, api_enabled=False, monitor=QUIET)
    heald = build(settings, clock=ManualClock(), pool="inline")
    for name in ("a", "b"):
        onboard(
            heald.store,
            heald.registry,
            name=name,
            frame=table(400, seed=5),
            target="y",
            now=heald.clock.now(),
            params=TrainParams(n_estimators=5, max_depth=4),
        )
    heald.close()
    break_versions(tmp_path / "state" / "heald.db", "a")
    config = tmp_path / "heald.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\ntick_seconds = 0.3\napi_enabled = false\n'
        "[monitor]\nmemory_percent = 0\ndisk_percent = 0\nload_per_cpu = 0\nrss_mb = 0\nanomaly = false\n",
        encoding="utf-8",
    )
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(60)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALD_", "WATCHDOG_"))}
    env["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
    out = (tmp_path / "stdout.jsonl").open("w")
    proc = subprocess.Popen([HEALD, "--config", str(config)], stdout=out, stderr=subprocess.PIPE, env=env)
    messages: list[str] = []

    def seen_enough() -> bool:
        # Pings follow the loop's progress, not whole ticks: on a busy machine six may come before two ticks end.
        lines = (tmp_path / "stdout.jsonl").read_text().splitlines()
        ended = sum('"tick_completed"' in line for line in lines)
        pings = sum("WATCHDOG=1" in m for m in messages)
        return pings >= 6 and ended >= 2 and any("tick failed for a" in m for m in messages)

    try:
        deadline = time.monotonic() + 240
        while not seen_enough() and time.monotonic() < deadline:
            messages.append(sock.recv(4096).decode())
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
        sock.close()
        out.close()
    assert sum("WATCHDOG=1" in m for m in messages) >= 6
    assert any("tick failed for a" in m for m in messages)
    logged = [json.loads(line) for line in (tmp_path / "stdout.jsonl").read_text().splitlines() if line.strip()]
    failed = [e for e in logged if e["event"] == "tick_failed"]
    assert failed and {e.get("model") for e in failed} == {"a"}
    assert "JSONDecodeError" in failed[0]["error"]
    completed = [e for e in logged if e["event"] == "tick_completed"]
    assert len(completed) >= 2 and all(e["failed"] == ["a"] for e in completed)
