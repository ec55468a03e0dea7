"""A process that churns the registry (register, promote, roll back, mark stable) until it is killed.

Run by test_crash.py, which kills it with SIGKILL at random moments and then checks the registry.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from knowledge.artifacts import ArtifactStore
from knowledge.errors import ActionError, ArtifactError, StoreError
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore


def main(state: Path, seed: int) -> None:
    rng = random.Random(seed)
    registry = ModelRegistry(SqlKnowledgeStore.open(f"sqlite:///{state / 'k.db'}"), ArtifactStore(state / "artifacts"))
    gen = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": gen.normal(size=300), "b": gen.normal(size=300)})
    frame["y"] = (frame["a"] + frame["b"] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=5, random_state=seed).fit(frame[["a", "b"]], frame["y"])
    print("ready", flush=True)
    while True:
        now = datetime.now(UTC)
        step = rng.random()
        try:
            if step < 0.3:
                registry.register("m", forest, at=now, reference=frame[["a", "b"]])
            elif step < 0.6:
                numbers = [v.number for v in registry.store.list_versions("m") if v.rolled_back_at is None]
                registry.promote("m", rng.choice(numbers), at=now, actor="heald", reason="churn")
            elif step < 0.8:
                registry.rollback("m", at=now, actor="heald", reason="churn")
            else:
                champion = registry.champion("m")
                if champion is not None:
                    registry.mark_stable("m", champion.number, at=now, reason="churn")
        except (ActionError, ArtifactError, StoreError):
            pass


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
