"""Pipeline-run sensor: did the model's latest pipeline run fail?

Runs are recorded in the knowledge store by whoever ran them (``healctl pipeline run``, ``healctl init``,
the ``rerun`` action). The sensor reports ``pipeline_failed`` = 1 with the run, the stage and the error
while the newest run is a failed one, and 0 once a newer run (a rerun, say) succeeded, so the analyzer can
open a ``pipeline_failed`` incident and later see it clear. A model that never ran the pipeline reports
nothing.
"""

from __future__ import annotations

from knowledge.values import Observation
from sensors.base import SenseContext

SOURCE = "pipeline"


class PipelineRunSensor:
    """Reports ``pipeline_failed`` for the model's newest finished pipeline run."""

    def sense(self, ctx: SenseContext) -> list[Observation]:
        runs = [r for r in ctx.registry.store.pipeline_runs(ctx.model.name, limit=5) if r.status != "running"]
        if not runs:
            return []
        latest = runs[-1]
        if latest.status != "failed":
            return [ctx.observe(SOURCE, "pipeline_failed", 0.0, run=latest.id)]
        return [
            ctx.observe(
                SOURCE,
                "pipeline_failed",
                1.0,
                run=latest.id,
                stage=latest.failed_stage,
                error=latest.error,
                trigger=latest.trigger,
            )
        ]
