"""The MAPE-K loop: one ``tick()`` monitors, analyzes, plans and executes for every managed model.

A tick is level-triggered: it reads the world, derives what should be done from what it sees, and does
only what is not already under way, so running it twice does nothing twice and a missed tick is harmless.
Time comes from the injected clock, so the demo, tests and benchmarks replay months in seconds through
this very code; in the service a scheduler calls ``tick()`` on an interval, never overlapping.

Each model's part of a tick is isolated: a failure while sensing, analyzing, planning or acting for one model
is recorded (a ``tick_failed`` observation and log event) and the tick goes on with the others.

Execution is journal-first: an action is written as ``planned`` and committed before it is handed to the
worker pool, and finished actions are collected on the next tick (at once with the inline pool).

Models are sensed and analyzed concurrently, on up to ``concurrency`` threads (scikit-learn and numpy release
the GIL; SQLite serializes the writes behind its busy timeout): that is where a tick spends its CPU. Then the
incidents are updated and plans made one model at a time, in name order, so the decisions, their order and the
global budgets are the same whatever the threads did. Once a day (``gc_every``) the leader collects garbage
under its epoch, so the store stays small (``knowledge.retention``).

Only the lease holder acts. Each tick renews the lease; when this daemon has just acquired it (at start,
or taking over from a dead or frozen holder), ``reconcile()`` first settles the actions of earlier epochs
left ``planned`` or ``running``, by looking at the world, never by re-running them. Every write that acts
carries the epoch; when the store refuses it as stale (``StaleEpochError``) the tick stops acting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from actuators.base import ActContext, ActSettings, Actuator
from actuators.pool import Finished, WorkerPool
from actuators.runs import interrupted
from daemon.analyzer import Analyzer, Verdicts
from daemon.incidents import IncidentTracker
from daemon.logs import get
from daemon.planner import Plan, Planner
from daemon.rules import HOST
from knowledge.clock import Clock
from knowledge.errors import StaleEpochError, StoreError
from knowledge.registry import ModelRegistry
from knowledge.retention import RetentionPolicy, collect_garbage
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import (
    Action,
    ActionKind,
    ActionOutcome,
    ActionState,
    Alias,
    Decision,
    IncidentStatus,
    Metric,
    ModelRecord,
    Observation,
    Task,
)
from sensors.base import SenseContext, Sensor, SensorSettings
from sensors.intake import Intake, IntakeEvent, LandingIntake
from sensors.sources.puller import Pulled, SourcePuller

if TYPE_CHECKING:
    from daemon.sensing import ProcessSensing

log = get("heald.loop")


def _log_events(events: list[IntakeEvent]) -> None:
    """Log what intake or a source's pull reported, at the level each event carries."""
    for event in events:
        getattr(log, event.level.value)(event.name, **event.fields)


@dataclass(slots=True, kw_only=True)
class TickReport:
    """What one tick saw and did, for the live view and the tests."""

    at: datetime
    observations: int = 0
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    batches: int = 0
    failed: list[str] = field(default_factory=list)  # models whose tick failed (recorded; the others went on)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopParts:
    """Everything the loop drives; built by the composition root."""

    store: SqlKnowledgeStore
    registry: ModelRegistry
    clock: Clock
    intake: LandingIntake
    sensors: list[Sensor]
    analyzer: Analyzer
    tracker: IncidentTracker
    planner: Planner
    actuators: Mapping[ActionKind, Actuator]
    pool: WorkerPool
    sensor_settings: SensorSettings
    act_settings: Callable[[str], ActSettings]
    healthy: Callable[[ModelRecord, Observation], bool]
    stable_after: int = 6
    # Takes or renews the actor lease: the epoch held, or None while another daemon holds it. Without a
    # lease (a single embedded daemon, the tests) the loop always acts, unfenced.
    lease: Callable[[], int | None] | None = None
    concurrency: int = 1  # threads that sense and analyze models at once (1: one after the other)
    # Sensing processes (``tick_processes``): when set, each model's Monitor and Analyze phase runs in one of them.
    sensing: ProcessSensing | None = None
    retention: RetentionPolicy | None = None  # None: the loop never collects garbage (``healctl gc`` still can)
    gc_every: timedelta | None = None
    # Pulls pages of the models' sql and http sources into the landing folder before the intake looks at it.
    sources: SourcePuller | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sensed:
    """One model's Monitor and Analyze phase of a tick (run on a worker thread): what it stored and concluded."""

    observations: int
    batches: int
    verdicts: Verdicts
    events: list[IntakeEvent] = field(default_factory=list)  # intake's and the puller's, logged by the loop
    blocked: str | None = None  # intake's health for this model after the pass (see ``IntakeHealth``)
    skipped: int = 0


