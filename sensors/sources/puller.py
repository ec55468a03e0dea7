"""Pulling (Monitor): each tick, a page of new rows from a model's sql or http source becomes a landing batch.

For every stream of the source (``rows``, and ``labels`` when configured) the puller:

1. leaves the stream alone while a page it wrote is still waiting for the intake (the intake records it in
   this same tick), or while the source backs off after failures;
2. asks for the rows after the watermark (moved back by the look-back window), at most ``max_rows`` new ones
   (the rest come next tick, so a huge backlog never stalls the loop) plus the keys already taken in the window,
   which are dropped;
3. notes the page as pending (its file name, the watermark and keys it brings) and writes it atomically into
   the landing folder as ``<kind>-rows-<n>.csv`` (labels as ``feedback-<kind>-labels-<n>.csv``, which the
   sensors count as labels for rows already seen, like the API's feedback).

The intake then takes the file like any dropped file, and the batch's transaction advances the watermark
(``SqlKnowledgeStore.add_batch(pulled=...)``). A crash before the file exists drops the pending page and pulls
it again from the same watermark; a crash after leaves the file, which the intake records once: rows are
never skipped nor taken twice. A failed pull (unreachable, timeout, changed schema, not JSON, too large) is
reported as a ``source_failed`` reading, and the stream waits ``backoff`` seconds, doubled per failure up to
``max_backoff``, before it is asked again; the tick goes on.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from knowledge.artifacts import write_atomic
from knowledge.errors import SourceError
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Metric, ModelRecord, Observation, SourceState
from sensors.claims import PROCESSING
from sensors.intake import IntakeEvent, Level
from sensors.sources import watermarks as wm
from sensors.sources.base import Source, Stream

SOURCE = "source"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pulling:
    """How one model's source is pulled: its key column, look-back, page size and back-off."""

    source: Source
    key: str
    start: Any = None
    lookback: float = 0.0
    max_rows: int = 10_000
    backoff: float = 60.0
    max_backoff: float = 3600.0


@dataclass(slots=True)
class Pulled:
    """What one tick's pulls for a model produced: readings for the analyzer and events for the log."""

    observations: list[Observation] = field(default_factory=list)
    events: list[IntakeEvent] = field(default_factory=list)

    def event(self, name: str, level: Level, **fields: object) -> None:
        self.events.append(IntakeEvent(name=name, level=level, fields=fields))


class SourcePuller:
    """Pulls each model's configured source into its landing folder, a bounded page per stream per tick."""

    def __init__(self, landing: Path, sources: Mapping[str, Pulling]) -> None:
        self.landing = landing
        self.sources = dict(sources)

    def pull(self, model: ModelRecord, store: SqlKnowledgeStore, now: datetime) -> Pulled:
        out = Pulled()
        pulling = self.sources.get(model.name)
        if pulling is None:
            return out
        for stream in pulling.source.streams():
            _StreamPull(self, pulling, model, stream, store, now, out).run()
        return out

    def close(self) -> None:
        for pulling in self.sources.values():
            close = getattr(pulling.source, "close", None)
            if close is not None:
                close()


