"""Numbers written as text: one rule, shared by kind detection, validation, ingest and the coercing transformer.

A value "reads plainly" as a number when, stripped of surrounding spaces, it is what ``float()`` accepts
("12", "-3.5", "1e3"). Users' files also hold numbers *with units or separators*: "20%", "$1,200",
"1,234", "1 234,5", "EUR 12". ``parse_local`` reads them by one fixed rule, the number as written with its
unit dropped ("20%" is 20, "$1,200" is 1200):

- currency signs ($, EUR, GBP, JPY symbols) and a percent sign around the digits are dropped;
- spaces, apostrophes and (when another mark is the decimal one) commas or dots between digit groups of
  three are thousands separators: "1,234" and "1.234.567" and "1 234" are whole numbers;
- a single comma not followed by exactly three digits is a decimal comma ("12,5", "0,75"); with both marks
  the later one is the decimal mark ("1.234,5" and "1,234.5").

Only a *column* can say whether "1,234" is a thousand or one and a bit: ``profile_text`` marks a column
``ambiguous`` when it mixes decimal commas with comma-grouped thousands (or with dot-grouped values), and
such a column is refused by validation with an example rather than guessed at. Work is done on the distinct
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
_UNITS = re.compile(
    r"^\s*([+-]?)\s*[$\u20ac\u00a3\u00a5]?\s*([+-]?)(\d[\d\s.,'\u2019\u00a0\u202f]*)\s*[%$\u20ac\u00a3\u00a5]?\s*$"
)
_GROUPED = re.compile(r"^\d{1,3}([,.]\d{3})+$")
_GAPS = re.compile(r"[\s'\u2019\u00a0\u202f]")
# What a value says about the column's convention: a decimal comma, or a comma/dot that groups thousands.
DECIMAL_COMMA = "decimal_comma"
GROUPING = "grouping"
UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True, kw_only=True)
class TextNumbers:
    """How the non-missing values of a text column read as numbers (counts are of rows, not of values)."""

    values: int
    plain: int
    local: int
    other: int
    local_examples: tuple[str, ...] = ()
    other_examples: tuple[str, ...] = ()
    ambiguous: bool = False

    @property
    def all_numbers(self) -> bool:
        """Every value is a number, plainly or with units and separators read unambiguously."""
        return self.values > 0 and self.plain + self.local == self.values and not self.ambiguous

    @property
    def with_units(self) -> bool:
        """Numbers, some written with units or separators, that heald reads (a warning, not a failure)."""
        return self.all_numbers and self.local > 0

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
    """Text that is neither blank nor a number, plain or with units ("nan" and "inf" are numbers to ``float``)."""
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        float(value.strip())
    except ValueError:
        return bool(np.isnan(parse_local(value)[0]))
    return False


def parse_local(text: str) -> tuple[float, str | None]:
    """A number written with units or separators, and what it says about the convention (NaN if none)."""
    match = _UNITS.match(text)
    if match is None or (match.group(1) and match.group(2)):
        return np.nan, None
    sign = -1.0 if "-" in (match.group(1) + match.group(2)) else 1.0
    digits = _GAPS.sub("", match.group(3))
    comma, dot = digits.rfind(","), digits.rfind(".")
    if comma >= 0 and dot >= 0:  # both marks: the later one is the decimal mark, the other groups thousands
        decimal, grouping = (",", ".") if comma > dot else (".", ",")
        whole, _, fraction = digits.rpartition(decimal)
        if not _GROUPED.match(whole) or grouping not in whole or decimal in whole:
            return np.nan, None
        tag = DECIMAL_COMMA if decimal == "," else GROUPING
        return sign * float(whole.replace(grouping, "") + "." + fraction), tag
    mark = "," if comma >= 0 else "." if dot >= 0 else ""
    if not mark:
        return sign * float(digits), None
    if _GROUPED.match(digits) and (mark == "," or digits.count(".") > 1):
        return sign * float(digits.replace(mark, "")), GROUPING
    if mark == "," and digits.count(",") == 1:
        return sign * float(digits.replace(",", ".")), DECIMAL_COMMA
    if mark == "." and digits.count(".") == 1:
        return sign * float(digits), None
    return np.nan, None


def _number(value: Any) -> float:
    """Plainly, else with units and separators; NaN for anything else."""
    number = _plain(value)
    if np.isnan(number) and isinstance(value, str):
        number = parse_local(value)[0]
    return number


def parse_numbers(values: np.ndarray) -> np.ndarray:
    """Distinct values as floats, read plainly or with units and separators (NaN where neither)."""
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        out[i] = _number(value)
    return out


def parse_frame(frame: pd.DataFrame, columns: list[str] | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """Text columns whose every value is a number (plainly or with units) turned into float64.

    Returns the new frame and, per converted column that held units or separators, one example value (for
    the validation warning). Columns that hold words, or an ambiguous mix of conventions, are left as text,
    for validation to report. Only ``columns`` are considered when given.
    """
    converted: dict[str, pd.Series[Any]] = {}
    examples: dict[str, str] = {}
    for name in columns if columns is not None else [str(c) for c in frame.columns]:
        if name not in frame.columns or not is_text(frame[name]) or frame[name].isna().all():
            continue
        profile = profile_text(frame[name])
        if profile.all_numbers:
            converted[name] = to_numbers(frame[name])
            if profile.local_examples:
                examples[name] = profile.local_examples[0]
    return (frame.assign(**converted) if converted else frame), examples


def to_numbers(series: pd.Series[Any]) -> pd.Series[Any]:
    """The column as float64: numbers kept, numeric text (plain or with units) parsed, anything else missing."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.astype("float64")
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) == 0:
        # Every value is missing (a served row with a null feature): all NaN, nothing to index into.
        return pd.Series(np.nan, index=series.index, name=series.name, dtype="float64")
    parsed = parse_numbers(np.asarray(uniques, dtype=object))
    result = np.where(codes >= 0, parsed[np.maximum(codes, 0)], np.nan)
    return pd.Series(result, index=series.index, name=series.name, dtype="float64")


def profile_text(series: pd.Series[Any], examples: int = 3) -> TextNumbers:
    """Count the values of a text column that read plainly, only in a local format, or not at all."""
    counts = series.dropna().value_counts(dropna=True)
    plain = local = other = 0
    local_seen: list[str] = []
    other_seen: list[str] = []
    tags: set[str | None] = set()
    dotted_triples = False  # "1.234": a decimal point to float(), a thousand to a decimal-comma column
    parsed = parse_plain(np.asarray(counts.index, dtype=object))
    for value, n, number in zip(counts.index, counts.to_numpy(), parsed, strict=True):
        text = str(value)
        if not np.isnan(number):
            plain += int(n)
            dotted_triples = dotted_triples or bool(_GROUPED.match(text.strip()))
        elif text.strip() == "":
            other += int(n)
            _keep(other_seen, repr(text), examples)
        elif not np.isnan((read := parse_local(text))[0]):
            local += int(n)
            tags.add(read[1])
            _keep(local_seen, text, examples)
        elif LOCAL_NUMBER.match(text):  # number-like, but no rule reads it ("1,23,456"): refused, not guessed
            local += int(n)
            tags.add(UNREADABLE)
            _keep(local_seen, text, examples)
        else:
            other += int(n)
            _keep(other_seen, text, examples)
    comma = DECIMAL_COMMA in tags
    return TextNumbers(
        ambiguous=UNREADABLE in tags or (comma and (GROUPING in tags or dotted_triples)),
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
