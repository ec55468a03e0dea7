"""Scale benchmark: many models per tick, and a store that stays small and fast over simulated months.

Part ``ticks``: 1, 10, 100 and 300 onboarded models, each with a fresh labelled batch every tick, ticked through
the real loop (intake, every sensor, the analyzer with its anomaly watch, the planner) on SQLite. Each size runs
side by side (``--modes``): models sensed one after the other (``tick_threads = 1``), on one thread per core (the
default) and in one sensing process per core (``tick_processes``); reported: the tick's wall time and its CPU
time (this process's threads plus its sensing processes), per model.

Part ``store``: models ticking every 60 s with a batch each, for two simulated months. Each simulated day's rows
go in fast through the store's own insert paths (observations copied from a real tick's, one batch row per model
and tick), then retention runs as the daemon does, once a day. At the first tick (day 0), after day 1, day 30
and day 60 the real loop ticks five times and every SELECT it ran is timed again on its own, with the parameters
of its last run, best of ``REPEATS`` runs; reported: rows per model (raw and hourly rollups), the database's
bytes, every statement's time and the slowest.

    .venv/bin/python bench/scale.py                  # both parts
    .venv/bin/python bench/scale.py --part ticks --sizes 1,10,100,300
    .venv/bin/python bench/scale.py --part store --days 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
from sqlalchemy import event, insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.compose import Heald, build
from daemon.config import ModelSettings, Monitor, Policy, Settings
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.retention import collect_garbage
from knowledge.sql import schema
from knowledge.values import Observation
from pipeline.train import TrainParams
from sensors.host import FixedHostGauge

CALM = {"cpu_percent": 5.0, "memory_percent": 30.0, "disk_percent": 30.0, "load_per_cpu": 0.1, "rss_mb": 200.0}
TICK = timedelta(seconds=60)
ROWS = 200  # rows in each model's batch per tick
REPEATS = 200  # runs of each store statement when timing it on its own (best of)


def rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
    a, b = rng.normal(0, 1, n), rng.normal(0, 1, n)
    c = rng.choice(["red", "green", "blue"], n)
    return pd.DataFrame({"a": a, "b": b, "c": c, "y": (a + b > 0).astype(int)})


def settings(state: Path, names: list[str], threads: int, processes: int = 0) -> Settings:
    return Settings(
        state_dir=state,
        n_estimators=20,
        max_depth=8,
        tick_seconds=60,
        tick_threads=threads,
        tick_processes=processes,
        executor="inline",
        policy=Policy(min_retrain_rows=10_000_000),  # no retrains: they run in the worker pool, not in a tick
        monitor=Monitor(memory_percent=0, disk_percent=0, load_per_cpu=0, rss_mb=0),
        models=[ModelSettings(name=n, target="y", task="classification", min_accuracy=0.8) for n in names],
    )


def wire(
    state: Path, names: list[str], threads: int, clock: ManualClock, store: Any = None, processes: int = 0
) -> Heald:
    heald = build(
        settings(state, names, threads, processes),
        clock=clock,
        pool="inline",
        store=store,
        holder="bench",
        host_gauge=FixedHostGauge([CALM]),
    )
    # The benchmark runs the daily collection itself, between simulated days, so measured ticks time the tick.
    heald.loop.p = replace(heald.loop.p, gc_every=None)
    return heald


def onboard_all(heald: Heald, names: list[str], clock: ManualClock) -> None:
    rng = np.random.default_rng(0)
    for name in names:
        onboard(
            heald.store,
            heald.registry,
            name=name,
            frame=rows(600, rng),
            target="y",
            now=clock.now(),
            params=TrainParams(n_estimators=20, max_depth=8, n_jobs=1),
        )


def feed(heald: Heald, names: list[str], rng: np.random.Generator, tag: str) -> None:
    for name in names:
        folder = heald.settings.landing / name
        folder.mkdir(parents=True, exist_ok=True)
        rows(ROWS, rng).to_csv(folder / f"{tag}.csv", index=False)


def sensing_cpu(heald: Heald) -> float:
    """CPU seconds the sensing processes have used so far (0 without them)."""
    sensing = heald.loop.p.sensing
    if sensing is None:
        return 0.0
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in sensing.pids())


def timed_tick(heald: Heald, clock: ManualClock) -> tuple[float, float]:
    """The tick's wall time and CPU time: this process's (all threads) plus its sensing processes'."""
    clock.advance(TICK)
    wall, cpu, children = time.perf_counter(), time.process_time(), sensing_cpu(heald)
    report = heald.loop.tick()
    if report.failed:
        raise SystemExit(f"tick failed for {report.failed}")
    return time.perf_counter() - wall, time.process_time() - cpu + sensing_cpu(heald) - children


