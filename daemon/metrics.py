"""Prometheus metrics: heald's only importer of prometheus-client.

Counters and histograms are updated where things happen (requests, ticks); gauges about the knowledge
store (open incidents, champion versions, latest readings) are read from it when ``/metrics`` is scraped,
so they are always true even after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from sensors.intake import IntakeHealth

disable_created_metrics()  # type: ignore[no-untyped-call]  # _created series only add noise
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector(Collector):
    """Gauges read from the knowledge store at scrape time."""

    def __init__(self, store: SqlKnowledgeStore, registry: ModelRegistry) -> None:
        self.store = store
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        incidents = GaugeMetricFamily("heald_incidents_open", "Incidents not yet resolved", labels=["model", "kind"])
        counts: dict[tuple[str, str], int] = {}
        for incident in self.store.active_incidents():
            key = (incident.model, incident.kind.value)
            counts[key] = counts.get(key, 0) + 1
        for (name, kind), count in sorted(counts.items()):
            incidents.add_metric([name, kind], count)
        yield incidents
        champion = GaugeMetricFamily("heald_champion_version", "Version number serving as champion", labels=["model"])
        performance = GaugeMetricFamily("heald_performance", "Latest primary metric on labelled rows", labels=["model"])
        drift = GaugeMetricFamily(
            "heald_drift_share", "Share of features drifted in the latest check", labels=["model"]
        )
        memory = GaugeMetricFamily(
            "heald_serving_from_memory",
            "1 while the champion serves only from memory: its file no longer verifies",
            labels=["model"],
        )
        for model in self.store.list_models():
            version = self.registry.champion(model.name)
            if version is not None:
                champion.add_metric([model.name], version.number)
                memory.add_metric([model.name], float(self.registry.in_memory_only(model.name, version.number)))
            for family, metric in ((performance, "performance"), (drift, "drift_share")):
                latest = self.store.observations(model.name, metric=metric, limit=1)
                if latest:
                    family.add_metric([model.name], latest[0].value)
        yield from (champion, performance, drift, memory)


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
        self, store: SqlKnowledgeStore, registry: ModelRegistry, intake: Callable[[], IntakeHealth] | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(store, registry))
        if intake is not None:
            self.registry.register(IntakeCollector(intake))
        self.predictions = Counter("heald_predictions", "Rows predicted", ["model"], registry=self.registry)
        self.request_seconds = Histogram(
            "heald_predict_request_seconds", "Time to answer a predict request", ["model"], registry=self.registry
        )
        self.rejected = Counter(
            "heald_requests_rejected", "Requests refused as malformed", ["endpoint"], registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
