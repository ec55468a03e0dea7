"""The labelled streams the healing benchmark replays, with their true drift points.

Every stream is a table in arrival order (features and a ``target`` column) plus where its concept changes.
Sources are ones no one on heald wrote: river's synthetic generators with known drift, river's bundled real
datasets, and scikit-learn data with an injected shift. Nothing is downloaded; every seed is fixed.

The first ``warmup`` rows train the first model (every system starts from it); the rest are replayed in
batches of ``batch_rows``. Drift positions count rows of the replay (0 is its first row).

river's ``ConceptDriftStream(width=1)`` crashes on its first sample, so abrupt drift is made by chaining two
generators, gradual drift by drawing each row from the new concept with a probability that rises over the
transition, and incremental drift by switching on the generator's own drift speed for the transition.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

TARGET = "target"
Row = tuple[dict[Any, Any], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    """A true change of concept: starts at row ``at`` of the replay and takes ``width`` rows (0 = abrupt)."""

    at: int
    width: int = 0
    kind: str = "abrupt"

    @property
    def end(self) -> int:
        return self.at + self.width


@dataclass(frozen=True, slots=True, kw_only=True)
class Size:
    """How long the synthetic streams are: rows to train the first model, rows replayed, rows per batch."""

    name: str
    warmup: int
    replay: int
    batch_rows: int
    drifts: int  # concept changes per synthetic stream


GRADUAL_ROWS = 1500  # a gradual drift's transition, in rows (as MOA's usual width of about a thousand)
SLOW_GRADUAL_ROWS = 4000  # a slow gradual drift: several thousand rows from the first new row to the last old one
INCREMENTAL_ROWS = 3000  # how long an incremental drift keeps moving the concept

TINY = Size(name="tiny", warmup=1000, replay=3000, batch_rows=500, drifts=1)
QUICK = Size(name="quick", warmup=2000, replay=12000, batch_rows=500, drifts=1)
FULL = Size(name="full", warmup=4000, replay=36000, batch_rows=500, drifts=2)
SIZES = {s.name: s for s in (TINY, QUICK, FULL)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Stream:
    """A labelled stream in arrival order and what is known about its drift."""

    name: str
    task: str  # "classification" or "regression"
    source: str
    frame: pd.DataFrame
    warmup: int
    batch_rows: int
    drifts: list[Drift] = field(default_factory=list)
    # The drift changes the inputs but not how well the first model predicts: heald must not retrain.
    harmless: bool = False

    @property
    def drifting(self) -> bool:
        return bool(self.drifts)

    @property
    def features(self) -> list[str]:
        return [c for c in self.frame.columns if c != TARGET]

    def initial(self) -> pd.DataFrame:
        return self.frame.iloc[: self.warmup].reset_index(drop=True)

    def batches(self) -> list[pd.DataFrame]:
        replay = self.frame.iloc[self.warmup :].reset_index(drop=True)
        return [replay.iloc[i : i + self.batch_rows] for i in range(0, len(replay), self.batch_rows)]


# -- building blocks -----------------------------------------------------------------------------------


def table(rows: list[Row]) -> pd.DataFrame:
    """river's (x, y) pairs as a table; integer keys become ``x0``, ``x1``, ...; booleans become 0/1."""
    frame = pd.DataFrame([{_column(k): v for k, v in x.items()} for x, _ in rows])
    labels = [y for _, y in rows]
    frame[TARGET] = [int(y) if isinstance(y, bool | np.bool_) else y for y in labels]
    return frame


def _column(key: Any) -> str:
    return f"x{key}" if isinstance(key, int) else str(key)


