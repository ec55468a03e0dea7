"""Adaptive batching for the prediction API: concurrent requests of one kind answered by one model call.

A forest predicts 100 rows for about 1.5x the cost of one, so when many requests arrive together they are
gathered, as MLServer and BentoML do: requests with the same key (model, champion copy and shape of the rows)
join an open batch; the first to open it (the leader) waits at most ``window`` seconds, or until ``max_rows``
rows have joined, runs the batch function once for every part, and hands each waiting request its own result.
Requests of different keys never share a batch.

The window is adaptive: a leader first waits for the key's running batch, if any, to finish (requests pile
up meanwhile, so under load batches grow by themselves, one predict call per model at a time); then it waits
at most ``window`` only while batches of its key have recently had company (the last batch held more than
one request) or other requests are on their way in. A lone client is answered at once, without the window.

FastAPI runs sync routes on a thread pool, so this is plain threads: a lock, a condition and one event per batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

R = TypeVar("R")
Part = list[dict[str, Any]]
BatchFunction = Callable[[Sequence[Part]], Sequence[R | Exception]]


@dataclass(slots=True, eq=False)
class _Batch(Generic[R]):
    parts: list[Part] = field(default_factory=list)
    rows: int = 0
    results: Sequence[R | Exception] = ()
    done: threading.Event = field(default_factory=threading.Event)


class Batcher(Generic[R]):
    """Gathers ``run`` calls with equal keys for up to ``window`` seconds or ``max_rows`` rows."""

    def __init__(self, window: float, max_rows: int) -> None:
        self.window = window
        self.max_rows = max_rows
        self._open: dict[Hashable, _Batch[R]] = {}
        self._company: dict[Hashable, bool] = {}  # whether the key's last batch held more than one request
        self._running: dict[Hashable, int] = {}  # batches of the key being predicted right now
        self._arriving = 0
        self._cond = threading.Condition()
        self.batches = 0  # batches run so far (for tests and metrics)

    def arriving(self) -> _Arrival[R]:
        """Mark a request on its way in (validating, reading its champion): leaders wait for it to join."""
        return _Arrival(self)

    def run(self, key: Hashable, rows: Part, function: BatchFunction[R], arrival: _Arrival[R] | None = None) -> R:
        """Join (or open) the batch of ``key``; returns this request's result or raises its exception.

        ``function`` gets every part of the batch and returns one result (or exception) per part, in order; the
        leader's function runs for everyone, so equal keys must mean equal functions."""
        batch, slot, leader = self._join(key, rows, arrival)
        if leader:
            self._lead(key, batch, function)
        else:
            batch.done.wait()
        result = batch.results[slot]
        if isinstance(result, Exception):
            raise result
        return result

    def _join(self, key: Hashable, rows: Part, arrival: _Arrival[R] | None) -> tuple[_Batch[R], int, bool]:
        with self._cond:
            if arrival is not None and arrival.counted:
                arrival.counted = False
                self._arriving -= 1
            batch = self._open.get(key)
            leader = batch is None
            if batch is None:
                batch = self._open[key] = _Batch()
            batch.parts.append(rows)
            batch.rows += len(rows)
            if batch.rows >= self.max_rows:
                self._close(key, batch)
            self._cond.notify_all()
            return batch, len(batch.parts) - 1, leader

    def _lead(self, key: Hashable, batch: _Batch[R], function: BatchFunction[R]) -> None:
        with self._cond:
            # While the key's previous batch is predicting, this one gathers whoever comes (no time limit: the
            # answer could not come sooner anyway); then, if company is likely, at most ``window`` more.
            while self._open.get(key) is batch and self._running.get(key, 0) > 0:
                self._cond.wait()
            deadline = time.monotonic() + self.window
            while self._open.get(key) is batch and (self._company.get(key) or self._arriving > 0):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._close(key, batch)
            self._company[key] = len(batch.parts) > 1
            self._running[key] = self._running.get(key, 0) + 1
        try:
            batch.results = function(batch.parts)
            if len(batch.results) != len(batch.parts):
                raise RuntimeError(f"batch function returned {len(batch.results)} results for {len(batch.parts)} parts")
        except Exception as exc:  # every waiting request must be answered, even when the function fails
            batch.results = [exc] * len(batch.parts)
        finally:
            with self._cond:
                self.batches += 1
                self._running[key] -= 1
                if not self._running[key]:
                    del self._running[key]
                self._cond.notify_all()
            batch.done.set()

    def _close(self, key: Hashable, batch: _Batch[R]) -> None:
        if self._open.get(key) is batch:
            del self._open[key]

    def _arrive(self, arrival: _Arrival[R], counted: bool) -> None:
        with self._cond:
            if arrival.counted != counted:
                arrival.counted = counted
                self._arriving += 1 if counted else -1
                self._cond.notify_all()


class _Arrival(Generic[R]):
    """Counts a request as arriving from ``with`` until it joins a batch (``run``) or leaves without one."""

    def __init__(self, batcher: Batcher[R]) -> None:
        self.batcher = batcher
        self.counted = False

    def __enter__(self) -> _Arrival[R]:
        self.batcher._arrive(self, True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.batcher._arrive(self, False)
