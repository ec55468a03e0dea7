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


CATALOGUE: dict[str, Callable[[Size, int], Stream]] = {
    "sea-abrupt": sea,
    "stagger-abrupt": stagger,
    "agrawal-abrupt": agrawal_abrupt,
    "agrawal-gradual": agrawal_gradual,
    "hyperplane-incremental": hyperplane,
    "rbf-incremental": rbf,
    "phishing": phishing,
    "bananas": bananas,
    "segments": segments,
    "sklearn-recalibrated": recalibrated,
    "sklearn-friedman": friedman,
}


def load(name: str, size: Size, seed: int = 42) -> Stream:
    """Build stream ``name`` at ``size``; raises ``KeyError`` naming the known streams."""
    if name not in CATALOGUE:
        raise KeyError(f"unknown stream {name!r}; known: {', '.join(CATALOGUE)}")
    return CATALOGUE[name](size, seed)
