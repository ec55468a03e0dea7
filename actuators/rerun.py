"""Rerun actuator: resume the model's last failed pipeline run from the stage that failed.

The stages that succeeded are reused from their folders (verified by fingerprint, never recomputed); the
failed stage and those after it run again with the run's own config. A run that now succeeds is
registered as a new version and promoted only if it is not worse than the champion on the run's
held-out rows. The action succeeds when the pipeline does (that is the symptom it answers); whether the
new version was promoted is in its result.

The stages, the new version's profile and skops bytes and the champion's score run through the action's
``compute`` (a worker process with the ``process`` executor, never the process answering predictions); the
run's records, the version and the alias moves are written here, by the daemon, under the action's lease epoch.
A worker that dies fails the action and leaves the run failed at the stage it was running, resumable again.
"""

from __future__ import annotations

from pathlib import Path

from actuators.base import ActContext, Outcome
from actuators.runs import champion_file, promote_if_not_worse, recorded_run, register_made, register_run
from knowledge.values import Action, PipelineRun
from pipeline.runner import RetryPolicy, Runner, StageListener
from pipeline.stages import standard_stages


def last_failed(ctx: ActContext) -> PipelineRun | None:
    """The model's newest pipeline run, if it failed (a newer success means there is nothing to rerun)."""
    runs = ctx.store.pipeline_runs(ctx.model.name, limit=1)
    return runs[-1] if runs and runs[-1].status == "failed" else None


class RerunActuator:
    """Resumes failed pipeline runs; ``runs`` is the folder that holds every run's outputs."""

    def __init__(
        self,
        runs: Path,
        *,
        retry: RetryPolicy | None = None,
        listener: StageListener | None = None,
        runner: Runner | None = None,
    ) -> None:
        self.runs = runs
        self.runner = runner or Runner(standard_stages(), retry=retry)
        self.listener = listener

    def execute(self, action: Action, ctx: ActContext) -> Outcome:
        failed = last_failed(ctx)
        if failed is None:
            return Outcome(ok=False, detail=f"{ctx.model.name} has no failed pipeline run to rerun")
        done = recorded_run(
            ctx.store,
            self.runner,
            root=self.runs,
            now=ctx.now,
            trigger="rerun",
            actor=action.actor,
            resume=failed,
            action_id=action.id,
            forward=self.listener,
            compute=ctx.compute,
            champion=champion_file(ctx.registry, ctx.model, ctx.registry.champion(ctx.model.name)),
        )
        result = {"run": done.row.id, "resumed": failed.id, "from_stage": failed.failed_stage}
        if done.row.status != "succeeded":
            return Outcome(
                ok=False,
                detail=f"rerun of pipeline run #{failed.id} failed at {done.row.failed_stage}: {done.row.error}",
                result=result,
            )
        made = done.worked.registration if done.worked is not None else None
        if made is not None:
            version = register_made(
                ctx.registry,
                made,
                model=ctx.model.name,
                at=ctx.now,
                created_by=f"action:{action.id}",
                run_id=done.row.id,
            )
        else:
            version = register_run(
                ctx.registry,
                done.run,
                model=ctx.model.name,
                at=ctx.now,
                created_by=f"action:{action.id}",
                run_id=done.row.id,
            )
        judgement = promote_if_not_worse(
            ctx.registry,
            done.run,
            version,
            at=ctx.now,
            actor=action.actor,
            min_gain=ctx.settings.min_gain,
            action_id=action.id,
            epoch=ctx.epoch,
            scored=done.worked,
        )
        reused = [s.stage for s in done.row.stages if s.status == "reused"]
        kept = ", ".join(reused) or "nothing"
        return Outcome(
            ok=True,
            detail=f"pipeline run #{failed.id} rerun from {failed.failed_stage} (reused {kept}); {judgement.detail}",
            result={**result, "version": version.number, "reused": reused, **judgement.as_json()},
        )
