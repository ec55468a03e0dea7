"""Validate, the second stage: is this table fit to train on, or (for a batch) to score and learn from?

``validate`` runs every check and returns a ``ValidationReport``: pass, warn or fail per check with the
count of offending cells, rows or columns and a message naming them. Warnings are things the feature
stage repairs or decides (missing values are imputed, numeric text and numbers with units or separators
such as "20%" or "$1,200" are read as numbers, text that is not numeric is used as categories, columns
unique per row are left out as identifiers, dates become day of week, month and age in days, outliers are
clipped, constant columns dropped); failures are things no repair should guess at (numbers whose
convention is ambiguous, words in a column declared numeric, infinities, an empty column, a target that
cannot be learned, a schema that is not the model's). Columns heald adds itself (``OWN_COLUMNS``) and
columns the user excluded are not features and are not checked. A failing training table stops the
pipeline with the report's reasons; a failing landing batch is quarantined whole with its report beside
it, so no row is ever lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline import frames, numbers
from pipeline.errors import DataError
from pipeline.ingest import DatasetInfo, Kind, TaskName, column_kind, is_identifier
from pipeline.profile import OWN_COLUMNS as PROFILE_OWN_COLUMNS

Status = Literal["pass", "warn", "fail"]
Purpose = Literal["training", "batch"]
DELIMITERS = (";", "\t", "|")
SHOWN = 5
# Columns heald writes into captured batches itself: bookkeeping, never features, never checked.
OWN_COLUMNS = tuple(sorted(PROFILE_OWN_COLUMNS))  # one list: the profile's, which drift also reads


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One check's verdict: ``count`` is how many cells, rows or columns it objects to."""

    name: str
    status: Status
    count: int = 0
    message: str = "ok"
    columns: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "count": self.count, "message": self.message, "columns": list(self.columns)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    rows: int
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def reason(self) -> str:
        """The failures in one line, for an error message or a quarantine note."""
        return "; ".join(f"{c.name}: {c.message}" for c in self.failures)

    def raise_for_failures(self, where: str, hint: str = "") -> None:
        """Raise ``DataError`` naming ``where`` and every failure (and ``hint``, e.g. a proposed mapping)."""
        if self.failures:
            raise DataError(f"{where} failed validation: {self.reason()}{hint}")

    def lines(self) -> list[str]:
        """One line per check, for people: ``pass``/``warn``/``FAIL``, the check and its message."""
        return [f"{_MARK[c.status]:<4} {c.name}: {c.message}" for c in self.checks]

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "ok": self.ok, "checks": {c.name: c.as_json() for c in self.checks}}


@dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """The columns (and their kinds) a model was trained on; its target is optional in a batch."""

    columns: dict[str, Kind]
    target: str | None = None

    @classmethod
    def from_info(cls, info: DatasetInfo, only: list[str] | None = None) -> Schema:
        """The table's columns; ``only`` keeps the ones the model takes (identifiers, exclusions left out)."""
        kept = [c for c in info.columns if c.name != info.target and (only is None or c.name in only)]
        return cls(columns={c.name: c.kind for c in kept}, target=info.target)


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationPolicy:
    """Limits of the checks; ``purpose`` says whether the table trains a model or is a batch to score."""

    purpose: Purpose = "training"
    min_rows: int = 20
    test_size: float = 0.2
    outlier_iqr: float = 10.0
    empty_column_rows: int = 10
    exclude: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)  # columns the user declared numeric: words there fail


