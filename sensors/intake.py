"""Intake (Monitor): batches dropped in the landing folder become recorded batches the sensors read, exactly once.

Producers write ``landing/<model>/<name>.csv`` or ``.parquet`` (write to a dot-file or ``*.part`` first and
rename, so heald never reads half a file). Each file is claimed (``sensors.claims``: an atomic rename into a
processing folder named by its content hash), read, validated as a batch against the schema the champion was
trained on (``pipeline.validate``: missing or retyped columns, words in numeric columns, infinities, empty
columns, ...) and checked against the champion's reference profile, then archived and recorded in one
transaction keyed by its claim; a file that cannot be used is quarantined whole with a ``.reason.json`` (the
reason and the full validation report) beside it. Links, pipes, sockets, devices and folders are quarantined
without being opened or followed. No file is deleted and no row is dropped silently.

Every pass first settles the claims an earlier pass left unfinished (a crash, a full disk), so recording and
archiving happen once whatever stops heald in between. A file that cannot be read or moved is skipped with an
error event and retried on the next pass; a full disk stops claiming (an event, the ``health`` the metrics and
status line show) until a pending claim can be finished again. Intake reports events instead of logging them:
sensors do not log, the loop does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import pandas as pd

from knowledge.artifacts import write_atomic
from knowledge.errors import DiskFullError, StoreError
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Alias, Batch, ModelRecord, Observation, Version
from pipeline.errors import DataError
from pipeline.fingerprint import fingerprint
from pipeline.ingest import DatasetInfo, read_table
from pipeline.labels import batch_problem
from pipeline.mapping import conform, rename_hint
from pipeline.profile import Profile
from pipeline.quality import QualityReport, QualitySettings
from pipeline.quality import check as quality_check
from pipeline.validate import OWN_COLUMNS, Schema, ValidationPolicy, ValidationReport, validate
from sensors.base import LoadedBatch, ProfileCache
from sensors.claims import PROCESSING, Claim, EntryKind, claim, entry_kind, is_disk_full, pending, place, release
from sensors.quality import ignored_columns
from sensors.sources.base import pulled_kind

SOURCE = "intake"
SUFFIXES = (".csv", ".parquet")
UNFINISHED = (".part", ".tmp")  # a producer still writing: left alone until renamed
BATCH = ValidationPolicy(purpose="batch")


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakeEvent:
    """Something worth a log line (``batch_skipped``, ``intake_blocked``, ...), logged by the loop."""

    name: str
    level: Level
    fields: dict[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class Intake:
    """What one pass over a model's landing folder produced."""

    batches: list[LoadedBatch]
    observations: list[Observation]
    events: list[IntakeEvent] = field(default_factory=list)
    # The champion's row as intake read it to check the batches (``champion_read``), for the sensors to reuse:
    # the row carries the version's whole profile, and nothing moves the alias between intake and sensing.
    champion: Version | None = None
    champion_read: bool = False


@dataclass(slots=True)
class IntakeHealth:
    """Intake's state for the metrics and the status line: which models are blocked and why, files skipped."""

    blocked: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str | None:
        """One line for the status, or None while intake flows."""
        blocked = sorted(dict(self.blocked))  # a copy: the API thread reads while the loop's thread writes
        return "intake paused (disk full) for " + ", ".join(blocked) if blocked else None


def expected_schema(model: ModelRecord, store: SqlKnowledgeStore) -> Schema:
    """The columns and kinds the champion was trained on (only the names, for a version without them)."""
    number = store.alias(model.name, Alias.CHAMPION)
    return schema_of(model, store.get_version(model.name, number) if number is not None else None)


def schema_of(model: ModelRecord, champion: Version | None) -> Schema:
    """The columns and kinds ``champion`` was trained on (only the names, for a version without them)."""
    dataset = champion.profile.get("dataset") if champion is not None else None
    if dataset:
        return Schema.from_info(DatasetInfo.from_json(dataset), only=list(model.features))
    # "categorical" accepts any kind: without a recorded description only presence can be checked.
    return Schema(columns=dict.fromkeys(model.features, "categorical"), target=model.target)


