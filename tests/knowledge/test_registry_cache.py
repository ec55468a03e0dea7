"""The registry's model cache is bounded: it holds the versions an alias names (what serving and rollback
need) and the one used last, not every version ever registered or loaded."""

from __future__ import annotations

from datetime import timedelta

from sklearn.dummy import DummyClassifier

from daemon.compose import Heald
from knowledge.clock import ManualClock
from knowledge.values import ModelRecord, Task
from tests.conftest import table


def test_the_cache_keeps_the_aliased_versions_only(heald: Heald, clock: ManualClock) -> None:
    """Twelve versions registered and promoted one after another: the cache ends with the champion, the
    stable version and the one used last (the champion it replaced), not twelve; an old version loaded for a
    look replaces that last one, and is dropped again by the next load."""
    frame = table(50)
    registry = heald.registry
    record = ModelRecord(name="m", task=Task.CLASSIFICATION, target="y", created_at=clock.now(), features=["a", "b"])
    heald.store.add_model(record)
    for n in range(1, 13):
        estimator = DummyClassifier().fit(frame[["a", "b"]], frame["y"])
        registry.register("m", estimator, at=clock.now(), reference=frame)
        registry.promote("m", n, at=clock.now(), actor="heald", reason="test")
        if n == 3:
            registry.mark_stable("m", 3, at=clock.now(), reason="served healthy")
        clock.advance(timedelta(minutes=1))
    assert registry.held() == [("m", 3), ("m", 11), ("m", 12)]
    registry.load(registry.version("m", 5))
    assert registry.held() == [("m", 3), ("m", 5), ("m", 12)]
    registry.load(registry.version("m", 7))
    assert registry.held() == [("m", 3), ("m", 7), ("m", 12)]
