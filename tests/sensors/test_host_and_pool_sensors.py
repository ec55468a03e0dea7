"""Host and pool sensors: readings against limits, turned into symptoms only when they persist."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from daemon.analyzer import Analyzer, AnalyzerSettings
from daemon.compose import Heald
from knowledge.clock import ManualClock
from knowledge.values import SymptomKind, Version
from sensors.base import SenseContext
from sensors.host import FixedHostGauge, HostLimits, HostSensor, read_host
from sensors.pool import FixedGauge, PoolReading, PoolSensor


def test_the_host_is_read_with_psutil(tmp_path: Path) -> None:
    """A real reading has CPU, memory, disk, load per core and the daemon's own memory, all plausible."""
    import psutil

    reading = read_host(tmp_path / "not-yet-created", psutil.Process())
    assert set(reading) == {"cpu_percent", "memory_percent", "disk_percent", "load_per_cpu", "rss_mb"}
    assert 0 < reading["memory_percent"] <= 100 and 0 < reading["disk_percent"] <= 100
    assert reading["rss_mb"] > 10


def test_memory_over_its_limit_becomes_host_pressure_when_it_persists(
    watched: Heald, champion: Version, clock: ManualClock, tmp_path: Path
) -> None:
    """One reading over the limit is noise; two of three raise host_pressure naming what is over."""
    readings = iter([95.0, 50.0, 96.0])
    limits = HostLimits(memory_percent=90.0, disk_percent=0, load_per_cpu=0, rss_mb=0)
    sensor = HostSensor(
        tmp_path,
        limits,
        FixedHostGauge(
            {"cpu_percent": 100.0, "memory_percent": m, "disk_percent": 1.0, "load_per_cpu": 9.0, "rss_mb": 1.0}
            for m in readings
        ),
    )
    analyzer = Analyzer(watched.store, lambda _: AnalyzerSettings())
    model = watched.store.get_model(champion.model)
    verdicts = []
    for _ in range(3):
        ctx = SenseContext(now=clock.advance(timedelta(minutes=1)), model=model, registry=watched.registry)
        fresh = sensor.sense(ctx)
        watched.store.add_observations(fresh)
        verdicts.append(analyzer.analyze(model, fresh, ctx.now).get(SymptomKind.HOST_PRESSURE, "absent"))
    assert verdicts[0] == "absent" and verdicts[1] is None
    symptom = verdicts[2]
    assert symptom is not None and symptom != "absent"
    assert symptom.summary == "host pressure: memory_percent 96.0 >= 90"  # type: ignore[union-attr]
    assert symptom.evidence["limits"]["cpu_percent"] == 0.0  # type: ignore[union-attr]


def test_a_dead_worker_or_a_long_queue_is_a_backlog(watched: Heald, champion: Version, clock: ManualClock) -> None:
    """The pool sensor reports pending actions and dead workers; persisting, they raise backlog."""
    gauge = FixedGauge([PoolReading(workers=2, pending=1, dead=1), PoolReading(workers=2, pending=12, dead=1)])
    sensor = PoolSensor(gauge, max_pending=8)
    analyzer = Analyzer(watched.store, lambda _: AnalyzerSettings())
    model = watched.store.get_model(champion.model)
    kinds = []
    for _ in range(2):
        ctx = SenseContext(now=clock.advance(timedelta(minutes=1)), model=model, registry=watched.registry)
        fresh = sensor.sense(ctx)
        watched.store.add_observations(fresh)
        kinds.append(analyzer.analyze(model, fresh, ctx.now).get(SymptomKind.BACKLOG))
    assert kinds[0] is None  # sick once: not yet persistent
    assert kinds[1] is not None
    assert kinds[1].summary == "backlog: 12 actions pending (limit 8), 1 of 2 workers dead"
