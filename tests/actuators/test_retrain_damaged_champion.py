"""The retrain actuator does not keep a champion whose model file no longer verifies on disk.

The registry caches loaded models, so a damaged champion can still predict in memory; but a restarted
daemon could not load it, so any challenger must replace it, even one that scores lower.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from actuators.base import ActContext, ActSettings
from actuators.retrain import RetrainActuator
from daemon.onboard import onboard
from knowledge.artifacts import ArtifactStore
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ActionKind, ActionState
from pipeline.train import TrainParams

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows), "c": rng.normal(size=rows)})
    data["y"] = ((data["a"] + 0.5 * data["b"] * data["c"]) > 0).astype(int)
    return data


def setup(root: Path) -> tuple[SqlKnowledgeStore, ModelRegistry, ActContext, int]:
    """A strong champion and 120 recent labelled rows, from which a one-split stump is a weak challenger."""
    store = SqlKnowledgeStore.open(f"sqlite:///{root / 'heald.db'}")
    registry = ModelRegistry(store, ArtifactStore(root / "artifacts"))
    onboard(store, registry, name="m", frame=frame(2000, 0), target="y", now=T0, params=TrainParams(n_estimators=30))
    recent = root / "recent.csv"
    frame(120, 1).to_csv(recent, index=False)
    store.add_batch(
        model="m",
        received_at=T0 + timedelta(hours=1),
        source="landing",
        path=str(recent),
        rows=120,
        labelled=True,
        fingerprint="",
    )
    action = store.plan_action(
        model="m",
        kind=ActionKind.RETRAIN,
        at=T0 + timedelta(hours=1),
        actor="heald",
        reason="test",
        params={"since": T0.isoformat()},
    )
    store.transition_action(action.id, ActionState.RUNNING, at=T0 + timedelta(hours=1))
    ctx = ActContext(
        now=T0 + timedelta(hours=1),
        model=store.get_model("m"),
        registry=registry,
        store=store,
        settings=ActSettings(n_estimators=1, max_depth=1, min_retrain_rows=50, n_jobs=1),
    )
    return store, registry, ctx, action.id


def test_a_weaker_challenger_does_not_replace_a_sound_champion(tmp_path: Path) -> None:
    """Control: with the champion's file intact, the stump loses on the judging rows and v1 stays."""
    store, registry, ctx, action_id = setup(tmp_path)
    registry.load(registry.champion("m"))  # type: ignore[arg-type]
    outcome = RetrainActuator().execute(store.get_action(action_id), ctx)
    assert not outcome.ok
    assert registry.champion("m").number == 1  # type: ignore[union-attr]


def test_a_champion_whose_file_fails_its_checksum_is_replaced(tmp_path: Path) -> None:
    """With v1's file damaged on disk (though still cached in memory), the stump is promoted."""
    store, registry, ctx, action_id = setup(tmp_path)
    champion = registry.champion("m")
    assert champion is not None
    registry.load(champion)  # cached: predictions in memory still work
    path = tmp_path / "artifacts" / champion.artifact
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    outcome = RetrainActuator().execute(store.get_action(action_id), ctx)
    assert outcome.ok, outcome.detail
    assert outcome.result["champion"] is None
    assert registry.champion("m").number == 2  # type: ignore[union-attr]
    assert registry.check("m") == []
