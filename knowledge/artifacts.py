"""Model files on disk: written atomically, named by the registry, loaded only after their sha256 matches.

Model files are code: skops refuses to build any type it was not told to trust, and heald trusts only the
short list below (what a scikit-learn pipeline of heald's own needs). A file that fails its checksum or
asks for another type raises ``ArtifactError`` and is never loaded; so does a file whose checksum matches
but which is not a skops archive at all (it was registered damaged): damaged is damaged, whatever the cause.
Files and folders are created readable by their owner only (0600 and 0700), with or without systemd.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.errors import ArtifactError

if TYPE_CHECKING:
    import pandas as pd

# skops and pandas are imported where a file is written or loaded, not here: healctl's read-only commands
# open the registry and must start without them (skops alone costs seconds).

# Types skops does not trust by default but a heald pipeline needs; anything else in a file is refused.
# The pipeline.transformers classes are heald's own (numeric and text coercion, quantile clipping, date parts):
# they hold only numbers and column names, and run no code they were handed. pipeline.transformers keeps
# the same list, since knowledge may not import the pipeline; a test checks the two agree.
TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "pipeline.transformers.NumberCoercer",
        "pipeline.transformers.TextCoercer",
        "pipeline.transformers.QuantileClipper",
        "pipeline.transformers.DateFeatures",
    }
)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` holds either the old content or all of the new, even on a crash."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    # The rename itself must reach the disk before the registry row that names the file is committed.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def dump_model(estimator: Any) -> bytes:
    """The skops bytes of ``estimator`` (what ``save_model`` writes)."""
    from skops.io import dumps

    return bytes(dumps(estimator))


class ArtifactStore:
    """Model files and reference samples under one root folder, addressed by relative paths."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save_model(self, relpath: str, estimator: Any, data: bytes | None = None) -> str:
        """Save with skops; returns the sha256 of the bytes written. ``data`` is ``estimator`` already dumped with
        skops (``dump_model``), by a worker process, so the daemon does not spend its CPU on it."""
        data = dump_model(estimator) if data is None else data
        write_atomic(self.root / relpath, data)
        return sha256_bytes(data)

    def load_model(self, relpath: str, sha256: str) -> Any:
        """Load a model file after checking its sha256 and that it needs only trusted types."""
        from skops.io import get_untrusted_types, loads

        data = self.read_verified(relpath, sha256)
        if not data:
            raise ArtifactError(f"model file {relpath} is empty (0 bytes)")
        try:
            wanted = set(get_untrusted_types(data=data))
        except Exception as exc:  # BadZipFile, KeyError, JSON errors...: not a skops archive, whatever the cause
            raise ArtifactError(
                f"model file {relpath} matches its checksum but is not a skops model ({type(exc).__name__}: {exc})"
            ) from exc
        refused = wanted - TRUSTED_TYPES
        if refused:
            raise ArtifactError(f"model file {relpath} asks for untrusted types {sorted(refused)}")
        try:
            return loads(data, trusted=sorted(wanted))
        except Exception as exc:  # skops raises many types on a damaged archive; all mean the same here
            raise ArtifactError(f"model file {relpath} cannot be loaded: {exc}") from exc

    def read_verified(self, relpath: str, sha256: str) -> bytes:
        """The file's bytes, if they hash to ``sha256``; hashing the bytes we load closes any race."""
        path = self.root / relpath
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactError(f"model file {path} is missing") from exc
        except OSError as exc:
            raise ArtifactError(f"model file {path} cannot be read: {exc.strerror}") from exc
        actual = sha256_bytes(data)
        if actual != sha256:
            raise ArtifactError(
                f"model file {path} fails its checksum: sha256 {actual[:12]}..., registry {sha256[:12]}..."
            )
        return data

    def save_frame(self, relpath: str, frame: pd.DataFrame) -> str:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        data = buffer.getvalue()
        write_atomic(self.root / relpath, data)
        return sha256_bytes(data)

    def load_frame(self, relpath: str) -> pd.DataFrame:
        import pandas as pd

        try:
            return pd.read_parquet(self.root / relpath)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"reference sample {self.root / relpath} cannot be read: {exc}") from exc
