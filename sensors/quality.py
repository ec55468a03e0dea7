"""Quality sensor: is each new batch still the data the champion was built for?

Every accepted batch is checked against the champion's reference profile (``pipeline.quality``): new,
missing or retyped columns, columns with no values, missing shares, unseen categories and out-of-range
numbers. A batch the champion cannot score at all is a quality problem too. Each batch gets one
``data_quality`` reading (the number of problems) whose evidence names the file and every problem, so the
symptom it becomes tells a person exactly what is wrong. Unseen categories and out-of-range numbers are
kept as ``notices`` beside the problems, not counted: a shifted distribution shows them, and drift owns
it. (Files whose problems block scoring, or that cannot be read at all, never get this far: intake
quarantines them and reports ``batch_quarantined``.) Columns that are not features by design are not
"new": heald's own bookkeeping (``request_id``, ``served_at`` in captured traffic), the target, and the
columns the champion left out on purpose (identifiers, exclusions) or uses without profiling (dates).
"""

from __future__ import annotations

from knowledge.values import ModelRecord, Observation, Version
from pipeline.quality import Problem, QualitySettings, check
from pipeline.validate import OWN_COLUMNS
from sensors.base import SenseContext, SensorSettings

SOURCE = "quality"


def quality_settings(s: SensorSettings) -> QualitySettings:
    """The quality limits of the sensors' settings."""
    return QualitySettings(
        max_missing_increase=s.max_missing_increase,
        max_unseen_share=s.max_unseen_share,
        max_out_of_range_share=s.max_out_of_range_share,
    )


def ignored_columns(model: ModelRecord, champion: Version) -> tuple[str, ...]:
    """Columns that are not "new" in a batch: the target, heald's own, the features and what training left out."""
    dropped = champion.profile.get("features", {}).get("dropped", {})
    return (model.target, *OWN_COLUMNS, *model.features, *dropped)


class QualitySensor:
    """Reports ``data_quality`` per batch: how many problems, and which."""

    def sense(self, ctx: SenseContext) -> list[Observation]:
        champion, profile = ctx.champion, ctx.profile
        if champion is None or profile is None or not ctx.batches:
            return []
        settings = quality_settings(ctx.settings)
        scored = ctx.scored()
        observations = []
        ignore = ignored_columns(ctx.model, champion)
        for loaded in ctx.batches:
            report = loaded.quality
            if report is None or report.settings != settings or report.ignored != ignore:
                report = check(profile, loaded.frame, ignore=ignore, settings=settings)
            problems = [p for p in report.problems if not p.notice]
            notices = [p.evidence() for p in report.problems if p.notice]
            if scored.error and scored.predicted is None and scored.error not in ("no rows", "no champion"):
                problems.append(Problem(column="*", check="unscorable", detail=scored.error))
            observations.append(
                ctx.observe(
                    SOURCE,
                    "data_quality",
                    float(len(problems)),
                    version=champion.number,
                    file=loaded.batch.path.rsplit("/", 1)[-1],
                    batch_id=loaded.batch.id,
                    rows=report.rows,
                    blocking=report.blocking or any(p.check == "unscorable" for p in problems),
                    problems=[p.evidence() for p in problems],
                    notices=notices,
                    missing_share=round(report.missing_share, 6),
                    unseen_share=round(report.unseen_share, 6),
                    out_of_range_share=round(report.out_of_range_share, 6),
                )
            )
        return observations
