"""Label drift through the real loop: labels spelled differently from the reference are the same classes."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.compose import Heald
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import SymptomKind, Version
from pipeline.train import TrainParams
from tests.sensing import MODEL, TARGET, drop, shop_rows, tick


@pytest.fixture
def float_champion(watched: Heald, rng: np.random.Generator, clock: ManualClock) -> Version:
    """Model ``shop`` onboarded on a table whose labels were read as floats (0.0 / 1.0)."""
    frame = shop_rows(1500, rng)
    frame[TARGET] = frame[TARGET].astype(float)
    return onboard(
        watched.store,
        watched.registry,
        name=MODEL,
        frame=frame,
        target=TARGET,
        now=clock.now(),
        params=TrainParams(n_estimators=20, max_depth=8, n_jobs=1),
    )


def label_readings(watched: Heald) -> list[bool]:
    return [bool(o.evidence["drifted"]) for o in watched.store.observations(MODEL, metric="label_drift")]


def test_float_reference_labels_and_int_batch_labels_open_no_drift_incident(
    watched: Heald, float_champion: Version, rng: np.random.Generator, clock: ManualClock
) -> None:
    """Five labelled batches with integer labels against a float reference: label drift is never flagged."""
    assert float_champion.profile["label"]["frequencies"].keys() == {"0", "1"}
    for i in range(5):
        drop(watched, f"{i}.csv", shop_rows(400, rng))
        tick(watched, clock)
    readings = label_readings(watched)
    assert len(readings) == 5 and not any(readings)
    assert [i for i in watched.store.list_incidents(model=MODEL) if i.kind is SymptomKind.DATA_DRIFT] == []


def test_a_tick_mixing_labelled_and_unlabelled_files_opens_no_drift_incident(
    watched: Heald, float_champion: Version, rng: np.random.Generator, clock: ManualClock
) -> None:
    """An unlabelled and a labelled file in one tick (the labels become floats with gaps): no label drift."""
    for i in range(4):
        drop(watched, f"{i}-a-unlabelled.csv", shop_rows(300, rng, labelled=False))
        drop(watched, f"{i}-b-labelled.csv", shop_rows(300, rng))
        tick(watched, clock)
    readings = label_readings(watched)
    assert len(readings) == 4 and not any(readings)
    assert [i for i in watched.store.list_incidents(model=MODEL) if i.kind is SymptomKind.DATA_DRIFT] == []
    performance = watched.store.observations(MODEL, metric="performance")
    assert len(performance) == 4 and all(o.value > 0.8 for o in performance)


def test_a_batch_with_labels_outside_the_classes_is_quarantined_with_its_reason(
    watched: Heald, float_champion: Version, rng: np.random.Generator, clock: ManualClock
) -> None:
    """A labelled batch holding class 42 and "maybe" for a 0/1 target is quarantined, the reason naming them."""
    bad = shop_rows(200, rng).astype({TARGET: object})
    bad.loc[0, TARGET], bad.loc[1, TARGET] = 42, "maybe"
    drop(watched, "bad-labels.csv", bad)
    tick(watched, clock)
    [batch] = watched.store.batches(MODEL, status=None)
    assert batch.status == "quarantined"
    assert "42" in batch.reason and "'maybe'" in batch.reason and TARGET in batch.reason
    notes = list((watched.settings.state_dir / "quarantine" / MODEL).glob("*.reason.json"))
    assert len(notes) == 1 and "not one of the model's classes" in notes[0].read_text()
