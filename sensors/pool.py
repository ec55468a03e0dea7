"""Pool sensor: can the worker pool keep up with the actions the planner hands it?

Sensors may not import actuators, so the pool is read through ``PoolGauge``, a one-method protocol the
daemon implements over its worker pool; ``FixedGauge`` is the fake. The reading is ``backlog``: its value
is the number of actions waiting or running, and its evidence the pool size, dead workers and, in
``over``, what breaks its limits (more pending than ``max_pending``, any dead worker).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol

from knowledge.values import Observation
from sensors.base import SenseContext

SOURCE = "pool"


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolReading:
    workers: int
    pending: int
    dead: int = 0


class PoolGauge(Protocol):
    """Reads the worker pool."""

    def read(self) -> PoolReading: ...


class FixedGauge:
    """A fake gauge: returns the given readings in turn, then repeats the last."""

    def __init__(self, readings: Iterable[PoolReading]) -> None:
        self._readings: Iterator[PoolReading] = iter(readings)
        self._last = PoolReading(workers=1, pending=0)

    def read(self) -> PoolReading:
        self._last = next(self._readings, self._last)
        return self._last


class PoolSensor:
    """Reports ``backlog`` with the pool's size, pending actions and dead workers."""

    # The worker pool lives in the daemon's own process: sensing processes get its readings from the loop's.
    reads_own_process: ClassVar[bool] = True

    def __init__(self, gauge: PoolGauge, max_pending: int = 8) -> None:
        self.gauge = gauge
        self.max_pending = max_pending

    def sense(self, ctx: SenseContext) -> list[Observation]:
        reading = self.gauge.read()
        over = []
        if reading.pending > self.max_pending:
            over.append(f"{reading.pending} actions pending (limit {self.max_pending})")
        if reading.dead:
            over.append(f"{reading.dead} of {reading.workers} workers dead")
        return [
            ctx.observe(
                SOURCE,
                "backlog",
                float(reading.pending),
                workers=reading.workers,
                dead=reading.dead,
                max_pending=self.max_pending,
                over=over,
            )
        ]
