"""Benchmark: does the dashboard's overview stay fast with 20 models and a month of history?

A knowledge store is filled as a month of one-minute ticks would leave it for 20 models: an ``artifact_ok``
reading every tick, and every hour a labelled batch's performance, accuracy estimate, drift (with per-feature
evidence) and batch size readings, plus a few incidents and actions each. The overview (``/``), one model's
page and ``/status`` (the JSON ``healctl status --json`` prints, the peer: the same data without the page) are
then requested over real HTTP on loopback, alternated, and the median and 90th percentile of each recorded.

Run: .venv/bin/python bench/dashboard.py            (20 models, 30 days; writes its section of bench/RESULTS.md)
     .venv/bin/python bench/dashboard.py --quick    (5 models, 3 days; prints only)
     .venv/bin/python bench/dashboard.py --state /tmp/dash-month   (keeps the filled state folder there and
        reuses it on the next run: filling a month for 20 models takes minutes)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# bench/pipeline.py would shadow heald's `pipeline` package when this runs as a script from bench/.
sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402

from daemon import logs  # noqa: E402
from daemon.api import ApiServer, create_app  # noqa: E402
from daemon.capture import Capture  # noqa: E402
from daemon.compose import build  # noqa: E402
from daemon.config import Settings  # noqa: E402
from daemon.metrics import Metrics  # noqa: E402
from daemon.onboard import onboard  # noqa: E402
from knowledge.values import ActionKind, ActionState, Observation, Severity, Symptom, SymptomKind  # noqa: E402
from pipeline.train import TrainParams  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
HEADING = "## bench/dashboard.py: dashboard overview with 20 models and a month of history"
START = datetime(2026, 1, 1, tzinfo=UTC)
FEATURES = [f"x{i}" for i in range(8)]


def fill(models: int, days: int, state: Path) -> tuple[object, int]:
    """A store with ``models`` onboarded models and ``days`` of one-minute ticks of readings; rows written."""
    settings = Settings.model_validate(
        {"state_dir": state, "models": [{"name": f"m{i:02d}", "target": "y"} for i in range(models)]}
    )
    heald = build(settings, pool="inline")
    x, y = make_classification(n_samples=600, n_features=len(FEATURES), random_state=1)
    frame = pd.DataFrame(x, columns=FEATURES).assign(y=y)
    rng = np.random.default_rng(5)
    written = 0
    for i in range(models):
        name = f"m{i:02d}"
        onboard(
            heald.store,
            heald.registry,
            name=name,
            frame=frame,
            target="y",
            now=START,
            params=TrainParams(n_estimators=5),
        )
        rows: list[Observation] = []
        for minute in range(days * 24 * 60):
            at = START + timedelta(minutes=minute)
            rows.append(
                Observation(
                    at=at, model=name, source="artifact", metric="artifact_ok", value=1.0, evidence={"version": 1}
                )
            )
            if minute % 60 == 0:
                accuracy = float(0.85 + 0.05 * rng.standard_normal())
                features = {
                    f: {
                        "test": "ks",
                        "statistic": 0.02,
                        "pvalue": 0.5,
                        "effect": float(abs(rng.normal(0, 0.05))),
                        "effect_name": "ks",
                        "verdict": "no drift",
                    }
                    for f in FEATURES
                }
                rows += [
                    Observation(
                        at=at,
                        model=name,
                        source="performance",
                        metric="performance",
                        value=accuracy,
                        evidence={"version": 1, "rows": 500},
                    ),
                    Observation(
                        at=at,
                        model=name,
                        source="performance",
                        metric="accuracy_estimate",
                        value=accuracy,
                        evidence={"version": 1},
                    ),
                    Observation(
                        at=at,
                        model=name,
                        source="drift",
                        metric="drift_share",
                        value=0.0,
                        evidence={"version": 1, "rows": 500, "drifted": [], "features": features},
                    ),
                    Observation(at=at, model=name, source="intake", metric="batch_rows", value=500.0, evidence={}),
                ]
            if len(rows) >= 20_000:
                written += heald.store.add_observations(rows)
                rows = []
        written += heald.store.add_observations(rows)
        for k in range(3):
            at = START + timedelta(days=1 + k * days // 3)
            incident = heald.store.open_incident(
                Symptom(
                    at=at,
                    model=name,
                    kind=SymptomKind.DATA_DRIFT,
                    severity=Severity.WARNING,
                    score=0.5,
                    summary="drift",
                    evidence={},
                )
            )
            action = heald.store.plan_action(
                model=name,
                kind=ActionKind.RETRAIN,
                at=at,
                actor="heald",
                reason="drift",
                incident_id=incident.id,
                params={},
                cost=60.0,
            )
            heald.store.transition_action(action.id, ActionState.RUNNING, at=at, detail="")
            heald.store.transition_action(action.id, ActionState.SUCCEEDED, at=at + timedelta(minutes=5), detail="")
    return heald, written


def reuse(models: int, state: Path) -> object:
    """The heald of a state folder a previous run filled completely."""
    settings = Settings.model_validate(
        {"state_dir": state, "models": [{"name": f"m{i:02d}", "target": "y"} for i in range(models)]}
    )
    return build(settings, pool="inline")


def fill_note(seconds: float) -> str:
    return "filled by an earlier run and reused" if math.isnan(seconds) else f"filled in {seconds:.0f} s"


def timed(client: httpx.Client, path: str, cpu: list[float] | None = None) -> float:
    """Wall seconds of one request; its CPU seconds (this process: client and server threads) go to ``cpu``.

    On a loaded shared machine the wall time mostly measures the wait for a core; the CPU time does not."""
    started, used = time.perf_counter(), time.process_time()
    answer = client.get(path)
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu.append(time.process_time() - used)
    answer.raise_for_status()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--state", type=Path, help="state folder to keep the filled store in and reuse")
    args = parser.parse_args()
    models, days, repeats = (5, 3, 5) if args.quick else (20, 30, 15)
    logs.configure("warning")
    with tempfile.TemporaryDirectory() as tmp:
        state = args.state or Path(tmp)
        done = state / f"filled-{models}-{days}.txt"  # written only after a complete fill
        started = time.perf_counter()
        if done.is_file():
            heald, written = reuse(models, state), int(done.read_text(encoding="utf-8"))
            filled = float("nan")
        else:
            heald, written = fill(models, days, state)
            filled = time.perf_counter() - started
            done.write_text(str(written), encoding="utf-8")
        server = ApiServer(
            create_app(
                lambda: heald,
                Capture(heald.settings.landing, lambda: heald.store),
                Metrics(heald.store, heald.registry),
            ),
            "127.0.0.1",
            0,
        )  # type: ignore[arg-type]
        port = server.start()
        load = "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        paths = {
            "overview /": "/",
            "model page /ui/models/m00": "/ui/models/m00",
            "status JSON /status (peer)": "/status",
        }
        times: dict[str, list[float]] = {k: [] for k in paths}
        cpus: dict[str, list[float]] = {k: [] for k in paths}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for path in paths.values():
                timed(client, path)  # warm the caches once
            for _ in range(repeats):
                for label, path in paths.items():
                    times[label].append(timed(client, path, cpus[label]))
        server.stop()
        size = (state / "heald.db").stat().st_size
        heald.close()  # type: ignore[attr-defined]
    lines = [
        HEADING,
        "",
        f"Command: `.venv/bin/python bench/dashboard.py{' --quick' if args.quick else ''}"
        f"{f' --state {args.state}' if args.state else ''}` "
        f"({datetime.now(UTC):%Y-%m-%d}, "
        f"2-core shared machine). {models} models, {days} days of one-minute ticks: {written:,} observation rows, "
        f"SQLite file {size / 2**20:.0f} MiB ({fill_note(filled)}). Machine load before the requests: {load}. "
        f"Real HTTP on loopback, {repeats} rounds "
        "alternating the three requests. CPU ms = CPU time of the bench process (HTTP client and server threads) "
        "per request: what a request costs whatever the machine's load; wall time on a loaded 2-core machine is "
        "mostly the wait for a core.",
        "",
        "| request | median ms | p90 ms | vs /status | median CPU ms |",
        "|---|---:|---:|---:|---:|",
    ]
    peer = statistics.median(times["status JSON /status (peer)"])
    for label, values in times.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        median = statistics.median(values)
        cpu = statistics.median(cpus[label]) * 1000
        lines.append(f"| {label} | {median * 1000:.0f} | {p90 * 1000:.0f} | {median / peer:.2f}x | {cpu:.0f} |")
    overview = statistics.median(times["overview /"])
    lines += ["", f"Overview under 300 ms: {'yes' if overview < 0.3 else 'NO'} ({overview * 1000:.0f} ms median).", ""]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        write_section(text)


def write_section(text: str) -> None:
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if HEADING in current:
        before, _, rest = current.partition(HEADING)
        after = rest[rest.find("\n## ") :] if "\n## " in rest else ""
        current = before.rstrip() + "\n\n" + text + after
    else:
        current = current.rstrip() + "\n\n" + text
    RESULTS.write_text(current, encoding="utf-8")


if __name__ == "__main__":
    main()
