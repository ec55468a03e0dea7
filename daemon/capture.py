"""Capture: prediction requests and later labels become batches in the landing folder (Monitor's input).

Each served row is written to the knowledge store as it is served (``served_rows``: model, request id,
serving time, the row as sent), not kept in memory, so a label that arrives after a restart, or days later,
still joins its row. The loop flushes at the start of a tick: rows not yet written out become an
``api-*.csv`` batch (unlabelled) and newly labelled rows a ``feedback-*.csv`` batch, written atomically,
so API traffic takes exactly the same path as dropped files. Both carry heald's own bookkeeping columns
``request_id`` and ``served_at``, which validation and the data checks never treat as features.

A second label for an id replaces the first (it is written out again in the next feedback batch); the same
label twice changes nothing. Feedback for an id heald never served, or forgot, is refused by name. Rows
are forgotten ``retention`` after they were served, once written out: the store stays bounded.
"""

from __future__ import annotations

import io
import math
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from knowledge.artifacts import write_atomic
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ServedRow

RETENTION = timedelta(days=30)  # how long a served row waits for its label


class Capture:
    """Records served rows and their labels in the store, and writes them out as landing batches."""

    def __init__(self, landing: Path, store: Callable[[], SqlKnowledgeStore], retention: timedelta = RETENTION) -> None:
        self.landing = landing
        self.store = store
        self.retention = retention

    def served(self, model: str, rows: list[dict[str, Any]], *, at: datetime, version: int | None = None) -> list[str]:
        """Record rows that were just predicted; returns their request ids."""
        ids = [uuid.uuid4().hex for _ in rows]
        self.store().add_served_rows(
            [
                ServedRow(model=model, request_id=i, served_at=at, row=_plain(row), version=version)
                for i, row in zip(ids, rows, strict=True)
            ]
        )
        return ids

    def served_parts(
        self, model: str, parts: list[list[dict[str, Any]]], *, at: datetime, version: int | None = None
    ) -> list[list[str]]:
        """Record the rows of several requests answered together in one write; returns each request's ids."""
        ids = [[uuid.uuid4().hex for _ in rows] for rows in parts]
        served = [
            ServedRow(model=model, request_id=i, served_at=at, row=_plain(row), version=version)
            for part_ids, rows in zip(ids, parts, strict=True)
            for i, row in zip(part_ids, rows, strict=True)
        ]
        if served:
            self.store().add_served_rows(served)
        return ids

    def feedback(self, model: str, labels: dict[str, Any], *, at: datetime) -> list[str]:
        """Attach labels to served rows; returns the ids that were not found (nothing is recorded for them)."""
        return self.store().label_served(model, labels, at)

    def flush(self, now: datetime) -> list[Path]:
        """Write rows not yet written out as landing files (one per model and kind); returns the files written."""
        store = self.store()
        written = []
        stamp = now.strftime("%Y%m%dT%H%M%S%f")
        for prefix, labels in (("api", False), ("feedback", True)):
            for model, rows in _by_model(store.unflushed_served(labels=labels)).items():
                target = store.get_model(model).target if labels else None
                path = self.landing / model / f"{prefix}-{stamp}.csv"
                text = io.StringIO()
                pd.DataFrame([_record(r, target) for r in rows]).to_csv(text, index=False)
                write_atomic(path, text.getvalue().encode())
                # Marked after the file is in place: a crash in between writes the rows twice, never zero times.
                store.mark_flushed(model, [r.request_id for r in rows], labels=labels)
                written.append(path)
        store.prune_served(before=now - self.retention)
        return written

    def pending(self) -> int:
        store = self.store()
        return len(store.unflushed_served(labels=False)) + len(store.unflushed_served(labels=True))


def _by_model(rows: list[ServedRow]) -> dict[str, list[ServedRow]]:
    grouped: dict[str, list[ServedRow]] = defaultdict(list)
    for row in rows:
        grouped[row.model].append(row)
    return grouped


def _record(row: ServedRow, target: str | None) -> dict[str, Any]:
    record = {"request_id": row.request_id, "served_at": row.served_at.isoformat(), **row.row}
    return record if target is None else {**record, target: row.label}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON the store accepts everywhere: NaN and infinities (which PostgreSQL's JSON refuses) become null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
