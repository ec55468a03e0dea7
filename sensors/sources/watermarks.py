"""Watermarks: the values that order a source's rows (numbers, times, text), kept as JSON in the store.

A time is kept as ``{"at": "<ISO 8601>"}`` so that it comes back as a time to bind to the next query; the
look-back subtracts seconds from a time (or from a time written as ISO text) and units from a number.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from knowledge.errors import SourceError


def encode(value: Any) -> Any:
    """A watermark as JSON the store keeps."""
    if isinstance(value, datetime):
        return {"at": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict) and "at" in value:
        return datetime.fromisoformat(value["at"])
    if isinstance(value, dict) and "date" in value:
        return date.fromisoformat(value["date"])
    return value


def behind(value: Any, lookback: float) -> Any:
    """``value`` moved back by the look-back window (a text that is not a time cannot be: it is kept)."""
    if not lookback or value is None:
        return value
    if isinstance(value, datetime | date):
        return value - timedelta(seconds=lookback)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value - lookback
    if isinstance(value, str):
        try:
            return (datetime.fromisoformat(value) - timedelta(seconds=lookback)).isoformat()
        except ValueError:
            return value
    return value


def newest(values: list[Any], where: str) -> Any:
    """The highest watermark; values of kinds that cannot be compared are a source error."""
    try:
        return max(values)
    except TypeError as exc:
        raise SourceError(
            f"{where}: watermark values cannot be compared ({exc}); did the column's type change?"
        ) from None


def at_least(value: Any, floor: Any) -> bool:
    """Whether ``value`` is not below ``floor`` (values that cannot be compared are kept)."""
    try:
        return bool(value >= floor)
    except TypeError:
        return True
