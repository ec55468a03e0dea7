"""Prometheus metrics: heald's only importer of prometheus-client.

What the loop does is measured where it happens (each tick's duration and end, ticks skipped, requests);
what the knowledge store holds (incidents by kind and status, actions by kind and result, batches accepted
or quarantined, champion versions, latest readings) is read from it when ``/metrics`` is scraped, so those
series are true even right after a restart. Every combination a dashboard or an alert rule selects on is
exported, zeros included, so ``== 0`` and ``absent()`` mean what they say. Process and Python metrics come
from prometheus-client's own collectors. ``deploy/prometheus/heald.rules.yml`` alerts on these names.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from importlib.metadata import version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from knowledge.registry import ModelRegistry
from knowledge.sql.store import ACTIVE_INCIDENT, SqlKnowledgeStore
from knowledge.values import ActionKind, ActionState, BatchStatus, SymptomKind
from sensors.intake import IntakeHealth

disable_created_metrics()  # type: ignore[no-untyped-call]  # _created series only add noise
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

FINISHED = (ActionState.SUCCEEDED, ActionState.FAILED, ActionState.ABORTED)
SKIP_REASONS = ("failed", "overlap")
BATCH_STATUSES = (BatchStatus.ACCEPTED, BatchStatus.QUARANTINED)
# A tick takes from milliseconds (nothing new) to minutes (a retrain inline): buckets span both.
TICK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class StoreCollector(Collector):
    """Gauges and counters read from the knowledge store at scrape time."""

    def __init__(self, store: SqlKnowledgeStore, registry: Callable[[], ModelRegistry]) -> None:
        self.store = store
        self.current = registry

    def collect(self) -> Iterator[Metric]:
        models = [m.name for m in self.store.list_models()]
        yield self._incidents(models)
        yield self._actions()
        yield self._batches(models)
        yield from self._models(models)

    def _incidents(self, models: list[str]) -> Metric:
        family = GaugeMetricFamily(
            "heald_incidents_open", "Incidents not yet resolved, by status", labels=["model", "kind", "status"]
        )
        counts = self.store.tally("incidents", ("model", "kind", "status"))
        for model in models:
            for kind in SymptomKind:
                for status in ACTIVE_INCIDENT:
                    family.add_metric([model, kind.value, status.value], counts.get((model, kind.value, status), 0))
        return family

    def _actions(self) -> Metric:
        family = CounterMetricFamily(
            "heald_actions",
            "Finished remediation actions (planner's and operators'), by result",
            labels=["kind", "result"],
        )
        counts = self.store.tally("actions", ("kind", "state"))
        for kind in ActionKind:
            for state in FINISHED:
                family.add_metric([kind.value, state.value], counts.get((kind.value, state.value), 0))
        return family

    def _batches(self, models: list[str]) -> Metric:
        family = CounterMetricFamily(
            "heald_batches", "Batches taken in, accepted or quarantined with a reason", labels=["model", "status"]
        )
        counts: dict[tuple[str, BatchStatus], int] = {}
        for (model, status), count in self.store.tally("batches", ("model", "status")).items():
            # Tombstones of collected batches still count as what intake made of them: a counter never goes down.
            key = (model, BatchStatus(status).received_as)
            counts[key] = counts.get(key, 0) + count
        for model in models:
            for status in BATCH_STATUSES:
                family.add_metric([model, status.value], counts.get((model, status), 0))
        return family

    def _models(self, models: list[str]) -> Iterator[Metric]:
        champion = GaugeMetricFamily("heald_champion_version", "Version number serving as champion", labels=["model"])
        performance = GaugeMetricFamily("heald_performance", "Latest primary metric on labelled rows", labels=["model"])
        drift = GaugeMetricFamily(
            "heald_drift_share", "Share of features drifted in the latest check", labels=["model"]
        )
        artifact = GaugeMetricFamily(
            "heald_champion_artifact_ok", "1 if the champion's file verified at the latest check", labels=["model"]
        )
        cached = GaugeMetricFamily(
            "heald_serving_from_cache",
            "1 while predictions come from the champion held in memory because its file no longer verifies",
            labels=["model"],
        )
        registry = self.current()  # a config reload builds a new registry (and its in-memory models)
        for model in models:
            version = registry.champion(model)
            if version is not None:
                champion.add_metric([model], version.number)
            for family, metric in ((performance, "performance"), (drift, "drift_share")):
                latest = self.store.observations(model, metric=metric, limit=1)
                if latest:
                    family.add_metric([model], latest[0].value)
            check = self.store.observations(model, metric="artifact_ok", limit=1)
            ok = bool(check and check[0].value >= 1.0)
            if check:
                artifact.add_metric([model], float(ok))
            # The registry's own answer, as status and /readyz give it: the loaded copy serves, the file fails now.
            from_memory = version is not None and registry.in_memory_only(model, version.number)
            cached.add_metric([model], float(from_memory))
        yield from (champion, performance, drift, artifact, cached)


class IntakeCollector(Collector):
    """Intake's own state at scrape time: which models a full disk paused, and files skipped (retried)."""

    def __init__(self, health: Callable[[], IntakeHealth]) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        health = self.health()
        blocked = GaugeMetricFamily(
            "heald_intake_blocked", "1 while a full disk stops intake from claiming files", labels=["model"]
        )
        for name in sorted(dict(health.blocked)):  # copies: the loop's thread may be changing them
            blocked.add_metric([name], 1)
        skipped = CounterMetricFamily(
            "heald_batches_skipped", "Landing files that could not be read or moved (retried)", labels=["model"]
        )
        for name, count in sorted(dict(health.skipped).items()):
            skipped.add_metric([name], count)
        yield from (blocked, skipped)


