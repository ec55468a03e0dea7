"""Serving: the champion's answers to rows as users send them, kept going through a schema break.

Rows may come in the shape of the training file (the target, identifiers and excluded columns included:
they are ignored) and with numbers written with units. Accepted column mappings are applied first. A row
that lacks a feature column is still answered, in *degraded* mode: the missing feature is filled with the
reference profile's typical value (``pipeline.mapping.fill_missing``), and the answer names the columns
filled, so the caller (the API) can say so and count it. Only rows lacking every feature are refused. A
feature absent from only some rows of a request is missing in those rows, which the model imputes.

What serving needs of a champion (its record, the verified estimator, the parsed profile, the value kinds
validation checks, the accepted mappings) is held by ``ChampionCache`` and swapped whole when the champion
alias or a mapping moves, so a request reads no database row and parses no profile. ``predict_parts``
answers several requests of one shape in one ``predict`` call (``daemon.batching`` gathers them).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from knowledge.errors import NoChampionError
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Alias, ModelRecord, Version
from pipeline import mapping, scoring
from pipeline.errors import DataError
from pipeline.profile import Profile

REFRESH_SECONDS = 1.0  # how often the cache re-reads the alias, to follow moves made by other processes


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """The champion's predictions, and which feature columns were missing and filled (degraded mode)."""

    version: int
    predictions: list[Any]
    filled: list[str] = field(default_factory=list)

    @property
    def degraded(self) -> bool:
        return bool(self.filled)


