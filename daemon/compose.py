"""Composition root: builds the store, registry, sensors, actuators, planner and loop from ``Settings``.

This is the one place that knows which implementation stands behind each plug-in point; everything else
receives its collaborators.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from actuators.alert import AlertActuator
from actuators.base import ActSettings, Actuator
from actuators.notify import LogOnly, Notifier, WebhookNotifier, WebhookSettings
from actuators.pool import InlinePool, ThreadPool, WorkerPool
from actuators.process_pool import ProcessPool
from actuators.rerun import RerunActuator
from actuators.retrain import RetrainActuator
from actuators.rollback import RollbackActuator
from actuators.scale import ScaleActuator
from daemon.analyzer import Analyzer, AnalyzerSettings
from daemon.anomaly import AnomalySettings, AnomalyWatch
from daemon.config import ModelSettings, Settings
from daemon.incidents import IncidentTracker
from daemon.leader import Leadership, default_holder, lease_ttl
from daemon.loop import Loop, LoopParts
from daemon.planner import Planner, PlannerSettings
from daemon.sensing import ProcessSensing
from daemon.sources import pullings
from knowledge.artifacts import ArtifactStore
from knowledge.clock import Clock, SystemClock
from knowledge.registry import ModelRegistry
from knowledge.retention import RetentionPolicy
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ActionKind, ModelRecord, Observation, Task
from pipeline.runner import RetryPolicy
from sensors.artifact import ArtifactSensor
from sensors.base import Sensor, SensorSettings
from sensors.drift import DriftSensor
from sensors.host import HostGauge, HostLimits, HostSensor
from sensors.intake import LandingIntake
from sensors.performance import PerformanceSensor
from sensors.pipeline_runs import PipelineRunSensor
from sensors.pool import PoolReading, PoolSensor
from sensors.quality import QualitySensor, quality_settings
from sensors.shadow import ShadowSensor
from sensors.sources.puller import SourcePuller


@dataclass(frozen=True, slots=True, kw_only=True)
class Heald:
    """A wired-up heald: what the service, the CLI and the demo work with."""

    settings: Settings
    store: SqlKnowledgeStore
    registry: ModelRegistry
    loop: Loop
    clock: Clock

    def close(self) -> None:
        self.loop.p.pool.shutdown(wait=True)
        if self.loop.p.sensing is not None:
            self.loop.p.sensing.close()
        if self.loop.p.sources is not None:
            self.loop.p.sources.close()
        self.store.close()


def model_settings(settings: Settings, name: str) -> ModelSettings:
    """The [[models]] entry for ``name``, or defaults for a model the config does not list."""
    for entry in settings.models:
        if entry.name == name:
            return entry
    # Defaults only: the host's pseudo-model ("*host", which no model may be named) has no entry either.
    return ModelSettings.model_construct(name=name, target="?")


def runs_folder(settings: Settings) -> Path:
    """Where pipeline runs keep their stages' outputs (so a failed run can be resumed)."""
    return settings.state_dir / "runs"


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(attempts=settings.pipeline.retries, first_delay=settings.pipeline.retry_delay)


def open_store(settings: Settings) -> tuple[SqlKnowledgeStore, ModelRegistry]:
    store = SqlKnowledgeStore.open(settings.database)
    return store, ModelRegistry(store, ArtifactStore(settings.artifacts))


def retention_policy(settings: Settings) -> RetentionPolicy:
    """What ``healctl gc`` and the daemon's daily collection keep (``[retention]``)."""
    r = settings.retention
    return RetentionPolicy(
        raw_days=r.raw_days,
        horizon_days=r.horizon_days,
        batch_days=r.batch_days,
        quarantine_days=r.quarantine_days,
        keep_labelled_rows=settings.policy.min_retrain_rows,
    )


