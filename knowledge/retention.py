"""Retention: what keeps the knowledge store (and the archive beside it) small over years of ticks.

Part of K in the MAPE-K loop: the loop writes a few observation rows per model per tick and archives every
batch it accepts; this module is the garbage collector that bounds both. ``healctl gc`` runs it on demand,
and the daemon's leader once a day (fenced like every write that changes shared state).

- Observations stay raw for ``raw_days``; older ones are folded into one row per hour, model, source and
  metric (min, mean, max, count), which series readers join to the raw rows; rollups older than
  ``horizon_days`` are dropped.
- Archived batch files older than ``batch_days`` are removed, except what may still be read (their rows
  stay as small tombstones, ``BatchStatus.COLLECTED``, holding the claim and fingerprint, so the same file sent
  again is still a duplicate and the batch counters never go down):
  the rows every kept version (champion, challenger, stable and not rolled back) learned from, the rows an
  artifact emergency would rebuild from (everything since the champion began serving, and at least the
  newest ``keep_labelled_rows`` labelled rows), the window of a retrain still planned or running, and each
  model's newest batch. A model without a champion keeps everything: a rebuild would read it all.
- Quarantined files are evidence: kept unless ``quarantine_days`` is set.
- Incidents, symptoms, actions, decisions, versions, pipeline runs and served rows are never touched here
  (served rows waiting for late labels have their own bound, applied by the capture).

Rows become tombstones before their files go, so a crash in between leaves an orphan file, never an accepted
row naming a file that is gone (a retrain reads the files its rows name).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from knowledge.errors import NotFoundError, StaleEpochError
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import JSON, ActionKind, ActionState, Alias, Batch, BatchStatus, Version

BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)  # "keep everything": no batch is older


class Removed(StrEnum):
    """The kinds of things a collection removes, as they appear in its report."""

    OBSERVATIONS = "observations"  # raw rows folded into hourly rollups
    ROLLUPS = "observation_rollups"  # hourly rollups past the horizon
    EXPIRED_OBSERVATIONS = "expired_observations"  # raw rows past the horizon (raw_days > horizon is refused)
    BATCHES = "batches"  # archived batches: the file removed, the row kept as a tombstone
    QUARANTINED = "quarantined_batches"  # quarantined batches (likewise), only under a quarantine policy


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """How long each kind of history is kept; 0 days for batches or quarantine means forever."""

    raw_days: float = 7.0
    horizon_days: float = 400.0
    batch_days: float = 30.0
    quarantine_days: float = 0.0
    keep_labelled_rows: int = 400  # an emergency rebuild's minimum (policy.min_retrain_rows)

    def __post_init__(self) -> None:
        if not 0 < self.raw_days <= self.horizon_days:
            raise ValueError(
                f"retention.raw_days ({self.raw_days}) must be above 0 and at most horizon_days ({self.horizon_days})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class GcReport:
    """What one collection removed (or, in a dry run, would remove)."""

    at: datetime
    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # model -> why its part failed (the others went on)

    def as_json(self) -> JSON:
        return {
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "rows": dict(self.rows),
            "files": self.files,
            "bytes": self.bytes,
            "failed": dict(self.failed),
        }


def collect_garbage(
    store: SqlKnowledgeStore,
    policy: RetentionPolicy,
    now: datetime,
    *,
    dry_run: bool = False,
    epoch: int | None = None,
) -> GcReport:
    """Apply ``policy`` at ``now`` to every model: fold, drop and remove what it no longer keeps."""
    rows = dict.fromkeys((k.value for k in Removed), 0)
    files = size = 0
    failed: dict[str, str] = {}
    raw_until = now - timedelta(days=policy.raw_days)
    for model in (m.name for m in store.list_models()):
        try:
            folded = store.rollup_observations(model, before=raw_until, dry_run=dry_run, epoch=epoch)
            expired = _expired_batches(store, policy, model, now)
            doomed = expired[Removed.BATCHES] + expired[Removed.QUARANTINED]
            if doomed and not dry_run:
                store.collect_batches(doomed, at=now, epoch=epoch)
        except StaleEpochError:
            raise  # another daemon leads now: it collects, this one stops
        except Exception as exc:  # isolation: one model's damaged rows never stop the collection for the others
            failed[model] = f"{type(exc).__name__}: {exc}"[:500]
            continue
        rows[Removed.OBSERVATIONS] += folded
        rows[Removed.BATCHES] += len(expired[Removed.BATCHES])
        rows[Removed.QUARANTINED] += len(expired[Removed.QUARANTINED])
        count, freed = _remove_files(doomed, dry_run=dry_run)
        files, size = files + count, size + freed
    dropped = store.drop_history(before=now - timedelta(days=policy.horizon_days), dry_run=dry_run, epoch=epoch)
    rows[Removed.ROLLUPS] += dropped["observation_rollups"]
    rows[Removed.EXPIRED_OBSERVATIONS] += dropped["observations"]
    return GcReport(at=now, dry_run=dry_run, rows=rows, files=files, bytes=size, failed=failed)


def _expired_batches(
    store: SqlKnowledgeStore, policy: RetentionPolicy, model: str, now: datetime
) -> dict[Removed, list[Batch]]:
    """The archived (and, under a quarantine policy, quarantined) batches of a model that may go."""
    expired: dict[Removed, list[Batch]] = {Removed.BATCHES: [], Removed.QUARANTINED: []}
    if policy.batch_days > 0:
        until = min(now - timedelta(days=policy.batch_days), keep_from(store, policy, model))
        expired[Removed.BATCHES] = store.batches_before(model, before=until, status=BatchStatus.ACCEPTED)
    if policy.quarantine_days > 0:
        until = now - timedelta(days=policy.quarantine_days)
        expired[Removed.QUARANTINED] = store.batches_before(model, before=until, status=BatchStatus.QUARANTINED)
    return expired


def keep_from(store: SqlKnowledgeStore, policy: RetentionPolicy, model: str) -> datetime:
    """The oldest archived batch time a model may still read; every accepted batch since then is kept."""
    versions = {v.number: v for v in store.list_versions(model)}
    aliases = store.aliases(model)
    champion = versions.get(aliases.get(Alias.CHAMPION, -1))
    if champion is None:
        return BEGINNING  # no champion: an emergency rebuild would read every labelled row there is
    kept = set(aliases.values()) | {n for n, v in versions.items() if v.stable_at and v.rolled_back_at is None}
    lineage = (_trained_from(store, versions[n]) for n in kept if n in versions)
    bounds = [champion.created_at, *lineage, *_active_retrains(store, model)]
    bounds += _newest_labelled(store, model, policy.keep_labelled_rows)
    bounds += [b.received_at for b in store.batches(model, limit=1)]
    return min(bounds)


def _trained_from(store: SqlKnowledgeStore, version: Version) -> datetime:
    """Where the archived rows a version learned from begin (its lineage); now-ish when none came from the archive."""
    if not version.created_by.startswith("action:"):
        return version.created_at  # onboarded or a pipeline run: its data is the run folder, never collected
    try:
        action = store.get_action(int(version.created_by.removeprefix("action:")))
    except (NotFoundError, ValueError):
        return BEGINNING  # lineage unknown: keep everything rather than guess
    return _since(action.params)


def _active_retrains(store: SqlKnowledgeStore, model: str) -> Iterable[datetime]:
    active = store.actions(model=model, kind=ActionKind.RETRAIN, states=[ActionState.PLANNED, ActionState.RUNNING])
    return (_since(a.params) for a in active)


def _since(params: JSON) -> datetime:
    """A retrain's ``since`` (no ``since``: it reads every labelled row)."""
    since = params.get("since")
    return datetime.fromisoformat(since) if isinstance(since, str) else BEGINNING


