"""Labels: one spelling per class, decided once by the target's type at training, used everywhere.

A label reaches heald by several roads: the training file, labelled batches (CSV or Parquet, read by pandas
with whatever dtype a file's values suggest), feedback posted as JSON, and the model's own predictions (the
estimator's ``classes_``). The same class can arrive as ``1``, ``1.0``, ``"1"`` or ``True``, and an
unlabelled and a labelled file concatenated in one tick turn integers into floats. Compared as raw text those
look like different classes, and label drift and accuracy go wrong. So every consumer (the reference profile,
the drift and performance sensors, the feedback endpoint, batch intake) maps labels through ``LabelSpec``:

- a classifier's label becomes the *canonical text* of its class: numbers as ``"1"`` or ``"0.5"`` (an integral
  float loses its ``.0``), booleans as ``"True"``/``"False"``, text stripped;
- a regressor's label becomes a float.

``LabelSpec.problems`` names the labels that cannot be one of the known classes (or are not finite numbers for
a regressor); the API answers them with 422 and intake quarantines the batch, with that message as reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import DataError

SHOWN = 5  # bad labels quoted in a message; the count says how many more there were
TRUE_WORDS = frozenset({"true", "1", "1.0", "yes"})
FALSE_WORDS = frozenset({"false", "0", "0.0", "no"})


class LabelKind(StrEnum):
    """How a target's values are spelled at training: the type every later label is read as."""

    NUMERIC = "numeric"  # classes that are numbers (0/1, 1..5), or a regression target
    BOOLEAN = "boolean"
    TEXT = "text"


class LabelError(DataError):
    """Labels that are not one of the model's classes, or not a number for a regressor."""


@lru_cache(maxsize=4096)
def _from_classes(classes: tuple[str, ...]) -> LabelSpec:
    """``LabelSpec.from_classes``, kept per list of classes: each model's tick asks again for the same ones."""
    kind = kind_of(pd.Series(list(classes), dtype=object))
    if kind is LabelKind.TEXT and {c.strip().lower() for c in classes} <= {"true", "false"}:
        kind = LabelKind.BOOLEAN
    found = {canonical(c, kind) for c in classes}
    return LabelSpec(classification=True, kind=kind, classes=tuple(sorted(c for c in found if c is not None)))


def kind_of(values: pd.Series[Any]) -> LabelKind:
    """The kind of a target column as read at training."""
    if pd.api.types.is_bool_dtype(values):
        return LabelKind.BOOLEAN
    if pd.api.types.is_numeric_dtype(values):
        return LabelKind.NUMERIC
    present = values.dropna()
    distinct = pd.unique(present)
    if len(distinct) and all(isinstance(v, bool | np.bool_) for v in distinct):
        return LabelKind.BOOLEAN
    if len(distinct) and all(_number(v) is not None for v in distinct):
        return LabelKind.NUMERIC
    return LabelKind.TEXT


def canonical(value: Any, kind: LabelKind) -> str | None:
    """The canonical text of one class label, or None when ``value`` cannot be a label of this kind."""
    if _missing(value):
        return None
    if kind is LabelKind.NUMERIC:
        number = _number(value)
        return None if number is None else _number_text(number)
    if kind is LabelKind.BOOLEAN:
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return "True"
        return "False" if word in FALSE_WORDS else None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # a text class "1" read back from a file as 1.0
    text = str(value).strip()
    return text or None


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelSpec:
    """A target's task, kind and (for a classifier) its known classes in canonical text."""

    classification: bool
    kind: LabelKind
    classes: tuple[str, ...] = ()

    @classmethod
    def learn(cls, labels: pd.Series[Any], *, classification: bool) -> LabelSpec:
        """The spec of training labels: their kind and, for a classifier, the classes they hold."""
        if not classification:
            return cls(classification=False, kind=LabelKind.NUMERIC)
        kind = kind_of(labels)
        found = {canonical(v, kind) for v in pd.unique(labels.dropna())}
        return cls(classification=True, kind=kind, classes=tuple(sorted(c for c in found if c is not None)))

    @classmethod
    def from_classes(cls, classes: list[str]) -> LabelSpec:
        """The spec of a classifier known only by its classes as text (e.g. a stored profile's label shares)."""
        return _from_classes(tuple(classes))

    def normalize(self, labels: pd.Series[Any]) -> pd.Series[Any]:
        """``labels`` in canonical form (text for classes, floats for regression); unusable ones become missing.

        Each distinct value is converted once, so a million rows of two classes cost two conversions.
        """
        if not self.classification:
            return pd.Series(pd.to_numeric(labels, errors="coerce"), dtype=float, index=labels.index)
        # As ``labels.map({value: canonical})`` would (missing and unusable values become NaN), without the
        # dictionary-to-index lookup that dominated this for a batch of a few hundred rows.
        codes, distinct = pd.factorize(labels, use_na_sentinel=True)
        spelled = [canonical(v, self.kind) for v in distinct]
        table = np.array([np.nan if c is None else c for c in spelled] + [np.nan], dtype=object)
        return pd.Series(table[codes], index=labels.index, name=labels.name, dtype=object)  # code -1: the last

    def problems(self, labels: pd.Series[Any], *, where: str = "labels") -> str | None:
        """Why some of ``labels`` are refused (wrong type, unknown class, not finite), or None when all are fine."""
        present = labels.dropna()
        if present.empty:
            return None
        bad = [v for v in pd.unique(present) if not self._acceptable(v)]
        if not bad:
            return None
        shown = ", ".join(repr(_plain(v)) for v in bad[:SHOWN])
        shown += f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        if not self.classification:
            return f"{where}: {shown} not a finite number; this model is a regressor"
        return f"{where}: {shown} not one of the model's classes {list(self.classes)} (read as {self.kind.value})"

    def check(self, labels: pd.Series[Any], *, where: str = "labels") -> None:
        """Raise ``LabelError`` naming the refused labels, if any."""
        problem = self.problems(labels, where=where)
        if problem:
            raise LabelError(problem)

    def value(self, label: Any) -> Any:
        """One accepted label as the training file spelled it (to be written back into a batch file)."""
        if not self.classification:
            return float(label)
        text = canonical(label, self.kind)
        if self.kind is LabelKind.BOOLEAN:
            return text == "True"
        if self.kind is LabelKind.NUMERIC and text is not None:
            number = float(text)
            return int(number) if number.is_integer() else number
        return text

    def _acceptable(self, value: Any) -> bool:
        if not self.classification:
            number = _number(value)
            return number is not None and not isinstance(value, bool | np.bool_)
        text = canonical(value, self.kind)
        return text is not None and (not self.classes or text in self.classes)


def _number(value: Any) -> float | None:
    """``value`` as a finite float (numbers, booleans and numeric text), or None."""
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _number_text(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def batch_problem(frame: pd.DataFrame, target: str, spec: LabelSpec | None) -> str | None:
    """Why a batch's labels are refused (quarantine reason), or None: unlabelled batches always pass."""
    if spec is None or target not in frame.columns:
        return None
    return spec.problems(frame[target], where=f"target {target!r}")