def check_batch(frame: pd.DataFrame, model: ModelRecord, schema: Schema) -> ValidationReport:
    """Validate rows that arrived for ``model`` as a batch (the target may be absent: unlabelled rows)."""
    return validate(frame, target=model.target, task=model.task.value, schema=schema, policy=BATCH)


def blocking_of(report: QualityReport | None) -> str | None:
    """Why the champion could not score the rows ``report`` checked (retyped or empty feature columns), or None."""
    if report is None:
        return None
    return "; ".join(p.detail for p in report.problems if p.blocking) or None


class LandingIntake:
    """Claims files in ``landing/<model>/`` and ends each archived or quarantined, recorded exactly once."""

    def __init__(
        self,
        landing: Path,
        archive: Path,
        quarantine: Path,
        profiles: ProfileCache | None = None,
        quality: QualitySettings | None = None,
    ) -> None:
        self.landing = landing
        self.profiles = profiles or ProfileCache()  # shared with the sensors by the loop's composition
        self.quality = quality or QualitySettings()  # the quality sensor's limits: its check is made here once
        self.archive = archive
        self.quarantine = quarantine
        self.processing = landing / PROCESSING
        self.health = IntakeHealth()

    def collect(self, model: ModelRecord, store: SqlKnowledgeStore, now: datetime) -> Intake:
        """Settle what an earlier pass left unfinished, then claim and take what has landed since."""
        run = _Pass(self, model, store, now)
        for item in pending(self.processing / model.name):
            if not run.finish(item):
                break
        else:
            run.claim_all(self.landing / model.name)
        if not run.stalled and model.name in self.health.blocked:
            del self.health.blocked[model.name]
            run.event("intake_resumed", Level.INFO)
        return Intake(
            batches=run.batches,
            observations=run.observations,
            events=run.events,
            champion=run.champion,
            champion_read=run.champion_read,
        )


