"""The data and model sensors through the real loop: files dropped in the landing folder, then a tick."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from daemon.compose import Heald
from knowledge.clock import ManualClock
from knowledge.values import SymptomKind, Version
from tests.sensing import MODEL, TARGET, drop, shop_rows, tick


def incidents_of(watched: Heald, kind: SymptomKind) -> list[str]:
    return [i.summary for i in watched.store.list_incidents(model=MODEL) if i.kind is kind]


def test_onboarding_stores_a_profile_with_predictions_labels_and_confidence(watched: Heald, champion: Version) -> None:
    """Version 1 is registered with its reference summarised once, so ticks only read the new batch."""
    profile = champion.profile
    assert set(profile["columns"]) == {"price", "visits", "region"}
    assert profile["prediction"]["kind"] == "categorical" and profile["label"]["kind"] == "categorical"
    assert 0.5 < profile["confidence"]["accuracy"] <= 1.0
    assert len(profile["columns"]["price"]["sketch"]) == 1000


def test_bad_batches_get_a_data_quality_symptom_with_a_clear_reason(
    watched: Heald, champion: Version, rng: np.random.Generator, clock: ManualClock
) -> None:
    """New columns, missing columns, wrong types and all-NaN batches: a symptom naming the problem, no crash."""
    good = shop_rows(200, rng)
    drop(watched, "a-new-column.csv", good.assign(coupon="yes"))
    drop(watched, "b-missing-column.csv", good.drop(columns=["visits"]))
    drop(watched, "c-wrong-type.csv", good.assign(price=["cheap"] * 200))
    drop(watched, "d-only-nan.csv", pd.DataFrame(np.nan, index=range(50), columns=["price", "visits", "region"]))
    tick(watched, clock)
    [incident] = watched.store.list_incidents(model=MODEL)
    assert incident.kind is SymptomKind.DATA_QUALITY
    [symptom] = watched.store.symptoms(incident.id)
    reasons = "\n".join(symptom.evidence["reasons"])
    assert "column 'coupon' is not in the reference" in reasons
    # Schema and type problems are named by the intake's validation report (pipeline.validate).
    assert "missing columns 'visits'" in reasons
    assert "retyped columns price (numeric -> categorical)" in reasons
    assert "columns with no value in any of 50 rows: 'price', 'visits', 'region'" in reasons
    assert not [o for o in watched.store.observations(MODEL) if o.metric == "sensor_failed"]
    quarantine = watched.settings.state_dir / "quarantine" / MODEL
    notes = [json.loads(p.read_text()) for p in quarantine.glob("*.reason.json")]
    assert sorted(n["file"] for n in notes) == ["b-missing-column.csv", "c-wrong-type.csv", "d-only-nan.csv"]
    archived = list((watched.settings.state_dir / "batches" / MODEL).iterdir())
    assert [p.name.split("-", 1)[1] for p in archived] == ["a-new-column.csv"]


def test_drift_needs_persistence_then_resolves_after_hysteresis(
    watched: Heald, champion: Version, rng: np.random.Generator, clock: ManualClock
) -> None:
    """One drifted batch raises nothing; two of three open data_drift with its evidence; calm resolves it."""
    drop(watched, "1.csv", shop_rows(400, rng, shift=1.0, labelled=False))
    tick(watched, clock)
    assert incidents_of(watched, SymptomKind.DATA_DRIFT) == []
    drop(watched, "2.csv", shop_rows(400, rng, labelled=False))
    tick(watched, clock)
    drop(watched, "3.csv", shop_rows(400, rng, shift=1.0, labelled=False))
    tick(watched, clock)
    [summary] = incidents_of(watched, SymptomKind.DATA_DRIFT)
    assert summary.startswith("1 feature(s) drifted: price (ks=")
    [incident] = [i for i in watched.store.list_incidents(model=MODEL) if i.kind is SymptomKind.DATA_DRIFT]
    evidence = watched.store.symptoms(incident.id)[0].evidence
    assert evidence["features"]["price"]["verdict"] == "drift"
    assert evidence["features"]["visits"]["verdict"] == "no drift"
    assert evidence["correction"] == "holm" and len(evidence["readings"]) == 2
    for name in ("4.csv", "5.csv"):
        drop(watched, name, shop_rows(400, rng, labelled=False))
        tick(watched, clock)
    assert watched.store.get_incident(incident.id).status.value == "resolved"


def test_a_small_batch_gets_no_drift_verdict(
    watched: Heald, champion: Version, rng: np.random.Generator, clock: ManualClock
) -> None:
    """Below drift_min_rows the sensor says how many rows it saw and gives no drift reading."""
    drop(watched, "small.csv", shop_rows(40, rng, shift=3.0, labelled=False))
    tick(watched, clock)
    metrics = {o.metric: o for o in watched.store.observations(MODEL)}
    assert "drift_share" not in metrics
    assert metrics["drift_rows_short"].value == 40.0


def test_labelled_batches_give_performance_over_a_rolling_window(
    watched: Heald, champion: Version, rng: np.random.Generator, clock: ManualClock
) -> None:
    """Each labelled batch is scored, and the window accumulates the champion's recent labelled rows."""
    for name in ("1.csv", "2.csv", "3.csv"):
        drop(watched, name, shop_rows(300, rng))
        tick(watched, clock)
    window = watched.store.observations(MODEL, metric="performance_window")
    assert [o.evidence["rows"] for o in window] == [300, 600, 900]
    assert all(o.evidence["metric"] == "accuracy" and 0.8 < o.value <= 1.0 for o in window)
    per_batch = watched.store.observations(MODEL, metric="performance")
    assert window[-1].value == np.average([o.value for o in per_batch], weights=[300, 300, 300])


def test_unlabelled_batches_get_an_accuracy_estimate_marked_as_such(
    watched: Heald, champion: Version, rng: np.random.Generator, clock: ManualClock
) -> None:
    """Without labels the model sensor estimates accuracy from calibrated confidence and says so."""
    drop(watched, "1.csv", shop_rows(400, rng, labelled=False))
    tick(watched, clock)
    [estimate] = watched.store.observations(MODEL, metric="accuracy_estimate")
    assert estimate.evidence["estimate"] is True
    assert estimate.evidence["method"] == "difference_of_confidences"
    assert abs(estimate.value - champion.profile["confidence"]["accuracy"]) < 0.05
    assert watched.store.observations(MODEL, metric="performance") == []
    assert TARGET not in shop_rows(1, rng, labelled=False).columns