class Loop:
    """Runs ticks over the parts it was given."""

    def __init__(self, parts: LoopParts) -> None:
        self.p = parts
        self.stopping = False
        self._host_planned: datetime | None = None  # host incidents are planned once per tick
        self.epoch: int | None = None  # the lease epoch this tick acts under (None: no lease, unfenced)
        self._settled: object = _NOTHING  # the epoch whose predecessors' actions were settled
        self._collected: datetime | None = None  # when this daemon last collected garbage (None: not yet)

    # -- the tick -----------------------------------------------------------------------------------

    def tick(self) -> TickReport:
        now = self.p.clock.now()
        report = TickReport(at=now)
        report.finished += self.collect(now)
        acting = self._lead() and not self.stopping
        models = self.p.store.list_models()
        for model, sensed in zip(models, self._sense_all(models, now, acting), strict=True):
            try:
                if isinstance(sensed, Exception):
                    raise sensed
                self._settle_model(model, sensed, now, report, acting)
            except StaleEpochError as exc:  # another daemon took over mid-tick: its writes win, ours stop
                log.warning("leadership_fenced", model=model.name, epoch=self.epoch, error=str(exc))
                acting = False
            except Exception as exc:  # isolation: one model's failure never stops the loop for the others
                self._model_failed(model, now, report, exc)
        report.finished += self.collect(now)
        if acting and self._gc_due(now):
            self.collect_garbage(now)
        log.debug("tick_completed", observations=report.observations, started=len(report.started))
        return report

    def _sense_all(self, models: list[ModelRecord], now: datetime, acting: bool) -> list[Sensed | Exception]:
        """Every model's Monitor and Analyze phase, on up to ``concurrency`` threads or in the sensing processes;
        a failure is returned."""
        if self.p.sensing is not None and models:
            return self._sense_in_processes(models, now, acting)

        def one(model: ModelRecord) -> Sensed | Exception:
            try:
                return self._sense_model(model, now, acting)
            except Exception as exc:  # recorded by the caller, in model order, like any model's failure
                return exc

        threads = min(self.p.concurrency, len(models))
        if threads <= 1:
            return [one(m) for m in models]
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="heald-tick") as workers:
            return list(workers.map(one, models))

    def _sense_in_processes(self, models: list[ModelRecord], now: datetime, acting: bool) -> list[Sensed | Exception]:
        """Pull and read this process's own sensors here, sense the rest in the sensing processes, then log
        their events and take their intake health, in model order."""
        assert self.p.sensing is not None
        relayed: list[dict[int, list[Observation]]] = []
        before: list[list[Observation]] = []
        failed: dict[int, Exception] = {}
        for i, model in enumerate(models):
            try:
                pulled = self._pull(model, now, acting)
                _log_events(pulled.events if pulled is not None else [])
                before.append(pulled.observations if pulled is not None else [])
                ctx = self._context(model, now, Intake(batches=[], observations=[]))
                relayed.append(
                    {
                        k: self._sense(sensor, ctx)
                        for k, sensor in enumerate(self.p.sensors)
                        if getattr(sensor, "reads_own_process", False)
                    }
                )
            except Exception as exc:
                failed[i] = exc
                before.append([])
                relayed.append({})
        keep = [i for i in range(len(models)) if i not in failed]
        sensed = self.p.sensing.sense(
            [models[i] for i in keep], now, [relayed[i] for i in keep], [before[i] for i in keep]
        )
        done = dict(zip(keep, sensed, strict=True))
        results: list[Sensed | Exception] = []
        for i, model in enumerate(models):
            result = failed[i] if i in failed else done[i]
            if not isinstance(result, Exception):
                self._took(model, result)
            results.append(result)
        return results

    def _took(self, model: ModelRecord, sensed: Sensed) -> None:
        """Log what a sensing process's intake reported and keep its health for the status line and metrics."""
        _log_events(sensed.events)
        health = self.p.intake.health
        if sensed.blocked is None:
            health.blocked.pop(model.name, None)
        else:
            health.blocked[model.name] = sensed.blocked
        if sensed.skipped:
            health.skipped[model.name] = sensed.skipped

    # -- retention ----------------------------------------------------------------------------------

    def _gc_due(self, now: datetime) -> bool:
        if self.p.retention is None or not self.p.gc_every:
            return False
        return self._collected is None or now - self._collected >= self.p.gc_every

    def collect_garbage(self, now: datetime) -> None:
        """Apply the retention policy under this leader's epoch and log what went (``gc_completed``)."""
        assert self.p.retention is not None
        self._collected = now  # a failed run waits for the next day too: it must not slow every tick
        started = time.perf_counter()
        try:
            report = collect_garbage(self.p.store, self.p.retention, now, epoch=self.epoch)
        except StaleEpochError as exc:  # the new leader collects; this one stops acting
            log.warning("leadership_fenced", epoch=self.epoch, error=str(exc))
            return
        except Exception as exc:  # housekeeping never stops the loop; the next day tries again
            log.error("gc_failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            return
        seconds = round(time.perf_counter() - started, 3)
        log.info(
            "gc_completed",
            rows=report.rows,
            files=report.files,
            bytes=report.bytes,
            seconds=seconds,
            failed=report.failed,
        )

    def _lead(self) -> bool:
        """Renew the lease; on acquiring it, settle what earlier holders left unfinished, then act."""
        if self.p.lease is None:
            self.epoch = None
            return True
        self.epoch = self.p.lease()
        if self.epoch is None:
            return False
        if self._settled != self.epoch:
            try:
                self.reconcile()
            except StaleEpochError as exc:  # taken over again while settling: the newer holder settles
                log.warning("leadership_fenced", epoch=self.epoch, error=str(exc))
                return False
            self._settled = self.epoch
        return True

    def _model_failed(self, model: ModelRecord, now: datetime, report: TickReport, exc: Exception) -> None:
        """Record a model's failed tick (a ``tick_failed`` observation and log event) and let the tick go on."""
        error = f"{type(exc).__name__}: {exc}"
        report.failed.append(model.name)
        log.error("tick_failed", model=model.name, error=error, exc_info=exc)
        failure = Observation(
            at=now, model=model.name, source="loop", metric="tick_failed", value=1.0, evidence={"error": error[:2000]}
        )
        try:
            self.p.store.add_observations([failure])
        except Exception:  # the store itself may be what failed (a full disk): the log line must do
            log.exception("tick_failure_unrecorded", model=model.name)

    def _sense_model(self, model: ModelRecord, now: datetime, acting: bool) -> Sensed:
        """Monitor and Analyze for one model in this process: its source pulled, then ``sense_model``."""
        pulled = self._pull(model, now, acting)
        _log_events(pulled.events if pulled is not None else [])  # before sensing, which may fail
        sensed = self.sense_model(model, now, before=pulled.observations if pulled is not None else [])
        _log_events(sensed.events)
        return sensed

    def _pull(self, model: ModelRecord, now: datetime, acting: bool) -> Pulled | None:
        # Only the daemon that acts pulls: two daemons sharing a store must not both move a source's watermark.
        return self.p.sources.pull(model, self.p.store, now) if self.p.sources is not None and acting else None

    def sense_model(
        self,
        model: ModelRecord,
        now: datetime,
        *,
        before: list[Observation],
        relayed: Mapping[int, list[Observation]] | None = None,
    ) -> Sensed:
        """Intake, every sensor, the readings stored, the analyzer's verdicts (in a sensing process too).

        ``before`` are readings taken first (a source's pull); ``relayed`` the readings of sensors, by their place
        in the list, that the loop's own process took for a sensing process. Intake's events are returned."""
        intake = self.p.intake.collect(model, self.p.store, now)
        try:
            ctx = self._context(model, now, intake)
            observations = [*before, *intake.observations]
            for k, sensor in enumerate(self.p.sensors):
                observations += relayed[k] if relayed is not None and k in relayed else self._sense(sensor, ctx)
            self.p.store.add_observations(observations)
            verdicts = self.p.analyzer.analyze(model, observations, now)
        except Exception:
            # What intake saw (a full disk, a skipped file) must not be lost with the rest of the phase: logged
            # here, by whichever process sensed, since no Sensed goes back to the loop.
            _log_events(intake.events)
            raise
        health = self.p.intake.health
        return Sensed(
            observations=len(observations),
            batches=len(intake.batches),
            verdicts=verdicts,
            events=intake.events,
            blocked=health.blocked.get(model.name),
            skipped=health.skipped.get(model.name, 0),
        )

    def _context(self, model: ModelRecord, now: datetime, intake: Intake) -> SenseContext:
        return SenseContext(
            now=now,
            model=model,
            registry=self.p.registry,
            batches=intake.batches,
            settings=self.p.sensor_settings,
            profiles=getattr(self.p.intake, "profiles", None),  # intake's: one parse per champion for both
            _champion=intake.champion,  # one read of the champion's row per tick, when intake made it
            _champion_read=intake.champion_read,
        )

    def _settle_model(
        self, model: ModelRecord, sensed: Sensed, now: datetime, report: TickReport, acting: bool
    ) -> None:
        """Update the model's incidents from its verdicts and, when this daemon acts, plan and execute."""
        report.observations += sensed.observations
        report.batches += sensed.batches
        changes = self.p.tracker.apply(model, sensed.verdicts, now, counting=acting)
        report.opened += [i.id for i in changes.opened]
        report.resolved += [i.id for i in changes.resolved]
        if acting:
            self._mark_stable(model, now)
            self._act(model, now, report)
            if self._host_planned != now:
                self._host_planned = now
                host = ModelRecord(name=HOST, task=Task.CLASSIFICATION, target="", created_at=model.created_at)
                self._act(host, now, report)

    def _act(self, model: ModelRecord, now: datetime, report: TickReport) -> None:
        """Plan for the active incidents of a model (or of the host), in the order of their rules' priority."""
        incidents = sorted(self.p.store.active_incidents(model.name), key=self.p.planner.priority)
        for incident in incidents:
            plan = self.p.planner.plan(model, incident, now)
            if plan is not None:
                self._carry_out(model, plan, now, report)

    def _sense(self, sensor: Sensor, ctx: SenseContext) -> list[Observation]:
        try:
            return sensor.sense(ctx)
        except Exception as exc:  # one broken sensor must not blind the others or stop the loop
            name = type(sensor).__name__
            log.exception("sensor_failed", model=ctx.model.name, sensor=name)
            return [ctx.observe("loop", "sensor_failed", 1.0, sensor=name, error=f"{type(exc).__name__}: {exc}")]

    # -- plan and execute ---------------------------------------------------------------------------

    def _carry_out(self, model: ModelRecord, plan: Plan, now: datetime, report: TickReport) -> None:
        store = self.p.store
        for action_id in plan.unverified:
            store.set_outcome(
                action_id,
                ActionOutcome.NOT_VERIFIED,
                at=now,
                detail="symptom persisted after the action",
                epoch=self.epoch,
            )
        if plan.chosen is None:
            self._decide(plan, now, None)
            return
        action = store.plan_action(
            model=model.name,
            kind=plan.chosen.kind,
            at=now,
            actor="heald",
            reason=f"{plan.incident.kind.value}: {plan.incident.summary}",
            incident_id=plan.incident.id,
            params=plan.chosen.params,
            cost=plan.chosen.cost,
            epoch=self.epoch,
        )
        self._decide(plan, now, action.id)
        status = IncidentStatus.ESCALATED if plan.escalate else IncidentStatus.MITIGATING
        store.update_incident(plan.incident.id, status=status, updated_at=now)
        if plan.escalate:
            log.error(
                "incident_escalated",
                model=model.name,
                incident_id=plan.incident.id,
                kind=plan.incident.kind.value,
                reason=plan.reason,
            )
        self.start(action, model, now)
        report.started.append(action.id)

    def _decide(self, plan: Plan, now: datetime, action_id: int | None) -> None:
        previous = self.p.store.decisions(incident_id=plan.incident.id)
        if (
            action_id is None
            and previous
            and (previous[-1].reason, previous[-1].decided_by)
            == (
                plan.reason,
                plan.decided_by,
            )
        ):
            return  # the same reason to wait, again: recorded once
        self.p.store.add_decision(
            Decision(
                at=now,
                model=plan.incident.model,
                incident_id=plan.incident.id,
                candidates=[c.as_json() for c in plan.candidates],
                chosen=plan.chosen.kind.value if plan.chosen else None,
                reason=plan.reason,
                action_id=action_id,
                decided_by=plan.decided_by,
            )
        )

    def start(self, action: Action, model: ModelRecord, now: datetime) -> None:
        """Mark a journaled action running and hand it to the pool; it acts under the epoch it was planned in."""
        actuator = self.p.actuators.get(action.kind)
        if actuator is None:
            self.p.store.transition_action(
                action.id,
                ActionState.FAILED,
                at=now,
                error=f"no actuator for {action.kind.value}",
                epoch=action.epoch,
            )
            return
        running = self.p.store.transition_action(
            action.id, ActionState.RUNNING, at=now, detail="handed to the pool", epoch=action.epoch
        )
        log.info(
            "action_started",
            model=model.name,
            incident_id=action.incident_id,
            action_id=action.id,
            kind=action.kind.value,
            reason=action.reason,
        )
        ctx = ActContext(
            now=now,
            model=model,
            registry=self.p.registry,
            store=self.p.store,
            settings=self.p.act_settings(model.name),
            pool=self.p.pool,
            epoch=action.epoch,
        )
        self.p.pool.submit(action.id, lambda: actuator.execute(running, ctx))

    def collect(self, now: datetime) -> list[int]:
        """Record the actions the pool finished since the last call.

        An action another leader settled meanwhile (it took over while this one ran) or whose epoch is
        stale is logged and left as it is: the journal keeps the first settlement."""
        finished = []
        for done in self.p.pool.poll():
            action = self._finish(done, now)
            if action is None:
                continue
            fields = {
                "model": action.model,
                "incident_id": action.incident_id,
                "action_id": action.id,
                "kind": action.kind.value,
                "detail": done.outcome.detail,
            }
            if done.outcome.ok:
                log.info("action_succeeded", **fields)
            else:
                log.error("action_failed", **fields)
            finished.append(action.id)
        return finished

    def _finish(self, done: Finished, now: datetime) -> Action | None:
        store = self.p.store
        planned = store.get_action(done.action_id)
        state = ActionState.SUCCEEDED if done.outcome.ok else ActionState.FAILED
        try:
            return store.transition_action(
                done.action_id,
                state,
                at=now,
                detail=done.outcome.detail,
                error=None if done.outcome.ok else done.outcome.detail,
                result=done.outcome.result,
                epoch=planned.epoch,
            )
        except StaleEpochError as exc:
            log.warning("action_result_fenced", model=planned.model, action_id=planned.id, error=str(exc))
        except StoreError:
            settled = store.get_action(done.action_id)
            if not settled.state.finished:
                raise
            log.warning(
                "action_already_settled",
                model=settled.model,
                action_id=settled.id,
                state=settled.state.value,
                result=state.value,
                detail=done.outcome.detail,
            )
        return None

    # -- housekeeping -------------------------------------------------------------------------------

    def _mark_stable(self, model: ModelRecord, now: datetime) -> None:
        """A champion that served healthy for ``stable_after`` labelled readings becomes a rollback target."""
        champion = self.p.registry.champion(model.name)
        if champion is None or champion.stable_at is not None or self.p.store.active_incidents(model.name):
            return
        readings = [
            o
            for o in self.p.store.observations(model.name, metric=Metric.PERFORMANCE, limit=self.p.stable_after * 3)
            if o.evidence.get("version") == champion.number
        ][-self.p.stable_after :]
        if len(readings) == self.p.stable_after and all(self.p.healthy(model, o) for o in readings):
            self.p.registry.mark_stable(
                model.name,
                champion.number,
                at=now,
                reason=f"healthy for {len(readings)} labelled readings",
                epoch=self.epoch,
            )
            log.info("version_marked_stable", model=model.name, version=champion.number)

    def reconcile(self) -> list[int]:
        """Settle the actions earlier holders (or a crash) left ``planned`` or ``running``, by looking at what
        they changed. Called by the tick on acquiring the lease; actions of the current epoch are this
        leader's own and are left alone, operator actions (no epoch) are settled like a dead holder's."""
        now = self.p.clock.now()
        settled = []
        for action in self.p.store.actions(states=[ActionState.PLANNED, ActionState.RUNNING]):
            if not self._inherited(action):
                continue
            moved = [m for m in self.p.store.alias_history(action.model, Alias.CHAMPION) if m.action_id == action.id]
            if moved:
                state = ActionState.SUCCEEDED
                detail = f"reconciled after restart: champion had moved to v{moved[-1].to_version}"
            else:
                state, detail = ActionState.ABORTED, "reconciled after restart: no effect found"
            self.p.store.transition_action(action.id, state, at=now, detail=detail, epoch=self.epoch)
            log.warning(
                "action_reconciled",
                model=action.model,
                action_id=action.id,
                moved=bool(moved),
                action_epoch=action.epoch,
                epoch=self.epoch,
            )
            settled.append(action.id)
        for model in self.p.store.list_models():
            for run in interrupted(self.p.store, model.name, now):
                log.warning("pipeline_run_reconciled", model=model.name, run_id=run.id, failed_stage=run.failed_stage)
        return settled

    def _inherited(self, action: Action) -> bool:
        """Whether an unfinished action is not this leader's own: no epoch, or an older one."""
        return self.epoch is None or action.epoch is None or action.epoch < self.epoch


_NOTHING = object()  # no epoch settled yet (None is a real value: the loop without a lease)
