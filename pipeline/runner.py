"""Runner: the pipeline as named stages (ingest, validate, features, train, evaluate), each one recorded,
persisted, retried and resumable. This is what ``healctl pipeline run``, ``healctl init`` and the ``rerun``
action call.

Every stage writes its outputs into its own folder of the run folder and gets a ``StageRecord``: status,
duration, attempts, the fingerprint of what went in (the run's config and the outputs of the stages
before) and of what came out (a sha256 over the files it wrote), and the error if it failed. The run's
manifest (``run.json``) is rewritten atomically after every change, and a ``StageListener`` hears each
change as it happens (the CLI draws progress bars with it; the actuators record it in the knowledge store).

A failure that may pass (``TransientError``, an OS error, a killed worker) is retried with exponential
backoff; any other failure ends the run. ``resume`` starts a new run from a failed one: stages that
succeeded are reused (their folders are kept and their outputs verified against the recorded fingerprints,
never recomputed) and the run goes on from the failed stage, with the same config.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pipeline.errors import DataError, PipelineError, StageError, TransientError
from pipeline.fingerprint import folder_digest, text_digest
from pipeline.settings import RunConfig

StageStatus = Literal["pending", "running", "succeeded", "failed", "reused"]
RunStatus = Literal["running", "succeeded", "failed"]
MANIFEST = "run.json"
PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
TRANSIENT_NAMES = frozenset({"TerminatedWorkerError", "BrokenProcessPool"})


@dataclass(frozen=True, slots=True, kw_only=True)
class StageRecord:
    stage: str
    status: StageStatus = "pending"
    folder: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float = 0.0
    attempts: int = 0
    input_fingerprint: str = ""
    output_fingerprint: str = ""
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "status": self.status,
            "folder": self.folder,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "seconds": round(self.seconds, 6),
            "attempts": self.attempts,
            "input_fingerprint": self.input_fingerprint,
            "output_fingerprint": self.output_fingerprint,
            "error": self.error,
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageRecord:
        return cls(
            **{
                **data,
                "started_at": _parse(data["started_at"]),
                "finished_at": _parse(data["finished_at"]),
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """A pipeline run: its config, where it lives, and where each stage stands."""

    folder: str
    config: RunConfig
    status: RunStatus
    stages: list[StageRecord]
    started_at: datetime
    finished_at: datetime | None = None
    resumed_from: str | None = None
    error: str | None = None

    @property
    def failed_stage(self) -> str | None:
        return next((s.stage for s in self.stages if s.status == "failed"), None)

    def stage(self, name: str) -> StageRecord:
        return next(s for s in self.stages if s.stage == name)

    def raise_for_failure(self) -> None:
        """Raise ``StageError`` naming the failed stage and its error, if the run failed."""
        failed = self.failed_stage
        if failed is not None:
            raise StageError(failed, self.stage(failed).error or "unknown error")

    def as_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "config": self.config.as_json(),
            "status": self.status,
            "stages": [s.as_json() for s in self.stages],
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "resumed_from": self.resumed_from,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        started = _parse(data["started_at"])
        assert started is not None
        return cls(
            folder=data["folder"],
            config=RunConfig.from_json(data["config"]),
            status=data["status"],
            stages=[StageRecord.from_json(s) for s in data["stages"]],
            started_at=started,
            finished_at=_parse(data["finished_at"]),
            resumed_from=data.get("resumed_from"),
            error=data.get("error"),
        )


def read_manifest(folder: Path) -> RunRecord:
    """The record of the run kept in ``folder``; ``DataError`` if there is none or it is unreadable."""
    try:
        return RunRecord.from_json(json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"no readable pipeline run in {folder}: {exc}") from None


class StageContext:
    """What a stage may use: the config, its own output folder, and the outputs of the stages before it."""

    def __init__(self, run: Run, folder: Path) -> None:
        self.config = run.record.config
        self.folder = folder
        self._run = run

    def input(self, stage: str) -> Any:
        return self._run.value(stage)


class Stage(Protocol):
    """One step of the pipeline: ``run`` writes its outputs into ``ctx.folder``; ``load`` reads them back."""

    name: str

    def run(self, ctx: StageContext) -> tuple[Any, dict[str, Any]]: ...

    def load(self, folder: Path, config: RunConfig) -> Any: ...


class StageListener(Protocol):
    """Hears every change of a stage's record, in order."""

    def stage_changed(self, run: RunRecord, record: StageRecord) -> None: ...


class NullListener:
    def stage_changed(self, run: RunRecord, record: StageRecord) -> None:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried (delays double, up to a cap)."""

    attempts: int = 3
    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * self.factor ** (attempt - 1)))


def transient(exc: BaseException) -> bool:
    """Whether trying again later may help: disk or network hiccups, memory pressure, a killed worker."""
    if isinstance(exc, TransientError | MemoryError):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, PERMANENT_OS_ERRORS):
        return True
    return type(exc).__name__ in TRANSIENT_NAMES


def utc_now() -> datetime:
    """The runner's default clock (a named function, so that a runner's settings pickle to a worker process)."""
    return datetime.now(UTC)


class Run:
    """A run in progress or finished: its record and its stages' outputs (loaded from disk on demand)."""

    def __init__(self, record: RunRecord, stages: dict[str, Stage]) -> None:
        self.record = record
        self._stages = stages
        self._values: dict[str, Any] = {}

    def value(self, stage: str) -> Any:
        """The output of ``stage``, read back from its folder if this process did not compute it."""
        if stage not in self._values:
            record = self.record.stage(stage)
            if record.status not in ("succeeded", "reused"):
                raise StageError(stage, f"has no output (it is {record.status})")
            self._values[stage] = self._stages[stage].load(Path(record.folder), self.record.config)
        return self._values[stage]

    def keep(self, stage: str, value: Any) -> None:
        self._values[stage] = value


