"""Ingest, the first stage: users' tabular files (CSV or Parquet) read into frames and described.

``read_table`` turns every way a file can be unreadable (missing, empty, binary, not UTF-8, ragged) into a
``DataError`` naming the file and the problem. ``describe`` records what the rest of the pipeline and the
loop need to know about a table: rows, each column's kind (numeric, categorical, boolean or datetime) and
missing share, the target and its kind, the task, and a content fingerprint. ``is_identifier`` tells a
column unique per row (an id) from a feature. The description is stored
with every version, so later batches can be checked against the schema the model was trained on.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline import numbers
from pipeline.errors import DataError
from pipeline.fingerprint import fingerprint

Kind = Literal["numeric", "categorical", "boolean", "datetime"]
TaskName = Literal["classification", "regression"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical", "boolean", "datetime")
SNIFF_BYTES = 8192
DATE_HINTS = ("-", "/", ":")
ID_MIN_ROWS = 20  # below this, every column of a small table would look unique
ID_NAMES = ("id", "uuid", "guid", "key")
CAMEL_ID = re.compile(r"[a-z0-9](Id|ID)$")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, or raise ``DataError`` naming the file and the problem."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix == ".parquet":
        return _read_parquet(path)
    head = _head(path)
    if not head.strip():
        raise DataError(f"{path.name}: the file is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path.name}: is UTF-16 text; heald reads UTF-8 (save the file as UTF-8 CSV)")
    if b"\x00" in head:
        raise DataError(f"{path.name}: looks like a binary file, not CSV text (it contains NUL bytes)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a cut multi-byte character at the end of the sniffed block is fine
            raise DataError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return _read_csv(path)


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(SNIFF_BYTES)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own tree (ArrowInvalid, OSError...); all mean "unreadable"
        raise DataError(f"{path.name}: not a readable Parquet file: {str(exc).strip()[:200]}") from None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name}: the file is empty") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (pd.errors.ParserError, ValueError, OSError, csv.Error) as exc:
        raise DataError(f"{path.name}: cannot be parsed as CSV: {str(exc).strip()}") from None
    header = _header(path)
    if len(header) == frame.shape[1] and len(set(header)) < len(header):
        # pandas renames a repeated name to "name.1"; give the frame its real header so validation sees it.
        frame.columns = pd.Index(header)
    return frame


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh), [])


def read_tables(paths: list[str]) -> pd.DataFrame:
    """Several files read and concatenated in order."""
    frames = [read_table(Path(p)) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# -- what a table holds ---------------------------------------------------------------------------------


def column_kind(series: pd.Series[Any], text: numbers.TextNumbers | None = None) -> Kind:
    """Numeric, categorical, boolean or datetime: what the values mean, whatever type stores them. ``text`` is
    the column's ``numbers.profile_text`` when the caller has it already (validation needs both)."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if not numbers.is_text(series):
        return "categorical"
    values = series.dropna()
    if values.empty:
        return "numeric"
    distinct = np.asarray(pd.unique(values), dtype=object)
    if set(map(type, distinct)) <= {bool, np.bool_}:
        return "boolean"
    if (text if text is not None else numbers.profile_text(values)).all_numbers:
        return "numeric"
    if _dates(distinct):
        return "datetime"
    return "categorical"


def _dates(distinct: np.ndarray[Any, Any]) -> bool:
    first = str(distinct[0])
    if not any(h in first for h in DATE_HINTS) or not any(c.isdigit() for c in first):
        return False
    parsed = pd.to_datetime(pd.Series(distinct).astype(str), format="ISO8601", errors="coerce")
    return bool(parsed.notna().all())


def is_identifier(series: pd.Series[Any]) -> bool:
    """A column unique per row: text or whole numbers, or any numbers under an id-like name ("customer_id").

    Measurements are often unique too (a float column of 200 incomes), so numbers count as ids only when
    they are whole and the name says so.
    """
    values = series.dropna()
    if len(values) < ID_MIN_ROWS or len(values) < len(series) or values.nunique() < len(values):
        return False
    if pd.api.types.is_bool_dtype(values):
        return False
    if numbers.is_text(values) and not numbers.profile_text(values).all_numbers:
        return True
    name = str(series.name)
    words = name.lower().replace("-", "_").replace(" ", "_").split("_")
    named = words[-1] in ID_NAMES or bool(CAMEL_ID.search(name))  # "order_id", "id", "orderId"; not "paid"
    whole = pd.api.types.is_integer_dtype(values) or bool(np.all(np.mod(numbers.to_numbers(values), 1) == 0))
    return named and whole


def detect_task(target: pd.Series[Any]) -> TaskName:
    """Classification for text, booleans and integers with few distinct values; otherwise regression."""
    values = target.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification"
    whole = pd.api.types.is_integer_dtype(values) or bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
    if whole and values.nunique() <= max(20, int(len(values) ** 0.5 / 2)):
        return "classification"
    return "regression"


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnInfo:
    name: str
    kind: Kind
    dtype: str
    missing_share: float

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "dtype": self.dtype, "missing_share": round(self.missing_share, 6)}


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetInfo:
    """What a table holds; stored with a version as the schema later batches are checked against."""

    rows: int
    columns: list[ColumnInfo]
    fingerprint: str
    target: str | None = None
    target_kind: Kind | None = None
    task: TaskName | None = None
    classes: int | None = None
    source: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)  # column -> an example, for numbers read with units

    @property
    def kinds(self) -> dict[str, Kind]:
        return {c.name: c.kind for c in self.columns}

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": {c.name: c.as_json() for c in self.columns},
            "fingerprint": self.fingerprint,
            "target": self.target,
            "target_kind": self.target_kind,
            "task": self.task,
            "classes": self.classes,
            "source": list(self.source),
            "units": dict(self.units),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatasetInfo:
        columns = [
            ColumnInfo(name=name, kind=c["kind"], dtype=c["dtype"], missing_share=float(c["missing_share"]))
            for name, c in data["columns"].items()
        ]
        return cls(
            rows=int(data["rows"]),
            columns=columns,
            fingerprint=data["fingerprint"],
            target=data.get("target"),
            target_kind=data.get("target_kind"),
            task=data.get("task"),
            classes=data.get("classes"),
            source=list(data.get("source", [])),
            units=dict(data.get("units", {})),
        )


def describe(
    frame: pd.DataFrame,
    *,
    target: str | None = None,
    task: TaskName | None = None,
    source: list[str] | None = None,
    units: dict[str, str] | None = None,
) -> DatasetInfo:
    """Describe ``frame``; the task is detected from the target unless given."""
    unique = ~frame.columns.duplicated()
    columns = [
        ColumnInfo(
            name=str(name),
            kind=column_kind(frame.iloc[:, i]),
            dtype=str(frame.iloc[:, i].dtype),
            missing_share=float(frame.iloc[:, i].isna().mean()) if len(frame) else 0.0,
        )
        for i, name in enumerate(frame.columns)
        if unique[i]
    ]
    has_target = target is not None and target in frame.columns and frame[target].notna().any()
    labels = frame[target] if has_target and target is not None else None
    if labels is not None and task is None:
        task = detect_task(labels)
    return DatasetInfo(
        rows=len(frame),
        columns=columns,
        fingerprint=fingerprint(frame.loc[:, unique]),
        target=target,
        target_kind=column_kind(labels) if labels is not None else None,
        task=task,
        classes=int(labels.nunique()) if labels is not None and task == "classification" else None,
        source=list(source or []),
        units=dict(units or {}),
    )