def act_settings(settings: Settings, name: str) -> ActSettings:
    entry = model_settings(settings, name)
    return ActSettings(
        n_estimators=settings.n_estimators,
        max_depth=settings.max_depth,
        min_gain=settings.policy.min_gain,
        min_retrain_rows=settings.policy.min_retrain_rows,
        min_accuracy=entry.min_accuracy,
        min_r2=entry.min_r2,
        n_jobs=max(1, min(os.cpu_count() or 1, 4)),
    )


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    pool: Literal["inline", "threads", "process", "dask"] | None = None,
    store: SqlKnowledgeStore | None = None,
    pool_instance: WorkerPool | None = None,
    holder: str | None = None,
    host_gauge: HostGauge | None = None,
) -> Heald:
    """Wire heald from ``settings``; a reload passes the open store and the running pool to keep them."""
    clock = clock or SystemClock()
    if store is None:
        store, registry = open_store(settings)
    else:
        registry = ModelRegistry(store, ArtifactStore(settings.artifacts))
    policy = settings.policy

    def analyzer_settings(name: str) -> AnalyzerSettings:
        entry = model_settings(settings, name)
        return AnalyzerSettings(
            persistence=policy.persistence,
            window=policy.window,
            min_accuracy=entry.min_accuracy,
            min_r2=entry.min_r2,
            estimate_margin=settings.monitor.estimate_margin,
            shadow_margin=policy.shadow_margin,
        )

    def healthy(model: ModelRecord, obs: Observation) -> bool:
        entry = model_settings(settings, model.name)
        return obs.value >= (entry.min_accuracy if model.task is Task.CLASSIFICATION else entry.min_r2)

    state = settings.state_dir
    actuators: dict[ActionKind, Actuator] = {
        ActionKind.RETRAIN: RetrainActuator(),
        ActionKind.RERUN: RerunActuator(runs_folder(settings), retry=retry_policy(settings)),
        ActionKind.ROLLBACK: RollbackActuator(),
        ActionKind.ALERT: AlertActuator(_notifier(settings)),
        ActionKind.SCALE: ScaleActuator(settings.max_workers),
    }
    workers = pool_instance or _pool(
        pool or settings.executor, settings.workers, settings.dask_scheduler, idle=settings.worker_idle
    )
    monitor = settings.monitor
    sensors: list[Sensor] = [
        ArtifactSensor(),
        DriftSensor(),
        QualitySensor(),
        PerformanceSensor(),
        HostSensor(state, _host_limits(settings), host_gauge),
        PoolSensor(PoolGauge(workers), max_pending=monitor.max_pending),
        PipelineRunSensor(),
        ShadowSensor(policy.shadow_batches),
    ]
    anomaly = None
    if monitor.anomaly:
        anomaly = AnomalyWatch(
            store,
            AnomalySettings(
                warmup=monitor.anomaly_warmup,
                refit_every=monitor.anomaly_refit_every,
                history=monitor.anomaly_history,
                persistence=policy.persistence,
                window=policy.window,
                tolerance=monitor.anomaly_tolerance,
            ),
        )
    sensor_settings = SensorSettings(
        drift_alpha=settings.drift_threshold,
        drift_min_effect=settings.drift_min_effect,
        drift_min_psi=monitor.drift_min_psi,
        drift_min_wasserstein=monitor.drift_min_wasserstein,
        drift_min_js=monitor.drift_min_js,
        drift_min_rows=settings.drift_min_rows,
        max_missing_increase=monitor.max_missing_increase,
        max_unseen_share=monitor.max_unseen_share,
        max_out_of_range_share=monitor.max_out_of_range_share,
        performance_window_rows=monitor.performance_window_rows,
        performance_min_rows=monitor.performance_min_rows,
    )
    parts = LoopParts(
        store=store,
        registry=registry,
        clock=clock,
        intake=LandingIntake(
            settings.landing, state / "batches", state / "quarantine", quality=quality_settings(sensor_settings)
        ),
        sources=SourcePuller(settings.landing, pullings(settings, os.environ)),
        sensors=sensors,
        analyzer=Analyzer(store, analyzer_settings, anomaly),
        tracker=IncidentTracker(store, policy.resolve_after),
        planner=Planner(
            store,
            registry,
            PlannerSettings(
                cooldown_batches=policy.cooldown_batches,
                cooldown_seconds=policy.cooldown_seconds,
                max_actions_per_hour=policy.max_actions_per_hour,
                breaker_failures=policy.breaker_failures,
                verify_within=policy.verify_within,
                tick_seconds=settings.tick_seconds,
                min_retrain_rows=policy.min_retrain_rows,
                max_workers=settings.max_workers,
            ),
            pool_size=workers.size,
        ),
        actuators=actuators,
        pool=workers,
        sensor_settings=sensor_settings,
        act_settings=lambda name: act_settings(settings, name),
        healthy=healthy,
        stable_after=policy.stable_after,
        lease=Leadership(store, clock, holder=holder or default_holder(), ttl_seconds=lease_ttl(settings.tick_seconds)),
        concurrency=settings.tick_threads or len(os.sched_getaffinity(0)),
        sensing=ProcessSensing(settings, settings.tick_processes) if settings.tick_processes else None,
        retention=retention_policy(settings),
        gc_every=timedelta(hours=settings.retention.gc_every_hours) if settings.retention.gc_every_hours else None,
    )
    return Heald(settings=settings, store=store, registry=registry, loop=Loop(parts), clock=clock)


def _notifier(settings: Settings) -> Notifier:
    if not settings.alert_webhook_url:
        return LogOnly()
    return WebhookNotifier(WebhookSettings(url=settings.alert_webhook_url, token=settings.alert_webhook_token))


def _host_limits(settings: Settings) -> HostLimits:
    m = settings.monitor
    return HostLimits(
        cpu_percent=m.cpu_percent,
        memory_percent=m.memory_percent,
        disk_percent=m.disk_percent,
        load_per_cpu=m.load_per_cpu,
        rss_mb=m.rss_mb,
    )


class PoolGauge:
    """Reads the worker pool for the pool sensor (sensors may not import actuators, so the daemon does)."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def read(self) -> PoolReading:
        dead = getattr(self.pool, "dead_workers", None)
        return PoolReading(
            workers=int(getattr(self.pool, "workers", 1)),
            pending=self.pool.pending(),
            dead=int(dead()) if callable(dead) else 0,
        )


def _pool(kind: str, workers: int, scheduler: str = "", *, idle: bool = True) -> WorkerPool:
    if kind == "inline":
        return InlinePool()
    if kind == "process":
        return ProcessPool(workers, idle=idle)
    if kind == "dask":
        from actuators.dask_pool import DaskPool  # Dask starts processes: only when configured

        return DaskPool(workers, scheduler)
    return ThreadPool(workers)
