"""Content fingerprints of tables, so a version records exactly which data it was trained on."""

from __future__ import annotations

import hashlib

import pandas as pd


def fingerprint(frame: pd.DataFrame) -> str:
    """A sha256 over column names, dtypes and every value; equal tables give equal fingerprints."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(f"{c}:{frame[c].dtype}" for c in frame.columns).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