class _Pass:
    """One pass of intake over one model's files; what it produced and whether a full disk stopped it."""

    def __init__(self, intake: LandingIntake, model: ModelRecord, store: SqlKnowledgeStore, now: datetime) -> None:
        self.intake = intake
        self.model = model
        self.store = store
        self.now = now
        self.batches: list[LoadedBatch] = []
        self.observations: list[Observation] = []
        self.events: list[IntakeEvent] = []
        self.stalled = False
        self._expected: tuple[Schema, Profile | None] | None = None
        self.champion: Version | None = None
        self.champion_read = False

    def event(self, name: str, level: Level, **fields: object) -> None:
        self.events.append(IntakeEvent(name=name, level=level, fields={"model": self.model.name, **fields}))

    def claim_all(self, folder: Path) -> None:
        if not folder.is_dir():
            return
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith(".") or entry.name.endswith(UNFINISHED):
                continue
            try:
                item = claim(entry, self.intake.processing / self.model.name, self._recorded)
            except FileNotFoundError:
                continue  # taken by a second daemon, or renamed by its producer: nothing of ours
            except OSError as exc:
                if not self._trouble(entry.name, exc):
                    return
                continue
            if not self.finish(item):
                return

    def finish(self, item: Claim) -> bool:
        """Record and archive (or quarantine) one claim; False when a full disk says to stop for now."""
        try:
            self._finish(item)
        except FileNotFoundError:
            pass  # a second daemon finished it meanwhile
        except Exception as exc:  # one file's trouble (unreadable, unmovable, a bug) must not stop the others
            return self._trouble(item.name, exc)
        return True

    def _trouble(self, name: str, exc: Exception) -> bool:
        """Report a file that cannot be handled now (it is retried next pass); False when the disk is full."""
        error = f"{name}: {type(exc).__name__}: {exc}"
        if isinstance(exc, DiskFullError) or is_disk_full(exc):
            self.stalled = True
            if self.model.name not in self.intake.health.blocked:
                self.event("intake_blocked", Level.ERROR, file=name, error=error)
            self.intake.health.blocked[self.model.name] = error
            return False
        skipped = self.intake.health.skipped
        skipped[self.model.name] = skipped.get(self.model.name, 0) + 1
        self.event("batch_skipped", Level.ERROR, file=name, error=error)
        return True

    def _recorded(self, key: str) -> bool:
        return self.store.find_batch(self.model.name, key) is not None

    def _finish(self, item: Claim) -> None:
        recorded = self.store.find_batch(self.model.name, item.key)
        if recorded is not None:
            self._complete(item, Path(recorded.path))
            return
        kind = entry_kind(item.path)
        if kind is not EntryKind.FILE:
            self._quarantine(item, _special(item.path, kind), checks=[kind.name.lower()])
        elif item.resent:
            first = self.store.find_batch(self.model.name, f"{item.digest.split('.')[0]}/{item.name}")
            held = f" (batch {first.id})" if first is not None else ""
            self._quarantine(item, f"{item.name}: the same file was received before{held}", checks=["duplicate"])
        elif item.path.suffix not in SUFFIXES:
            self._quarantine(item, f"{item.name}: not a .csv or .parquet file", checks=["suffix"])
        else:
            self._take(item)

    def _complete(self, item: Claim, target: Path) -> None:
        """A crash came after the row was committed: only the claim is left to release."""
        if entry_kind(item.path) is not EntryKind.DIRECTORY and not os.path.lexists(target):
            place(item, target)
        release(item, target)

    def _take(self, item: Claim) -> None:
        frame: pd.DataFrame | None = None
        report: ValidationReport | None = None
        schema, profile = self._expectations()
        try:
            # Accepted renames applied and numbers with units read before anything checks the rows.
            frame = conform(read_table(item.path), self.store.column_mappings(self.model.name))
            report = check_batch(frame, self.model, schema)
            known = (self.model.target, *OWN_COLUMNS)
            report.raise_for_failures(
                item.name, rename_hint(profile, frame, list(schema.columns), known, self.model.name)
            )
            quality = self._quality(frame, profile)
            problem = blocking_of(quality) or batch_problem(
                frame, self.model.target, profile.label_spec if profile is not None else None
            )
            if problem:
                raise DataError(f"{item.name}: {problem}")
        except DataError as exc:
            failed = [c.name for c in report.failures] if report is not None else ["read"]
            rows = len(frame) if frame is not None else 0
            self._quarantine(item, str(exc), checks=failed, report=report, rows=rows)
            return
        assert frame is not None  # read_table returned, else DataError was raised
        labelled = self.model.target in frame.columns and bool(frame[self.model.target].notna().any())
        target = self.intake.archive / self.model.name / _stored_name(item)
        place(item, target)
        try:
            batch = self._record(item, target, rows=len(frame), labelled=labelled, fingerprint=fingerprint(frame))
        except _AlreadyRecordedError:
            return
        release(item, target)
        self.batches.append(LoadedBatch(batch=batch, frame=frame, quality=quality))
        self.observations.append(self._observe("batch_rows", float(len(frame)), file=item.name, labelled=labelled))
        self.event("batch_accepted", Level.INFO, file=item.name, batch_id=batch.id, rows=len(frame))

    def _quarantine(
        self, item: Claim, reason: str, *, checks: list[str], report: ValidationReport | None = None, rows: int = 0
    ) -> None:
        target = self.intake.quarantine / self.model.name / _stored_name(item)
        if entry_kind(item.path) is not EntryKind.DIRECTORY:
            place(item, target)  # a folder cannot be linked: release moves it once its row is committed
        note = {
            "file": item.name,
            "reason": reason,
            "at": self.now.isoformat(),
            "model": self.model.name,
            "claim": item.key,
            "validation": report.as_json() if report is not None else None,
        }
        write_atomic(target.with_name(target.name + ".reason.json"), json.dumps(note, indent=2).encode())
        try:
            batch = self._record(item, target, rows=rows, labelled=False, fingerprint="", reason=reason)
        except _AlreadyRecordedError:
            return
        release(item, target)
        self.observations.append(self._observe("batch_quarantined", 1.0, file=item.name, reason=reason, checks=checks))
        self.event("batch_quarantined", Level.WARNING, file=item.name, batch_id=batch.id, reason=reason)

    def _record(
        self, item: Claim, target: Path, *, rows: int, labelled: bool, fingerprint: str, reason: str | None = None
    ) -> Batch:
        try:
            return self.store.add_batch(
                model=self.model.name,
                received_at=self.now,
                source="landing" if reason is not None else _source(item.path),
                path=str(target),
                rows=rows,
                labelled=labelled,
                fingerprint=fingerprint,
                status="accepted" if reason is None else "quarantined",
                reason=reason or "",
                claim=item.key,
                pulled=item.name if pulled_kind(item.name) else None,  # a source's page: its watermark advances
            )
        except DiskFullError:
            raise
        except StoreError:
            if self.store.find_batch(self.model.name, item.key) is None:
                raise
            self._complete(item, target)  # a second daemon recorded it first: its row stands, ours is not written
            raise _AlreadyRecordedError from None

    def _quality(self, frame: pd.DataFrame, profile: Profile | None) -> QualityReport | None:
        """The rows checked against the champion's profile once, as the quality sensor would check them."""
        if profile is None or self.champion is None:
            return None
        ignore = ignored_columns(self.model, self.champion)
        return quality_check(profile, frame, ignore=ignore, settings=self.intake.quality)

    def _expectations(self) -> tuple[Schema, Profile | None]:
        if self._expected is None:
            # One read of the champion for both (its profile parsed once per version, not per batch or tick).
            number = self.store.alias(self.model.name, Alias.CHAMPION)
            champion = self.store.get_version(self.model.name, number) if number is not None else None
            self.champion, self.champion_read = champion, True
            profile = self.intake.profiles.get(champion) if champion is not None else None
            self._expected = (schema_of(self.model, champion), profile)
        return self._expected

    def _observe(self, metric: str, value: float, **evidence: object) -> Observation:
        return _observe(self.now, self.model.name, metric, value, **evidence)


