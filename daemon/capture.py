"""Capture: prediction requests and later labels become batches in the landing folder.

The API appends each predicted row (with its request id) to an in-memory buffer under a lock, which is all
the request pays; the loop flushes the buffers at the start of a tick into ``api-*.csv`` (unlabelled) and
``feedback-*.csv`` (labelled) files, written atomically, so API traffic takes exactly the same path as
dropped files. Feedback for an id heald never served, or no longer remembers, is refused by name.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from knowledge.artifacts import write_atomic

REMEMBERED = 100_000  # served rows kept for feedback, per model; the oldest are forgotten first


class Capture:
    """Buffers served rows and their labels per model until the loop flushes them."""

    def __init__(self, landing: Path) -> None:
        self.landing = landing
        self._lock = threading.Lock()
        self._served: dict[str, list[dict[str, Any]]] = {}
        self._labelled: dict[str, list[dict[str, Any]]] = {}
        self._memory: dict[str, OrderedDict[str, dict[str, Any]]] = {}

    def served(self, model: str, rows: list[dict[str, Any]]) -> list[str]:
        """Record rows that were just predicted; returns their request ids."""
        ids = [uuid.uuid4().hex for _ in rows]
        with self._lock:
            memory = self._memory.setdefault(model, OrderedDict())
            for request_id, row in zip(ids, rows, strict=True):
                memory[request_id] = row
                self._served.setdefault(model, []).append({"request_id": request_id, **row})
            while len(memory) > REMEMBERED:
                memory.popitem(last=False)
        return ids

    def feedback(self, model: str, target: str, labels: dict[str, Any]) -> list[str]:
        """Attach labels to served rows; returns the ids that were not found (nothing is recorded for them)."""
        with self._lock:
            memory = self._memory.get(model, OrderedDict())
            unknown = [i for i in labels if i not in memory]
            for request_id, label in labels.items():
                if request_id in memory:
                    row = memory.pop(request_id)
                    self._labelled.setdefault(model, []).append({"request_id": request_id, **row, target: label})
        return unknown

    def flush(self, now: datetime) -> list[Path]:
        """Write buffered rows as landing files (one per model and kind); returns the files written."""
        with self._lock:
            served, self._served = self._served, {}
            labelled, self._labelled = self._labelled, {}
        written = []
        stamp = now.strftime("%Y%m%dT%H%M%S%f")
        for prefix, buffers in (("api", served), ("feedback", labelled)):
            for model, rows in buffers.items():
                path = self.landing / model / f"{prefix}-{stamp}.csv"
                text = io.StringIO()
                pd.DataFrame(rows).to_csv(text, index=False)
                write_atomic(path, text.getvalue().encode())
                written.append(path)
        return written

    def pending(self) -> int:
        with self._lock:
            return sum(len(r) for r in self._served.values()) + sum(len(r) for r in self._labelled.values())