class _StreamPull:
    """One stream's pull in one tick."""

    def __init__(
        self,
        puller: SourcePuller,
        pulling: Pulling,
        model: ModelRecord,
        stream: Stream,
        store: SqlKnowledgeStore,
        now: datetime,
        out: Pulled,
    ) -> None:
        self.puller = puller
        self.p = pulling
        self.model = model.name
        self.features = list(model.features)
        self.target = model.target
        self.stream = stream
        self.store = store
        self.now = now
        self.out = out
        self.kind = pulling.source.kind

    def run(self) -> None:
        state = self.store.source_state(self.model, self.stream)
        if state is not None and state.pending:
            if self._waiting(str(state.pending.get("file", ""))):
                return  # written and not yet recorded: the intake takes it this tick
            self.store.drop_pending(self.model, self.stream)  # a crash came before the file was written
        if state is not None and state.retry_at is not None and self.now < state.retry_at:
            return  # backing off: no reading, so the open incident neither grows nor resolves
        try:
            self._pull(state)
        except Exception as exc:
            self._failed(state, exc)
            return
        if state is not None and state.failures:
            self.out.event(
                "source_recovered", Level.INFO, model=self.model, stream=self.stream, failures=state.failures
            )
        self._observe(0.0)

    def _pull(self, state: SourceState | None) -> None:
        seen: dict[str, Any] = dict(state.seen) if state is not None else {}
        recorded = state is not None and state.watermark is not None
        current = wm.decode(state.watermark) if state is not None and recorded else self.p.start
        since = wm.behind(current, self.p.lookback) if recorded else current  # nothing was taken before the start
        page = self.p.source.pull(self.stream, since, self.p.max_rows + len(seen))
        column = self.p.source.watermark(self.stream)
        where = f"{self.kind} source of {self.model} ({self.stream})"
        self._check_columns(page.rows, column, where)
        fresh = [r for r in page.rows if str(r[self.p.key]) not in seen]
        if page.cursor is not None:  # an opaque cursor: the server decides what comes next, nothing is re-read
            mark: Any = page.cursor
            kept: dict[str, Any] = {}
        else:
            fresh = fresh[: self.p.max_rows]
            values = [r[column] for r in fresh] if column else []
            mark = wm.newest([*values, *([current] if current is not None else [])], where) if values else current
            seen.update({str(r[self.p.key]): wm.encode(r[column]) if column else None for r in fresh})
            floor = wm.behind(mark, self.p.lookback)
            kept = {k: v for k, v in seen.items() if v is None or floor is None or wm.at_least(wm.decode(v), floor)}
        if not fresh:
            self.store.advance_source(
                self.model, self.stream, self.kind, at=self.now, watermark=wm.encode(mark), seen=kept
            )
            return
        self._write(state, fresh, wm.encode(mark), kept)

    def _check_columns(self, rows: list[dict[str, Any]], column: str, where: str) -> None:
        needed = [self.p.key, *([column] if column else [])]
        for row in rows:
            missing = [c for c in needed if c not in row or row[c] is None]
            if missing:
                raise SourceError(f"{where}: rows without {missing} (did the schema change?); columns: {sorted(row)}")

    def _frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """The page as a batch: the key and watermark kept as heald's own columns, which no check reads as data
        (the originals stay too when the model learns from them)."""
        frame = pd.DataFrame(rows)
        column = self.p.source.watermark(self.stream)
        for own, name in (("source_key", self.p.key), ("source_watermark", column)):
            if name:
                frame[own] = frame[name]
        learned = {*self.features, self.target}
        return frame.drop(columns=[c for c in {self.p.key, column} if c and c not in learned])

    def _write(self, state: SourceState | None, rows: list[dict[str, Any]], mark: Any, seen: dict[str, Any]) -> None:
        number = (state.batches if state is not None else 0) + 1
        prefix = "feedback-" if self.stream is Stream.LABELS else ""
        name = f"{prefix}{self.kind}-{self.stream}-{number:08d}.csv"
        pending = {"file": name, "watermark": mark, "seen": seen, "rows": len(rows)}
        if not self.store.begin_pull(self.model, self.stream, self.kind, at=self.now, pending=pending):
            return  # a second daemon wrote a page meanwhile: its page is taken first
        text = io.StringIO()
        self._frame(rows).to_csv(text, index=False)
        write_atomic(self.puller.landing / self.model / name, text.getvalue().encode())
        self.out.event("source_pulled", Level.INFO, model=self.model, stream=self.stream, file=name, rows=len(rows))

    def _waiting(self, name: str) -> bool:
        """Whether a pending page's file is in the landing folder or claimed by the intake."""
        if (self.puller.landing / self.model / name).exists():
            return True
        claimed = self.puller.landing / PROCESSING / self.model
        return claimed.is_dir() and any(claimed.glob(f"*/{name}"))

    def _failed(self, state: SourceState | None, exc: Exception) -> None:
        error = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
        before = state.failures if state is not None else 0
        delay = min(self.p.backoff * 2**before, self.p.max_backoff)
        retry_at = self.now + timedelta(seconds=delay)
        failures = self.store.source_failed(
            self.model, self.stream, self.kind, at=self.now, error=error, retry_at=retry_at
        )
        self.out.event(
            "source_failed",
            Level.ERROR,
            model=self.model,
            stream=self.stream,
            error=error,
            failures=failures,
            retry_at=retry_at.isoformat(),
        )
        self._observe(1.0, error=error, failures=failures, retry_at=retry_at.isoformat())

    def _observe(self, value: float, **evidence: object) -> None:
        self.out.observations.append(
            Observation(
                at=self.now,
                model=self.model,
                source=SOURCE,
                metric=Metric.SOURCE_FAILED,
                value=value,
                evidence={"stream": str(self.stream), "kind": self.kind, **evidence},
            )
        )
