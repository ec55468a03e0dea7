"""Retrain actuator: train a challenger on recent labelled data and promote it only if it is not worse.

Retraining uses only the labelled batches that arrived since the symptom began (training on older rows
would relearn the old concept). The rows are split in time order: the challenger learns on the older 80 %
and is judged, with the champion, on the newest 20 %. When a retrain made the current champion, the rows
since *its* data began are a second, longer candidate window (the concept may not have changed, only the
champion been trained on too few rows); both windows are fitted and the one that scores better on the
judging rows, which neither learned from, is the challenger. It becomes champion only if it scores at least
the champion's score plus ``min_gain``; otherwise it stays a registered challenger and the action fails, so
the planner escalates instead of promoting a worse model.

With the ``process`` executor everything heavy (reading and conforming the rows, the fits, judging challenger and
champion, the paired gains, profiling, fingerprinting and the skops bytes) runs in one worker call (``challenge``);
the daemon only reads which batch files to use and writes the version, the alias moves and the journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from actuators.base import ActContext, Outcome
from actuators.runs import ChampionFile, champion_file
from knowledge.artifacts import ArtifactStore, dump_model
from knowledge.errors import ActionError, ArtifactError, NotFoundError, StoreError
from knowledge.values import JSON, Action, Alias, Task, Version
from pipeline import paired, scoring
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
    return read_rows(recent_files(ctx, since), ctx.store.column_mappings(ctx.model.name), ctx.model.target)


def recent_files(ctx: ActContext, since: datetime | None) -> list[str]:
    """The labelled batch files received since ``since``, oldest first (a store read: the daemon does it)."""
    return [b.path for b in ctx.store.batches(ctx.model.name, since=since, labelled=True, limit=100_000)]


def read_rows(paths: list[str], mappings: dict[str, str], target: str) -> pd.DataFrame:
    """The labelled rows of ``paths``, in order, without rows whose label is missing."""
    # Archived files are kept as they arrived: accepted renames and numbers with units are applied on reading.
    frame = conform(read_tables(paths), mappings)
    if frame.empty:
        return frame
    return frame[frame[target].notna()].reset_index(drop=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrainWork:
    """What a retrain's heavy part needs: where its rows are and how to fit and judge (all of it pickles)."""

    recent: list[str]  # labelled batch files since the symptom, oldest first
    longer: list[str]  # since the champion's own data began (empty: no such window)
    mappings: dict[str, str]
    features: list[str]
    target: str
    task: str
    params: TrainParams
    min_rows: int
    champion: ChampionFile | None  # the champion to judge against (None: there is none that verifies)


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """The best candidate of a retrain, fitted, judged, profiled and dumped, with its rows' fingerprint and reference
    sample and the champion's results on the same judging rows (all of a retrain's heavy work)."""

    window: str
    model: Any
    scores: dict[str, float]
    window_scores: dict[str, float]  # the primary metric of each window's candidate on the judging rows
    profile: JSON
    dumped: bytes  # the challenger's skops bytes, for the registry
    train_rows: int
    judge_rows: int
    fingerprint: str  # of the rows the challenger learned from
    reference: pd.DataFrame
    champion_score: float | None  # None without a champion that loads (any challenger wins)
    gain: float | None  # mean paired gain over the champion on the judging rows
    gain_lower_bound: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TooFew:
    """Not enough labelled rows since the symptom to retrain on."""

    rows: int


def challenge(work: RetrainWork) -> Challenge | TooFew:
    """Read the rows, fit a candidate per window and keep the best on the judging rows (on a tie the first window),
    then profile, dump and fingerprint it and judge the champion on the same rows. Pure computation on files and
    its argument, so that a worker process can run it."""
    rows = read_rows(work.recent, work.mappings, work.target)
    if len(rows) < work.min_rows:
        return TooFew(rows=len(rows))
    features, target, task = work.features, work.target, work.task
    classes = rows[target].nunique() if task == Task.CLASSIFICATION.value else 1
    cut = len(rows) - paired.judge_rows(len(rows), len(features), classes)
    learn, judge = rows.iloc[:cut], rows.iloc[cut:]
    windows = {"since the symptom": learn}
    if work.longer:
        longer = read_rows(work.longer, work.mappings, target)
        longer = longer.iloc[: len(longer) - len(judge)]  # the judging rows are the newest; never learn them
        if len(longer) > len(learn):
            windows["since the champion's data"] = longer
    metric = primary_metric(task)
    fitted = []
    for window, rows_in in windows.items():
        spec = infer_spec(rows_in[[*features, target]], target)
        model = fit_all(rows_in, target=target, task=task, spec=spec, params=work.params)
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
    champion_score = gain = bound = None
    champion = _champion(work.champion)
    if champion is not None:
        champion_predicted = scoring.predict(champion, judge[features])
        champion_score = metrics(judge[target], champion_predicted, task)[metric]
        gains = paired.gains(
            judge[target],
            scoring.predict(best, judge[features]),
            champion_predicted,
            classification=task == Task.CLASSIFICATION.value,
        )
        gain, bound = float(gains.mean()), paired.lower_bound(gains)
    return Challenge(
        window=window,
        model=best,
        scores=scores,
        window_scores={w: round(f[metric], 6) for f, w, _ in fitted},
        profile=profile.to_json(),
        dumped=dump_model(best),
        train_rows=len(learn),
        judge_rows=len(judge),
        fingerprint=fingerprint(learn),
        reference=learn[features].tail(REFERENCE_ROWS).reset_index(drop=True),
        champion_score=champion_score,
        gain=gain,
        gain_lower_bound=bound,
    )