class _AlreadyRecordedError(Exception):
    """Internal: the claim's row was written by someone else between our look and our insert."""


def _special(path: Path, kind: EntryKind) -> str:
    """Why a non-regular entry is quarantined; a link's target is named, never opened."""
    where = f" to {path.readlink()}" if kind is EntryKind.SYMLINK else ""
    return f"{path.name}: is a {kind}{where}, not a regular file; heald never follows or opens it"


def _stored_name(item: Claim) -> str:
    """The archive (or quarantine) name: the start of the content hash (and a resend's number), then the name.

    Deterministic, so a pass redone after a crash writes the same file again instead of a second one; cut to
    fit a file system's 255-byte names (the reason file adds 12 bytes), keeping the suffix.
    """
    name = f"{item.digest[:16]}{item.digest[64:]}-{item.name}"
    if len(name.encode()) <= 240:
        return name
    suffix = Path(item.name).suffix[:16]
    return name.encode()[: 240 - len(suffix.encode())].decode(errors="ignore") + suffix


def _source(path: Path) -> str:
    """Files written by the API's capture or a pulled source say where they came from; the rest was dropped in."""
    for prefix in ("api", "feedback"):
        if path.name.startswith(f"{prefix}-"):
            return prefix
    return pulled_kind(path.name) or "landing"


def _observe(now: datetime, model: str, metric: str, value: float, **evidence: object) -> Observation:
    return Observation(at=now, model=model, source=SOURCE, metric=metric, value=value, evidence=dict(evidence))
