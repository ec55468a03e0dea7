"""A measured accuracy is under the floor only beyond its sampling noise: a batch's score is an estimate."""

from __future__ import annotations

from datetime import timedelta

from daemon.analyzer import Analyzer, AnalyzerSettings
from daemon.compose import Heald
from knowledge.clock import ManualClock
from knowledge.values import Metric, Observation, SymptomKind, Version

FLOOR = 0.85


def feed(watched: Heald, clock: ManualClock, champion: Version, readings: list[tuple[float, int]]) -> list[object]:
    """Labelled accuracy readings (value, rows) of the champion, one per tick; the drop verdict of each tick."""
    analyzer = Analyzer(watched.store, lambda _: AnalyzerSettings(min_accuracy=FLOOR, persistence=2, window=3))
    model = watched.store.get_model(champion.model)
    out: list[object] = []
    for value, rows in readings:
        now = clock.advance(timedelta(minutes=1))
        obs = Observation(
            at=now,
            model=model.name,
            source="performance",
            metric=Metric.PERFORMANCE,
            value=value,
            evidence={"version": champion.number, "metric": "accuracy", "accuracy": value, "rows": rows},
        )
        watched.store.add_observations([obs])
        out.append(analyzer.analyze(model, [obs], now).get(SymptomKind.PERFORMANCE_DROP, "absent"))
    return out


def test_readings_a_point_under_the_floor_on_small_batches_are_noise(
    watched: Heald, champion: Version, clock: ManualClock
) -> None:
    """Two 250-row batches at 0.84 and 0.838 (floor 0.85) are within one standard error: no verdict, no incident."""
    assert feed(watched, clock, champion, [(0.84, 250), (0.838, 250), (0.845, 250)]) == ["absent"] * 3


def test_the_same_readings_on_large_batches_are_a_drop(watched: Heald, champion: Version, clock: ManualClock) -> None:
    """On 5,000-row batches the same scores are well measured: two of them under the floor raise the drop."""
    verdicts = feed(watched, clock, champion, [(0.84, 5000), (0.838, 5000)])
    assert verdicts[0] == "absent"
    assert getattr(verdicts[1], "kind", None) is SymptomKind.PERFORMANCE_DROP


def test_a_real_drop_on_small_batches_is_raised_at_once(watched: Heald, champion: Version, clock: ManualClock) -> None:
    """An abrupt fall to 0.76 on 250-row batches is far beyond noise: raised on the second reading, as before."""
    verdicts = feed(watched, clock, champion, [(0.80, 250), (0.76, 250)])
    assert verdicts[0] == "absent"
    symptom = verdicts[1]
    assert getattr(symptom, "kind", None) is SymptomKind.PERFORMANCE_DROP
    assert getattr(symptom, "evidence", {})["readings"] == [0.8, 0.76]


def test_a_reading_above_the_floor_is_still_health(watched: Heald, champion: Version, clock: ManualClock) -> None:
    """Noise-aware sick readings give no verdict, but a reading over the floor is still evidence of health."""
    assert feed(watched, clock, champion, [(0.84, 250), (0.90, 250)]) == ["absent", None]


def test_on_100_row_batches_a_drop_of_eight_points_is_raised_and_two_points_are_not(
    watched: Heald, champion: Version, clock: ManualClock
) -> None:
    """100-row batches are noisier (about 3.7 points each): two at 0.83 and 0.82 open nothing; two at 0.78 and 0.76
    (eight points under the floor) still raise the drop on the second reading."""
    assert feed(watched, clock, champion, [(0.83, 100), (0.82, 100)]) == ["absent", "absent"]
    verdicts = feed(watched, clock, champion, [(0.90, 100), (0.90, 100), (0.90, 100), (0.78, 100), (0.76, 100)])
    assert verdicts[:4] == [None, None, None, "absent"]
    assert getattr(verdicts[4], "kind", None) is SymptomKind.PERFORMANCE_DROP