class Metrics:
    """The metrics of one heald process, on their own registry (so tests can make many)."""

    def __init__(
        self,
        store: SqlKnowledgeStore,
        registry: ModelRegistry | Callable[[], ModelRegistry],
        intake: Callable[[], IntakeHealth] | None = None,
    ) -> None:
        """``registry`` may be a function returning the current one, for a service that reloads its config."""
        current = registry if callable(registry) else lambda: registry
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(store, current))
        if intake is not None:
            self.registry.register(IntakeCollector(intake))
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        build = Gauge(
            "heald_build_info", "heald's version and Python's; always 1", ["version", "python"], registry=self.registry
        )
        build.labels(version("heald"), platform.python_version()).set(1)
        self.predictions = Counter("heald_predictions", "Rows predicted", ["model"], registry=self.registry)
        self.request_seconds = Histogram(
            "heald_predict_request_seconds", "Time to answer a predict request", ["model"], registry=self.registry
        )
        self.degraded = Counter(
            "heald_predictions_degraded",
            "Rows answered in degraded mode: a feature column was missing and filled from the reference",
            ["model", "column"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "heald_requests_rejected", "Requests refused as malformed", ["endpoint"], registry=self.registry
        )
        self.last_tick = Gauge(
            "heald_last_successful_tick_timestamp_seconds",
            "Unix time at which the latest tick completed (0 before the first)",
            registry=self.registry,
        )
        self.tick_interval = Gauge(
            "heald_tick_interval_seconds", "The configured time between ticks (tick_seconds)", registry=self.registry
        )
        self.tick_seconds = Histogram(
            "heald_tick_duration_seconds", "Time a completed tick took", buckets=TICK_BUCKETS, registry=self.registry
        )
        self.ticks_skipped = Counter(
            "heald_ticks_skipped",
            "Ticks that did not complete: failed (an error), overlap (the previous tick was still running)",
            ["reason"],
            registry=self.registry,
        )
        for reason in SKIP_REASONS:
            self.ticks_skipped.labels(reason)

    def tick_completed(self, seconds: float) -> None:
        self.tick_seconds.observe(seconds)
        self.last_tick.set_to_current_time()

    def render(self) -> bytes:
        return generate_latest(self.registry)
