"""Drift checks: each column of a current batch against a reference profile, with the right test per type.

- Numbers: two-sample Kolmogorov-Smirnov (statistic D against the profile's sorted sketch, p-value from
  Smirnov's distribution ``scipy.stats.kstwo`` with the true sample sizes, as ``ks_2samp``'s asymptotic mode
  does) for significance. Two effect sizes: D, the largest gap between the two CDFs, and the Wasserstein-1
  distance normalised by the reference's standard deviation (as Evidently uses for large samples), which
  grows with a change of spread or shape that hardly moves D (a standard deviation x1.5 gives D ~ 0.1 but a
  normalised Wasserstein of ~ 0.4).
- Categories: chi-square test of homogeneity on the counts for significance; the Jensen-Shannon distance
  between the share vectors (natural log, as ``scipy.spatial.distance.jensenshannon`` and Evidently) and the
  population stability index (PSI) as effect sizes, with the total variation distance beside them.

A column counts as drifted only when its p-value passes the corrected threshold *and* one of its effects
reaches its floor, so huge samples with trivial shifts raise nothing; a column with fewer than ``min_rows``
values gets no verdict at all. The floors are not picked by hand: ``bench/drift.py --calibrate`` measures, on
data without drift, how often a column passes both gates for each candidate floor, and the defaults are the
smallest floors whose measured false-alarm rate is below the target written there (bench/RESULTS.md has the
table). The correction is Holm's step-down Bonferroni over every column tested together (features,
predictions, labels). Why family-wise and not Benjamini-Hochberg: the daemon raises an alarm when *any*
column drifts, so the error that matters is the chance of one false alarm per batch (the family-wise error
rate), which Holm bounds under any dependence between columns; BH bounds only the share of false columns
among flagged ones and would let a batch of 20 clean columns alarm far more often than ``alpha``. Holm
rejects everything Bonferroni rejects and sometimes more, at the same guarantee.

Labels are compared in their canonical spelling (``pipeline.labels``), so ``1``, ``1.0`` and ``"1"`` are one
class. heald's own columns (``request_id``, capture time) are never tested.

The sketch makes the whole check a sort of the current batch plus a few ``searchsorted`` calls of the sketch
into it per column.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from pipeline.floors import JS_FLOOR, KS_FLOOR, PSI_FLOOR, WASSERSTEIN_FLOOR
from pipeline.profile import (
    OWN_COLUMNS,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    Profile,
    float_values,
    sorted_bin_shares,
    text_counts,
)

DRIFT = "drift"
NO_DRIFT = "no drift"
TOO_FEW = "too few rows"
NOT_TESTED = "not tested"
# Below this a KS p-value passes Holm at any alpha over up to 10^7 columns, so it need not be exact.
EXACT_P_ABOVE = 1e-12
# Above this many effective rows the KS p-value comes from the Kolmogorov limit (see ks_pvalue).
EXACT_N = 10_000
PSI_FLOOR_SHARE = 1e-4  # shares below this are floored so an empty bin cannot make PSI infinite


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftSettings:
    """What counts as drift: family-wise p-value, effect-size floors, and the smallest usable sample."""

    alpha: float = 0.05
    min_effect: float = KS_FLOOR  # KS D
    min_wasserstein: float = WASSERSTEIN_FLOOR
    min_psi: float = PSI_FLOOR
    min_js: float = JS_FLOOR
    min_rows: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnDrift:
    """The verdict on one column, with every statistic that led to it."""

    column: str
    role: str
    test: str
    statistic: float
    pvalue: float
    effect: float
    effect_name: str
    rows: int
    verdict: str
    reason: str
    details: dict[str, float] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return self.verdict == DRIFT

    def evidence(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "test": self.test,
            "statistic": _round(self.statistic),
            "pvalue": float(f"{self.pvalue:.3g}"),
            "effect": _round(self.effect),
            "effect_name": self.effect_name,
            "rows": self.rows,
            "verdict": self.verdict,
            "drifted": self.drifted,
            "reason": self.reason,
            **{k: _round(v) for k, v in self.details.items()},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftReport:
    """Every column's verdict for one batch."""

    rows: int
    columns: list[ColumnDrift]
    settings: DriftSettings
    correction: str = "holm"

    def drifted(self, role: str | None = "feature") -> list[str]:
        return [c.column for c in self.columns if c.drifted and (role is None or c.role == role)]

    def tested(self, role: str = "feature") -> list[ColumnDrift]:
        return [c for c in self.columns if c.role == role and c.verdict in (DRIFT, NO_DRIFT)]

    def share(self) -> float:
        """Share of the tested features that drifted."""
        tested = self.tested()
        return len([c for c in tested if c.drifted]) / len(tested) if tested else 0.0

    def max_effect(self, role: str = "feature") -> float:
        return max((c.effect for c in self.tested(role)), default=0.0)

    def column(self, name: str, role: str = "feature") -> ColumnDrift | None:
        return next((c for c in self.columns if c.column == name and c.role == role), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Tested:
    """A column's statistics before the correction decides its verdict."""

    column: str
    role: str
    test: str
    statistic: float
    pvalue: float
    effects: dict[str, tuple[float, float]]  # name -> (value, floor); any value at its floor is large enough
    rows: int
    details: dict[str, float]

    @property
    def leading(self) -> tuple[str, float, float]:
        """The effect a verdict quotes: the first (in declared order) at its floor, else the first one."""
        reached = [(n, v, f) for n, (v, f) in self.effects.items() if v >= f]
        name, (value, floor) = next(iter(self.effects.items()))
        return reached[0] if reached else (name, value, floor)


def compare(
    profile: Profile,
    current: pd.DataFrame,
    *,
    settings: DriftSettings | None = None,
    predictions: Any = None,
    labels: pd.Series[Any] | None = None,
) -> DriftReport:
    """Test every profiled feature present in ``current`` (and the predictions and labels, when given)."""
    settings = settings or DriftSettings()
    pending: list[tuple[str, str, ColumnProfile, pd.Series[Any]]] = [
        (name, "feature", ref, current[name])
        for name, ref in profile.columns.items()
        if name in current.columns and name not in OWN_COLUMNS
    ]
    if predictions is not None and profile.prediction is not None:
        pending.append(("prediction", "prediction", profile.prediction, pd.Series(np.asarray(predictions))))
    spec = profile.label_spec
    if labels is not None and profile.label is not None and spec is not None:
        pending.append(("label", "label", profile.label, spec.normalize(labels.reset_index(drop=True))))
    numeric = [(n, role, ref, values) for n, role, ref, values in pending if isinstance(ref, NumericProfile)]
    results = _numeric_tests(numeric, settings)
    for name, role, ref, values in pending:
        if isinstance(ref, CategoricalProfile):
            results.append(_categorical_test(name, role, ref, values, settings))
    tested = [r for r in results if isinstance(r, _Tested)]
    skipped = [r for r in results if isinstance(r, ColumnDrift)]
    order = {(name, role): i for i, (name, role, _, _) in enumerate(pending)}
    columns = sorted(_decide(tested, settings.alpha) + skipped, key=lambda c: order[(c.column, c.role)])
    return DriftReport(rows=len(current), columns=columns, settings=settings)


def holm(pvalues: np.ndarray, alpha: float) -> np.ndarray:
    """Which hypotheses Holm's step-down procedure rejects at family-wise level ``alpha``."""
    m = pvalues.size
    order = np.argsort(pvalues, kind="stable")
    thresholds = alpha / (m - np.arange(m))
    passing = pvalues[order] <= thresholds
    # Step down: stop at the first p-value that fails its threshold.
    stop = int(np.argmin(passing)) if not passing.all() else m
    rejected = np.zeros(m, dtype=bool)
    rejected[order[:stop]] = True
    return rejected


def ks_pvalue(statistic: np.ndarray, n_ref: np.ndarray, n_cur: np.ndarray) -> np.ndarray:
    """Two-sided p-values of two-sample KS statistics, from Smirnov's distribution with the effective size.

    Up to ``EXACT_N`` effective rows this is scipy's ``kstwo.sf`` (what ``ks_2samp``'s 'asymp' mode uses),
    except far in the tail, where the Maag-Dicaire approximation ``2 exp(-(6 n D + 1)^2 / (18 n))`` (a few per
    cent off in relative terms) stands in wherever it is below ``EXACT_P_ABOVE``: there the exact series costs
    tens of milliseconds for a p-value that can only be "far below any threshold".

    Above ``EXACT_N`` the exact distribution costs O(n) per call in its lower tail (about a second per column
    at 500,000 effective rows) while the Kolmogorov limit with Stephens' correction, ``Q((sqrt(n) + 0.12 +
    0.11 / sqrt(n)) D)``, is within 1 % of it for every p above 1e-4 and within 4 % down to 1e-12
    (tests/pipeline/test_drift_statistics.py measures this): a verdict could only differ for a p-value within
    a per cent of its Holm threshold, with an effect at its floor besides."""
    big, small = np.maximum(n_ref, n_cur).astype(float), np.minimum(n_ref, n_cur).astype(float)
    effective = np.maximum(np.round(big * small / (big + small)), 1)
    d = np.asarray(statistic, dtype=float)
    pvalues: np.ndarray = np.clip(2.0 * np.exp(-((6.0 * effective * d + 1.0) ** 2) / (18.0 * effective)), 0.0, 1.0)
    large = effective > EXACT_N
    if large.any():
        root = np.sqrt(effective[large])
        pvalues[large] = np.clip(special.kolmogorov((root + 0.12 + 0.11 / root) * d[large]), 0.0, 1.0)
    exact = ~large & (pvalues > EXACT_P_ABOVE)
    if exact.any():
        pvalues[exact] = np.clip(np.asarray(stats.kstwo.sf(d[exact], effective[exact])), 0.0, 1.0)
    return pvalues


def distances(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """KS statistic and Wasserstein-1 distance between two *sorted* samples, exactly, in O(m log n + n).

    The CDF of the smaller sample ``a`` (the reference's sketch, usually) is a step function with m steps;
    between two of its steps it is constant while the other CDF only rises, so the largest gap is found at
    a's values (and just left of them), and the area between the CDFs over each step splits at the one point
    where the larger sample's CDF crosses that constant. Both need only where a's values fall in ``b``
    (``searchsorted``) and prefix sums of ``b``: no merge or sort of the two samples together, which costs
    an order of magnitude more on a million rows. ``tests/pipeline/test_drift_statistics.py`` checks both
    against scipy on samples with ties."""
    if a.size > b.size:
        a, b = b, a
    m, n = a.size, b.size
    shift = float(b[n // 2])  # centred, so prefix sums of large values keep their precision
    a, b = a - shift, b - shift
    sums = np.empty(n + 1)
    sums[0] = 0.0
    np.cumsum(b, out=sums[1:])
    # Each CDF at every value of a, and just left of it (ties counted as in a right-continuous CDF).
    a_at = a_before = np.arange(1, m + 1) / m
    if np.any(a[1:] == a[:-1]):
        a_at, a_before = np.searchsorted(a, a, "right") / m, np.searchsorted(a, a, "left") / m
    else:
        a_before = a_at - 1 / m
    b_at, b_before = np.searchsorted(b, a, "right"), np.searchsorted(b, a, "left")
    ks = max(float(np.abs(a_at - b_at / n).max()), float(np.abs(a_before - b_before / n).max()))

    def area_under_b(lo: np.ndarray, below: np.ndarray, hi: np.ndarray, under: np.ndarray) -> np.ndarray:
        """n times the integral of b's CDF over [lo, hi] (lo <= hi), given ``below`` = #b <= lo and ``under`` =
        #b < hi: values at or below lo count over the whole interval, values inside from where they are."""
        inside = np.maximum(under, below)
        result: np.ndarray = below * (hi - lo) + (inside - below) * hi - (sums[inside] - sums[below])
        return result

    # Steps of a: [a_k, a_k+1) where a's CDF is (k + 1) / m; left of a_0 it is 0, right of a_m-1 it is 1.
    lo = np.concatenate(([min(a[0], b[0])], a))
    hi = np.concatenate((a, [max(a[-1], b[-1])]))
    lo_below = np.concatenate(([np.searchsorted(b, lo[0], "right")], b_at))
    hi_under = np.concatenate((b_before, [np.searchsorted(b, hi[-1], "left")]))
    level = np.arange(m + 1) / m
    # b's CDF first reaches the level at its ceil(level * n)-th value; the area splits there.
    rank = np.ceil(level * n - 1e-9).astype(np.int64)
    cross = np.clip(np.where(rank > 0, b[np.maximum(rank - 1, 0)], lo), lo, hi)
    cross_below, cross_under = np.searchsorted(b, cross, "right"), np.searchsorted(b, cross, "left")
    left = level * (cross - lo) - area_under_b(lo, lo_below, cross, cross_under) / n  # b's CDF below the level
    right = area_under_b(cross, cross_below, hi, hi_under) / n - level * (hi - cross)  # at or above it
    return ks, float(np.sum(left + right))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two share vectors over the same bins."""
    e = np.maximum(expected, PSI_FLOOR_SHARE)
    a = np.maximum(actual, PSI_FLOOR_SHARE)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_values(values: pd.Series[Any]) -> np.ndarray:
    """The numbers in ``values``, as a new array the caller may sort in place; text that does not parse as a
    number becomes missing (quality reports it)."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        values = pd.to_numeric(values.astype("object"), errors="coerce")
    array: np.ndarray = float_values(values)
    present: np.ndarray = array[~np.isnan(array)]
    return present


def _numeric_tests(
    columns: list[tuple[str, str, NumericProfile, pd.Series[Any]]], settings: DriftSettings
) -> list[_Tested | ColumnDrift]:
    results: list[_Tested | ColumnDrift] = []
    for name, role, ref, values in columns:
        current = numeric_values(values)
        current.sort()  # a fresh array: sorted in place
        short = _too_few(name, role, "ks", ref.rows, current.size, settings.min_rows)
        if short is not None:
            results.append(short)
            continue
        d, wasserstein = distances(ref.sketch, current)
        scale = ref.std if ref.std > 0 else 1.0
        results.append(
            _Tested(
                column=name,
                role=role,
                test="ks",
                statistic=d,
                pvalue=1.0,  # filled in below, for all columns at once
                effects={
                    "ks": (d, settings.min_effect),
                    "wasserstein_norm": (wasserstein / scale, settings.min_wasserstein),
                },
                rows=int(current.size),
                details={
                    "wasserstein": wasserstein,
                    "psi": psi(ref.bin_shares, sorted_bin_shares(current, ref.bin_edges)),
                    "mean": float(current.mean()),
                    "reference_mean": ref.mean,
                },
            )
        )
    tested = [r for r in results if isinstance(r, _Tested)]
    if tested:
        refs = {name: ref.rows for name, _, ref, _ in columns}
        pvalues = ks_pvalue(
            np.array([t.statistic for t in tested]),
            np.array([refs[t.column] for t in tested]),
            np.array([t.rows for t in tested]),
        )
        by_name = {t.column + "\0" + t.role: float(p) for t, p in zip(tested, pvalues, strict=True)}
        results = [
            replace(r, pvalue=by_name[r.column + "\0" + r.role]) if isinstance(r, _Tested) else r for r in results
        ]
    return results


def _categorical_test(
    name: str, role: str, ref: CategoricalProfile, values: pd.Series[Any], settings: DriftSettings
) -> _Tested | ColumnDrift:
    counts = text_counts(values)
    present = sum(counts.values())
    short = _too_few(name, role, "chi2", ref.rows, present, settings.min_rows)
    if short is not None:
        return short
    categories = list(dict.fromkeys([*ref.frequencies, *counts]))
    expected = np.array([ref.frequencies.get(c, 0.0) for c in categories])
    actual = np.array([counts.get(c, 0) for c in categories], dtype=float)
    shares = actual / actual.sum()
    if len(categories) < 2:
        chi2, pvalue = 0.0, 1.0
    else:
        # Half a count in every cell keeps categories unseen on one side testable.
        chi2, pvalue = homogeneity(np.vstack([expected * ref.rows, actual]) + 0.5)
    return _Tested(
        column=name,
        role=role,
        test="chi2",
        statistic=chi2,
        pvalue=pvalue,
        effects={
            "psi": (psi(expected, shares), settings.min_psi),
            "js": (jensen_shannon(expected, shares), settings.min_js),
        },
        rows=present,
        details={"tvd": 0.5 * float(np.abs(expected - shares).sum())},
    )


def homogeneity(table: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity of a 2 x k table of counts: the statistic and its p-value.

    What ``scipy.stats.chi2_contingency(table, correction=False)`` computes, written out: that call spends
    milliseconds checking and reshaping its input, more than the counting of a whole batch column costs, and the
    p-value comes from ``special.chdtrc`` (what ``stats.chi2.sf`` calls) without the distribution's overhead."""
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(special.chdtrc(table.shape[1] - 1, statistic))


def jensen_shannon(expected: np.ndarray, actual: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log, in [0, sqrt(ln 2)]) between two share vectors over the same bins."""
    e, a = expected / max(expected.sum(), 1e-12), actual / max(actual.sum(), 1e-12)
    m = 0.5 * (e + a)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_e = np.where(e > 0, e * np.log(e / m), 0.0).sum()
        kl_a = np.where(a > 0, a * np.log(a / m), 0.0).sum()
    return float(np.sqrt(max(0.5 * (kl_e + kl_a), 0.0)))


def _too_few(name: str, role: str, test: str, n_ref: int, n_cur: int, min_rows: int) -> ColumnDrift | None:
    if n_cur >= min_rows and n_ref >= min_rows:
        return None
    side = "current batch" if n_cur < min_rows else "reference"
    return ColumnDrift(
        column=name,
        role=role,
        test=test,
        statistic=0.0,
        pvalue=1.0,
        effect=0.0,
        effect_name="ks" if test == "ks" else "psi",
        rows=n_cur,
        verdict=TOO_FEW,
        reason=f"{min(n_cur, n_ref) if side == 'reference' else n_cur} values in the {side}; "
        f"no verdict below {min_rows}",
    )


def _decide(tested: list[_Tested], alpha: float) -> list[ColumnDrift]:
    if not tested:
        return []
    rejected = holm(np.array([t.pvalue for t in tested]), alpha)
    return [_verdict(t, bool(r), alpha, len(tested)) for t, r in zip(tested, rejected, strict=True)]


def _verdict(t: _Tested, significant: bool, alpha: float, family: int) -> ColumnDrift:
    name, value, floor = t.leading
    large = any(v >= f for v, f in t.effects.values())
    if significant and large:
        verdict, reason = DRIFT, f"p={t.pvalue:.3g} passes Holm at alpha={alpha} over {family} tests"
        reason += f" and {name}={value:.3f} >= {floor}"
    elif significant:
        below = ", ".join(f"{n}={v:.3f} < {f}" for n, (v, f) in t.effects.items())
        verdict, reason = NO_DRIFT, f"significant (p={t.pvalue:.3g}) but below the effect floor: {below}"
    else:
        verdict, reason = NO_DRIFT, f"p={t.pvalue:.3g} does not pass Holm at alpha={alpha} over {family} tests"
    return ColumnDrift(
        column=t.column,
        role=t.role,
        test=t.test,
        statistic=t.statistic,
        pvalue=t.pvalue,
        effect=value,
        effect_name=name,
        rows=t.rows,
        verdict=verdict,
        reason=reason,
        details={
            **t.details,
            **{n: v for n, (v, _) in t.effects.items()},
            **{f"floor_{n}": f for n, (_, f) in t.effects.items()},
            "floor": floor,
        },
    )


def _round(value: float) -> float:
    return round(float(value), 6)