def part_ticks(sizes: list[int], ticks: int, modes: set[str]) -> list[dict[str, Any]]:
    cores = len(os.sched_getaffinity(0))
    results = []
    for size in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="heald-scale-"))
        clock = ManualClock()
        names = [f"m{i:03d}" for i in range(size)]
        base = wire(tmp / "state", names, 1, clock)
        onboard_all(base, names, clock)
        rng = np.random.default_rng(size)
        looms = {
            ("threads", 1): base,
            ("threads", cores): wire(tmp / "state", names, cores, clock, store=base.store),
            ("processes", cores): wire(tmp / "state", names, 1, clock, store=base.store, processes=cores),
        }
        looms = {k: v for k, v in looms.items() if (k[0] if k != ("threads", 1) else "sequential") in modes}
        for mode, heald in looms.items():  # warm-up: start the processes, load every champion into the caches
            feed(heald, names, rng, f"warm-{mode[0]}{mode[1]}")
            timed_tick(heald, clock)
        measured: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
        for i in range(ticks):  # alternate the modes' ticks so load changes hit all alike
            for mode, heald in looms.items():
                feed(heald, names, rng, f"t{i}-{mode[0]}{mode[1]}")
                measured[mode].append(timed_tick(heald, clock))
        for (kind, threads), runs in measured.items():
            wall = float(np.median([w for w, _ in runs]))
            cpu = float(np.median([c for _, c in runs]))
            results.append(
                {
                    "models": size,
                    "mode": kind,
                    "threads": threads,
                    "tick_wall_s": round(wall, 3),
                    "tick_cpu_s": round(cpu, 3),
                    "wall_ms_per_model": round(1000 * wall / size, 1),
                    "cpu_ms_per_model": round(1000 * cpu / size, 1),
                    "cores_used": round(cpu / wall, 2),
                }
            )
            print(json.dumps(results[-1]), flush=True)
        for heald in looms.values():
            if heald.loop.p.sensing is not None:
                heald.loop.p.sensing.close()
        base.store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


