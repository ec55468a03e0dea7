"""Crash safety: a process promoting and rolling back versions is killed with SIGKILL at random moments;
after every kill the registry must verify (champion exists, loads, sha256 matches, history consistent)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from knowledge.artifacts import ArtifactStore
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ModelRecord, Task
from pipeline.train import train
from tests.conftest import table

KILLS = 32
ROOT = Path(__file__).resolve().parents[2]


def seed_registry(state: Path) -> None:
    store = SqlKnowledgeStore.open(f"sqlite:///{state / 'k.db'}")
    registry = ModelRegistry(store, ArtifactStore(state / "artifacts"))
    now = datetime.now(UTC)
    store.add_model(ModelRecord(name="m", task=Task.CLASSIFICATION, target="y", features=["a", "b"], created_at=now))
    frame = table(200)
    trained = train(frame[["a", "b", "y"]], target="y", task="classification")
    version = registry.register("m", trained.estimator, at=now, reference=frame[["a", "b"]])
    registry.promote("m", version.number, at=now, actor="healctl", reason="first")
    registry.mark_stable("m", version.number, at=now, reason="first")
    store.close()


def kill_at_random(state: Path, seed: int, rng: random.Random) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.knowledge.crash_worker", str(state), str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL


@pytest.mark.slow
def test_registry_survives_sigkill_at_random_moments(tmp_path: Path) -> None:
    """After each of 32 SIGKILLs the champion loads, verifies and its alias history is consistent."""
    seed_registry(tmp_path)
    rng = random.Random(20261127)
    moves_seen = set()
    for kill in range(KILLS):
        kill_at_random(tmp_path, kill, rng)
        with sqlite3.connect(tmp_path / "k.db") as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        store = SqlKnowledgeStore.open(f"sqlite:///{tmp_path / 'k.db'}")
        registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"))
        assert registry.check("m") == [], f"after kill {kill}"
        moves_seen.add(len(store.alias_history("m")))
        store.close()
    # The worker really churned between kills: the history grew, so kills hit a busy registry.
    assert max(moves_seen) > 20
