"""The demo on a machine whose host readings are over every limit (forced through the host gauge): the host's
trouble is one host incident, the model still heals and its retrained version still becomes stable, and every
decision to wait names the guard that made it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from daemon import demo
from daemon.compose import open_store
from daemon.guards import Guard
from daemon.rules import HOST
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ActionKind, SymptomKind
from sensors.host import FixedHostGauge

LOADED = {"cpu_percent": 100.0, "memory_percent": 97.0, "disk_percent": 50.0, "load_per_cpu": 9.0, "rss_mb": 300.0}


@pytest.fixture(scope="module")
def played(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, object], SqlKnowledgeStore, ModelRegistry]]:
    state = tmp_path_factory.mktemp("demo") / "state"
    figures = demo.run(state, demo.Scenario(), host_gauge=FixedHostGauge([LOADED]))
    store, registry = open_store(demo.demo_settings(state))
    yield figures, store, registry
    store.close()


@pytest.mark.slow
def test_a_loaded_host_does_not_stop_the_demo_from_healing(
    played: tuple[dict[str, object], SqlKnowledgeStore, ModelRegistry],
) -> None:
    """Host pressure opens one incident for the host (none on the model), its remedy never counts against the
    model, and the demo still reaches step 2: the retrained v2 is marked stable; the corruption is healed."""
    figures, store, registry = played
    host = store.list_incidents(model=HOST)
    assert [i.kind for i in host] == [SymptomKind.HOST_PRESSURE]
    assert not [i for i in store.list_incidents(model=demo.MODEL) if i.kind is SymptomKind.HOST_PRESSURE]
    assert all(a.kind is ActionKind.ALERT for a in store.actions(model=HOST))
    assert registry.version(demo.MODEL, 2).stable_at is not None
    assert registry.check(demo.MODEL) == []
    assert float(figures["accuracy_with_healing"]) > float(figures["accuracy_without_healing"]) + 0.2  # type: ignore[arg-type]


@pytest.mark.slow
def test_every_wait_in_the_demo_names_its_guard(
    played: tuple[dict[str, object], SqlKnowledgeStore, ModelRegistry],
) -> None:
    """Each decision to wait records the guard that held the remedy back; each action, the rule that chose it."""
    _, store, _ = played
    decisions = store.decisions()
    waits = [d for d in decisions if d.chosen is None]
    assert waits and {d.decided_by for d in waits} <= set(Guard)
    acted = [d for d in decisions if d.chosen is not None and d.chosen != ActionKind.ALERT]
    assert acted and all(d.decided_by.startswith(f"{Guard.RULE}:") for d in acted)
