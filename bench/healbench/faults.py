"""Operational faults injected into a running loop, and how heald recovered from each.

A fault is an object with a ``name``, a ``description``, whether the loop has a stable earlier version to
fall back on (``fallback``), whether it needs a concept drift at the injection (``drift``), how many ticks
late labels arrive (``label_delay``), its promise (``within`` ticks from detection to recovery, ``after``
ticks watched), ``missing()`` (why it cannot run here, or None) and ``inject(system)``. To add one, write
such a class and append an instance to ``FAULTS``; the harness, the report and the JSON pick it up. Each
fault runs in a fresh heald on a steady stream (no concept drift), or for faults that need heald to retrain
on the same stream with an abrupt drift at the injection, so what is measured is the fault alone:

- detection: ticks from the injection to the tick an incident opened (0 = the very tick);
- recovery: ticks (and simulated and wall seconds) from detection to the first tick after which the
  champion loads from disk and verifies, as a restarted daemon would need;
- resolution: the tick the incident resolved (hysteresis adds ``resolve_after`` healthy ticks);
- healthy end: the registry checks clean, no incident is open, and the mean of the last ``END_READINGS``
  labelled readings is above the health threshold (one noisy batch below it is what heald's own persistence
  rule ignores: a 500-row batch's accuracy wanders by about 1.5 points).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from healbench import measures, promotions
from healbench.replay import MODEL, Crashed, Event, HealdSystem, train_params
from healbench.streams import TARGET, Size, Stream, table
from knowledge.values import ActionKind, ActionState, Alias
from pipeline.train import train

WARM_TICKS = 7  # labelled ticks before the fault: long enough for a fallback version to become stable
AFTER_TICKS = 8  # ticks the run goes on after the injection, to see recovery and resolution
RECOVER_WITHIN = 3  # the usual promise: recovered within this many ticks of detection
END_READINGS = 3  # the labelled readings whose mean tells a healthy end
FAULT_KINDS = {"artifact_corrupt", "pipeline_failed"}
INJECTED_PROMOTION = (
    "retrain (injected: a challenger its judging sample flattered)"  # incidents a fault is expected to open
)


class Fault(Protocol):
    """An operational fault the harness can inject into a running heald."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def fallback(self) -> bool: ...

    @property
    def drift(self) -> bool: ...

    @property
    def label_delay(self) -> int: ...

    @property
    def within(self) -> int: ...

    @property
    def after(self) -> int: ...

    def missing(self) -> str | None: ...

    def inject(self, system: HealdSystem) -> str: ...

    def recovered(self, system: HealdSystem) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CorruptChampion:
    """Overwrites 64 bytes in the middle of the champion's model file."""

    fallback: bool
    name: str = "corrupt-champion"
    description: str = "64 bytes of the champion's model file overwritten on disk"
    drift: bool = False
    label_delay: int = 0
    within: int = RECOVER_WITHIN
    after: int = AFTER_TICKS

    def missing(self) -> str | None:
        return None

    def inject(self, system: HealdSystem) -> str:
        path = _champion_file(system)
        data = bytearray(path.read_bytes())
        middle = len(data) // 2
        data[middle : middle + 64] = bytes(64)
        path.write_bytes(bytes(data))
        return f"overwrote 64 bytes of {path.name}"

    def recovered(self, system: HealdSystem) -> bool:
        return not system.heald.registry.check(MODEL)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteChampion:
    """Deletes the champion's model file."""

    fallback: bool
    name: str = "delete-champion"
    description: str = "the champion's model file deleted"
    drift: bool = False
    label_delay: int = 0
    within: int = RECOVER_WITHIN
    after: int = AFTER_TICKS

    def missing(self) -> str | None:
        return None

    def inject(self, system: HealdSystem) -> str:
        path = _champion_file(system)
        path.unlink()
        return f"deleted {path.name}"

    def recovered(self, system: HealdSystem) -> bool:
        return not system.heald.registry.check(MODEL)