def _starts(size: Size) -> list[int]:
    """Where the drifts of a synthetic stream start: evenly spread over the replay."""
    return [size.replay * (k + 1) // (size.drifts + 1) for k in range(size.drifts)]


def abrupt(concepts: list[Iterator[Row]], size: Size) -> tuple[pd.DataFrame, list[Drift]]:
    """Concept k serves until drift k starts; the change is instantaneous."""
    starts = _starts(size)
    bounds = [0, *[size.warmup + s for s in starts], size.warmup + size.replay]
    rows: list[Row] = []
    for concept, (lo, hi) in zip(concepts, itertools.pairwise(bounds), strict=False):
        rows += list(itertools.islice(concept, hi - lo))
    return table(rows), [Drift(at=s, kind="abrupt") for s in starts]


def gradual(concepts: list[Iterator[Row]], size: Size, width: int, seed: int) -> tuple[pd.DataFrame, list[Drift]]:
    """Over ``width`` rows each row comes from the new concept with a probability rising from 0 to 1."""
    rng = random.Random(seed)
    starts = [size.warmup + s for s in _starts(size)]
    rows: list[Row] = []
    current = 0
    for i in range(size.warmup + size.replay):
        while current < len(starts) and i >= starts[current] + width:
            current += 1
        source = current
        if current < len(starts) and i >= starts[current]:
            source = current + 1 if rng.random() < (i - starts[current] + 1) / width else current
        rows.append(next(concepts[source]))
    return table(rows), [Drift(at=s - size.warmup, width=width, kind="gradual") for s in starts]


def incremental(
    generator: Any, attribute: str, speed: float, size: Size, width: int
) -> tuple[pd.DataFrame, list[Drift]]:
    """The generator's own drift (``attribute`` = ``speed``) runs during each transition, and is off otherwise."""
    starts = [size.warmup + s for s in _starts(size)]
    setattr(generator, attribute, 0.0)
    rows: list[Row] = []
    for i, row in enumerate(generator):
        if i >= size.warmup + size.replay:
            break
        moving = any(s <= i < s + width for s in starts)
        setattr(generator, attribute, speed if moving else 0.0)
        rows.append(row)
    return table(rows), [Drift(at=s - size.warmup, width=width, kind="incremental") for s in starts]


# -- the catalogue -------------------------------------------------------------------------------------


def sea(size: Size, seed: int) -> Stream:
    from river.datasets import synth

    concepts = [iter(synth.SEA(variant=v, noise=0.1, seed=seed + k)) for k, v in enumerate([0, 3, 2])]
    frame, drifts = abrupt(concepts, size)
    return Stream(
        name="sea-abrupt",
        task="classification",
        source="river SEA, 10 % label noise, threshold 8 -> 9.5 (-> 7)",
        frame=frame,
        warmup=size.warmup,
        batch_rows=size.batch_rows,
        drifts=drifts,
    )


def stagger(size: Size, seed: int) -> Stream:
    from river.datasets import synth

    concepts = [iter(synth.STAGGER(classification_function=f, seed=seed + f)) for f in (0, 1, 2)]
    frame, drifts = abrupt(concepts, size)
    return Stream(
        name="stagger-abrupt",
        task="classification",
        source="river STAGGER, function 0 -> 1 (-> 2)",
        frame=frame,
        warmup=size.warmup,
        batch_rows=size.batch_rows,
        drifts=drifts,
    )


AGRAWAL_FUNCTIONS = (0, 2, 4)


def agrawal_abrupt(size: Size, seed: int) -> Stream:
    from river.datasets import synth

    concepts = [iter(synth.Agrawal(classification_function=f, seed=seed + f)) for f in AGRAWAL_FUNCTIONS]
    frame, drifts = abrupt(concepts, size)
    return Stream(
        name="agrawal-abrupt",
        task="classification",
        source="river Agrawal, function 0 -> 2 (-> 4)",
        frame=frame,
        warmup=size.warmup,
        batch_rows=size.batch_rows,
        drifts=drifts,
    )


def agrawal_gradual(size: Size, seed: int) -> Stream:
    from river.datasets import synth

    concepts = [iter(synth.Agrawal(classification_function=f, seed=seed + 10 + f)) for f in AGRAWAL_FUNCTIONS]
    frame, drifts = gradual(concepts, size, width=GRADUAL_ROWS, seed=seed)
    return Stream(
        name="agrawal-gradual",
        task="classification",
        source=f"river Agrawal, function 0 -> 2 (-> 4), each over {GRADUAL_ROWS} rows",
        frame=frame,
        warmup=size.warmup,
        batch_rows=size.batch_rows,
        drifts=drifts,
    )


def hyperplane(size: Size, seed: int) -> Stream:
    from river.datasets import synth

    generator = synth.Hyperplane(seed=seed, n_features=10, n_drift_features=5, noise_percentage=0.05, sigma=0.0)
    width = INCREMENTAL_ROWS
    frame, drifts = incremental(generator, "mag_change", 0.002, size, width)
    return Stream(
        name="hyperplane-incremental",
        task="classification",
        source=f"river Hyperplane, 10 features, 5 rotating at 0.002 per row for {width} rows",
        frame=frame,
        warmup=size.warmup,
        batch_rows=size.batch_rows,
        drifts=drifts,
    )


def rbf(size: Size, seed: int) -> Stream:
    from river.datasets import synth

    # Half the centroids move (river's own example moves 10 of 50): the concept changes a lot, yet stays
    # about as learnable as before, so a health threshold set from the first model keeps its meaning.
    generator = synth.RandomRBFDrift(
        seed_model=seed, seed_sample=seed, n_classes=4, n_features=10, n_centroids=50, n_drift_centroids=25
    )
    width = INCREMENTAL_ROWS
    frame, drifts = incremental(generator, "change_speed", 0.0002, size, width)
    return Stream(
        name="rbf-incremental",
        task="classification",
        source=f"river RandomRBFDrift, 4 classes, 25 of 50 centroids moving at 0.0002 per row for {width} rows",
        frame=frame,
        warmup=size.warmup,
        batch_rows=size.batch_rows,
        drifts=drifts,
    )


def _bundled(dataset: Any, name: str, source: str, warmup_share: float, batches: int) -> Stream:
    """A river dataset shipped inside the package, in its own order; no known drift points."""
    rows = list(dataset)
    frame = table(rows)
    warmup = int(len(frame) * warmup_share)
    return Stream(
        name=name,
        task="classification",
        source=source,
        frame=frame,
        warmup=warmup,
        batch_rows=-(-(len(frame) - warmup) // batches),
        drifts=[],
    )


def phishing(size: Size, seed: int) -> Stream:
    from river import datasets

    return _bundled(datasets.Phishing(), "phishing", "river Phishing (real, 1250 web pages)", 0.2, 10)


def bananas(size: Size, seed: int) -> Stream:
    from river import datasets

    return _bundled(datasets.Bananas(), "bananas", "river Bananas (real, 5300 points)", 0.2, 17)


def segments(size: Size, seed: int) -> Stream:
    from river import datasets

    return _bundled(datasets.ImageSegments(), "segments", "river ImageSegments (real, 2310 rows, 7 classes)", 0.2, 12)


def recalibrated(size: Size, seed: int) -> Stream:
    """scikit-learn's make_classification; at the drift, three informative sensors are recalibrated.

    Labels come from the original values, the model sees the recalibrated ones: both the feature distribution
    and the relation between features and label change, as when an upstream sensor or unit changes.
    """
    from sklearn.datasets import make_classification

    total = size.warmup + size.replay
    x, y = make_classification(
        n_samples=total,
        n_features=10,
        n_informative=6,
        n_redundant=2,
        n_clusters_per_class=2,
        class_sep=1.2,
        flip_y=0.02,
        shuffle=True,
        random_state=seed,
    )
    starts = _starts(size)
    for k, start in enumerate(starts):
        rows = slice(size.warmup + start, None)
        x[rows, [0, 1, 2]] = x[rows, [0, 1, 2]] * (1.0 - 2.0 * ((k + 1) % 2)) + 1.0 * (k + 1)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame[TARGET] = y
    return Stream(
        name="sklearn-recalibrated",
        task="classification",
        source="scikit-learn make_classification; 3 informative features sign-flipped and offset at the drift",
        frame=frame,
        warmup=size.warmup,
        batch_rows=size.batch_rows,
        drifts=[Drift(at=s, kind="abrupt") for s in starts],
    )


def friedman(size: Size, seed: int) -> Stream:
    """scikit-learn's Friedman #1 regression; at the drift two sensors are swapped (labels unchanged)."""
    from sklearn.datasets import make_friedman1

    total = size.warmup + size.replay
    x, y = make_friedman1(n_samples=total, n_features=10, noise=1.0, random_state=seed)
    for k, start in enumerate(_starts(size)):
        rows = slice(size.warmup + start, None)
        pair = [3, 7] if k % 2 == 0 else [0, 8]
        x[rows, pair[0]], x[rows, pair[1]] = x[rows, pair[1]].copy(), x[rows, pair[0]].copy()
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame[TARGET] = y
    return Stream(
        name="sklearn-friedman",
        task="regression",
        source="scikit-learn make_friedman1 (regression); x3 <-> x7 swapped at the drift (then x0 <-> x8)",
        frame=frame,
        warmup=size.warmup,
        batch_rows=size.batch_rows,
        drifts=[Drift(at=s, kind="abrupt") for s in _starts(size)],
    )


def sea_slow(size: Size, seed: int) -> Stream:
    from river.datasets import synth

    concepts = [iter(synth.SEA(variant=v, noise=0.1, seed=seed + 20 + k)) for k, v in enumerate([0, 3, 2])]
    frame, drifts = gradual(concepts, size, width=SLOW_GRADUAL_ROWS, seed=seed)
    return Stream(
        name="sea-gradual-slow",
        task="classification",
        source=f"river SEA, 10 % label noise, threshold 8 -> 9.5 (-> 7), each over {SLOW_GRADUAL_ROWS} rows",
        frame=frame,
        warmup=size.warmup,
        batch_rows=size.batch_rows,
        drifts=drifts,
    )


LONG = {"tiny": (24, 1), "quick": (100, 4), "full": (160, 6)}  # batches and drifts of the long stream
LONG_BATCH_ROWS = 250
SEA_CYCLE = (0, 3, 1, 2)


def sea_long(size: Size, seed: int) -> Stream:
    """SEA over 100+ small batches with several abrupt drifts, concepts coming back in a cycle."""
    from river.datasets import synth

    batches, drifts = LONG[size.name]
    long = Size(
        name=size.name, warmup=size.warmup, replay=batches * LONG_BATCH_ROWS, batch_rows=LONG_BATCH_ROWS, drifts=drifts
    )
    variants = [SEA_CYCLE[k % len(SEA_CYCLE)] for k in range(drifts + 1)]
    concepts = [iter(synth.SEA(variant=v, noise=0.1, seed=seed + 30 + k)) for k, v in enumerate(variants)]
    frame, found = abrupt(concepts, long)
    return Stream(
        name="sea-long",
        task="classification",
        source=f"river SEA, 10 % label noise, {drifts} abrupt drifts over {batches} batches (variants {variants})",
        frame=frame,
        warmup=long.warmup,
        batch_rows=long.batch_rows,
        drifts=found,
    )


REAL_BATCH_ROWS = 250
REAL_REPLAY = {"tiny": 2000, "quick": 8000, "full": 16000}  # rows replayed from the resampled real data


def _resample(x: np.ndarray, pick: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Rows of a small real data set drawn again, with a little noise so no row repeats exactly."""
    return x[pick] + rng.normal(0.0, jitter, size=(len(pick), x.shape[1])) * x.std(axis=0)


def cancer_subgroup(size: Size, seed: int) -> Stream:
    """scikit-learn's breast cancer data: large tumours flip their label and, for a while, dominate the stream.

    Rows are drawn again (with 3 % noise) from the 569 real ones. Up to the first drift the population is the
    original one. From it, the label of the subgroup with the largest mean radius (top 30 %) is inverted,
    and the stream's mix shifts to 95 % of that subgroup (covariate shift); at the second drift the mix comes
    back to the original one, the subgroup's new relation stays. A model refit on the rows of the shifted
    period has seen almost nothing of the other 70 % of the population, so refitting on recent rows hurts
    once the mix returns.
    """
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(seed)
    subgroup = np.flatnonzero(x[:, 0] > np.quantile(x[:, 0], 0.7))
    others = np.setdiff1d(np.arange(len(x)), subgroup)
    warmup, replay = size.warmup // 2, REAL_REPLAY[size.name]
    starts = [replay // 3, 2 * replay // 3]

    def draw(n: int, share: float) -> np.ndarray:
        from_subgroup = rng.random(n) < share
        return np.where(from_subgroup, rng.choice(subgroup, n), rng.choice(others, n))

    base = len(subgroup) / len(x)
    picks = [draw(warmup + starts[0], base), draw(starts[1] - starts[0], 0.95), draw(replay - starts[1], base)]
    flipped = [False, True, True]
    parts = []
    for pick, flip in zip(picks, flipped, strict=True):
        labels = y[pick].copy()
        if flip:
            inside = np.isin(pick, subgroup)
            labels[inside] = 1 - labels[inside]
        part = pd.DataFrame(_resample(x, pick, rng, 0.03), columns=[f"x{i}" for i in range(x.shape[1])])
        part[TARGET] = labels
        parts.append(part)
    return Stream(
        name="cancer-subgroup",
        task="classification",
        source="scikit-learn breast cancer (real, 569 rows resampled with 3 % noise); the largest-radius 30 % "
        "invert their label and make up 95 % of the rows for a third of the replay",
        frame=pd.concat(parts, ignore_index=True),
        warmup=warmup,
        batch_rows=REAL_BATCH_ROWS,
        drifts=[Drift(at=starts[0], kind="subgroup label + covariate"), Drift(at=starts[1], kind="covariate")],
    )


def digits_input_drift(size: Size, seed: int) -> Stream:
    """scikit-learn's digits: from a third of the replay on, 85 % of the rows are digits 0 to 4.

    The images' distribution changes a lot (pixel means move), how each image maps to its digit does not:
    the first model stays as accurate as it was, so a retrain would be wasted.
    """
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    low, high = np.flatnonzero(y <= 4), np.flatnonzero(y > 4)
    warmup, replay = size.warmup // 2, REAL_REPLAY[size.name]
    start = replay // 3
    before = rng.integers(0, len(x), warmup + start)
    after_n = replay - start
    after = np.where(rng.random(after_n) < 0.85, rng.choice(low, after_n), rng.choice(high, after_n))
    pick = np.concatenate([before, after])
    frame = pd.DataFrame(_resample(x, pick, rng, 0.05), columns=[f"x{i}" for i in range(x.shape[1])])
    frame[TARGET] = y[pick]
    return Stream(
        name="digits-input-drift",
        task="classification",
        source="scikit-learn digits (real, 1797 images resampled with 5 % noise); from a third of the replay "
        "on, 85 % of the rows are digits 0-4 (the inputs drift, the first model's accuracy does not drop)",
        frame=frame,
        warmup=warmup,
        batch_rows=REAL_BATCH_ROWS,
        drifts=[Drift(at=start, kind="input only")],
        harmless=True,
    )


CATALOGUE: dict[str, Callable[[Size, int], Stream]] = {
    "sea-abrupt": sea,
    "stagger-abrupt": stagger,
    "agrawal-abrupt": agrawal_abrupt,
    "agrawal-gradual": agrawal_gradual,
    "sea-gradual-slow": sea_slow,
    "sea-long": sea_long,
    "hyperplane-incremental": hyperplane,
    "rbf-incremental": rbf,
    "phishing": phishing,
    "bananas": bananas,
    "segments": segments,
    "sklearn-recalibrated": recalibrated,
    "sklearn-friedman": friedman,
    "cancer-subgroup": cancer_subgroup,
    "digits-input-drift": digits_input_drift,
}


def load(name: str, size: Size, seed: int = 42) -> Stream:
    """Build stream ``name`` at ``size``; raises ``KeyError`` naming the known streams."""
    if name not in CATALOGUE:
        raise KeyError(f"unknown stream {name!r}; known: {', '.join(CATALOGUE)}")
    return CATALOGUE[name](size, seed)
