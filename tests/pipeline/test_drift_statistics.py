"""Drift statistics: right test per type, agreement with scipy, and the rules that keep it from crying wolf."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.drift import (
    EXACT_N,
    NO_DRIFT,
    TOO_FEW,
    DriftSettings,
    compare,
    distances,
    holm,
    homogeneity,
    ks_pvalue,
)
from pipeline.profile import build_profile


def test_ks_statistic_and_pvalue_match_scipy_on_an_exact_sketch() -> None:
    """With the whole reference in the sketch, D equals ks_2samp's and p its asymptotic p-value."""
    rng = np.random.default_rng(3)
    reference, current = rng.normal(size=800), rng.normal(0.15, 1.0, 600)
    profile = build_profile(pd.DataFrame({"x": reference}))
    column = compare(profile, pd.DataFrame({"x": current})).columns[0]
    expected = stats.ks_2samp(reference, current, method="asymp")
    assert column.test == "ks"
    assert column.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert column.pvalue == pytest.approx(expected.pvalue, rel=1e-6)


def test_wasserstein_matches_scipy() -> None:
    """The Wasserstein distance from the merged CDFs equals scipy's."""
    rng = np.random.default_rng(4)
    a, b = np.sort(rng.exponential(size=700)), np.sort(rng.exponential(1.3, size=300))
    _, w = distances(a, b)
    assert w == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


@pytest.mark.parametrize("shape", ["continuous", "ties", "offset", "constant"])
def test_distances_equal_scipys_on_samples_of_any_size_and_ties(shape: str) -> None:
    """KS D and Wasserstein-1 from searchsorted and prefix sums equal ks_2samp's and wasserstein_distance's on
    samples of every size relation, with ties inside and across the samples and far from zero, either way round."""
    rng = np.random.default_rng(11)
    for _ in range(150):
        m, n = int(rng.integers(1, 200)), int(rng.integers(1, 2000))
        if shape == "continuous":
            a, b = rng.normal(size=m), rng.normal(rng.normal(), rng.uniform(0.5, 2), size=n)
        elif shape == "ties":
            a, b = rng.integers(0, 5, size=m).astype(float), rng.integers(0, 7, size=n).astype(float)
        elif shape == "offset":
            a, b = rng.exponential(size=m) * 1e6 + 1e9, rng.exponential(size=n) * 1e6 + 1e9
        else:
            a, b = np.full(m, 3.0), rng.integers(2, 5, size=n).astype(float)
        a.sort()
        b.sort()
        d, w = distances(a, b)
        assert d == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
        assert w == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-12)
        assert distances(b, a) == pytest.approx((d, w), rel=1e-9, abs=1e-12)


def test_holm_rejects_step_down_and_at_least_what_bonferroni_rejects() -> None:
    """Holm stops at the first p-value over its threshold; everything Bonferroni rejects, Holm rejects."""
    pvalues = np.array([0.01, 0.04, 0.03, 0.005])
    assert holm(pvalues, 0.05).tolist() == [True, False, False, True]
    rng = np.random.default_rng(5)
    for _ in range(50):
        p = rng.random(12) ** 4
        assert np.all(holm(p, 0.05) >= (p <= 0.05 / p.size))


def test_ks_pvalue_is_vectorised_over_columns() -> None:
    """p-values for many columns come from one call and agree with one call per column."""
    d = np.array([0.01, 0.05, 0.2])
    together = ks_pvalue(d, np.array([5000, 5000, 5000]), np.array([1000, 1000, 1000]))
    alone = [ks_pvalue(np.array([x]), np.array([5000]), np.array([1000]))[0] for x in d]
    assert together.tolist() == pytest.approx(alone)


def test_categories_get_chi_square_and_psi() -> None:
    """A category column moved from 50/30/20 to 20/30/50 drifts, with PSI as its effect size."""
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"c": rng.choice(list("abc"), 3000, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"c": rng.choice(list("abc"), 1000, p=[0.2, 0.3, 0.5])})
    column = compare(build_profile(ref), cur).columns[0]
    assert (column.test, column.effect_name) == ("chi2", "psi")
    assert column.drifted and column.effect > 0.25 and column.pvalue < 1e-10
    assert "tvd" in column.evidence()


def test_below_the_minimum_sample_no_verdict_is_given() -> None:
    """Fifty rows are too few: the column gets 'too few rows', not a verdict either way."""
    rng = np.random.default_rng(7)
    profile = build_profile(pd.DataFrame({"x": rng.normal(size=1000)}))
    column = compare(profile, pd.DataFrame({"x": rng.normal(3.0, 1.0, 50)})).columns[0]
    assert column.verdict == TOO_FEW and not column.drifted
    assert "no verdict below 100" in column.reason


def test_a_significant_but_tiny_shift_is_not_drift() -> None:
    """p-value alone would flag a 0.05 sd shift on 200k rows; the effect floor does not."""
    rng = np.random.default_rng(8)
    profile = build_profile(pd.DataFrame({"x": rng.normal(size=200_000)}))
    column = compare(profile, pd.DataFrame({"x": rng.normal(0.05, 1.0, 200_000)})).columns[0]
    assert column.pvalue < 1e-10
    assert column.verdict == NO_DRIFT and "below the effect floor" in column.reason


