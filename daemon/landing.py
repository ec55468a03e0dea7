"""Producers' side of the landing folder: `healctl submit` drops a batch where the Monitor step takes it in.

A batch must appear whole (the intake skips dot-files), must never replace one still waiting, and must be
readable and movable by the daemon, which under systemd runs as a dynamic user that owns the folder.
So the copy is written to a dot-file, fsynced, given the folder's owner when root runs this (root's file
in the service's folder is what broke hand-dropped batches), and renamed under a name nobody else uses.
The folders it has to create (a model the daemon has not seen yet) get the owner of the folder they are
created in, for the same reason.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import DataError

SUFFIXES = (".csv", ".parquet")


def submit(source: Path, folder: Path, *, now: datetime | None = None) -> Path:
    """Copy ``source`` into ``folder`` atomically, owned like the folder; returns the batch's path."""
    if source.suffix.lower() not in SUFFIXES:
        raise DataError(f"{source}: a batch must be a .csv or .parquet file")
    if not source.is_file():
        raise DataError(f"{source}: no such file")
    make_folder(folder)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    target = folder / f"{source.stem}-{stamp}{source.suffix.lower()}"
    partial = folder / f".{target.name}.partial"
    with source.open("rb") as read, partial.open("xb") as write:
        shutil.copyfileobj(read, write)
        write.flush()
        os.fsync(write.fileno())
    owner = folder.stat()
    if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
        os.chown(partial, owner.st_uid, owner.st_gid)
    partial.chmod(0o640)
    partial.rename(target)
    _sync(folder)
    return target


def make_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents, owned like the nearest folder that already exists."""
    missing = []
    existing = folder
    while not existing.exists():
        missing.append(existing)
        existing = existing.parent
    owner = existing.stat()
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
            os.chown(path, owner.st_uid, owner.st_gid)


def _sync(folder: Path) -> None:
    """Make the rename durable (a crash after `submit` returned keeps the batch)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
