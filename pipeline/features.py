"""Feature engineering: the preprocessing half of every model heald trains.

Numbers are imputed and scaled, categories imputed and one-hot encoded with unknown categories ignored.
The fitted preprocessing travels inside the model artifact, so prediction applies exactly the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureSpec:
    """Which columns are numbers and which are categories, and how to treat them."""

    numeric: list[str]
    categorical: list[str]
    numeric_impute: str = "median"
    scaling: str = "standard"

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def infer_spec(frame: pd.DataFrame, target: str | None = None) -> FeatureSpec:
    """Numbers (and booleans) are numeric features; everything else is categorical."""
    features = [c for c in frame.columns if c != target]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])]
    categorical = [c for c in features if c not in numeric]
    return FeatureSpec(numeric=numeric, categorical=categorical)


def preprocessor(spec: FeatureSpec) -> ColumnTransformer:
    """An unfitted ColumnTransformer for ``spec``."""
    scaler = MinMaxScaler() if spec.scaling == "minmax" else StandardScaler()
    numeric = Pipeline([("impute", SimpleImputer(strategy=spec.numeric_impute)), ("scale", scaler)])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    steps: list[tuple[str, Pipeline, list[str]]] = []
    if spec.numeric:
        steps.append(("numeric", numeric, spec.numeric))
    if spec.categorical:
        steps.append(("categorical", categorical, spec.categorical))
    return ColumnTransformer(steps, remainder="drop")