@dataclass(frozen=True, slots=True, kw_only=True)
class StageFailsTwice:
    """A pipeline run's training stage fails twice (a lost worker), then passes.

    An operator's pipeline run (as ``healctl pipeline run``) fails at training; heald sees the failed run,
    opens a ``pipeline_failed`` incident and reruns it from the failed stage; that rerun fails too; the
    next rerun passes. The same flaky stage object serves the operator's run and heald's rerun actuator,
    so the failures are counted across runs. Recovery is the newest pipeline run succeeding.
    """

    fallback: bool = False
    name: str = "stage-fails-twice"
    description: str = "the training stage of a pipeline run fails twice (worker lost), then passes"
    runner: str = "pipeline.runner"
    drift: bool = False
    label_delay: int = 0
    within: int = RECOVER_WITHIN
    after: int = AFTER_TICKS

    def missing(self) -> str | None:
        if importlib.util.find_spec(self.runner) is None or importlib.util.find_spec("actuators.rerun") is None:
            return f"pending: needs the pipeline runner ({self.runner}) and the rerun action (issue 3)"
        return None

    def inject(self, system: HealdSystem) -> str:
        from actuators.rerun import RerunActuator
        from actuators.runs import recorded_run
        from daemon.compose import runs_folder
        from daemon.onboard import run_config
        from pipeline.runner import RetryPolicy, Runner
        from pipeline.stages import FlakyStage, standard_stages

        stages = standard_stages()
        train_at = next(i for i, stage in enumerate(stages) if stage.name == "train")
        stages[train_at] = FlakyStage(stages[train_at], failures=2, error=RuntimeError("worker lost (injected)"))
        # No retries inside a run: each failure ends the run, so it is heald's loop that must react.
        runner = Runner(stages, retry=RetryPolicy(attempts=1))
        root = runs_folder(system.heald.settings)
        system.use_actuator(ActionKind.RERUN, RerunActuator(root, runner=runner))
        data = system.state / "pipeline-data.csv"
        system.labelled_rows().to_csv(data, index=False)
        model = system.heald.store.get_model(MODEL)
        config = run_config(system.heald.settings, name=MODEL, data=[data], target=TARGET, task=model.task)
        done = recorded_run(
            system.heald.store,
            runner,
            root=root,
            now=system.clock.now(),
            trigger="operator",
            actor="healctl",
            config=config,
        )
        return f"operator's pipeline run #{done.row.id} {done.row.status} at {done.row.failed_stage}"

    def recovered(self, system: HealdSystem) -> bool:
        runs = system.heald.store.pipeline_runs(MODEL, limit=1)
        return bool(runs) and runs[-1].status == "succeeded" and not system.heald.registry.check(MODEL)