def _newest_labelled(store: SqlKnowledgeStore, model: str, rows: int) -> list[datetime]:
    """When the newest labelled batches holding at least ``rows`` rows began (all of them when they hold fewer;
    nothing when there are none). Read newest first, a page at a time: a model may have years of batches."""
    limit = 64
    while True:
        batches = store.batches(model, labelled=True, limit=limit)
        total = 0
        for batch in reversed(batches):
            total += batch.rows
            if total >= rows:
                return [batch.received_at]
        if len(batches) < limit:
            return [batches[0].received_at] if batches else []
        limit *= 4


def _remove_files(batches: list[Batch], *, dry_run: bool) -> tuple[int, int]:
    """Remove each batch's file (or folder) and its quarantine note; how many files and bytes went."""
    files = size = 0
    for batch in batches:
        path = Path(batch.path)
        for target in (path, path.with_name(path.name + ".reason.json")):
            found = _size(target)
            if found is None:
                continue
            files, size = files + found[0], size + found[1]
            if not dry_run:
                _delete(target)
    return files, size


def _size(path: Path) -> tuple[int, int] | None:
    """Files and bytes at ``path`` (a file or a folder), or None when nothing is there."""
    if path.is_symlink() or path.is_file():
        return 1, path.lstat().st_size
    if path.is_dir():
        inside = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
        return len(inside), sum(p.stat().st_size for p in inside)
    return None


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
