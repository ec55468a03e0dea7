"""Effect measures that see spread and share changes, heald's own columns left alone, and a cheap profile."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import distance

from pipeline.drift import DRIFT, NO_DRIFT, DriftSettings, compare, jensen_shannon
from pipeline.profile import bin_shares, build_profile, category_counts, sorted_bin_shares, sorted_quantiles

SHARES = [0.4, 0.3, 0.2, 0.1]
MOVED = [0.3, 0.3, 0.2, 0.2]  # 10 points moved from the commonest category to the rarest


def planted(rows: int, rng: np.random.Generator, *, drift: bool) -> pd.DataFrame:
    """A mean shift of 0.5 sd, an sd x1.5 and category shares moved by 10 points, plus an unchanged control."""
    return pd.DataFrame(
        {
            "mean": rng.normal(0.5 if drift else 0.0, 1.0, rows),
            "spread": rng.normal(0.0, 1.5 if drift else 1.0, rows),
            "shares": rng.choice(["a", "b", "c", "d"], rows, p=MOVED if drift else SHARES),
            "control": rng.normal(0.0, 1.0, rows),
        }
    )


def test_spread_and_share_changes_are_flagged_and_the_control_is_not() -> None:
    """sd x1.5 barely moves KS D but the normalised Wasserstein sees it; JS reaches its floor on 10 points moved."""
    rng = np.random.default_rng(1)
    report = compare(build_profile(planted(50_000, rng, drift=False)), planted(10_000, rng, drift=True))
    assert report.drifted() == ["mean", "spread", "shares"]
    spread = report.column("spread")
    assert spread is not None and spread.statistic < 0.1  # KS alone would have missed it
    assert spread.effect_name == "wasserstein_norm" and spread.effect > 0.3
    shares = report.column("shares")
    assert shares is not None and shares.details["js"] >= shares.details["floor_js"]
    control = report.column("control")
    assert control is not None and control.verdict == NO_DRIFT


def test_the_same_data_is_not_drift() -> None:
    """Two samples of one distribution: nothing flagged, whatever the effect measures read."""
    rng = np.random.default_rng(2)
    report = compare(build_profile(planted(50_000, rng, drift=False)), planted(10_000, rng, drift=False))
    assert report.drifted(role=None) == []


def test_a_significant_but_tiny_effect_is_not_drift_and_the_reason_names_every_floor() -> None:
    """With a million rows a 0.03 sd shift is significant; below every floor it is no drift, and says why."""
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(0.0, 1.0, 200_000)})
    current = pd.DataFrame({"x": rng.normal(0.03, 1.0, 200_000)})
    [column] = compare(build_profile(reference), current).columns
    assert column.pvalue < 0.05 and column.verdict == NO_DRIFT
    assert "ks=" in column.reason and "wasserstein_norm=" in column.reason and "below the effect floor" in column.reason


def test_floors_come_from_the_settings() -> None:
    """Floors above the planted effects turn those verdicts to no drift, though each is still significant."""
    rng = np.random.default_rng(4)
    profile = build_profile(planted(20_000, rng, drift=False))
    strict = DriftSettings(min_effect=0.9, min_wasserstein=0.9, min_js=0.9, min_psi=9.0)
    report = compare(profile, planted(10_000, rng, drift=True), settings=strict)
    assert report.drifted() == []
    assert all(c.pvalue < 1e-10 for c in report.columns if c.column != "control")


def test_heald_own_columns_are_never_checked() -> None:
    """request_id and the capture time are not profiled and not tested, even if a reference file carries them."""
    rng = np.random.default_rng(5)
    reference = planted(2_000, rng, drift=False).assign(request_id=[f"r{i}" for i in range(2_000)], served_at=1.0)
    current = planted(500, rng, drift=False).assign(request_id=[f"s{i}" for i in range(500)], served_at=2.0)
    profile = build_profile(reference)
    assert "request_id" not in profile.columns and "served_at" not in profile.columns
    report = compare(profile, current)
    assert {c.column for c in report.columns} == {"mean", "spread", "shares", "control"}


def test_labels_read_as_floats_in_the_reference_and_ints_in_the_batch_are_not_drift() -> None:
    """The label test compares canonical classes: 0.0/1.0 against 0/1 is the same distribution."""
    rng = np.random.default_rng(6)
    frame = planted(2_000, rng, drift=False)
    labels = pd.Series(rng.integers(0, 2, 2_000).astype(float))
    profile = build_profile(frame, labels=labels, classification=True)
    current_labels = pd.Series(rng.integers(0, 2, 1_000))
    report = compare(profile, planted(1_000, rng, drift=False), labels=current_labels)
    label = report.column("label", "label")
    assert label is not None and label.verdict == NO_DRIFT and label.effect < 0.05


def test_jensen_shannon_matches_scipy() -> None:
    """Our JS distance is scipy's (natural log), including categories empty on one side."""
    e, a = np.array([0.5, 0.3, 0.2, 0.0]), np.array([0.4, 0.4, 0.1, 0.1])
    assert np.isclose(jensen_shannon(e, a), distance.jensenshannon(e, a))


def test_profile_reads_quantiles_and_bins_off_one_sort() -> None:
    """Quantiles and bin shares read from the sorted column equal numpy's own on the unsorted one."""
    rng = np.random.default_rng(7)
    numbers = np.round(rng.normal(size=5_001), 1)  # ties on the edges too
    ordered = np.sort(numbers)
    quantiles = np.linspace(0, 1, 11)
    assert np.allclose(sorted_quantiles(ordered, quantiles), np.quantile(numbers, quantiles))
    edges = np.unique(np.quantile(numbers, quantiles))
    assert np.allclose(sorted_bin_shares(ordered, edges), bin_shares(numbers, edges))


def test_categories_are_counted_by_their_text_without_converting_every_row() -> None:
    """1 and "1" in one column are one category; missing values are not counted."""
    counts = category_counts(pd.Series([1, "1", "a", None, "a", "a"], dtype=object))
    assert counts.to_dict() == {"a": 3, "1": 2}


def test_drift_verdicts_say_which_effect_decided() -> None:
    """A drifted column's evidence carries every effect, its floor and the leading one."""
    rng = np.random.default_rng(8)
    report = compare(build_profile(planted(20_000, rng, drift=False)), planted(5_000, rng, drift=True))
    spread = report.column("spread")
    assert spread is not None and spread.verdict == DRIFT
    evidence = spread.evidence()
    assert {"ks", "wasserstein_norm", "floor_ks", "floor_wasserstein_norm"} <= set(evidence)
    assert evidence["effect_name"] == "wasserstein_norm"
