"""Validation: a report with pass, warn or fail per check, counts, and messages that name the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.validate import Schema, ValidationPolicy, validate


def good(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "z": rng.normal(size=rows),
            "c": rng.choice(["a", "b"], rows),
            "y": [0, 1] * (rows // 2),
        }
    )


def test_a_clean_table_passes_every_check() -> None:
    """No failures and no warnings on a clean table; the report lists every check."""
    report = validate(good(), target="y", task="classification")
    assert report.ok and not report.warnings
    assert {c.name for c in report.checks} >= {"rows", "target", "schema", "missing_values", "mixed_types"}


def test_repairable_problems_warn_with_counts() -> None:
    """Missing cells, repeated rows, plain numeric text, extreme values and constant columns are warnings."""
    frame = good()
    frame.loc[:4, "x"] = np.nan
    frame["as_text"] = [str(v) for v in range(len(frame))]
    frame = pd.concat([frame, frame.iloc[:3]], ignore_index=True)
    frame["same"] = 1
    frame.loc[10, "z"] = 1e9
    report = validate(frame, target="y", task="classification")
    assert report.ok
    assert report.check("missing_values").status == "warn" and report.check("missing_values").count == 8
    assert report.check("duplicate_rows").count == 3
    assert report.check("numbers_as_text").status == "warn" and "as_text" in report.check("numbers_as_text").message
    assert report.check("abnormal_values").count == 1
    assert report.check("constant_columns").columns == ("same",)


@pytest.mark.parametrize(
    ("change", "check", "words"),
    [
        (lambda f: f.assign(x=f["x"].astype(object).where(f.index > 2, "oops")), "mixed_types", "'oops'"),
        (lambda f: f.assign(x=["1,234", "12,5"] * (len(f) // 2)), "numbers_as_text", "'1,234'"),
        (lambda f: f.assign(z=np.where(f.index == 0, np.inf, f["z"])), "infinite_values", "'z'"),
        (lambda f: f.assign(empty=np.nan), "empty_columns", "'empty'"),
        (lambda f: f.assign(y=np.nan), "target", "missing in every row"),
        (lambda f: f.assign(y=1), "target", "one class only"),
        (lambda f: f.drop(columns="y"), "target", "not in the table"),
        (lambda f: f.head(10), "rows", "only 10 labelled rows"),
        (lambda f: f.assign(x="a"), "constant_columns", None),
    ],
)
def test_unusable_tables_fail_the_check_that_names_why(change, check, words) -> None:  # type: ignore[no-untyped-def]
    """Each failure is reported by its own check, and the error names the column or value (words in a
    column fail where it is declared numeric)."""
    frame = change(good())
    if check == "constant_columns":
        frame = frame.assign(z=0.0, c="b")
    report = validate(frame, target="y", task="classification", policy=ValidationPolicy(numeric=["x"]))
    assert report.check(check).status == "fail", report.as_json()
    if words:
        assert words in report.check(check).message
    with pytest.raises(DataError, match="failed validation"):
        report.raise_for_failures("data.csv")


def test_schema_drift_names_missing_extra_and_retyped_columns() -> None:
    """Against the model's schema, missing, extra and retyped columns fail; plain numeric text is fine."""
    schema = Schema(columns={"x": "numeric", "z": "numeric", "c": "categorical"}, target="y")
    batch = good().drop(columns="z").assign(extra=1.0, x=lambda f: f["x"].astype(str))
    report = validate(batch, target="y", task="classification", schema=schema, policy=ValidationPolicy(purpose="batch"))
    message = report.check("schema").message
    assert "missing columns 'z'" in message and "extra" not in message and "retyped" not in message
    extra = validate(good().assign(extra=1.0), target="y", task="classification", schema=schema)
    assert extra.check("schema").status == "fail" and "extra columns 'extra'" in extra.check("schema").message
    batch_extra = good().assign(extra=1.0)
    report = validate(batch_extra, target="y", schema=schema, policy=ValidationPolicy(purpose="batch"))
    assert report.ok and report.check("schema").status == "warn"
    retyped = good().assign(x=["word"] * 60)
    report = validate(
        retyped, target="y", task="classification", schema=schema, policy=ValidationPolicy(purpose="batch")
    )
    assert "retyped columns x (numeric -> categorical)" in report.check("schema").message


def test_a_batch_may_come_without_labels_or_with_few_rows() -> None:
    """A batch needs no target and no minimum size; a training table does."""
    batch = good().drop(columns="y").head(3)
    assert validate(batch, target="y", task="classification", policy=ValidationPolicy(purpose="batch")).ok
    assert not validate(batch.assign(y=1), target="y", task="classification").ok


def test_a_one_column_file_with_semicolons_is_a_delimiter_problem() -> None:
    """A file read as one column named 'a;b;c' is reported as using the wrong delimiter."""
    frame = pd.DataFrame({"a;b;y": ["1;2;0"] * 30})
    assert "separated by ';'" in validate(frame, target="y").check("columns").message


def test_a_batch_whose_numbers_are_all_missing_is_judged_without_error() -> None:
    """Every numeric cell missing: the empty-column check fails; the outlier check has nothing to judge."""
    frame = good().assign(x=np.nan, z=np.nan)
    report = validate(frame, target="y", task="classification", policy=ValidationPolicy(purpose="batch"))
    assert report.check("empty_columns").status == "fail"
    assert report.check("abnormal_values").status == "pass"