@dataclass(slots=True, kw_only=True)
class _Table:
    """The frame and facts every check shares, computed once."""

    frame: pd.DataFrame
    target: str | None
    task: TaskName | None
    schema: Schema | None
    policy: ValidationPolicy
    kinds: dict[str, Kind] = field(default_factory=dict)
    text: dict[str, numbers.TextNumbers] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    _numeric: pd.DataFrame | None = None
    _missing: pd.Series[Any] | None = None

    def numeric(self) -> pd.DataFrame:
        """The feature columns stored as numbers (not booleans), selected once for the checks that read them."""
        if self._numeric is None:
            columns = [c for c in self.features if pd.api.types.is_numeric_dtype(self.frame[c])]
            columns = [c for c in columns if not pd.api.types.is_bool_dtype(self.frame[c])]
            self._numeric = frames.columns(self.frame, columns)
        return self._numeric

    def missing(self) -> pd.Series[Any]:
        """Missing cells per feature column, counted once."""
        if self._missing is None:
            self._missing = frames.columns(self.frame, self.features).isna().sum()
        return self._missing

    @property
    def features(self) -> list[str]:
        skipped = {self.target, *OWN_COLUMNS, *self.policy.exclude}
        return [str(c) for c in self.frame.columns if c not in skipped]

    def declared_numeric(self, column: str) -> bool:
        declared = column in self.policy.numeric
        return declared or (self.schema is not None and self.schema.columns.get(column) == "numeric")

    @property
    def training(self) -> bool:
        return self.policy.purpose == "training"


def validate(
    frame: pd.DataFrame,
    *,
    target: str | None,
    task: TaskName | None = None,
    schema: Schema | None = None,
    info: DatasetInfo | None = None,
    policy: ValidationPolicy | None = None,
) -> ValidationReport:
    """Run every check on ``frame``; never raises for bad data (that is what the report is for)."""
    policy = policy or ValidationPolicy()
    if frame.columns.duplicated().any():
        return ValidationReport(rows=len(frame), checks=[_duplicated_columns(frame)])
    table = _Table(frame=frame, target=target, task=task, schema=schema, policy=policy)
    features = set(table.features)
    # Text columns are profiled once: the profile decides a column's kind and the number checks alike.
    profiled = [c for c in frame.columns if (info is None or str(c) in features) and numbers.is_text(frame[c])]
    text = {str(c): numbers.profile_text(frame[c]) for c in profiled}
    if info is None:
        table.kinds = {str(c): column_kind(frame[c], text.get(str(c))) for c in frame.columns}
    else:
        table.kinds = info.kinds
    table.text = {c: p for c, p in text.items() if c in features}
    table.units = dict(info.units) if info is not None else {}
    table.units.update({c: p.local_examples[0] for c, p in table.text.items() if p.with_units})
    checks: list[Callable[[_Table], Check]] = [
        _columns,
        _rows,
        _target,
        _schema,
        _missing_values,
        _empty_columns,
        _duplicate_rows,
        _numbers_as_text,
        _numbers_with_units,
        _mixed_types,
        _identifiers,
        _dates,
        _infinite_values,
        _abnormal_values,
        _constant_columns,
    ]
    return ValidationReport(rows=len(frame), checks=[check(table) for check in checks])


_MARK = {"pass": "pass", "warn": "warn", "fail": "FAIL"}


def _names(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:SHOWN])
    return shown + (f" and {len(columns) - SHOWN} more" if len(columns) > SHOWN else "")


def _duplicated_columns(frame: pd.DataFrame) -> Check:
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    return Check(
        name="duplicated_columns",
        status="fail",
        count=len(repeated),
        message=f"column names used more than once: {_names(repeated)}",
        columns=tuple(repeated),
    )


def _columns(t: _Table) -> Check:
    if len(t.frame.columns) == 1:
        only = str(t.frame.columns[0])
        used = [d for d in DELIMITERS if d in only]
        if used:
            return Check(
                name="columns",
                status="fail",
                count=1,
                message=f"one column named {only[:60]!r}: the file seems separated by {used[0]!r}, "
                "but heald reads comma-separated CSV",
            )
    if not t.features:
        return Check(name="columns", status="fail", message="no feature columns besides the target")
    return Check(name="columns", status="pass", count=len(t.features), message=f"{len(t.features)} feature columns")


def _rows(t: _Table) -> Check:
    rows = len(t.frame)
    if rows == 0:
        return Check(name="rows", status="fail", message="the table has a header but no rows")
    if not t.training:
        return Check(name="rows", status="pass", count=rows, message=f"{rows} rows")
    labelled = int(t.frame[t.target].notna().sum()) if t.target in t.frame.columns else rows
    test_rows = int(labelled * t.policy.test_size)
    if labelled < t.policy.min_rows:
        return Check(
            name="rows",
            status="fail",
            count=labelled,
            message=f"only {labelled} labelled rows; training and testing need at least {t.policy.min_rows}",
        )
    return Check(name="rows", status="pass", count=labelled, message=f"{labelled} labelled rows, {test_rows} for test")


