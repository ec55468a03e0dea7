"""Numbers written as text: one rule, shared by kind detection, validation and the coercing transformer.

A value "reads plainly" as a number when, stripped of surrounding spaces, it is what ``float()`` accepts
("12", "-3.5", "1e3"). Text that holds numbers only in a local format ("1,234", "12,5", "$12", "12 %")
would need guessing (is "1,234" a thousand or one and a bit?), so heald never converts it silently: it
counts it separately, and validation refuses the column with an example. Work is done on the distinct
values only, so a 100k-row category column costs what its few categories cost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# Digits with a thousands separator, a decimal comma, a currency sign or a percent sign around them.
LOCAL_NUMBER = re.compile(r"^[\s$\u20ac\u00a3\u00a5+-]*\d[\d\s.,'\u2019]*\s*[%$\u20ac\u00a3\u00a5]?\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class TextNumbers:
    """How the non-missing values of a text column read as numbers (counts are of rows, not of values)."""

    values: int
    plain: int
    local: int
    other: int
    local_examples: tuple[str, ...] = ()
    other_examples: tuple[str, ...] = ()

    @property
    def all_plain(self) -> bool:
        return self.values > 0 and self.plain == self.values

    @property
    def mixed(self) -> bool:
        """Mostly numbers, but some values are words: a numeric column with junk in it."""
        numbers = self.plain + self.local
        return 0 < self.other < self.values and numbers >= self.other


def is_text(series: pd.Series[Any]) -> bool:
    return bool(pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series))


def parse_plain(values: np.ndarray) -> np.ndarray:
    """Distinct values as floats (NaN where they do not read plainly); booleans become 0 and 1."""
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        out[i] = _plain(value)
    return out


def _plain(value: Any) -> float:
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return np.nan
    return np.nan


def is_word(value: Any) -> bool:
    """Text that is neither blank nor a plain number ("nan" and "inf" are numbers to ``float``)."""
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        float(value.strip())
    except ValueError:
        return True
    return False


def to_numbers(series: pd.Series[Any]) -> pd.Series[Any]:
    """The column as float64: numbers kept, plain numeric text parsed, anything else missing."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.astype("float64")
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) == 0:
        # Every value is missing (a served row with a null feature): all NaN, nothing to index into.
        return pd.Series(np.nan, index=series.index, name=series.name, dtype="float64")
    parsed = parse_plain(np.asarray(uniques, dtype=object))
    result = np.where(codes >= 0, parsed[np.maximum(codes, 0)], np.nan)
    return pd.Series(result, index=series.index, name=series.name, dtype="float64")


def profile_text(series: pd.Series[Any], examples: int = 3) -> TextNumbers:
    """Count the values of a text column that read plainly, only in a local format, or not at all."""
    counts = series.dropna().value_counts(dropna=True)
    plain = local = other = 0
    local_seen: list[str] = []
    other_seen: list[str] = []
    parsed = parse_plain(np.asarray(counts.index, dtype=object))
    for value, n, number in zip(counts.index, counts.to_numpy(), parsed, strict=True):
        text = str(value)
        if not np.isnan(number):
            plain += int(n)
        elif text.strip() == "":
            other += int(n)
            _keep(other_seen, repr(text), examples)
        elif LOCAL_NUMBER.match(text):
            local += int(n)
            _keep(local_seen, text, examples)
        else:
            other += int(n)
            _keep(other_seen, text, examples)
    return TextNumbers(
        values=int(counts.sum()),
        plain=plain,
        local=local,
        other=other,
        local_examples=tuple(local_seen),
        other_examples=tuple(other_seen),
    )


def _keep(seen: list[str], text: str, limit: int) -> None:
    if len(seen) < limit:
        seen.append(text)
