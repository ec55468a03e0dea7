"""Two real ``heald`` processes on one real PostgreSQL: a follower's (re)start never touches the leader's
actions, a leader SIGKILLed mid-retrain is replaced within two ticks by one that settles its action and
acts, and a leader frozen (SIGSTOP) after choosing an action writes nothing once it wakes up after a
takeover.

The test holds the moment it needs with PostgreSQL's own table locks, not with sleeps: ``LOCK TABLE ... IN
SHARE MODE`` lets every read through but makes the leader's next write to that table wait, so the test
knows (from ``pg_stat_activity``) that the leader is exactly there before it kills or freezes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, create_engine, text

from daemon.onboard import onboard
from knowledge.artifacts import ArtifactStore
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Action, ActionKind, ActionState, Alias
from pipeline.train import TrainParams
from tests.conftest import table

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
T = TypeVar("T")

HEALD = str(Path(sys.executable).parent / "heald")
TICK = 3.0  # seconds; the lease TTL is one tick
PATIENCE = 240.0  # seconds before a wait gives up (a busy machine is slow; this is not what is tested)


@dataclass
class Daemon:
    """One heald process and its JSON log."""

    name: str
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    runs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEALD_")}
        with self.log.open("a") as out:
            self.proc = subprocess.Popen([HEALD, "--config", str(self.config)], stdout=out, stderr=out, env=env)
        self.runs.append(self.proc)

    @property
    def holder(self) -> str:
        assert self.proc is not None
        return f"{os.uname().nodename}:{self.proc.pid}"

    def events(self) -> list[dict[str, object]]:
        found = []
        for line in self.log.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written, or a traceback on stderr
                continue
        return found

    def ticks(self) -> int:
        """Ticks this process completed (the service numbers them from 1)."""
        return sum(1 for e in self.events() if e.get("event") == "tick_completed" and "tick" in e)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        for proc in self.runs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def wait_for(what: str, check: Callable[[], T | None]) -> T:
    """Poll ``check`` until it returns something truthy (a generous bound only to never hang the suite)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")


@dataclass
class World:
    """The shared knowledge store, artifacts folder and the two daemons' configs."""

    url: str
    store: SqlKnowledgeStore
    engine: Engine
    artifacts: Path
    a: Daemon
    b: Daemon

    def lease(self) -> tuple[str, int] | None:
        with self.engine.connect() as c:
            row = c.execute(text("SELECT holder, epoch FROM leases WHERE name = 'actor'")).first()
        return None if row is None else (str(row.holder), int(row.epoch))

    def leader_epoch(self, daemon: Daemon) -> int | None:
        lease = self.lease()
        return lease[1] if lease is not None and lease[0] == daemon.holder else None

    def waiting_on_lock(self, statement: str) -> bool:
        """Whether some session waits on a table lock while running ``statement...``."""
        with self.engine.connect() as c:
            found = c.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE :q"),
                {"q": f"{statement}%"},
            ).scalar()
        return bool(found)

    def corrupt_champion(self) -> None:
        champion = self.store.get_version("m", self.store.alias("m", Alias.CHAMPION) or 0)
        (self.artifacts / champion.artifact).write_bytes(b"not a model any more")

    def retrains(self) -> list[Action]:
        return list(self.store.actions(model="m", kind=ActionKind.RETRAIN))

    def count(self, table: str, epoch: int) -> int:
        with self.engine.connect() as c:
            return int(c.execute(text(f"SELECT count(*) FROM {table} WHERE epoch = :e"), {"e": epoch}).scalar() or 0)


