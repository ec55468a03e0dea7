"""The analyzer trusts an accuracy estimate only with a margin, and never as evidence of health."""

from __future__ import annotations

from datetime import timedelta

from daemon.analyzer import Analyzer, AnalyzerSettings
from daemon.compose import Heald
from knowledge.clock import ManualClock
from knowledge.values import Observation, SymptomKind, Version


def feed(
    watched: Heald, analyzer: Analyzer, clock: ManualClock, champion: Version, values: list[float]
) -> list[object]:
    model = watched.store.get_model(champion.model)
    out: list[object] = []
    for value in values:
        now = clock.advance(timedelta(hours=1))
        obs = Observation(
            at=now,
            model=model.name,
            source="performance",
            metric="accuracy_estimate",
            value=value,
            evidence={"version": champion.number, "estimate": True},
        )
        watched.store.add_observations([obs])
        out.append(analyzer.analyze(model, [obs], now).get(SymptomKind.PERFORMANCE_DROP, "absent"))
    return out


def test_estimates_just_under_the_floor_raise_nothing(watched: Heald, champion: Version, clock: ManualClock) -> None:
    """With floor 0.8 and margin 0.05, estimates of 0.77 are within the margin: no verdict at all."""
    analyzer = Analyzer(watched.store, lambda _: AnalyzerSettings(min_accuracy=0.8, estimate_margin=0.05))
    assert feed(watched, analyzer, clock, champion, [0.77, 0.77, 0.77]) == ["absent"] * 3


def test_estimates_well_under_the_floor_raise_a_drop_marked_as_estimated(
    watched: Heald, champion: Version, clock: ManualClock
) -> None:
    """Two estimates under floor minus margin raise performance_drop saying it came from confidence."""
    analyzer = Analyzer(watched.store, lambda _: AnalyzerSettings(min_accuracy=0.8, estimate_margin=0.05))
    verdicts = feed(watched, analyzer, clock, champion, [0.7, 0.9, 0.7])
    assert verdicts[:2] == ["absent", "absent"]
    symptom = verdicts[2]
    assert getattr(symptom, "kind", None) is SymptomKind.PERFORMANCE_DROP
    assert "from confidence; labels late" in getattr(symptom, "summary", "")
    assert getattr(symptom, "evidence", {})["estimate"] is True