def test_prediction_and_label_columns_are_tested_with_the_features() -> None:
    """Predictions and labels join the family of tests under their own role."""
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"x": rng.normal(size=2000)})
    profile = build_profile(
        ref,
        labels=pd.Series(rng.integers(0, 2, 2000)),
        predictions=rng.integers(0, 2, 2000),
        classification=True,
    )
    report = compare(
        profile,
        pd.DataFrame({"x": rng.normal(size=500)}),
        predictions=np.ones(500, dtype=int),
        labels=pd.Series(rng.integers(0, 2, 500)),
    )
    roles = {c.role: c for c in report.columns}
    assert set(roles) == {"feature", "prediction", "label"}
    assert roles["prediction"].drifted and not roles["label"].drifted
    assert report.drifted("feature") == [] and report.drifted("prediction") == ["prediction"]


def test_text_in_a_numeric_column_is_tested_on_the_numbers_that_parse() -> None:
    """A retyped column does not raise: its parseable values are tested, the rest count as missing."""
    rng = np.random.default_rng(10)
    profile = build_profile(pd.DataFrame({"x": rng.normal(size=1000)}))
    values = pd.Series(rng.normal(size=300)).astype(object)
    values[:10] = "n/a"
    column = compare(profile, pd.DataFrame({"x": values}), settings=DriftSettings(min_rows=100)).columns[0]
    assert column.rows == 290 and column.verdict == NO_DRIFT


def test_a_million_rows_with_a_shift_below_the_floor_raise_no_drift() -> None:
    """1M reference and 1M current rows, shifted too little to matter: every test is significant, none drifts."""
    rng = np.random.default_rng(12)
    rows = 1_000_000
    reference = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.gamma(2.0, 2.0, rows),
            "c": rng.choice(list("abcd"), rows, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    profile = build_profile(reference)
    del reference
    current = pd.DataFrame(
        {
            "a": rng.normal(0.04, 1.0, rows),
            "b": rng.gamma(2.0, 2.0, rows) * 1.03,
            "c": rng.choice(list("abcd"), rows, p=[0.38, 0.31, 0.2, 0.11]),
        }
    )
    report = compare(profile, current)
    assert all(c.pvalue < 1e-6 for c in report.columns)
    assert report.drifted(None) == []
    assert all(c.verdict == NO_DRIFT and "below the effect floor" in c.reason for c in report.columns)


def test_ks_pvalue_is_scipys_wherever_a_verdict_could_turn_on_it() -> None:
    """Up to EXACT_N effective rows, where p could matter (above EXACT_P_ABOVE) it is scipy's kstwo.sf exactly;
    deeper in the tail the fast approximation is used, and it never reports a p-value smaller than the exact one
    nor one above the cut."""
    d = np.linspace(0.001, 0.6, 120)
    for n in (50, 343, 8333, EXACT_N):
        exact = np.array([stats.kstwo.sf(x, n) for x in d])
        got = ks_pvalue(d, np.full(d.size, 2 * n), np.full(d.size, 2 * n))
        precise = exact > 1e-9
        assert got[precise] == pytest.approx(exact[precise], rel=1e-12)
        assert np.all(got >= exact)
        assert np.all(got[~precise] < 1e-9)


def test_ks_pvalue_above_exact_n_is_within_a_per_cent_where_a_threshold_lies() -> None:
    """Above EXACT_N effective rows the corrected Kolmogorov limit stands in for scipy's O(n) exact tail: within
    1 % of kstwo.sf for every p above 1e-4 (where Holm's thresholds lie) and within 4 % down to 1e-12."""
    for n in (EXACT_N + 1, 50_000, 500_000):
        p = np.logspace(-12, np.log10(0.99), 40)
        d = np.array([stats.kstwo.isf(x, n) for x in p])
        got = ks_pvalue(d, np.full(d.size, 2 * n), np.full(d.size, 2 * n))
        relative = np.abs(got - p) / p
        assert relative[p >= 1e-4].max() < 0.01
        assert relative.max() < 0.04


def test_a_text_column_is_profiled_from_one_count() -> None:
    """A text feature's shares equal its value counts; a text column of dates is left out of the profile."""
    frame = pd.DataFrame(
        {
            "city": ["a", "b", "a", None, "c", "a"] * 50,
            "day": ["2026-01-0" + str(1 + i % 9) for i in range(300)],
            "x": np.arange(300.0),
        }
    ).astype({"city": object, "day": object})
    profile = build_profile(frame)
    assert set(profile.columns) == {"city", "x"}
    city = profile.columns["city"]
    expected = frame["city"].value_counts(normalize=True)
    assert city.frequencies == pytest.approx(expected.to_dict())  # type: ignore[union-attr]
    assert list(city.frequencies) == ["a", "b", "c"]  # type: ignore[union-attr]
    assert city.missing_share == pytest.approx(50 / 300)


def test_homogeneity_matches_chi2_contingency() -> None:
    """The written-out chi-square test of a 2 x k table gives scipy's statistic and p-value."""
    rng = np.random.default_rng(8)
    for k in (2, 3, 7):
        table = rng.integers(1, 500, size=(2, k)).astype(float) + 0.5
        expected = stats.chi2_contingency(table, correction=False)
        statistic, pvalue = homogeneity(table)
        assert statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert pvalue == pytest.approx(expected.pvalue, rel=1e-9)