@dataclass(frozen=True, slots=True, kw_only=True)
class DamageChampionAndStable:
    """Overwrites 64 bytes of the champion's file and of every stable version's: no verified version is left.

    The promise (issue 9): rebuilt and verified again within one tick of detection.
    """

    fallback: bool = True
    name: str = "damage-champion-and-stable"
    description: str = "the champion's and every stable version's model files overwritten together"
    drift: bool = False
    label_delay: int = 0
    within: int = 1
    after: int = AFTER_TICKS

    def missing(self) -> str | None:
        return None

    def inject(self, system: HealdSystem) -> str:
        store, champion = system.heald.store, system.heald.registry.champion(MODEL)
        damaged = []
        for version in store.list_versions(MODEL):
            if version.stable_at is None and (champion is None or version.number != champion.number):
                continue
            path = Path(system.heald.settings.artifacts) / version.artifact
            data = bytearray(path.read_bytes())
            middle = len(data) // 2
            data[middle : middle + 64] = bytes(64)
            path.write_bytes(bytes(data))
            damaged.append(f"v{version.number}")
        return f"overwrote 64 bytes of {', '.join(damaged)} (champion and stable)"

    def recovered(self, system: HealdSystem) -> bool:
        return not system.heald.registry.check(MODEL)


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotedThenWorse:
    """A challenger is promoted (its judging sample flattered it) and then serves far worse than before.

    The injected version is a forest fit on the first model's rows with their labels shuffled, registered
    with the champion's own held-out figures plus a point, and promoted by heald's actor, as a retrain judged
    on an unlucky sample would be. heald must roll it back: recovered when the champion is another version
    that verifies and the last batch scored above the health threshold.
    """

    fallback: bool = True
    name: str = "promoted-then-worse"
    description: str = "a promoted challenger that serves much worse than the version it replaced"
    drift: bool = False
    label_delay: int = 0
    within: int = RECOVER_WITHIN
    after: int = AFTER_TICKS

    def missing(self) -> str | None:
        return None

    def inject(self, system: HealdSystem) -> str:
        registry, now, stream = system.heald.registry, system.clock.now(), system.stream
        champion = registry.champion(MODEL)
        if champion is None:
            raise RuntimeError("no champion to replace")
        rows = stream.initial().copy()
        rows[TARGET] = np.random.default_rng(system.seed).permutation(rows[TARGET].to_numpy())
        trained = train(rows, target=TARGET, task=stream.task, params=train_params(system.seed + 7))
        flattered = {k: (v + 0.01 if isinstance(v, float) else v) for k, v in champion.metrics.items()}
        version = registry.register(
            MODEL,
            trained.estimator,
            at=now,
            reference=stream.initial()[stream.features],
            params=trained.params,
            metrics=flattered,
            data_fingerprint=trained.fingerprint,
            created_by="heald",
        )
        registry.promote(MODEL, version.number, at=now, actor="heald", reason=INJECTED_PROMOTION)
        return f"promoted v{version.number} (fit on shuffled labels) over v{champion.number}"

    def recovered(self, system: HealdSystem) -> bool:
        champion = system.heald.registry.champion(MODEL)
        moves = system.heald.store.alias_history(MODEL, Alias.CHAMPION)
        bad = next((m.to_version for m in moves if m.reason == INJECTED_PROMOTION), None)
        fine = bool(system.scores) and system.scores[-1] >= system.floor
        return champion is not None and champion.number != bad and fine and not system.heald.registry.check(MODEL)


@dataclass(frozen=True, slots=True, kw_only=True)
class LateLabels:
    """Labels arrive 5 ticks after their rows, and the concept changes abruptly at the injection.

    Rows land unlabelled every tick; their labels land as a labelled batch 5 ticks later (as feedback
    would). Detection counts from the drift; recovery is the first batch served above the threshold after
    detection (plus a registry that checks clean).
    """

    fallback: bool = False
    name: str = "late-labels"
    description: str = "labels arrive 5 batches after their rows; an abrupt concept drift at the injection"
    drift: bool = True
    label_delay: int = 5
    within: int = 6
    after: int = 18

    def missing(self) -> str | None:
        return None

    def inject(self, system: HealdSystem) -> str:
        return f"concept changed; labels of each batch land {self.label_delay} ticks after its rows"

    def recovered(self, system: HealdSystem) -> bool:
        fine = bool(system.scores) and system.scores[-1] >= system.floor
        return fine and not system.heald.registry.check(MODEL)


@dataclass(frozen=True, slots=True, kw_only=True)
class CrashMidRetrain:
    """The process dies while heald's first retrain after an abrupt drift runs; a fresh heald takes over.

    The pool raises ``Crashed`` when the retrain is handed to it (the action is ``running`` in the store);
    the harness drops that heald, builds a new one over the same store and files, reconciles (the action
    must end ``aborted``) and goes on replaying. Recovered: a later retrain is promoted, the registry checks
    clean and the last batch scored above the threshold.
    """

    fallback: bool = False
    name: str = "crash-mid-retrain"
    description: str = "the process dies during the retrain after an abrupt drift; a fresh heald continues"
    drift: bool = True
    label_delay: int = 0
    within: int = 4
    after: int = 14

    def missing(self) -> str | None:
        return None

    def inject(self, system: HealdSystem) -> str:
        system.pool.crash_on = ActionKind.RETRAIN
        return "concept changed; the next retrain's process is killed"

    def recovered(self, system: HealdSystem) -> bool:
        retrains = system.actions(ActionKind.RETRAIN)
        aborted = any(a.state == ActionState.ABORTED for a in retrains)
        promoted = any(a.result.get("promoted") for a in retrains)
        fine = bool(system.scores) and system.scores[-1] >= system.floor
        return aborted and promoted and fine and not system.heald.registry.check(MODEL)


