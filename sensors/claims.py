"""Claims: how Monitor takes a landing file exactly once, whatever crash, full disk or second daemon comes between.

A file in ``landing/<model>/`` is claimed by one atomic rename into ``landing/.processing/<model>/<sha256>/``
(inside the landing folder, so the rename never crosses a file system), named by the sha256 of its content;
its claim ``<sha256>/<name>`` is the key its batch row is recorded under (unique per model). Intake then
puts the file where it ends (archive or quarantine) *beside* the claimed entry (a hard link, or a copy made
durable then renamed), commits the row, and only then removes the claimed entry. So a crash at any moment
leaves either an unrecorded claim (redone from the start on the next pass) or a recorded one whose target
already exists (only the claimed entry is left to remove): no batch row points at a missing file, and none
is written twice.

Entries that are not regular files (symbolic links, FIFOs, sockets, devices, folders) are never opened or
followed: their claim is named by a hash of what ``lstat`` says about them, and intake quarantines them.
A file sent again with the same name and content gets the claim ``<sha256>.2/<name>`` (``.3`` next) so that
its own fate is recorded too.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from itertools import count
from pathlib import Path

PROCESSING = ".processing"
CHUNK = 1 << 20
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class EntryKind(StrEnum):
    """What a directory entry in the landing folder is, as ``lstat`` sees it (links are not followed)."""

    FILE = "regular file"
    SYMLINK = "symbolic link"
    FIFO = "named pipe"
    SOCKET = "socket"
    DEVICE = "device"
    DIRECTORY = "folder"


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A landing entry taken by intake: its key in the batches table and where it lies meanwhile."""

    key: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def digest(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def resent(self) -> bool:
        """Whether a file of the same name and content was claimed before (``<sha256>.N/<name>``)."""
        return "." in self.digest


def entry_kind(path: Path) -> EntryKind:
    """The kind of ``path`` itself (a symbolic link is reported as one, never followed)."""
    mode = os.lstat(path).st_mode
    if stat.S_ISREG(mode):
        return EntryKind.FILE
    if stat.S_ISLNK(mode):
        return EntryKind.SYMLINK
    if stat.S_ISFIFO(mode):
        return EntryKind.FIFO
    if stat.S_ISSOCK(mode):
        return EntryKind.SOCKET
    if stat.S_ISDIR(mode):
        return EntryKind.DIRECTORY
    return EntryKind.DEVICE


def digest(path: Path) -> str:
    """sha256 of a regular file's content, or of ``lstat``'s identity for anything else (never opened)."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        identity = f"{info.st_mode}:{info.st_dev}:{info.st_ino}:{info.st_mtime_ns}:{path.name}"
        return hashlib.sha256(identity.encode()).hexdigest()
    # O_NOFOLLOW and O_NONBLOCK: if the entry was swapped for a link or a FIFO since lstat, fail, never hang.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "changed into a non-regular file while being claimed", str(path))
        sha = hashlib.sha256()
        while chunk := os.read(fd, CHUNK):
            sha.update(chunk)
    finally:
        os.close(fd)
    return sha.hexdigest()


def claim(entry: Path, processing: Path, recorded: Callable[[str], bool]) -> Claim:
    """Take ``entry`` by an atomic rename into ``processing/<digest>/``; raises ``OSError`` if it cannot."""
    base = digest(entry)
    for n in count(1):
        folder = base if n == 1 else f"{base}.{n}"
        key = f"{folder}/{entry.name}"
        target = processing / folder / entry.name
        if not os.path.lexists(target) and not recorded(key):
            break
    target.parent.mkdir(parents=True, exist_ok=True)
    entry.rename(target)
    return Claim(key=key, path=target)


def pending(processing: Path) -> list[Claim]:
    """Claims a crash (or a full disk) left unfinished, oldest name first; empty claim folders are removed."""
    if not processing.is_dir():
        return []
    found = []
    for folder in sorted(processing.iterdir()):
        if not folder.is_dir() or folder.is_symlink():
            continue
        entries = sorted(folder.iterdir())
        if not entries:
            _remove_folder(folder)  # a crash between mkdir and rename
        found += [Claim(key=f"{folder.name}/{e.name}", path=e) for e in entries]
    return found


def place(item: Claim, target: Path) -> None:
    """Make ``target`` hold the claimed entry, keeping the claim itself; replaces an earlier attempt.

    A hard link when the target is on the same file system, else a copy fsynced before its rename: either
    way ``target`` appears whole or not at all. Folders cannot be linked: they are moved by ``release``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    _discard(tmp)
    try:
        try:
            os.link(item.path, tmp, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            _copy(item.path, tmp)
        tmp.replace(target)
        _sync_folder(target.parent)
    except BaseException:
        _discard(tmp)  # a half-made copy (a full disk) is not left behind
        raise


def release(item: Claim, target: Path) -> None:
    """Remove the claimed entry once its row is committed (a folder is moved to ``target`` instead)."""
    if item.path.is_dir() and not item.path.is_symlink():
        target.parent.mkdir(parents=True, exist_ok=True)
        item.path.rename(target)
    else:
        _discard(item.path)
    _remove_folder(item.path.parent)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def _copy(source: Path, tmp: Path) -> None:
    if source.is_symlink():
        tmp.symlink_to(source.readlink())
        return
    if not source.is_file():
        raise OSError(errno.EXDEV, "a special file cannot be moved to another file system", str(source))
    with source.open("rb") as src, tmp.open("wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)
        dst.flush()
        os.fsync(dst.fileno())


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _remove_folder(folder: Path) -> None:
    # Not empty (a second claim of the same content) or already gone: nothing to do either way.
    with contextlib.suppress(OSError):
        folder.rmdir()


def _sync_folder(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk; a power cut must not undo it.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
