"""The five stages of the managed pipeline, as the runner runs them, and what each keeps on disk.

=========  ==========================================================  ===================================
stage      does                                                        keeps
=========  ==========================================================  ===================================
ingest     reads the data files and describes the table                data.parquet, dataset.json
validate   checks it (against the model's schema, if it has one)       report.json
features   splits 80:20, chooses columns, fits the preprocessing       spec.json, preprocessor.skops,
           on the training rows and transforms them                    x_train.npy, labels,
                                                                       test_rows.parquet, reference.parquet
train      fits (and tunes and cross-validates) the forest             forest.skops, fit.json
evaluate   scores preprocessing + forest on the raw test rows          evaluation.json
=========  ==========================================================  ===================================

Model files written here are loaded back only with ``TRUSTED_TYPES``, the same short list the registry
trusts. ``FlakyStage`` is the fake for tests: it fails a real stage a set number of times, then lets it run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from skops.io import dumps, get_untrusted_types, loads

from pipeline import evaluate as evaluation
from pipeline import numbers
from pipeline.errors import DataError, TransientError
from pipeline.features import FeatureSpec, infer_spec, preprocessor, select, source_columns
from pipeline.ingest import DatasetInfo, describe, read_tables
from pipeline.runner import Run, Stage, StageContext
from pipeline.settings import RunConfig
from pipeline.train import CvSummary, fit_forest, split
from pipeline.transformers import TRUSTED_TYPES
from pipeline.validate import Schema, validate


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def save_model(path: Path, estimator: Any) -> None:
    path.write_bytes(dumps(estimator))


def load_model(path: Path) -> Any:
    """A model file of a run, refused if it asks for any type outside ``TRUSTED_TYPES``."""
    data = path.read_bytes()
    wanted = set(get_untrusted_types(data=data))
    refused = wanted - TRUSTED_TYPES
    if refused:
        raise DataError(f"{path} asks for untrusted types {sorted(refused)}")
    return loads(data, trusted=sorted(wanted))


# -- ingest ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Ingested:
    frame: pd.DataFrame
    info: DatasetInfo


class IngestStage:
    name = "ingest"

    def run(self, ctx: StageContext) -> tuple[Ingested, dict[str, Any]]:
        config = ctx.config
        if not config.data:
            raise DataError(f"model {config.model!r} has no data files to train on")
        frame = read_tables(config.data)
        repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if repeated:
            raise DataError(f"column names used more than once: {repeated}")
        frame.columns = pd.Index([str(c) for c in frame.columns])
        # Numbers written with units or separators ("20%", "$1,200") are read once, here, so every later
        # stage and the reference profile see numbers; validation reports the columns as a warning.
        features = [c for c in frame.columns if c != config.target]
        frame, units = numbers.parse_frame(frame, features)
        info = describe(frame, target=config.target, task=config.task, source=config.data, units=units)
        frame.to_parquet(ctx.folder / "data.parquet", index=False)
        _write_json(ctx.folder / "dataset.json", info.as_json())
        return Ingested(frame=frame, info=info), {"rows": info.rows, "columns": len(info.columns), "task": info.task}

    def load(self, folder: Path, config: RunConfig) -> Ingested:
        info = DatasetInfo.from_json(_read_json(folder / "dataset.json"))
        return Ingested(frame=pd.read_parquet(folder / "data.parquet"), info=info)


# -- validate -------------------------------------------------------------------------------------------


class ValidateStage:
    name = "validate"

    def run(self, ctx: StageContext) -> tuple[dict[str, Any], dict[str, Any]]:
        ingested: Ingested = ctx.input("ingest")
        config = ctx.config
        schema = Schema(columns=config.schema, target=config.target) if config.schema else None
        report = validate(
            ingested.frame,
            target=config.target,
            task=ingested.info.task,
            schema=schema,
            info=ingested.info,
            policy=config.validation,
        )
        _write_json(ctx.folder / "report.json", report.as_json())
        report.raise_for_failures("the data")
        return report.as_json(), {"warnings": [c.name for c in report.warnings]}

    def load(self, folder: Path, config: RunConfig) -> dict[str, Any]:
        data: dict[str, Any] = _read_json(folder / "report.json")
        return data


# -- features -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Engineered:
    """The fitted preprocessing, the engineered training matrix, and the raw held-out rows (the evaluate
    stage runs the whole model on them, exactly as prediction will)."""

    spec: FeatureSpec
    preprocessor: Pipeline
    x_train: np.ndarray[Any, Any]
    y_train: pd.Series[Any]
    y_test: pd.Series[Any]
    test_rows: pd.DataFrame
    reference: pd.DataFrame


class FeaturesStage:
    name = "features"

    def run(self, ctx: StageContext) -> tuple[Engineered, dict[str, Any]]:
        ingested: Ingested = ctx.input("ingest")
        config, task = ctx.config, ingested.info.task or "classification"
        learn, test = split(
            ingested.frame,
            target=config.target,
            task=task,
            test_size=config.train.test_size,
            random_state=config.train.random_state,
        )
        spec = infer_spec(learn, config.target, config.features)
        spec = select(learn, spec, config.features.correlation_threshold)
        if not spec.used:
            raise DataError(f"no usable feature columns: {spec.dropped}")
        prep = preprocessor(spec)
        x_train = prep.fit_transform(learn[spec.columns], learn[config.target])
        out = Engineered(
            spec=spec,
            preprocessor=prep,
            # The forest casts its input to float32 anyway, so float32 loses nothing and halves the I/O.
            x_train=np.asarray(x_train, dtype=np.float32),
            y_train=learn[config.target].reset_index(drop=True),
            y_test=test[config.target].reset_index(drop=True),
            test_rows=test[spec.columns].reset_index(drop=True),
            reference=learn[spec.columns].head(config.reference_rows).reset_index(drop=True),
        )
        saving = time.perf_counter()
        self._save(ctx.folder, out)
        return out, {
            "save_seconds": round(time.perf_counter() - saving, 3),
            "train_rows": len(learn),
            "test_rows": len(test),
            "numeric": len(spec.numeric),
            "categorical": len(spec.categorical),
            "dropped": spec.dropped,
            "engineered": int(out.x_train.shape[1]),
        }

    @staticmethod
    def _save(folder: Path, out: Engineered) -> None:
        _write_json(folder / "spec.json", out.spec.as_json())
        save_model(folder / "preprocessor.skops", out.preprocessor)
        np.save(folder / "x_train.npy", out.x_train)
        pd.DataFrame({"y": out.y_train}).to_parquet(folder / "y_train.parquet", index=False)
        pd.DataFrame({"y": out.y_test}).to_parquet(folder / "y_test.parquet", index=False)
        out.test_rows.to_parquet(folder / "test_rows.parquet", index=False)
        out.reference.to_parquet(folder / "reference.parquet", index=False)

    def load(self, folder: Path, config: RunConfig) -> Engineered:
        return Engineered(
            spec=FeatureSpec.from_json(_read_json(folder / "spec.json")),
            preprocessor=load_model(folder / "preprocessor.skops"),
            x_train=np.load(folder / "x_train.npy", allow_pickle=False),
            y_train=pd.read_parquet(folder / "y_train.parquet")["y"],
            y_test=pd.read_parquet(folder / "y_test.parquet")["y"],
            test_rows=pd.read_parquet(folder / "test_rows.parquet"),
            reference=pd.read_parquet(folder / "reference.parquet"),
        )


# -- train ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Forest:
    estimator: Any
    params: dict[str, Any]
    cv: CvSummary | None
    tuning: str
    candidates: int
    note: str = ""

    def fit_json(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "cv": self.cv.as_json() if self.cv else None,
            "tuning": self.tuning,
            "candidates": self.candidates,
            "note": self.note,
        }


class TrainStage:
    name = "train"

    def run(self, ctx: StageContext) -> tuple[Forest, dict[str, Any]]:
        engineered: Engineered = ctx.input("features")
        task = ctx.input("ingest").info.task or "classification"
        fitted = fit_forest(
            engineered.x_train, engineered.y_train, task=task, params=ctx.config.train, tuning=ctx.config.tuning
        )
        out = Forest(
            estimator=fitted.forest,
            params=fitted.params,
            cv=fitted.cv,
            tuning=fitted.tuning,
            candidates=fitted.candidates,
            note=fitted.note,
        )
        saving = time.perf_counter()
        save_model(ctx.folder / "forest.skops", fitted.forest)
        _write_json(ctx.folder / "fit.json", out.fit_json())
        summary = {
            "tuning": out.tuning,
            "candidates": out.candidates,
            "save_seconds": round(time.perf_counter() - saving, 3),
        }
        if out.cv:
            summary.update(cv_mean=out.cv.mean, cv_std=out.cv.std, cv_folds=out.cv.folds)
        return out, summary

    def load(self, folder: Path, config: RunConfig) -> Forest:
        fit = _read_json(folder / "fit.json")
        cv = CvSummary(**fit["cv"]) if fit["cv"] else None
        return Forest(
            estimator=load_model(folder / "forest.skops"),
            params=fit["params"],
            cv=cv,
            tuning=fit["tuning"],
            candidates=fit["candidates"],
            note=fit["note"],
        )


# -- evaluate -------------------------------------------------------------------------------------------


def compose(engineered: Engineered, forest: Forest) -> Pipeline:
    """The model artifact: the fitted preprocessing and the fitted forest as one scikit-learn Pipeline."""
    return Pipeline([("features", engineered.preprocessor), ("forest", forest.estimator)])


class EvaluateStage:
    name = "evaluate"

    def run(self, ctx: StageContext) -> tuple[evaluation.Evaluation, dict[str, Any]]:
        engineered: Engineered = ctx.input("features")
        forest: Forest = ctx.input("train")
        task = ctx.input("ingest").info.task or "classification"
        model = compose(engineered, forest)
        names = list(engineered.preprocessor.get_feature_names_out())
        importance = evaluation.importances(
            forest.estimator.feature_importances_, source_columns(names, engineered.spec)
        )
        result = evaluation.evaluate(
            model,
            engineered.test_rows,
            engineered.y_test,
            task=task,
            thresholds=evaluation.HealthThresholds(bounds=ctx.config.health),
            cv={"mean": forest.cv.mean, "std": forest.cv.std} if forest.cv else None,
            importance=importance,
        )
        _write_json(ctx.folder / "evaluation.json", result.as_json())
        primary = evaluation.primary_metric(task)
        return result, {primary: result.metrics[primary], "health": result.health}

    def load(self, folder: Path, config: RunConfig) -> evaluation.Evaluation:
        return evaluation.Evaluation.from_json(_read_json(folder / "evaluation.json"))


def model_of(run: Run) -> Pipeline:
    """The fitted model artifact of a run whose features and train stages succeeded."""
    return compose(run.value("features"), run.value("train"))


def standard_stages() -> list[Stage]:
    return [IngestStage(), ValidateStage(), FeaturesStage(), TrainStage(), EvaluateStage()]


class FlakyStage:
    """A fake for tests: wraps a real stage, fails its first ``failures`` runs, and counts every run."""

    def __init__(self, stage: Stage, failures: int = 1, error: Exception | None = None) -> None:
        self.name = stage.name
        self.stage = stage
        self.failures = failures
        self.error = error or TransientError(f"{stage.name} was made to fail")
        self.runs = 0
        self.loads = 0

    def run(self, ctx: StageContext) -> tuple[Any, dict[str, Any]]:
        self.runs += 1
        if self.runs <= self.failures:
            raise self.error
        return self.stage.run(ctx)

    def load(self, folder: Path, config: RunConfig) -> Any:
        self.loads += 1
        return self.stage.load(folder, config)
