"""/metrics tells the truth: liveness of the loop, incidents, actions and batches with their zero series,
serving from memory, build and process metrics, all in a text format that promtool accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import version

import pytest

from daemon.compose import Heald
from daemon.metrics import SKIP_REASONS, Metrics
from daemon.service import Service
from knowledge.registry import ModelRegistry
from knowledge.sql.store import ACTIVE_INCIDENT
from knowledge.values import ActionKind, ActionState, IncidentStatus, Severity, Symptom, SymptomKind, Version
from tests.sensing import MODEL

PROMTOOL = shutil.which("promtool")


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one series ``name{labels}`` in exposition ``text`` (labels in any order)."""
    found = []
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            found.append(float(match.group(3)))
    assert len(found) == 1, f"{name}{labels}: {len(found)} series"
    return found[0]


def test_exposition_passes_promtool(watched: Heald, champion: Version) -> None:
    """`promtool check metrics` finds no problem (names, units, help, counters ending in _total)."""
    assert PROMTOOL, "promtool is missing: `make test` installs it through scripts/system-deps"
    text = Metrics(watched.store, watched.registry).render()
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_incidents_actions_and_batches_have_zero_series(watched: Heald, champion: Version) -> None:
    """Every kind and status is exported for a model with no history yet, so `== 0` alerts can match."""
    text = Metrics(watched.store, watched.registry).render().decode()
    for kind in SymptomKind:
        for status in ACTIVE_INCIDENT:
            assert sample(text, "heald_incidents_open", model=MODEL, kind=kind.value, status=status.value) == 0
    for action in ActionKind:
        for result in ("succeeded", "failed", "aborted"):
            assert sample(text, "heald_actions_total", kind=action.value, result=result) == 0
    for status in ("accepted", "quarantined"):
        assert sample(text, "heald_batches_total", model=MODEL, status=status) == 0
    for reason in SKIP_REASONS:
        assert sample(text, "heald_ticks_skipped_total", reason=reason) == 0


def test_counts_follow_the_knowledge_store(watched: Heald, champion: Version) -> None:
    """An escalated incident, a failed retrain and a quarantined batch each show up in their own series; batch
    counters keep counting batches whose files retention removed."""
    store, now = watched.store, watched.clock.now()
    symptom = Symptom(at=now, model=MODEL, kind=SymptomKind.DATA_DRIFT, severity=Severity.WARNING, score=1, summary="x")
    incident = store.open_incident(symptom)
    store.update_incident(incident.id, status=IncidentStatus.ESCALATED, updated_at=now)
    action = store.plan_action(model=MODEL, kind=ActionKind.RETRAIN, at=now, actor="heald", reason="drift")
    store.transition_action(action.id, ActionState.RUNNING, at=now)
    store.transition_action(action.id, ActionState.FAILED, at=now, error="boom")
    for status in ("accepted", "accepted", "quarantined"):
        store.add_batch(
            model=MODEL,
            received_at=now,
            source="landing",
            path="b.csv",
            rows=5,
            labelled=False,
            fingerprint="f",
            status=status,
        )
    text = Metrics(watched.store, watched.registry).render().decode()
    assert sample(text, "heald_incidents_open", model=MODEL, kind="data_drift", status="escalated") == 1
    assert sample(text, "heald_incidents_open", model=MODEL, kind="data_drift", status="open") == 0
    assert sample(text, "heald_actions_total", kind="retrain", result="failed") == 1
    assert sample(text, "heald_batches_total", model=MODEL, status="accepted") == 2
    assert sample(text, "heald_batches_total", model=MODEL, status="quarantined") == 1
    # Retention turning old batches into tombstones must not make a counter go down.
    store.collect_batches(store.batches(MODEL, status=None), at=now)
    assert {b.status for b in store.batches(MODEL, status=None)} == {"collected", "quarantine_gone"}
    text = Metrics(watched.store, watched.registry).render().decode()
    assert sample(text, "heald_batches_total", model=MODEL, status="accepted") == 2
    assert sample(text, "heald_batches_total", model=MODEL, status="quarantined") == 1


def test_build_and_process_metrics(watched: Heald) -> None:
    """heald_build_info names the installed version; process metrics (memory, CPU, start time) are there."""
    text = Metrics(watched.store, watched.registry).render().decode()
    assert sample(text, "heald_build_info", version=version("heald")) == 1
    assert sample(text, "process_resident_memory_bytes") > 0
    assert sample(text, "process_start_time_seconds") > 0


def test_ticks_are_timed_and_failures_counted(watched: Heald, champion: Version) -> None:
    """A completed tick sets the last-success time and one duration; a failing one counts as skipped."""
    service = Service(watched, None)
    before = service.metrics.render().decode()
    assert sample(before, "heald_last_successful_tick_timestamp_seconds") == 0
    assert sample(before, "heald_tick_interval_seconds") == watched.settings.tick_seconds
    service.tick()
    after = service.metrics.render().decode()
    assert sample(after, "heald_last_successful_tick_timestamp_seconds") > 0
    assert sample(after, "heald_tick_duration_seconds_count") == 1

    def broken() -> None:
        raise RuntimeError("store went away")

    watched.loop.tick = broken  # type: ignore[method-assign,assignment]
    service.tick()
    failed = service.metrics.render().decode()
    assert sample(failed, "heald_ticks_skipped_total", reason="failed") == 1
    assert sample(failed, "heald_tick_duration_seconds_count") == 1


@pytest.mark.parametrize("loaded", [True, False])
def test_serving_from_cache(watched: Heald, champion: Version, loaded: bool) -> None:
    """A champion whose file broke is 'served from cache' only while this process holds it in memory."""
    serving = ModelRegistry(watched.store, watched.registry.artifacts)  # a process that has not loaded it yet
    if loaded:
        serving.load(champion)
    (watched.settings.artifacts / champion.artifact).write_bytes(b"damaged")
    watched.loop.tick()
    text = Metrics(watched.store, serving).render().decode()
    assert sample(text, "heald_champion_artifact_ok", model=MODEL) == 0
    assert sample(text, "heald_serving_from_cache", model=MODEL) == float(loaded)