def _target(t: _Table) -> Check:
    if t.target is None:
        return Check(name="target", status="pass", message="no target (unlabelled rows)")
    if t.target not in t.frame.columns:
        if not t.training:
            return Check(name="target", status="pass", message="unlabelled batch")
        return Check(
            name="target",
            status="fail",
            message=f"target column {t.target!r} is not in the table (columns: {_names(t.features)})",
        )
    labels = t.frame[t.target]
    missing = int(labels.isna().sum())
    if missing == len(labels):
        if not t.training:
            return Check(name="target", status="pass", count=missing, message="unlabelled batch")
        return Check(
            name="target", status="fail", count=missing, message=f"target {t.target!r} is missing in every row"
        )
    return _usable_target(t, labels.dropna(), missing)


def _usable_target(t: _Table, labels: pd.Series[Any], missing: int) -> Check:
    if t.task == "regression":
        values = numbers.to_numbers(labels)
        bad = int(values.isna().sum() + np.isinf(values).sum())
        if bad:
            example = labels[values.isna() | np.isinf(values)].astype(str).iloc[0]
            return Check(
                name="target",
                status="fail",
                count=bad,
                message=f"regression target {t.target!r} has {bad} values that are not finite numbers "
                f"(e.g. {example!r})",
            )
    elif t.task == "classification" and t.training:
        counts = labels.value_counts()
        if len(counts) < 2:
            return Check(
                name="target",
                status="fail",
                count=int(counts.iloc[0]),
                message=f"target {t.target!r} has one class only ({counts.index[0]!r}); a classifier needs two",
            )
        rare = counts[counts < 2]
        if len(rare):
            return Check(
                name="target",
                status="warn",
                count=len(rare),
                message=f"classes with a single row cannot be stratified: {_names([str(c) for c in rare.index])}",
            )
    if missing:
        return Check(
            name="target",
            status="warn",
            count=missing,
            message=f"{missing} rows have no {t.target!r}; they are kept in the file but not used for training",
        )
    return Check(name="target", status="pass", message=f"target {t.target!r} usable")


def _schema(t: _Table) -> Check:
    if t.schema is None:
        return Check(name="schema", status="pass", message="no expected schema to compare with")
    present = set(t.features)
    missing = [c for c in t.schema.columns if c not in present]
    extra = [c for c in t.features if c not in t.schema.columns]
    retyped = [
        f"{c} ({want} -> {t.kinds[c]})"
        for c, want in t.schema.columns.items()
        if c in present and not _compatible(want, t.kinds[c], t.text.get(c))
    ]
    problems = []
    if missing:
        problems.append(f"missing columns {_names(missing)}")
    if extra and t.training:
        problems.append(f"extra columns {_names(extra)}")
    if retyped:
        problems.append(f"retyped columns {', '.join(retyped[:SHOWN])}")
    if problems:
        count = len(missing) + len(retyped) + (len(extra) if t.training else 0)
        return Check(name="schema", status="fail", count=count, message="; ".join(problems))
    if extra:
        # A batch may carry bookkeeping columns (ids, timestamps) the model ignores; a training table may not,
        # since the new version would then expect inputs the served model never saw.
        return Check(
            name="schema",
            status="warn",
            count=len(extra),
            message=f"extra columns {_names(extra)} are not used by the model",
            columns=tuple(extra),
        )
    return Check(name="schema", status="pass", message="columns and kinds match the model")


def _compatible(want: Kind, got: Kind, text: numbers.TextNumbers | None) -> bool:
    """Can a column of kind ``got`` feed a model trained on ``want``? Categories accept anything."""
    if want in (got, "categorical"):
        return True
    if want in ("numeric", "boolean") and got in ("numeric", "boolean"):
        return True
    # Numbers that arrive as text (plain or with units) are read by the model; words where numbers belong are not.
    return want == "numeric" and text is not None and (text.values == 0 or text.all_numbers)