def _champion(where: ChampionFile | None) -> Any:
    """The champion's estimator from its file, verified; None if it does not load (a restarted daemon could not
    load it either, so it is not a model to keep)."""
    if where is None:
        return None
    try:
        return ArtifactStore(Path(where.root)).load_model(where.artifact, where.sha256)
    except ArtifactError:
        return None


class RetrainActuator:
    """Trains, judges and (if not worse) promotes a new version."""

    def execute(self, action: Action, ctx: ActContext) -> Outcome:
        since = datetime.fromisoformat(action.params["since"]) if action.params.get("since") else None
        task = ctx.model.task.value
        params = TrainParams(
            n_estimators=ctx.settings.n_estimators, max_depth=ctx.settings.max_depth, n_jobs=ctx.settings.n_jobs
        )
        metric = primary_metric(task)
        champion = ctx.registry.champion(ctx.model.name)  # read once: each read parses the version's profile
        work = RetrainWork(
            recent=recent_files(ctx, since),
            longer=self._longer(ctx, since, champion),
            mappings=ctx.store.column_mappings(ctx.model.name),
            features=list(ctx.model.features),
            target=ctx.model.target,
            task=task,
            params=params,
            min_rows=ctx.settings.min_retrain_rows,
            champion=self._champion_file(ctx, champion),
        )
        # Reading the rows, fitting, judging (the champion too), profiling, fingerprinting and serializing are the
        # CPU-heavy part: with the process executor they run in a worker process, not in the process that answers
        # predictions; everything that reads or writes the store stays here, under the action's lease epoch.
        made = ctx.compute(challenge, work)
        if isinstance(made, TooFew):
            return Outcome(
                ok=False, detail=f"only {made.rows} labelled rows since {since}; need {ctx.settings.min_retrain_rows}"
            )
        challenger_scores, window, challenger = made.scores, made.window, made.model
        champion_score = made.champion_score
        version = ctx.registry.register(
            ctx.model.name,
            challenger,
            at=ctx.now,
            reference=made.reference,
            params=params.forest_kwargs(),
            metrics=challenger_scores,
            data_fingerprint=made.fingerprint,
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
            "train_rows": made.train_rows,
            "judge_rows": made.judge_rows,
            "window": window,
            "windows": made.window_scores,
        }
        if made.gain is not None and made.gain_lower_bound is not None:
            bound = made.gain_lower_bound
            result |= {"gain": made.gain, "gain_lower_bound": bound}
            if bound <= ctx.settings.min_gain:
                return Outcome(
                    ok=False,
                    detail=f"challenger v{version.number} {metric} {challenger_scores[metric]:.4f} vs champion "
                    f"{champion_score:.4f} on the same {made.judge_rows} rows: gain's 95 % lower bound {bound:+.4f} "
                    f"is not above {ctx.settings.min_gain}; champion kept",
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
    def _longer(ctx: ActContext, since: datetime | None, champion: Version | None) -> list[str]:
        """The files of the second candidate window, since the champion's own data began (empty without one)."""
        start = RetrainActuator._champion_window(ctx, champion)
        if start is not None and since is not None and start < since:
            return recent_files(ctx, start)
        return []

    @staticmethod
    def _champion_file(ctx: ActContext, champion: Version | None) -> ChampionFile | None:
        """Where the worker finds the champion to judge; None if its file does not verify now (any challenger wins).

        The registry may still hold a damaged or deleted champion in memory, but a restarted daemon could not
        load it, so it is not a model to keep.
        """
        if champion is None or not ctx.registry.verifies(champion):
            return None
        return champion_file(ctx.registry, ctx.model, champion)

    @staticmethod
    def _champion_window(ctx: ActContext, champion: Version | None) -> datetime | None:
        """Where the rows the champion learned from began, when a retrain made it (None otherwise)."""
        if champion is None or not champion.created_by.startswith("action:"):
            return None
        try:
            made_by = ctx.store.get_action(int(champion.created_by.removeprefix("action:")))
        except (NotFoundError, ValueError):
            return None
        start = made_by.params.get("since")
        return datetime.fromisoformat(start) if isinstance(start, str) else None

    @staticmethod
    def _health(ctx: ActContext, value: float) -> str:
        floor = ctx.settings.min_accuracy if ctx.model.task is Task.CLASSIFICATION else ctx.settings.min_r2
        return "healthy" if value >= floor else "sick"