_stamps = itertools.count(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Champion:
    """Everything serving needs of one model's champion, read once per alias move; ``stamp`` names this copy."""

    model: ModelRecord
    version: Version
    estimator: Any
    profile: Profile | None  # None for versions registered before profiles existed
    kinds: dict[str, str]
    mappings: dict[str, str]
    stamp: int = field(default_factory=lambda: next(_stamps))


def champion_of(store: SqlKnowledgeStore, registry: ModelRegistry, model: ModelRecord) -> Champion:
    """Read and verify ``model``'s champion; ``NotFoundError`` without one, ``ArtifactError`` if it does not verify."""
    version = registry.champion(model.name)
    if version is None:
        raise NoChampionError(f"model {model.name!r} has no champion")
    return _with_version(model, version, registry.load(version), store.column_mappings(model.name))


def _with_version(model: ModelRecord, version: Version, estimator: Any, mappings: dict[str, str]) -> Champion:
    columns = version.profile.get("columns", {})
    kinds = {c: str(p.get("kind")) for c, p in columns.items() if isinstance(p, dict)}
    return Champion(
        model=model,
        version=version,
        estimator=_for_latency(estimator),
        profile=Profile.from_json(version.profile),
        kinds=kinds,
        mappings=mappings,
    )


def _for_latency(estimator: Any) -> Any:
    """One core per predict call: a forest saved with n_jobs=2 spends more CPU starting threads than predicting
    a few rows. Only the loaded object changes, never the file (its sha256 stays)."""
    if hasattr(estimator, "get_params"):
        jobs = {k: 1 for k, v in estimator.get_params().items() if k.split("__")[-1] == "n_jobs" and v != 1}
        if jobs:
            estimator.set_params(**jobs)
    return estimator


class ChampionCache:
    """Each model's ``Champion``, re-read when this process moves an alias or mapping (the store's generation)
    and at most every ``refresh`` seconds otherwise (a follower daemon or ``healctl`` may move it)."""

    def __init__(self, refresh: float = REFRESH_SECONDS) -> None:
        self.refresh = refresh
        self._held: dict[str, tuple[Champion, int, float]] = {}
        self._owner: object = None
        self._lock = threading.Lock()

    def get(self, store: SqlKnowledgeStore, registry: ModelRegistry, name: str) -> Champion:
        """The champion of ``name``; ``NotFoundError`` for an unknown model, ``NoChampionError`` without a champion,
        ``ArtifactError`` (nothing cached) when its file does not verify."""
        held = self._held.get(name) if self._owner is registry else None
        if held is not None and held[1] == store.generation and time.monotonic() - held[2] < self.refresh:
            return held[0]
        with self._lock:  # one reader refreshes; the others wait for its answer instead of all reading
            return self._refreshed(store, registry, name)

    def _refreshed(self, store: SqlKnowledgeStore, registry: ModelRegistry, name: str) -> Champion:
        if self._owner is not registry:  # a config reload built a new registry: start afresh
            self._held, self._owner = {}, registry
        generation, checked = store.generation, time.monotonic()
        held = self._held.get(name)
        if held is not None and held[1] == generation and checked - held[2] < self.refresh:
            return held[0]
        model = store.get_model(name)
        number = store.alias(name, Alias.CHAMPION)
        if number is None:
            self._held.pop(name, None)
            raise NoChampionError(f"model {name!r} has no champion")
        mappings = store.column_mappings(name)
        old = held[0] if held is not None else None
        if old is not None and old.version.number == number:
            fresh = Champion(
                model=model,
                version=old.version,
                estimator=old.estimator,
                profile=old.profile,
                kinds=old.kinds,
                mappings=mappings,
                stamp=old.stamp if (model, mappings) == (old.model, old.mappings) else next(_stamps),
            )
        else:
            version = store.get_version(name, number)
            fresh = _with_version(model, version, registry.load(version), mappings)
        self._held[name] = (fresh, generation, checked)
        return fresh


def answer(store: SqlKnowledgeStore, registry: ModelRegistry, model: ModelRecord, frame: pd.DataFrame) -> Answer:
    """Predict ``frame`` with the champion; raises ``NoChampionError`` without one, ``DataError`` for unusable rows.

    Loading a champion whose file does not verify raises ``ArtifactError`` (the API answers 503).
    """
    return predict_frame(champion_of(store, registry, model), frame)


def predict_frame(champion: Champion, frame: pd.DataFrame) -> Answer:
    """The champion's answer to ``frame`` (mappings applied, missing features filled); ``DataError`` when the rows
    lack every feature."""
    frame = mapping.rename(frame, champion.mappings)
    features = list(champion.model.features)
    missing = mapping.missing_features(frame, features)
    if len(missing) == len(features):
        raise DataError(f"rows lack every feature column of {champion.model.name!r}: {features}")
    filled = mapping.fill_missing(frame, features, champion.profile)
    predicted = scoring.predict(champion.estimator, filled[features])
    return Answer(version=champion.version.number, predictions=list(predicted.tolist()), filled=sorted(missing))


def predict_parts(champion: Champion, parts: Sequence[list[dict[str, Any]]]) -> list[Answer | Exception]:
    """One answer per part (a request's rows), predicted in one call; parts must share their columns and value
    types (``shape``), so that together they read as each would alone. If the joint call fails, each part is
    predicted alone, so that one request's problem is its own."""
    if len(parts) == 1:
        return [_alone(champion, parts[0])]
    try:
        joint = predict_frame(champion, pd.DataFrame([row for part in parts for row in part]))
    except Exception:
        return [_alone(champion, part) for part in parts]
    answers: list[Answer | Exception] = []
    start = 0
    for part in parts:
        predictions = joint.predictions[start : start + len(part)]
        answers.append(Answer(version=joint.version, predictions=predictions, filled=joint.filled))
        start += len(part)
    return answers


def _alone(champion: Champion, rows: list[dict[str, Any]]) -> Answer | Exception:
    try:
        return predict_frame(champion, pd.DataFrame(rows))
    except Exception as exc:
        return exc


def shape(rows: Sequence[dict[str, Any]]) -> frozenset[tuple[str, str]]:
    """The columns and value types of a request's rows: requests of the same shape build the same frame types."""
    return frozenset((column, type(value).__name__) for row in rows for column, value in row.items())