def _missing_values(t: _Table) -> Check:
    missing = t.missing()
    missing = missing[missing > 0].sort_values(ascending=False)
    if missing.empty:
        return Check(name="missing_values", status="pass", message="no missing values")
    rows = len(t.frame)
    shown = ", ".join(f"{c} {n / rows:.0%}" for c, n in missing.head(SHOWN).items())
    return Check(
        name="missing_values",
        status="warn",
        count=int(missing.sum()),
        message=f"{int(missing.sum())} missing cells in {len(missing)} columns ({shown}); they are imputed",
        columns=tuple(str(c) for c in missing.index),
    )


def _empty_columns(t: _Table) -> Check:
    rows = len(t.frame)
    if rows == 0 or (not t.training and rows < t.policy.empty_column_rows):
        return Check(name="empty_columns", status="pass", message="too few rows to judge")
    missing = t.missing()
    empty = [c for c in t.features if missing[c] == rows]
    if empty:
        return Check(
            name="empty_columns",
            status="fail",
            count=len(empty),
            message=f"columns with no value in any of {rows} rows: {_names(empty)}",
            columns=tuple(empty),
        )
    return Check(name="empty_columns", status="pass", message="every column has values")


def _duplicate_rows(t: _Table) -> Check:
    duplicates = int(t.frame.duplicated().sum()) if len(t.frame) else 0
    if duplicates:
        return Check(
            name="duplicate_rows",
            status="warn",
            count=duplicates,
            message=f"{duplicates} rows repeat an earlier row exactly; they are kept",
        )
    return Check(name="duplicate_rows", status="pass", message="no repeated rows")


def _numbers_as_text(t: _Table) -> Check:
    local = {c: p for c, p in t.text.items() if p.local and p.ambiguous and p.other == 0}
    if local:
        column, profile = next(iter(local.items()))
        return Check(
            name="numbers_as_text",
            status="fail",
            count=sum(p.local for p in local.values()),
            message=f"numbers written in a local format that heald will not guess at in {_names(list(local))} "
            f"(e.g. {column!r}: {', '.join(repr(e) for e in profile.local_examples)}: decimal commas mixed "
            "with thousands separators); write plain numbers such as 1234.5",
            columns=tuple(local),
        )
    plain = [c for c, p in t.text.items() if p.all_plain]
    if plain:
        return Check(
            name="numbers_as_text",
            status="warn",
            count=sum(t.text[c].plain for c in plain),
            message=f"numbers stored as text in {_names(plain)}; they are read as numbers",
            columns=tuple(plain),
        )
    return Check(name="numbers_as_text", status="pass", message="numbers are stored as numbers")


def _numbers_with_units(t: _Table) -> Check:
    if not t.units:
        return Check(name="numbers_with_units", status="pass", message="no units or separators in numbers")
    shown = ", ".join(f"{c} ({e!r})" for c, e in list(t.units.items())[:SHOWN])
    return Check(
        name="numbers_with_units",
        status="warn",
        count=len(t.units),
        message=f"numbers written with units or separators are read as numbers, units dropped: {shown}",
        columns=tuple(t.units),
    )


def _mixed_types(t: _Table) -> Check:
    mixed = {c: p for c, p in t.text.items() if p.mixed}
    if mixed:
        declared = [c for c in mixed if t.declared_numeric(c)]
        column, profile = next((c, mixed[c]) for c in declared or mixed)
        example = f"e.g. {', '.join(repr(e) for e in profile.other_examples)}"
        if declared:
            return Check(
                name="mixed_types",
                status="fail",
                count=sum(mixed[c].other for c in declared),
                message=f"numbers mixed with text in {_names(declared)}, declared numeric "
                f"({column!r}: {profile.other} of {profile.values} values are not numbers, {example})",
                columns=tuple(declared),
            )
        return Check(
            name="mixed_types",
            status="warn",
            count=sum(p.other for p in mixed.values()),
            message=f"numbers mixed with text in {_names(list(mixed))} are used as categories "
            f"({column!r}: {profile.other} of {profile.values} values are not numbers, {example}); "
            "declare the column numeric to have such rows refused",
            columns=tuple(mixed),
        )
    return Check(name="mixed_types", status="pass", message="each column holds one type")


