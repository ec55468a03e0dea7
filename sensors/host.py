"""Host sensor: is the machine heald and its models run on under pressure?

CPU, memory, disk (of the state folder), load per core and the daemon's own resident memory, read with
psutil once per tick (every model of the tick gets the same reading). The reading is ``host_pressure``: its
value is the largest ratio of a reading to its limit from the config, and its evidence lists every reading,
every limit, and the ones ``over`` their limit, which the analyzer turns into a ``host_pressure`` symptom.
A limit of 0 is not checked (CPU by default: a busy CPU is what a batch daemon is for).

Readings come through a ``HostGauge``: ``PsutilGauge`` reads the real machine, ``FixedHostGauge`` (the fake,
for tests) returns what it was given, so no test depends on how loaded the machine running it is.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Protocol

import psutil

from knowledge.values import Metric, Observation
from sensors.base import SenseContext

SOURCE = "host"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostLimits:
    """Readings at or above these are pressure."""

    cpu_percent: float = 0.0  # 0 = not checked
    memory_percent: float = 90.0
    disk_percent: float = 95.0
    load_per_cpu: float = 4.0
    rss_mb: float = 4096.0


def read_host(disk: Path, process: psutil.Process) -> dict[str, float]:
    """One reading of the host and of this process."""
    cpus = psutil.cpu_count() or 1
    return {
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "memory_percent": float(psutil.virtual_memory().percent),
        "disk_percent": float(psutil.disk_usage(str(_existing(disk))).percent),
        "load_per_cpu": float(os.getloadavg()[0] / cpus),
        "rss_mb": float(process.memory_info().rss / 2**20),
    }


class HostGauge(Protocol):
    """Reads the host: CPU, memory, disk, load per core and the daemon's own resident memory."""

    def read(self) -> Mapping[str, float]: ...


class PsutilGauge:
    """The real machine, read with psutil."""

    def __init__(self, disk: Path) -> None:
        self.disk = disk
        self._process = psutil.Process()

    def read(self) -> Mapping[str, float]:
        return read_host(self.disk, self._process)


class FixedHostGauge:
    """A fake gauge: returns the given readings in turn, then repeats the last."""

    def __init__(self, readings: Iterable[Mapping[str, float]]) -> None:
        self._readings: Iterator[Mapping[str, float]] = iter(readings)
        self._last: Mapping[str, float] = {}

    def read(self) -> Mapping[str, float]:
        self._last = next(self._readings, self._last)
        return self._last


class HostSensor:
    """Reports ``host_pressure``; readings come from ``gauge`` (psutil on ``disk`` unless one is given)."""

    # It reads the daemon's own process (its RSS): sensing processes get its readings from the loop's process.
    reads_own_process: ClassVar[bool] = True

    def __init__(self, disk: Path, limits: HostLimits | None = None, gauge: HostGauge | None = None) -> None:
        self.limits = limits or HostLimits()
        self.gauge = gauge or PsutilGauge(disk)
        self._last: tuple[datetime, dict[str, float]] | None = None
        self._lock = threading.Lock()  # models are sensed on several threads; the host is read once a tick

    def sense(self, ctx: SenseContext) -> list[Observation]:
        readings = self._reading(ctx.now)
        limits = {k: float(getattr(self.limits, k)) for k in readings}
        ratios = {k: readings[k] / limits[k] for k in readings if limits[k] > 0}
        over = sorted(f"{k} {readings[k]:.1f} >= {limits[k]:g}" for k, r in ratios.items() if r >= 1.0)
        return [
            ctx.observe(
                SOURCE,
                Metric.HOST_PRESSURE,
                round(max(ratios.values(), default=0.0), 6),
                over=over,
                readings={k: round(v, 3) for k, v in readings.items()},
                limits=limits,
            )
        ]

    def _reading(self, now: datetime) -> dict[str, float]:
        with self._lock:
            if self._last is None or self._last[0] != now:
                self._last = (now, dict(self.gauge.read()))
            return self._last[1]


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