FAULTS: list[Fault] = [
    CorruptChampion(fallback=True),
    CorruptChampion(fallback=False, name="corrupt-champion-only-version"),
    DeleteChampion(fallback=True),
    DeleteChampion(fallback=False, name="delete-champion-only-version"),
    StageFailsTwice(),
    DamageChampionAndStable(),
    PromotedThenWorse(),
    LateLabels(),
    CrashMidRetrain(),
]


def _champion_file(system: HealdSystem) -> Path:
    champion = system.heald.registry.champion(MODEL)
    if champion is None:
        raise RuntimeError("no champion to damage")
    return Path(system.heald.settings.artifacts) / champion.artifact


@dataclass(slots=True, kw_only=True)
class FaultResult:
    """How one injected fault went."""

    fault: str
    description: str
    stream: str
    status: str  # "recovered", "not recovered" or "pending"
    seed: int | None = None
    note: str = ""
    fallback: bool = False
    injected_tick: int | None = None
    detected_tick: int | None = None
    recovered_tick: int | None = None
    resolved_tick: int | None = None
    detection_ticks: int | None = None
    recovery_ticks: int | None = None
    recovery_sim_seconds: float | None = None
    recovery_wall_seconds: float | None = None
    healthy: bool | None = None
    within: int = RECOVER_WITHIN
    promotions: int = 0
    harmful_promotions: int = 0
    remedies: list[str] = field(default_factory=list)
    accuracy: float | None = None
    sick_share: float | None = None
    retrains: int | None = None
    false_alarms: int | None = None

    def as_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"stream": self.stream, "system": "heald"}
        for item in dataclasses.fields(self):
            row[item.name] = measures.rounded(getattr(self, item.name))
        return row


def steady(size: Size, seed: int, drift_at: int | None = None) -> Stream:
    """The faults' stream: SEA with 10 % label noise; with ``drift_at``, threshold 8 -> 9.5 from that batch."""
    from river.datasets import synth

    rows = size.warmup + (WARM_TICKS + max(f.after for f in FAULTS)) * size.batch_rows
    if drift_at is None:
        frame = table(list(itertools.islice(synth.SEA(variant=0, noise=0.1, seed=seed), rows)))
    else:
        cut = size.warmup + drift_at * size.batch_rows
        before = itertools.islice(synth.SEA(variant=0, noise=0.1, seed=seed), cut)
        after = itertools.islice(synth.SEA(variant=3, noise=0.1, seed=seed + 1), rows - cut)
        frame = table([*before, *after])
    return Stream(
        name="sea-steady" if drift_at is None else "sea-drift",
        task="classification",
        source="river SEA, 10 % label noise, " + ("no drift" if drift_at is None else f"8 -> 9.5 at batch {drift_at}"),
        frame=frame,
        warmup=size.warmup,
        batch_rows=size.batch_rows,
    )


def run(fault: Fault, size: Size, state: Path, seed: int) -> FaultResult:
    """Run heald on the fault's stream, inject ``fault`` after ``WARM_TICKS`` ticks, measure the recovery."""
    stream = steady(size, seed, drift_at=WARM_TICKS if fault.drift else None)
    base = FaultResult(fault=fault.name, description=fault.description, stream=stream.name, status="pending")
    base.fallback = fault.fallback
    base.within = fault.within
    why = fault.missing()
    if why is not None:
        base.note = why
        return base
    system = HealdSystem(stream=stream, state=state, seed=seed, label_delay=fault.label_delay)
    try:
        return _play(fault, stream, system, base)
    except Exception as exc:  # a harness or heald error ends this fault's run, not the benchmark: reported
        base.status = "not recovered"
        base.note += f"; the run stopped: {type(exc).__name__}: {exc}"
        return base
    finally:
        system.close()


