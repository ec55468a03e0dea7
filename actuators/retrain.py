"""Retrain actuator: train a challenger on recent labelled data and promote it only if it is not worse.

Retraining uses only the labelled batches that arrived since the symptom began (training on older rows
would relearn the old concept). The rows are split in time order: the challenger learns on the older 80 %
and is judged, with the champion, on the newest 20 %. When a retrain made the current champion, the rows
since *its* data began are a second, longer candidate window (the concept may not have changed, only the
champion been trained on too few rows); both windows are fitted and the one that scores better on the
judging rows, which neither learned from, is the challenger. It becomes champion only if it scores at least
the champion's score plus ``min_gain``; otherwise it stays a registered challenger and the action fails, so
the planner escalates instead of promoting a worse model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from actuators.base import ActContext, Outcome
from knowledge.artifacts import dump_model
from knowledge.errors import ActionError, ArtifactError, NotFoundError, StoreError
from knowledge.values import JSON, Action, Alias, Task
from pipeline import paired
from pipeline.evaluate import metrics, primary_metric, score
from pipeline.features import infer_spec
from pipeline.fingerprint import fingerprint
from pipeline.ingest import read_tables
from pipeline.mapping import conform
from pipeline.profile import profile_version
from pipeline.settings import REFERENCE_ROWS
from pipeline.train import TrainParams, fit_all


def recent_rows(ctx: ActContext, since: datetime | None) -> pd.DataFrame:
    """Labelled rows received since ``since``, oldest first, without rows whose label is missing."""
    batches = ctx.store.batches(ctx.model.name, since=since, labelled=True, limit=100_000)
    # Archived files are kept as they arrived: accepted renames and numbers with units are applied on reading.
    frame = conform(read_tables([b.path for b in batches]), ctx.store.column_mappings(ctx.model.name))
    if frame.empty:
        return frame
    return frame[frame[ctx.model.target].notna()].reset_index(drop=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """The best candidate of a retrain, fitted, judged, profiled and dumped (all of a retrain's heavy work)."""

    window: str
    model: Any
    scores: dict[str, float]
    window_scores: dict[str, float]  # the primary metric of each window's candidate on the judging rows
    predicted: Any  # the challenger's predictions on the judging rows
    profile: JSON
    dumped: bytes  # the challenger's skops bytes, for the registry


def challenge(
    windows: dict[str, pd.DataFrame],
    judge: pd.DataFrame,
    *,
    features: list[str],
    target: str,
    task: str,
    params: TrainParams,
) -> Challenge:
    """Fit a candidate per window and keep the best on ``judge`` (on a tie the first window). Pure computation on
    its arguments, so that a worker process can run it."""
    metric = primary_metric(task)
    fitted = []
    for window, rows_in in windows.items():
        spec = infer_spec(rows_in[[*features, target]], target)
        model = fit_all(rows_in, target=target, task=task, spec=spec, params=params)
        fitted.append((score(model, judge[features], judge[target], task), window, model))
    scores, window, best = max(fitted, key=lambda f: f[0][metric])
    learn = windows[window]
    profile = profile_version(
        best,
        learn,
        features=features,
        labels=learn[target],
        classification=task == Task.CLASSIFICATION.value,
        holdout=judge,
        holdout_labels=judge[target],
    )
    return Challenge(
        window=window,
        model=best,
        scores=scores,
        window_scores={w: round(f[metric], 6) for f, w, _ in fitted},
        predicted=best.predict(judge[features]),
        profile=profile.to_json(),
        dumped=dump_model(best),
    )


def predict_rows(estimator: Any, rows: pd.DataFrame) -> Any:
    """``estimator``'s predictions on ``rows`` (a function a worker process can run)."""
    return estimator.predict(rows)


class RetrainActuator:
    """Trains, judges and (if not worse) promotes a new version."""

    def execute(self, action: Action, ctx: ActContext) -> Outcome:
        since = datetime.fromisoformat(action.params["since"]) if action.params.get("since") else None
        rows = recent_rows(ctx, since)
        if len(rows) < ctx.settings.min_retrain_rows:
            return Outcome(
                ok=False, detail=f"only {len(rows)} labelled rows since {since}; need {ctx.settings.min_retrain_rows}"
            )
        task = ctx.model.task.value
        features = list(ctx.model.features)
        classes = rows[ctx.model.target].nunique() if ctx.model.task is Task.CLASSIFICATION else 1
        cut = len(rows) - paired.judge_rows(len(rows), len(features), classes)
        learn, judge = rows.iloc[:cut], rows.iloc[cut:]
        params = TrainParams(
            n_estimators=ctx.settings.n_estimators, max_depth=ctx.settings.max_depth, n_jobs=ctx.settings.n_jobs
        )
        metric = primary_metric(task)
        windows = self._windows(ctx, since, learn, len(judge))
        # Fitting, judging, profiling and serializing are the CPU-heavy part: with the process executor they run in
        # a worker process, not in the process that answers predictions; everything that writes the store stays.
        made = ctx.compute(
            challenge, windows, judge, features=features, target=ctx.model.target, task=task, params=params
        )
        challenger_scores, window, learn, challenger = made.scores, made.window, windows[made.window], made.model
        champion_predicted = self._champion_predictions(ctx, judge)
        champion_score = None
        gain = None
        if champion_predicted is not None:
            champion_score = metrics(judge[ctx.model.target], champion_predicted, task)[metric]
            gain = paired.gains(
                judge[ctx.model.target],
                made.predicted,
                champion_predicted,
                classification=ctx.model.task is Task.CLASSIFICATION,
            )
        version = ctx.registry.register(
            ctx.model.name,
            challenger,
            at=ctx.now,
            reference=learn[features].tail(REFERENCE_ROWS).reset_index(drop=True),
            params=params.forest_kwargs(),
            metrics=challenger_scores,
            data_fingerprint=fingerprint(learn),
            profile=made.profile,
            health=self._health(ctx, challenger_scores[metric]),
            created_by=f"action:{action.id}",
            dumped=made.dumped,
        )
        ctx.store.move_alias(
            ctx.model.name,
            Alias.CHALLENGER,
            version.number,
            at=ctx.now,
            actor="heald",
            reason=action.reason,
            epoch=ctx.epoch,
        )
        result: dict[str, Any] = {
            "version": version.number,
            "metric": metric,
            "challenger": challenger_scores[metric],
            "champion": champion_score,
            "train_rows": len(learn),
            "judge_rows": len(judge),
            "window": window,
            "windows": made.window_scores,
        }
        if gain is not None:
            bound = paired.lower_bound(gain)
            result |= {"gain": float(gain.mean()), "gain_lower_bound": bound}
            if bound <= ctx.settings.min_gain:
                return Outcome(
                    ok=False,
                    detail=f"challenger v{version.number} {metric} {challenger_scores[metric]:.4f} vs champion "
                    f"{champion_score:.4f} on the same {len(judge)} rows: gain's 95 % lower bound {bound:+.4f} is "
                    f"not above {ctx.settings.min_gain}; champion kept",
                    result={**result, "promoted": False},
                )
        try:
            ctx.registry.promote(
                ctx.model.name,
                version.number,
                at=ctx.now,
                actor="heald",
                reason=f"retrain: {metric} {challenger_scores[metric]:.4f} vs champion {champion_score}",
                action_id=action.id,
                epoch=ctx.epoch,
            )
        except (ActionError, ArtifactError, StoreError) as exc:
            return Outcome(ok=False, detail=str(exc), result={**result, "promoted": False})
        return Outcome(
            ok=True,
            detail=f"promoted v{version.number}: {metric} {challenger_scores[metric]:.4f} (champion {champion_score})",
            result={**result, "promoted": True},
        )

    @staticmethod
    def _windows(ctx: ActContext, since: datetime | None, learn: pd.DataFrame, judged: int) -> dict[str, pd.DataFrame]:
        """The candidate learning rows: since the symptom, and since the champion's own data began."""
        windows = {"since the symptom": learn}
        start = RetrainActuator._champion_window(ctx)
        if start is not None and since is not None and start < since:
            longer = recent_rows(ctx, start)
            longer = longer.iloc[: len(longer) - judged]  # the judging rows are the newest; never learn them
            if len(longer) > len(learn):
                windows["since the champion's data"] = longer
        return windows

    @staticmethod
    def _champion_window(ctx: ActContext) -> datetime | None:
        """Where the rows the champion learned from began, when a retrain made it (None otherwise)."""
        champion = ctx.registry.champion(ctx.model.name)
        if champion is None or not champion.created_by.startswith("action:"):
            return None
        try:
            made_by = ctx.store.get_action(int(champion.created_by.removeprefix("action:")))
        except (NotFoundError, ValueError):
            return None
        start = made_by.params.get("since")
        return datetime.fromisoformat(start) if isinstance(start, str) else None

    @staticmethod
    def _champion_predictions(ctx: ActContext, judge: pd.DataFrame) -> Any:
        """The champion's predictions on the judging rows; None if its file does not verify (any challenger wins).

        The registry may still hold a damaged or deleted champion in memory, but a restarted daemon could not
        load it, so it is not a model to keep.
        """
        champion = ctx.registry.champion(ctx.model.name)
        if champion is None or not ctx.registry.verifies(champion):
            return None
        try:
            estimator = ctx.registry.load(champion)
        except ArtifactError:
            return None
        return ctx.compute(predict_rows, estimator, judge[list(ctx.model.features)])

    @staticmethod
    def _health(ctx: ActContext, value: float) -> str:
        floor = ctx.settings.min_accuracy if ctx.model.task is Task.CLASSIFICATION else ctx.settings.min_r2
        return "healthy" if value >= floor else "sick"
