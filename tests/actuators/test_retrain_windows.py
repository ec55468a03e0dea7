"""The retrain actuator picks its learning window on the newest rows: the symptom's, or the champion's longer one.

When a retrain made the current champion, a later retrain also fits on every row since that champion's data
began; the judging rows (the newest fifth), which neither window learns from, decide which one is kept.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from actuators.base import ActContext, ActSettings, Outcome
from actuators.retrain import RetrainActuator
from daemon.onboard import onboard
from knowledge.artifacts import ArtifactStore
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ActionKind, ActionState
from pipeline.train import TrainParams, train

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def rows(n: int, seed: int, flipped: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({f"x{i}": rng.uniform(-1, 1, n) for i in range(4)})
    label = (data["x0"] * data["x1"] + 0.5 * np.sin(3 * data["x2"]) - 0.3 * data["x3"]) > 0
    data["y"] = (label ^ flipped).astype(int)
    return data


def retrain_after(root: Path, *, concept_changed: bool) -> Outcome:
    """v2 was made by a retrain on rows since tick 1; a new retrain is asked for on rows since tick 5."""
    store = SqlKnowledgeStore.open(f"sqlite:///{root / 'heald.db'}")
    registry = ModelRegistry(store, ArtifactStore(root / "artifacts"))
    onboard(store, registry, name="m", frame=rows(300, 0), target="y", now=T0, params=TrainParams(n_estimators=5))
    for tick in range(1, 7):
        path = root / f"batch-{tick}.csv"
        rows(150, tick, flipped=concept_changed and tick >= 5).to_csv(path, index=False)
        store.add_batch(
            model="m",
            received_at=T0 + tick * HOUR,
            source="landing",
            path=str(path),
            rows=150,
            labelled=True,
            fingerprint="",
        )
    earlier = store.plan_action(
        model="m",
        kind=ActionKind.RETRAIN,
        at=T0 + HOUR,
        actor="heald",
        reason="drift",
        params={"since": (T0 + HOUR).isoformat()},
    )
    made = train(rows(300, 9), target="y", task="classification", params=TrainParams(n_estimators=5)).estimator
    v2 = registry.register("m", made, at=T0 + HOUR, reference=rows(50, 9), created_by=f"action:{earlier.id}")
    registry.promote("m", v2.number, at=T0 + HOUR, actor="heald", reason="retrain", action_id=earlier.id)
    action = store.plan_action(
        model="m",
        kind=ActionKind.RETRAIN,
        at=T0 + 6 * HOUR,
        actor="heald",
        reason="drop",
        params={"since": (T0 + 5 * HOUR).isoformat()},
    )
    store.transition_action(action.id, ActionState.RUNNING, at=T0 + 6 * HOUR)
    ctx = ActContext(
        now=T0 + 6 * HOUR,
        model=store.get_model("m"),
        registry=registry,
        store=store,
        settings=ActSettings(n_estimators=30, min_retrain_rows=100, n_jobs=1),
    )
    return RetrainActuator().execute(store.get_action(action.id), ctx)


def test_the_longer_window_wins_when_the_concept_has_not_changed(tmp_path: Path) -> None:
    """Same concept since tick 1: learning from all 840 older rows beats the symptom's 240."""
    outcome = retrain_after(tmp_path, concept_changed=False)
    assert outcome.result["window"] == "since the champion's data", outcome.result
    assert outcome.result["train_rows"] == 6 * 150 - 60
    assert set(outcome.result["windows"]) == {"since the symptom", "since the champion's data"}


def test_the_symptom_window_wins_when_the_concept_changed(tmp_path: Path) -> None:
    """Labels flipped from tick 5: the rows before it would teach the old concept, so they are left out."""
    outcome = retrain_after(tmp_path, concept_changed=True)
    assert outcome.result["window"] == "since the symptom", outcome.result
    assert outcome.result["train_rows"] == 240
    assert outcome.ok