def config(path: Path, url: str, state: Path, shared: Path) -> Path:
    path.write_text(
        f"""state_dir = "{state}"
database_url = "{url}"
model_path = "{shared / "artifacts"}"
data_path = "{shared / "landing"}"
tick_seconds = {TICK}
executor = "threads"
api_enabled = false
n_estimators = 20
max_depth = 8
[policy]
persistence = 1
window = 1
cooldown_seconds = 0
min_retrain_rows = 300
[monitor]
anomaly = false
memory_percent = 0
disk_percent = 0
load_per_cpu = 0
rss_mb = 0
[[models]]
name = "m"
target = "y"
task = "classification"
min_accuracy = 0.5
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def world(tmp_path: Path, pg_url: str) -> Iterator[World]:
    """Model ``m`` onboarded (v1 champion and stable) with 600 labelled rows it served, and two daemons
    configured on the same store and artifacts (not started)."""
    shared = tmp_path / "shared"
    store = SqlKnowledgeStore.open(pg_url)
    registry = ModelRegistry(store, ArtifactStore(shared / "artifacts"))
    now = datetime.now(UTC) - timedelta(minutes=5)
    onboard(
        store, registry, name="m", frame=table(1500, seed=1), target="y", now=now, params=TrainParams(n_estimators=20)
    )
    served = shared / "served"
    served.mkdir(parents=True)
    for i in range(2):
        path = served / f"b{i}.csv"
        table(300, seed=10 + i).to_csv(path, index=False)
        store.add_batch(
            model="m",
            received_at=now + timedelta(minutes=1 + i),
            source="landing",
            path=str(path),
            rows=300,
            labelled=True,
            fingerprint=f"served-{i}",
        )
    a = Daemon("a", config(tmp_path / "a.toml", pg_url, tmp_path / "a", shared), tmp_path / "a.jsonl")
    b = Daemon("b", config(tmp_path / "b.toml", pg_url, tmp_path / "b", shared), tmp_path / "b.jsonl")
    engine = create_engine(pg_url)
    built = World(url=pg_url, store=store, engine=engine, artifacts=shared / "artifacts", a=a, b=b)
    try:
        yield built
    finally:
        a.stop()
        b.stop()
        engine.dispose()
        store.close()


def finished(world: World, action_id: int) -> Action | None:
    action = world.store.get_action(action_id)
    return action if action.state.finished else None


def lead(world: World) -> int:
    """Start daemon a and wait until it holds the lease and ticked; then start daemon b: a's epoch."""
    world.a.start()
    epoch = wait_for("daemon a to take the lease", lambda: world.leader_epoch(world.a))
    wait_for("daemon a to tick", lambda: world.a.ticks() >= 1)
    world.b.start()
    wait_for("daemon b to tick as a follower", lambda: world.b.ticks() >= 1)
    assert world.leader_epoch(world.a) == epoch
    return epoch


def test_a_follower_restart_never_changes_the_leaders_action(world: World) -> None:
    """While the leader's retrain runs, a follower started, stopped (SIGTERM), killed (SIGKILL) and started
    again never touches it; the leader then finishes it itself."""
    epoch = lead(world)
    with world.engine.connect() as hold:
        hold.execute(text("LOCK TABLE alias_history IN SHARE MODE"))  # the retrain waits before it promotes
        world.corrupt_champion()
        wait_for("the leader's retrain to be running", lambda: world.waiting_on_lock("INSERT INTO alias_history"))
        (action,) = world.retrains()
        assert action.state is ActionState.RUNNING and action.epoch == epoch
        for how in (signal.SIGTERM, signal.SIGKILL, None):
            ticks = world.b.ticks()
            wait_for("the follower to tick twice", lambda t=ticks: world.b.ticks() >= t + 2)
            if how is not None:
                world.b.signal(how)
                assert world.b.proc is not None
                world.b.proc.wait(timeout=PATIENCE)
                world.b.start()
        events = [e["state"] for e in world.store.action_events(action.id)]
        assert events == ["planned", "running"]
        assert world.leader_epoch(world.a) == epoch
        hold.commit()
    done = wait_for("the leader to finish its retrain", lambda: finished(world, action.id))
    assert done.state is ActionState.SUCCEEDED
    assert world.retrains() == [done]
    follower_events = {e.get("event") for e in world.b.events()}
    assert "action_reconciled" not in follower_events and "action_started" not in follower_events


def test_the_leader_killed_mid_retrain_is_replaced_within_two_ticks(world: World) -> None:
    """SIGKILL while the leader's retrain runs: the follower takes the lease, settles that retrain by looking
    at the world (no promotion happened: aborted) and starts its own, within two of its ticks."""
    old = lead(world)
    with world.engine.connect() as hold:
        hold.execute(text("LOCK TABLE alias_history IN SHARE MODE"))
        world.corrupt_champion()
        wait_for("the leader's retrain to be running", lambda: world.waiting_on_lock("INSERT INTO alias_history"))
        (dead,) = world.retrains()
        world.a.signal(signal.SIGKILL)
        assert world.a.proc is not None
        world.a.proc.wait(timeout=PATIENCE)
        ticks_at_death = world.b.ticks()
        hold.commit()  # the dead leader's half-written promotion is rolled back by PostgreSQL
    new = wait_for("daemon b to take the lease", lambda: world.leader_epoch(world.b))
    assert new == old + 1
    mine = wait_for(
        "daemon b to start a retrain",
        lambda: [a for a in world.retrains() if a.epoch == new],
    )
    settled = world.store.get_action(dead.id)
    assert settled.state is ActionState.ABORTED
    assert "no effect found" in world.store.action_events(settled.id)[-1]["detail"]
    started = wait_for(
        "daemon b to log the start",
        lambda: next((e for e in world.b.events() if e.get("event") == "action_started"), None),
    )
    assert started["action_id"] == mine[0].id
    # The start is logged within the second tick b began after the death (ticks are numbered in order).
    events = world.b.events()
    at = events.index(started)
    finished_before = sum(1 for e in events[:at] if e.get("event") == "tick_completed" and "tick" in e)
    assert finished_before <= ticks_at_death + 2
    assert wait_for("b's retrain to finish", lambda: finished(world, mine[0].id)).state is ActionState.SUCCEEDED
    champion = world.store.alias_history("m", Alias.CHAMPION)[-1]
    assert champion.epoch == new and champion.action_id == mine[0].id


def test_a_frozen_leader_resumed_after_a_takeover_writes_nothing(world: World) -> None:
    """SIGSTOP right after the leader chose a retrain (its journal write waits on a lock), a takeover, the
    new leader's own retrain, then SIGCONT: the stale leader's write is refused; 0 actions and 0 alias moves
    carry its epoch, and the incident was healed once."""
    old = lead(world)
    before = (world.count("actions", old), world.count("alias_history", old))
    with world.engine.connect() as hold:
        hold.execute(text("LOCK TABLE actions IN SHARE MODE"))  # the leader's plan_action waits on it
        world.corrupt_champion()
        wait_for("the leader to have chosen an action", lambda: world.waiting_on_lock("INSERT INTO actions"))
        world.a.signal(signal.SIGSTOP)
        hold.commit()
    new = wait_for("daemon b to take the lease", lambda: world.leader_epoch(world.b))
    assert new == old + 1
    mine = wait_for(
        "daemon b's retrain to succeed",
        lambda: [a for a in world.retrains() if a.state is ActionState.SUCCEEDED],
    )
    ticks = world.a.ticks()
    world.a.signal(signal.SIGCONT)
    fenced = wait_for(
        "the resumed leader to be fenced",
        lambda: next((e for e in world.a.events() if e.get("event") == "leadership_fenced"), None),
    )
    assert f"lease epoch {old} is stale" in str(fenced["error"])
    wait_for("the resumed daemon to tick again", lambda: world.a.ticks() >= ticks + 2)
    assert (world.count("actions", old), world.count("alias_history", old)) == before
    assert [a.epoch for a in world.retrains()] == [new]
    assert len(mine) == 1
    moves = [m for m in world.store.alias_history("m", Alias.CHAMPION) if m.epoch is not None]
    assert [m.epoch for m in moves] == [new]
    assert world.leader_epoch(world.b) == new