def _identifiers(t: _Table) -> Check:
    if not t.training:
        return Check(name="identifiers", status="pass", message="not judged on a batch")
    found = [c for c in t.features if t.kinds.get(c) != "datetime" and is_identifier(t.frame[c])]
    if not found:
        return Check(name="identifiers", status="pass", message="no column is unique per row")
    return Check(
        name="identifiers",
        status="warn",
        count=len(found),
        message=f"columns unique per row look like identifiers and are not used as features: {_names(found)}",
        columns=tuple(found),
    )


def _dates(t: _Table) -> Check:
    dates = [c for c in t.features if t.kinds.get(c) == "datetime"]
    if not dates or not t.training:
        return Check(name="dates", status="pass", message="no date columns" if not dates else "not judged on a batch")
    return Check(
        name="dates",
        status="warn",
        count=len(dates),
        message=f"date columns become day of week, month and age in days: {_names(dates)}",
        columns=tuple(dates),
    )


def _infinite_values(t: _Table) -> Check:
    block = t.numeric()
    infinite = pd.Series(np.isinf(block.to_numpy(dtype=float)).sum(axis=0), index=block.columns)
    for column, profile in t.text.items():
        if profile.plain:
            infinite[column] = int(np.isinf(numbers.to_numbers(t.frame[column])).sum())
    infinite = infinite[infinite > 0]
    if infinite.empty:
        return Check(name="infinite_values", status="pass", message="no infinities")
    return Check(
        name="infinite_values",
        status="fail",
        count=int(infinite.sum()),
        message=f"{int(infinite.sum())} infinite values in {_names([str(c) for c in infinite.index])}",
        columns=tuple(str(c) for c in infinite.index),
    )


def _abnormal_values(t: _Table) -> Check:
    block = t.numeric().to_numpy(dtype=float)
    if block.size == 0 or len(block) < 4:
        return Check(name="abnormal_values", status="pass", message="nothing to judge")
    block = np.where(np.isinf(block), np.nan, block)
    names = t.numeric().columns
    usable = ~np.all(np.isnan(block), axis=0)
    block, names = block[:, usable], names[usable]
    if block.shape[1] == 0:
        return Check(name="abnormal_values", status="pass", message="no numeric values to judge")
    q1, q3 = np.nanquantile(block, [0.25, 0.75], axis=0)
    spread = t.policy.outlier_iqr * np.where(q3 > q1, q3 - q1, np.nan)
    far = (block < q1 - spread) | (block > q3 + spread)
    counts = far.sum(axis=0)
    flagged = [str(c) for c, n in zip(names, counts, strict=True) if n]
    if not flagged:
        return Check(name="abnormal_values", status="pass", message="no extreme values")
    total = int(counts.sum())
    return Check(
        name="abnormal_values",
        status="warn",
        count=total,
        message=f"{total} values lie more than {t.policy.outlier_iqr:g} IQR outside the quartiles in "
        f"{_names(flagged)}; they are clipped",
        columns=tuple(flagged),
    )


def _constant_columns(t: _Table) -> Check:
    if not t.training or len(t.frame) < 2:
        return Check(name="constant_columns", status="pass", message="not judged on a batch")
    constant = [c for c in t.features if t.frame[c].nunique(dropna=True) <= 1 and t.frame[c].notna().any()]
    if constant and len(constant) == len(t.features):
        return Check(
            name="constant_columns",
            status="fail",
            count=len(constant),
            message="every feature column holds a single value; there is nothing to learn from",
        )
    if constant:
        return Check(
            name="constant_columns",
            status="warn",
            count=len(constant),
            message=f"columns with a single value are not used: {_names(constant)}",
            columns=tuple(constant),
        )
    return Check(name="constant_columns", status="pass", message="every column varies")