class QueryClock:
    """Records every SELECT the store runs while ``on`` (its text and the parameters of its last run), to time
    each statement again on its own afterwards (``replay``): sub-millisecond statements timed once inside a tick
    measure the machine's load as much as the query."""

    def __init__(self, heald: Heald) -> None:
        self.on = False
        self.seen: dict[str, Any] = {}
        self.engine = heald.store.engine
        event.listen(self.engine, "after_cursor_execute", self._after)

    def _after(self, _conn: Any, _c: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if self.on and statement.lstrip().upper().startswith("SELECT"):
            self.seen[statement] = parameters

    def replay(self, repeats: int) -> dict[str, float]:
        """Each statement's best time of ``repeats`` runs (rows fetched), in seconds."""
        with self.engine.connect() as c:
            connection = c.connection.dbapi_connection
            assert connection is not None
            return best_of(connection, self.seen, repeats)


def best_of(connection: Any, statements: dict[str, Any], repeats: int) -> dict[str, float]:
    """Each statement's best time of ``repeats`` runs on a DB-API ``connection`` (rows fetched), in seconds."""
    best: dict[str, float] = {}
    for statement, parameters in statements.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            connection.execute(statement, parameters).fetchall()
            times.append(time.perf_counter() - started)
        best[statement] = min(times)
    return best


def best_times(database: Path, statements: dict[str, Any], repeats: int) -> dict[str, float]:
    """``best_of`` on the SQLite file ``database``."""
    connection = sqlite3.connect(database)
    try:
        return best_of(connection, statements, repeats)
    finally:
        connection.close()


def side_by_side(
    early: tuple[Path, dict[str, Any]], late: tuple[Path, dict[str, Any]], rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Day one's statements on its snapshot and the last day's on the live file, timed in alternating rounds (best
    of all rounds per statement): a statement of a few tens of microseconds timed at two checkpoints half an hour
    apart measures the machine's load at each as much as the store, and this compares them under the same load."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for _ in range(rounds):
        for found, (database, statements) in ((first, early), (last, late)):
            for statement, seconds in best_times(database, statements, REPEATS // rounds).items():
                found[statement] = min(seconds, found.get(statement, seconds))
    return first, last


def template(heald: Heald, name: str, at: datetime) -> list[Observation]:
    """The observations one real tick with a batch wrote for a model: what each simulated tick repeats."""
    return [o for o in heald.store.observations(name, limit=200) if o.at == at]


def fill_day(heald: Heald, names: list[str], shapes: dict[str, list[Observation]], start: datetime) -> None:
    """One simulated day of 60-s ticks for every model: its observations and one accepted batch row per tick."""
    batch_rows = []
    for name in names:
        observations = []
        for i in range(int(timedelta(days=1) / TICK)):
            at = start + i * TICK
            observations += [replace(o, at=at) for o in shapes[name]]
            batch_rows.append(
                {
                    "model": name,
                    "received_at": at,
                    "source": "landing",
                    "path": str(heald.settings.state_dir / "batches" / name / f"gone-{at:%Y%m%d%H%M}.csv"),
                    "rows": ROWS,
                    "labelled": True,
                    "fingerprint": "f",
                    "status": "accepted",
                    "reason": "",
                    "claim": f"sim/{at.isoformat()}",
                }
            )
        heald.store.add_observations(observations)
    with heald.store.engine.begin() as c:
        c.execute(insert(schema.batches), batch_rows)


def measure(heald: Heald, names: list[str], clock: ManualClock, queries: QueryClock, day: int) -> dict[str, Any]:
    rng = np.random.default_rng(day)
    queries.seen.clear()
    queries.on = True
    walls = []
    for i in range(5):
        feed(heald, names, rng, f"d{day}-{i}")
        walls.append(timed_tick(heald, clock)[0])
    queries.on = False
    best = queries.replay(REPEATS)
    slowest = max(best, key=best.__getitem__)
    statements = {" ".join(s.split()): round(1000 * t, 4) for s, t in sorted(best.items(), key=lambda x: -x[1])}
    database = Path(str(heald.store.engine.url.database))
    size = sum(p.stat().st_size for p in database.parent.glob(database.name + "*"))
    history = heald.store.history_size(names[0])
    with heald.store.engine.connect() as c:
        batches = c.execute(schema.batches.select().where(schema.batches.c.model == names[0])).all()
    return {
        "day": day,
        "raw_rows_model": history["observations"],
        "rollup_rows_model": history["observation_rollups"],
        "observation_rows_model": history["observations"] + history["observation_rollups"],
        "batch_rows_model": len(batches),
        "db_mb": round(size / 1e6, 1),
        "slowest_query_ms": round(1000 * best[slowest], 4),
        "slowest_query": _short(slowest),
        "slowest_parameters": repr(queries.seen[slowest]),
        "tick_store_ms": round(1000 * sum(best.values()), 3),
        "statements_ms": statements,
        "tick_wall_s": round(float(np.median(walls)), 3),
    }


def _short(statement: str) -> str:
    """A statement's table and filter, enough to tell the statements of a tick apart in the results."""
    words = " ".join(statement.split())
    return words[words.upper().find(" FROM ") + 1 :][:110]


def part_store(days: int, models: int) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="heald-store-"))
    clock = ManualClock()
    names = [f"m{i}" for i in range(models)]
    heald = wire(tmp / "state", names, len(os.sched_getaffinity(0)), clock)
    onboard_all(heald, names, clock)
    rng = np.random.default_rng(1)
    feed(heald, names, rng, "first")
    timed_tick(heald, clock)
    shapes = {n: template(heald, n, clock.now()) for n in names}
    policy = heald.loop.p.retention
    assert policy is not None
    queries = QueryClock(heald)
    results = [measure(heald, names, clock, queries, 0)]  # the first tick: tables almost empty
    print(json.dumps(results[-1]), flush=True)
    gc_seconds = []
    database = Path(str(heald.store.engine.url.database))
    snapshot = tmp / "day1.db"
    day_one: dict[str, Any] = {}
    for day in range(1, days + 1):
        start = clock.now()
        fill_day(heald, names, shapes, start)
        clock.advance(timedelta(days=1))
        began = time.perf_counter()
        collect_garbage(heald.store, policy, clock.now())  # the daemon's daily run
        gc_seconds.append(time.perf_counter() - began)
        if day == 1 or day % 30 == 0 or day == days:  # day one: a full day of ticks, as every later day has
            results.append({**measure(heald, names, clock, queries, day), "gc_s": round(max(gc_seconds), 2)})
            print(json.dumps(results[-1]), flush=True)
        if day == 1:  # kept to be timed again beside the last day's store, under the same load
            day_one = dict(queries.seen)
            with sqlite3.connect(database) as live, sqlite3.connect(snapshot) as copy:
                live.backup(copy)
    if day_one:
        first, last = side_by_side((snapshot, day_one), (database, dict(queries.seen)), rounds=5)
        slowest_first, slowest_last = max(first.values()), max(last.values())
        results.append(
            {
                "side_by_side": f"day 1 vs day {days}",
                "day1_slowest_ms": round(1000 * slowest_first, 4),
                "last_slowest_ms": round(1000 * slowest_last, 4),
                "slowest_ratio": round(slowest_last / slowest_first, 3),
                "day1_tick_store_ms": round(1000 * sum(first.values()), 3),
                "last_tick_store_ms": round(1000 * sum(last.values()), 3),
                "day1_slowest": _short(max(first, key=first.__getitem__)),
                "last_slowest": _short(max(last, key=last.__getitem__)),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    heald.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["ticks", "store", "all"], default="all")
    parser.add_argument("--sizes", default="1,10,100,300")
    parser.add_argument("--ticks", type=int, default=2, help="measured ticks per size and mode")
    parser.add_argument(
        "--modes",
        default="sequential,threads,processes",
        help="sequential (one thread), threads (one per core), processes (tick_processes = cores)",
    )
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--store-models", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps({"uptime": os.getloadavg(), "cores": len(os.sched_getaffinity(0))}), flush=True)
    if args.part in ("ticks", "all"):
        part_ticks([int(s) for s in args.sizes.split(",")], args.ticks, set(args.modes.split(",")))
    if args.part in ("store", "all"):
        part_store(args.days, args.store_models)
    print(json.dumps({"uptime": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
