"""Content fingerprints: of tables, so a version records exactly which data it was trained on, and of files
and folders, so a resumed pipeline run reuses a stage's outputs only if they are byte for byte what it wrote.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

CHUNK = 1 << 20


def fingerprint(frame: pd.DataFrame) -> str:
    """A sha256 over column names, dtypes and every value; equal tables give equal fingerprints."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(f"{c}:{frame[c].dtype}" for c in frame.columns).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def file_digest(path: Path, digest: hashlib._Hash | None = None) -> str:
    """The sha256 of a file's bytes (fed into ``digest`` if one is given)."""
    digest = digest or hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_digest(folder: Path) -> str:
    """A sha256 over the names and bytes of every file under ``folder``, in name order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\x00")
        file_digest(path, digest)
    return digest.hexdigest()


def text_digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
