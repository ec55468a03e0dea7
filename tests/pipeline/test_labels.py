"""One spelling per label: classes normalized by the training target's kind, bad labels refused by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.labels import LabelError, LabelKind, LabelSpec, batch_problem, canonical
from pipeline.profile import Profile, build_profile


def test_one_two_spellings_of_a_numeric_class_are_one_class() -> None:
    """1, 1.0, "1", " 1 " and True are the class "1" of a 0/1 target; 0.5 keeps its decimals."""
    spellings = [1, 1.0, "1", " 1 ", True, np.int64(1), np.float32(1.0)]
    assert {canonical(v, LabelKind.NUMERIC) for v in spellings} == {"1"}
    assert canonical(0.5, LabelKind.NUMERIC) == "0.5"
    assert canonical("yes", LabelKind.NUMERIC) is None


def test_boolean_and_text_targets_have_their_own_spelling() -> None:
    """Booleans accept true/false/1/0 in any type; text classes read back from a file as 1.0 are "1"."""
    assert {canonical(v, LabelKind.BOOLEAN) for v in [True, "true", "TRUE", 1, 1.0, "1"]} == {"True"}
    assert {canonical(v, LabelKind.BOOLEAN) for v in [False, "false", 0, 0.0]} == {"False"}
    assert canonical(2, LabelKind.BOOLEAN) is None
    assert canonical(1.0, LabelKind.TEXT) == "1" and canonical(" cat ", LabelKind.TEXT) == "cat"


def test_a_spec_learned_from_float_labels_reads_int_and_text_batches_alike() -> None:
    """Labels trained as floats and later sent as ints, text or booleans normalize to the same classes."""
    spec = LabelSpec.learn(pd.Series([0.0, 1.0, 1.0, np.nan]), classification=True)
    assert spec.kind is LabelKind.NUMERIC and spec.classes == ("0", "1")
    batch = pd.Series([0, 1, "1", True, None], dtype=object)
    assert spec.normalize(batch).tolist()[:4] == ["0", "1", "1", "1"]
    assert pd.isna(spec.normalize(batch).iloc[4])
    assert spec.problems(batch) is None


def test_regression_targets_become_floats() -> None:
    """A regressor's labels are floats whatever their spelling; text that is no number is refused."""
    spec = LabelSpec.learn(pd.Series([1.5, 2.0]), classification=False)
    assert spec.normalize(pd.Series(["3", 4, 5.5], dtype=object)).tolist() == [3.0, 4.0, 5.5]
    problem = spec.problems(pd.Series([1.0, "lots", np.inf], dtype=object), where="labels")
    assert problem is not None and "'lots'" in problem and "inf" in problem and "regressor" in problem


def test_labels_outside_the_known_classes_are_refused_by_name() -> None:
    """42, "maybe" for a 0/1 target: the message quotes each bad label and lists the classes."""
    spec = LabelSpec.learn(pd.Series([0, 1, 1]), classification=True)
    with pytest.raises(LabelError) as caught:
        spec.check(pd.Series([1, 42, "maybe", 0], dtype=object), where="feedback")
    message = str(caught.value)
    assert message.startswith("feedback: ") and "42" in message and "'maybe'" in message and "['0', '1']" in message


def test_a_batch_with_an_unknown_class_has_a_quarantine_reason_and_an_unlabelled_one_none() -> None:
    """batch_problem names the target and the bad label; unlabelled batches and models without labels pass."""
    spec = LabelSpec.learn(pd.Series(["yes", "no"]), classification=True)
    frame = pd.DataFrame({"x": [1, 2], "bought": ["yes", "perhaps"]})
    reason = batch_problem(frame, "bought", spec)
    assert reason is not None and "target 'bought'" in reason and "'perhaps'" in reason
    assert batch_problem(frame.drop(columns=["bought"]), "bought", spec) is None
    assert batch_problem(frame, "bought", None) is None


def test_the_reference_profile_keeps_labels_canonically_and_old_profiles_are_respelled() -> None:
    """A profile of float labels stores classes "0"/"1"; one stored as "0.0"/"1.0" reads back the same way."""
    frame = pd.DataFrame({"x": np.arange(10.0)})
    labels = pd.Series([0.0, 1.0] * 5)
    profile = build_profile(frame, labels=labels, classification=True)
    assert profile.label is not None and profile.label.to_json()["frequencies"] == {"0": 0.5, "1": 0.5}
    stored = profile.to_json()
    stored["label"]["frequencies"] = {"0.0": 0.5, "1.0": 0.5}  # how profiles were stored before
    again = Profile.from_json(stored)
    assert again is not None and again.label is not None
    assert again.label.to_json()["frequencies"] == {"0": 0.5, "1": 0.5}
    assert again.label_spec == LabelSpec(classification=True, kind=LabelKind.NUMERIC, classes=("0", "1"))


def test_value_writes_an_accepted_label_as_training_spelled_it() -> None:
    """Feedback labels are stored in the training type: ints for integral numeric classes, bools, floats."""
    assert LabelSpec.learn(pd.Series([0, 1]), classification=True).value("1") == 1
    assert LabelSpec.learn(pd.Series([True, False]), classification=True).value(1) is True
    assert LabelSpec.learn(pd.Series([0.5, 2.5]), classification=False).value("3") == 3.0


@pytest.mark.parametrize(
    ("kind", "labels"),
    [
        (LabelKind.NUMERIC, pd.Series([1, 2, 1, 3], index=[10, 11, 12, 13], name="y")),
        (LabelKind.NUMERIC, pd.Series([1.0, np.nan, 0.5, 1.0, 7.25])),
        (LabelKind.NUMERIC, pd.Series(["1", " 1 ", "yes", None, "0"], dtype="str")),
        (LabelKind.TEXT, pd.Series(["cat", " dog", None, "cat", ""], dtype=object)),
        (LabelKind.BOOLEAN, pd.Series([True, False, True])),
        (LabelKind.BOOLEAN, pd.Series(["true", 0, 2, None, 1.0], dtype=object)),
        (LabelKind.TEXT, pd.Series([], dtype=object)),
    ],
)
def test_normalize_spells_each_value_as_a_dictionary_map_would(kind: LabelKind, labels: pd.Series) -> None:
    """Every row gets its value's canonical spelling, and a missing or unusable value becomes NaN, with the
    index and name kept: the same Series as mapping each distinct value through ``canonical``."""
    spec = LabelSpec(classification=True, kind=kind)
    mapping = {v: canonical(v, kind) for v in pd.unique(labels.dropna())}
    expected = labels.map(mapping).astype(object)
    pd.testing.assert_series_equal(spec.normalize(labels), expected)
