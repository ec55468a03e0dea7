"""Data as users have it: numbers with units and separators, text that is not numeric, ids and dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import numbers
from pipeline.features import infer_spec, preprocessor
from pipeline.ingest import column_kind, is_identifier
from pipeline.validate import ValidationPolicy, validate


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("20%", 20.0),
        ("12 %", 12.0),
        ("$1,200", 1200.0),
        ("-$3.50", -3.5),
        ("1,234", 1234.0),
        ("1,234,567", 1234567.0),
        ("1.234.567", 1234567.0),
        ("1 234,5", 1234.5),
        ("1.234,5", 1234.5),
        ("1,234.5", 1234.5),
        ("12,5", 12.5),
        ("0,75", 0.75),
        ("\u20ac 12", 12.0),
        ("1'000", 1000.0),
    ],
)
def test_numbers_with_units_and_separators_are_read_by_one_rule(text: str, value: float) -> None:
    """Units are dropped, thousands separators removed, a lone comma before 1, 2 or 4+ digits is decimal."""
    assert numbers.parse_local(text)[0] == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "12abc", "1,23,456", "--3", "1.2.3,4,5", ""])
def test_text_that_is_no_number_is_not_read_as_one(text: str) -> None:
    """Words, odd groupings and stray marks are not numbers."""
    assert np.isnan(numbers.parse_local(text)[0])


def test_a_column_mixing_decimal_commas_and_comma_thousands_is_ambiguous() -> None:
    """'1,234' next to '12,5' cannot be read safely: the column is marked ambiguous, not converted."""
    profile = numbers.profile_text(pd.Series(["1,234", "12,5", "7"]))
    assert profile.ambiguous and not profile.all_numbers
    frame, units = numbers.parse_frame(pd.DataFrame({"x": ["1,234", "12,5", "7"]}))
    assert frame["x"].tolist() == ["1,234", "12,5", "7"] and units == {}


def test_parse_frame_converts_unit_columns_and_names_them() -> None:
    """Text columns of numbers with units become float64; the example value is kept for the warning."""
    frame = pd.DataFrame({"rate": ["20%", "5%", None], "amount": ["$1,200", "$30", "$4"], "word": ["a", "b", "c"]})
    parsed, units = numbers.parse_frame(frame)
    assert parsed["rate"].tolist()[:2] == [20.0, 5.0] and np.isnan(parsed["rate"].iloc[2])
    assert parsed["amount"].tolist() == [1200.0, 30.0, 4.0]
    assert parsed["word"].tolist() == ["a", "b", "c"]
    assert set(units) == {"rate", "amount"}


def user_table(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rate = rng.integers(1, 40, rows)
    amount = rng.integers(100, 5000, rows)
    visits = rng.integers(1000, 9000, rows)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(rows)],
            "rate": [f"{r}%" for r in rate],
            "amount": [f"${a:,}" for a in amount],
            "visits": [f"{v:,}" for v in visits],
            "signup_date": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "y": (rate > 20).astype(int),
        }
    )


def test_validation_warns_about_units_ids_and_dates_and_passes() -> None:
    """The users' table passes; each repair is a warning that names its columns."""
    report = validate(user_table(), target="y", task="classification")
    assert report.ok, report.reason()
    assert report.check("numbers_with_units").status == "warn"
    assert set(report.check("numbers_with_units").columns) == {"rate", "amount", "visits"}
    assert report.check("identifiers").columns == ("customer_id",)
    assert report.check("dates").columns == ("signup_date",)
    assert any(line.startswith("warn numbers_with_units") for line in report.lines())


def test_text_that_is_not_numeric_is_categorical_unless_declared_numeric() -> None:
    """Words among numbers warn (the column is used as categories); declared numeric, the same column fails."""
    frame = user_table().assign(score=["12", "n/a", "7", "9"] * 30)
    assert validate(frame, target="y", task="classification").check("mixed_types").status == "warn"
    declared = validate(frame, target="y", task="classification", policy=ValidationPolicy(numeric=["score"]))
    assert declared.check("mixed_types").status == "fail" and "'score'" in declared.reason()


def test_excluded_and_own_columns_are_not_checked() -> None:
    """A column the user excluded, and heald's own request_id, are neither features nor checked."""
    frame = user_table().assign(junk=np.nan, request_id=[f"r{i}" for i in range(120)])
    assert not validate(frame, target="y", task="classification").ok
    report = validate(frame, target="y", task="classification", policy=ValidationPolicy(exclude=["junk"]))
    assert report.ok and "request_id" not in report.check("identifiers").columns


def test_ids_are_left_out_and_dates_become_parts() -> None:
    """The spec drops the id, reads unit columns as numbers and turns the date into three features."""
    frame, _ = numbers.parse_frame(user_table())
    spec = infer_spec(frame, "y")
    assert spec.dropped["customer_id"] == "unique per row (an identifier)"
    assert set(spec.numeric) == {"rate", "amount", "visits"} and spec.dates == ["signup_date"]
    assert "customer_id" not in spec.columns
    fitted = preprocessor(spec).fit(frame[spec.columns], frame["y"])
    names = list(fitted.get_feature_names_out())
    assert {"dates__signup_date_dayofweek", "dates__signup_date_month", "dates__signup_date_age_days"} <= set(names)


def test_identifier_rule_keeps_measurements() -> None:
    """Unique floats are measurements; unique text or an integer named like an id is an identifier."""
    rng = np.random.default_rng(0)
    assert not is_identifier(pd.Series(rng.normal(size=50), name="income"))
    assert is_identifier(pd.Series([f"u{i}" for i in range(50)], name="user"))
    assert is_identifier(pd.Series(range(50), name="order_id"))
    assert not is_identifier(pd.Series(range(50), name="tenure"))
    assert not is_identifier(pd.Series(range(50), name="amount_paid"))
    assert is_identifier(pd.Series(range(50), name="orderId"))
    assert column_kind(pd.Series(["20%", "30%"])) == "numeric"
