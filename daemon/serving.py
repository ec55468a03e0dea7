"""Serving: the champion's answers to rows as users send them, kept going through a schema break.

Rows may come in the shape of the training file (the target, identifiers and excluded columns included:
they are ignored) and with numbers written with units. Accepted column mappings are applied first. A row
that lacks a feature column is still answered, in *degraded* mode: the missing feature is filled with the
reference profile's typical value (``pipeline.mapping.fill_missing``), and the answer names the columns
filled, so the caller (the API) can say so and count it. Only rows lacking every feature are refused. A
feature absent from only some rows of a request is missing in those rows, which the model imputes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from knowledge.errors import NotFoundError
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ModelRecord
from pipeline import mapping
from pipeline.errors import DataError
from pipeline.profile import Profile


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """The champion's predictions, and which feature columns were missing and filled (degraded mode)."""

    version: int
    predictions: list[Any]
    filled: list[str] = field(default_factory=list)

    @property
    def degraded(self) -> bool:
        return bool(self.filled)


def answer(store: SqlKnowledgeStore, registry: ModelRegistry, model: ModelRecord, frame: pd.DataFrame) -> Answer:
    """Predict ``frame`` with the champion; raises ``NotFoundError`` without one, ``DataError`` for unusable rows.

    Loading a champion whose file does not verify raises ``ArtifactError`` (the API answers 503).
    """
    champion = registry.champion(model.name)
    if champion is None:
        raise NotFoundError(f"model {model.name!r} has no champion")
    frame = mapping.rename(frame, store.column_mappings(model.name))
    features = list(model.features)
    missing = mapping.missing_features(frame, features)
    if len(missing) == len(features):
        raise DataError(f"rows lack every feature column of {model.name!r}: {features}")
    filled = mapping.fill_missing(frame, features, Profile.from_json(champion.profile))
    predicted = registry.load(champion).predict(filled[features])
    return Answer(version=champion.number, predictions=list(predicted.tolist()), filled=sorted(missing))