class Runner:
    """Runs stages in order, records each, retries transient failures and resumes failed runs."""

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        retry: RetryPolicy | None = None,
        listener: StageListener | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.stages = list(stages)
        self.retry = retry or RetryPolicy()
        self.listener: StageListener = listener or NullListener()
        self.sleep = sleep
        self.now = now

    def run(self, config: RunConfig, folder: Path) -> Run:
        """Run every stage on ``config`` in a new run folder."""
        record = RunRecord(
            folder=str(folder),
            config=config,
            status="running",
            stages=[StageRecord(stage=s.name) for s in self.stages],
            started_at=self.now(),
        )
        return self._execute(Run(record, self._by_name()), start=0)

    def resume(self, failed: Path, folder: Path) -> Run:
        """A new run that reuses the succeeded stages of the run in ``failed`` and goes on from its failure."""
        old = read_manifest(failed)
        if old.status == "succeeded":
            raise StageError("resume", f"run {failed} did not fail; there is nothing to rerun")
        start, kept = self._reusable(old)
        now = self.now()
        reused = [replace(r, status="reused", started_at=now, finished_at=now, seconds=0.0, attempts=0) for r in kept]
        stages = reused + [StageRecord(stage=s.name) for s in self.stages[start:]]
        record = RunRecord(
            folder=str(folder),
            config=old.config,
            status="running",
            stages=stages,
            started_at=now,
            resumed_from=old.folder,
        )
        run = Run(record, self._by_name())
        folder.mkdir(parents=True, exist_ok=True)
        for r in reused:
            self._announce(run, r.stage, r)
        return self._execute(run, start=start)

    def _reusable(self, old: RunRecord) -> tuple[int, list[StageRecord]]:
        """How many leading stages of ``old`` succeeded and still hold exactly the outputs they recorded."""
        reused: list[StageRecord] = []
        for stage in self.stages:
            previous = next((r for r in old.stages if r.stage == stage.name), None)
            if previous is None or previous.status not in ("succeeded", "reused"):
                break
            folder = Path(previous.folder)
            if not folder.is_dir() or folder_digest(folder) != previous.output_fingerprint:
                break  # damaged or removed since: compute this stage again rather than trust it
            reused.append(previous)
        return len(reused), reused

    def _by_name(self) -> dict[str, Stage]:
        return {s.name: s for s in self.stages}

    def _execute(self, run: Run, *, start: int) -> Run:
        root = Path(run.record.folder)
        root.mkdir(parents=True, exist_ok=True)
        self._save(run)
        for stage in self.stages[start:]:
            if not self._stage(run, stage, root / stage.name):
                return self._finish(run, "failed", run.record.stage(stage.name).error)
        return self._finish(run, "succeeded", None)

    def _stage(self, run: Run, stage: Stage, folder: Path) -> bool:
        before = [r.output_fingerprint for r in run.record.stages if r.stage != stage.name and r.output_fingerprint]
        inputs = text_digest(json.dumps(run.record.config.as_json(), sort_keys=True), *before)
        started = self.now()
        clock = time.perf_counter()
        base = StageRecord(stage=stage.name, status="running", folder=str(folder), input_fingerprint=inputs)
        attempt = 0
        while True:
            attempt += 1
            self._announce(run, stage.name, replace(base, started_at=started, attempts=attempt))
            _fresh(folder)
            try:
                value, summary = stage.run(StageContext(run, folder))
            except Exception as exc:  # a stage's failure is recorded, never raised through the runner
                if transient(exc) and attempt < self.retry.attempts:
                    self.sleep(self.retry.delay(attempt))
                    continue
                failed = replace(
                    base,
                    status="failed",
                    started_at=started,
                    finished_at=self.now(),
                    seconds=time.perf_counter() - clock,
                    attempts=attempt,
                    error=_describe(exc),
                )
                self._announce(run, stage.name, failed)
                return False
            run.keep(stage.name, value)
            done = replace(
                base,
                status="succeeded",
                started_at=started,
                finished_at=self.now(),
                seconds=time.perf_counter() - clock,
                attempts=attempt,
                output_fingerprint=folder_digest(folder),
                summary=summary,
            )
            self._announce(run, stage.name, done)
            return True

    def _announce(self, run: Run, name: str, record: StageRecord) -> None:
        stages = [record if r.stage == name else r for r in run.record.stages]
        run.record = replace(run.record, stages=stages)
        self._save(run)
        self.listener.stage_changed(run.record, record)

    def _finish(self, run: Run, status: RunStatus, error: str | None) -> Run:
        run.record = replace(run.record, status=status, finished_at=self.now(), error=error)
        self._save(run)
        return run

    @staticmethod
    def _save(run: Run) -> None:
        save_manifest(run.record)


def save_manifest(record: RunRecord) -> None:
    """Write ``record`` as its folder's manifest, atomically (also for a run its worker process could not finish)."""
    path = Path(record.folder) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record.as_json(), indent=2), encoding="utf-8")
    tmp.replace(path)


def _fresh(folder: Path) -> None:
    """An empty folder for a stage's outputs (what a failed attempt left is removed first)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StageError):
        return exc.reason
    if isinstance(exc, PipelineError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".strip()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