@dataclass(slots=True)
class Watch:
    """The ticks at which a fault was detected, recovered from and resolved, as the run goes."""

    fault: Fault
    injected: int
    detected: int | None = None
    recovered: int | None = None
    resolved: int | None = None
    wall_start: float = 0.0
    recovery_wall: float | None = None

    def see(self, index: int, system: HealdSystem) -> None:
        happened = {e.what for e in system.events if e.batch == index}
        if self.detected is None and "incident" in happened:
            self.detected = index
        if self.detected is not None and self.recovered is None and self.fault.recovered(system):
            self.recovered = index
            self.recovery_wall = time.perf_counter() - self.wall_start
        if self.resolved is None and "resolved" in happened:
            self.resolved = index


def _play(fault: Fault, stream: Stream, system: HealdSystem, out: FaultResult) -> FaultResult:
    watch = Watch(fault=fault, injected=WARM_TICKS)
    batches = stream.batches()[: WARM_TICKS + fault.after]
    for index, batch in enumerate(batches):
        if index == 1 and fault.fallback:
            _deploy_second_version(system, stream)
        if index == watch.injected:
            out.note = fault.inject(system)
            watch.wall_start = time.perf_counter()
        system.scores.append(measures.batch_score(stream, batch, system.serve(batch)))
        try:
            system.reveal(index, batch)
        except Crashed as exc:
            system.events.append(Event(batch=index, what="crash", detail=str(exc)))
            # The dead tick's report is lost; what it did is in the store (incidents it opened, first).
            now = system.clock.now()
            for incident in system.heald.store.list_incidents(model=MODEL, limit=100_000):
                if incident.opened_at == now:
                    system.events.append(Event(batch=index, what="incident", detail=incident.kind.value))
            settled = system.restart()
            out.note += f"; crashed at tick {index}, a fresh heald reconciled actions {settled}"
        if index >= watch.injected:
            watch.see(index, system)
    _record(out, watch, system, system.scores)
    found = promotions.promotions(system, batches)
    out.promotions = len(found)
    out.harmful_promotions = sum(p.harmful for p in found)
    return out


def _record(out: FaultResult, watch: Watch, system: HealdSystem, scores: list[float]) -> None:
    out.injected_tick, out.detected_tick = watch.injected, watch.detected
    out.recovered_tick, out.resolved_tick = watch.recovered, watch.resolved
    if watch.detected is not None:
        out.detection_ticks = watch.detected - watch.injected
        if watch.recovered is not None:
            out.recovery_ticks = watch.recovered - watch.detected
            out.recovery_sim_seconds = out.recovery_ticks * system.tick_seconds
            out.recovery_wall_seconds = watch.recovery_wall
    out.remedies = [f"{a.kind.value}:{a.state.value}" for a in system.actions() if a.actor == "heald"]
    last = system.heald.store.observations(MODEL, metric="performance", limit=END_READINGS)
    out.healthy = (
        watch.fault.recovered(system)
        and not system.heald.store.active_incidents(MODEL)
        and bool(last)
        and float(np.mean([o.value for o in last])) >= system.floor
    )
    on_time = out.recovery_ticks is not None and out.recovery_ticks <= watch.fault.within
    out.status = "recovered" if on_time and out.healthy else "not recovered"
    out.accuracy = float(np.mean(scores))
    out.sick_share = float(np.mean(np.asarray(scores) < system.floor))
    out.retrains = len(system.actions(ActionKind.RETRAIN))
    out.false_alarms = sum(1 for _, kind in system.incidents() if kind not in FAULT_KINDS)


def _deploy_second_version(system: HealdSystem, stream: Stream) -> None:
    """An operator deploys version 2 (same data, another seed), so version 1 stays as a stable fallback."""
    registry, now = system.heald.registry, system.clock.now()
    trained = train(stream.initial(), target=TARGET, task=stream.task, params=train_params(system.seed + 1))
    version = registry.register(
        MODEL,
        trained.estimator,
        at=now,
        reference=stream.initial()[stream.features],
        params=trained.params,
        metrics=trained.metrics,
        data_fingerprint=trained.fingerprint,
        created_by="healctl",
    )
    registry.promote(MODEL, version.number, at=now, actor="healctl", reason="operator deploy (fault benchmark)")
