"""Ingest: reading files with clear errors, describing tables, detecting the task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.ingest import DatasetInfo, column_kind, describe, detect_task, read_table


def test_describe_records_kinds_missing_shares_target_and_fingerprint() -> None:
    """Every column gets its kind and missing share; the target's kind and the task are detected."""
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0],
            "flag": [True, False, True, True],
            "city": ["a", "b", None, "a"],
            "when": ["2024-01-01", "2024-01-02", "2024-02-01", "2024-03-01"],
            "text_numbers": ["1", "2.5", "3", " 4 "],
            "y": ["no", "yes", "no", "yes"],
        }
    )
    info = describe(frame, target="y")
    assert info.kinds == {
        "x": "numeric",
        "flag": "boolean",
        "city": "categorical",
        "when": "datetime",
        "text_numbers": "numeric",
        "y": "categorical",
    }
    assert info.rows == 4
    assert {c.name: c.missing_share for c in info.columns}["x"] == 0.25
    assert info.task == "classification" and info.target_kind == "categorical" and info.classes == 2
    assert DatasetInfo.from_json(info.as_json()) == info
    assert describe(frame.copy(), target="y").fingerprint == info.fingerprint


def test_task_detection_and_its_override() -> None:
    """Text, booleans and few whole numbers are classes; many distinct numbers are a regression target."""
    assert detect_task(pd.Series(["a", "b"])) == "classification"
    assert detect_task(pd.Series([0.0, 1.0, np.nan, 1.0])) == "classification"
    assert detect_task(pd.Series(np.linspace(0, 1, 200))) == "regression"
    frame = pd.DataFrame({"x": range(50), "y": [0, 1] * 25})
    assert describe(frame, target="y", task="regression").task == "regression"


def test_column_kind_of_a_datetime_dtype() -> None:
    """A real datetime column is a datetime, whatever its values."""
    assert column_kind(pd.Series(pd.date_range("2024-01-01", periods=3))) == "datetime"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02binary\xff\xfe", "binary"),
        ("a,b\nd\xe9j\xe0,1\n".encode("latin-1"), "not UTF-8"),
        (b'a,b\n1,"unclosed\n', "cannot be parsed"),
    ],
)
def test_unreadable_files_raise_data_errors_naming_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    """Every way a CSV can be unreadable ends in a DataError that names the file and the problem."""
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as raised:
        read_table(path)
    assert "bad.csv" in str(raised.value)


def test_a_repeated_header_name_survives_reading(tmp_path: Path) -> None:
    """pandas would rename the second 'a' to 'a.1'; the frame keeps the real header so validation sees it."""
    path = tmp_path / "dup.csv"
    path.write_text("a,a,b\n1,2,3\n", encoding="utf-8")
    assert list(read_table(path).columns) == ["a", "a", "b"]


def test_a_broken_parquet_file_is_a_data_error(tmp_path: Path) -> None:
    """A file named .parquet that is not Parquet gets a clear message, not pyarrow's traceback."""
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_table(path)
