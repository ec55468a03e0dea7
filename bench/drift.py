"""Benchmark: does heald notice drift, without crying wolf, and is its drift check fast?

Part 1, detection. Synthetic streams from river (SEA, Agrawal, STAGGER, Hyperplane, RandomRBF; an abrupt
drift is two generators chained, since ``ConceptDriftStream(width=1)`` crashes) and scikit-learn data with
drift injected at a known row, replayed through heald's real loop: a model is onboarded on 5,000 pre-drift
rows, then labelled batches are dropped in the landing folder, one tick per batch. heald's alarm is the
first incident it opens of a data or model kind (data_drift, performance_drop, data_quality, anomaly);
its delay is the number of rows from the change to the end of that batch. In the same run river's ADWIN
watches the same static model's error stream row by row. Streams without drift give false alarms per
10,000 rows for both.

Part 2, speed. Reference 50k x 20 numeric columns, current 10k rows with 5 columns shifted: heald's check
(``pipeline.drift.compare`` against the profile made once at registration), a plain ``scipy.stats.ks_2samp``
loop, and Evidently's DataDriftPreset, each timed with ``time.perf_counter`` around the check alone on
data already in memory (median of repeats). Evidently runs in its own virtual environment (created here
under bench/.venv-evidently with pandas<3) as a subprocess that times itself the same way.

Run: .venv/bin/python bench/drift.py            (writes its section of bench/RESULTS.md)
     .venv/bin/python bench/drift.py --quick    (smaller, prints only)
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from river import drift as river_drift
from river.datasets import synth
from scipy import stats
from sklearn.datasets import make_classification

from daemon import logs
from daemon.compose import build
from daemon.config import ModelSettings, Monitor, Policy, Settings
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import Task
from pipeline.drift import compare, holm
from pipeline.profile import build_profile
from pipeline.train import TrainParams

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
HEADING = "## bench/drift.py: drift detection delay, false alarms and drift check speed"
ALARM_KINDS = {"data_drift", "performance_drop", "data_quality", "anomaly"}
TARGET = "y"
TRAIN_ROWS = 5000
BATCH = 500
FLOOR_MARGIN = 0.05  # the health floor an operator would set: holdout accuracy minus this


@dataclass(frozen=True, slots=True, kw_only=True)
class Stream:
    name: str
    kind: str  # what changes at the drift point
    make: Callable[[int, int], tuple[pd.DataFrame, int | None]]  # (rows, drift_at) -> frame, drift row


# -- streams --------------------------------------------------------------------------------------


def river_frame(generator: Any, rows: int) -> pd.DataFrame:
    # CSV headers are text: name integer keys (SEA's 0, 1, 2) so they read back as they were written.
    records = [
        {**{k if isinstance(k, str) else f"x{k}": v for k, v in x.items()}, TARGET: int(y)}
        for x, y in itertools.islice(generator, rows)
    ]
    return pd.DataFrame.from_records(records)


def chained(before: Callable[[], Any], after: Callable[[], Any] | None) -> Callable[[int, int], Any]:
    """Rows from ``before`` then, from ``drift_at`` on, from ``after`` (no drift if ``after`` is None)."""

    def make(rows: int, drift_at: int) -> tuple[pd.DataFrame, int | None]:
        if after is None:
            return river_frame(before(), rows), None
        head = river_frame(before(), drift_at)
        return pd.concat([head, river_frame(after(), rows - drift_at)], ignore_index=True), drift_at

    return make


def sklearn_stream(change: str | None) -> Callable[[int, int], tuple[pd.DataFrame, int | None]]:
    """make_classification rows; from ``drift_at`` on, three informative features shift or the concept flips."""

    def make(rows: int, drift_at: int) -> tuple[pd.DataFrame, int | None]:
        x, y = make_classification(
            n_samples=rows, n_features=12, n_informative=5, n_redundant=2, shuffle=False, random_state=3
        )
        order = np.random.default_rng(3).permutation(rows)
        x, y = x[order], y[order]
        if change == "shift":
            x[drift_at:, :3] += 0.5 * x[:drift_at, :3].std(axis=0)
        elif change == "flip":
            flip = x[drift_at:, 0] > 0
            y[drift_at:][flip] = 1 - y[drift_at:][flip]
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
        frame[TARGET] = y
        return frame, None if change is None else drift_at

    return make


def streams() -> list[Stream]:
    return [
        Stream(
            name="SEA",
            kind="concept: threshold 8 -> 7",
            make=chained(lambda: synth.SEA(0, seed=1), lambda: synth.SEA(2, seed=2)),
        ),
        Stream(
            name="Agrawal",
            kind="concept: function 0 -> 2",
            make=chained(lambda: synth.Agrawal(0, seed=1), lambda: synth.Agrawal(2, seed=2)),
        ),
        Stream(
            name="STAGGER",
            kind="concept: function 0 -> 1",
            make=chained(lambda: synth.STAGGER(0, seed=1), lambda: synth.STAGGER(1, seed=2)),
        ),
        Stream(
            name="Hyperplane",
            kind="concept: new hyperplane",
            make=chained(
                lambda: synth.Hyperplane(seed=1, n_features=10), lambda: synth.Hyperplane(seed=2, n_features=10)
            ),
        ),
        Stream(
            name="RandomRBF",
            kind="covariate + concept: new centroids",
            make=chained(
                lambda: synth.RandomRBF(seed_model=1, seed_sample=1, n_features=8),
                lambda: synth.RandomRBF(seed_model=2, seed_sample=2, n_features=8),
            ),
        ),
        Stream(name="sklearn shift", kind="covariate: 3 features +0.5 sd", make=sklearn_stream("shift")),
        Stream(name="sklearn flip", kind="concept: labels flip where x0 > 0", make=sklearn_stream("flip")),
    ]


def calm_streams() -> list[Stream]:
    return [
        Stream(name="SEA", kind="none", make=chained(lambda: synth.SEA(0, seed=1), None)),
        Stream(name="Agrawal", kind="none", make=chained(lambda: synth.Agrawal(0, seed=1), None)),
        Stream(name="STAGGER", kind="none", make=chained(lambda: synth.STAGGER(0, seed=1), None)),
        Stream(name="Hyperplane", kind="none", make=chained(lambda: synth.Hyperplane(seed=1, n_features=10), None)),
        Stream(
            name="RandomRBF",
            kind="none",
            make=chained(lambda: synth.RandomRBF(seed_model=1, seed_sample=1, n_features=8), None),
        ),
        Stream(name="sklearn", kind="none", make=sklearn_stream(None)),
    ]


# -- part 1: detection through the real loop ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Detection:
    stream: str
    kind: str
    rows: int
    drift_at: int | None
    heald_alarms: list[tuple[int, str]]  # (row at the end of the batch, incident kind)
    adwin_alarms: list[int]
    seconds: float


def settings_for(state: Path, floor: float) -> Settings:
    return Settings(
        state_dir=state,
        n_estimators=50,
        tick_seconds=3600,
        executor="inline",
        # No remediation during the benchmark: it measures noticing, and a retrain would change the model.
        policy=Policy(persistence=2, window=3, resolve_after=2, min_retrain_rows=10**9),
        # Host limits off: a busy benchmark machine is not a drift false alarm.
        monitor=Monitor(memory_percent=0, disk_percent=0, load_per_cpu=0, rss_mb=0),
        models=[ModelSettings(name="m", target=TARGET, task="classification", min_accuracy=floor)],
    )


def detect(stream: Stream, rows: int, drift_at: int, stop_at_alarm: bool) -> Detection:
    frame, change = stream.make(TRAIN_ROWS + rows, TRAIN_ROWS + drift_at)
    train, live = frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS:].reset_index(drop=True)
    change = None if change is None else change - TRAIN_ROWS
    state = Path(tempfile.mkdtemp(prefix="heald-bench-drift-"))
    started = time.perf_counter()
    try:
        clock = ManualClock()
        first = build(settings_for(state, 0.0), clock=clock, pool="inline")
        version = onboard(
            first.store,
            first.registry,
            name="m",
            frame=train,
            target=TARGET,
            now=clock.now(),
            task=Task.CLASSIFICATION,
            params=TrainParams(n_estimators=50, n_jobs=1, random_state=0),
            actor="bench",
        )
        model = first.registry.load(version)
        first.close()
        heald = build(settings_for(state, version.metrics["accuracy"] - FLOOR_MARGIN), clock=clock, pool="inline")
        try:
            alarms = replay(heald, clock, live, stop_at_alarm, change)
        finally:
            heald.close()
        adwin = adwin_alarms(model, live)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return Detection(
        stream=stream.name,
        kind=stream.kind,
        rows=len(live),
        drift_at=change,
        heald_alarms=alarms,
        adwin_alarms=adwin,
        seconds=time.perf_counter() - started,
    )


def replay(
    heald: Any, clock: ManualClock, live: pd.DataFrame, stop_at_alarm: bool, change: int | None
) -> list[tuple[int, str]]:
    landing = heald.settings.landing / "m"
    landing.mkdir(parents=True, exist_ok=True)
    alarms: list[tuple[int, str]] = []
    for start in range(0, len(live), BATCH):
        end = min(start + BATCH, len(live))
        live.iloc[start:end].to_csv(landing / f"batch-{start:07d}.csv", index=False)
        clock.advance(timedelta(hours=1))
        report = heald.loop.tick()
        for incident_id in report.opened:
            kind = heald.store.get_incident(incident_id).kind.value
            if kind in ALARM_KINDS:
                alarms.append((end, kind))
        if stop_at_alarm and change is not None and any(row > change for row, _ in alarms):
            break
    return alarms


def adwin_alarms(model: Any, live: pd.DataFrame) -> list[int]:
    """Rows at which ADWIN (river's defaults) flags the static model's 0/1 error stream."""
    errors = (model.predict(live.drop(columns=[TARGET])) != live[TARGET].to_numpy()).astype(float)
    detector = river_drift.ADWIN()
    found = []
    for row, error in enumerate(errors, start=1):
        detector.update(float(error))
        if detector.drift_detected:
            found.append(row)
    return found


def delay(alarms: list[int], change: int) -> int | None:
    after = [row - change for row in alarms if row > change]
    return after[0] if after else None


# -- part 2: speed --------------------------------------------------------------------------------


EVIDENTLY_SCRIPT = r"""
import json, statistics, sys, time
import evidently, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
repeats = int(sys.argv[3])
run = lambda: Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
snapshot = run()  # warm-up, as for the others
times = []
for _ in range(repeats):
    start = time.perf_counter()
    snapshot = run()
    times.append(time.perf_counter() - start)
drifted = []
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config.get("type", "").endswith("ValueDrift"):
        # Distances drift at or above the threshold, p-values below it.
        pvalue = "p_value" in config["method"]
        value, threshold = metric["value"], config["threshold"]
        if (value < threshold) if pvalue else (value >= threshold):
            drifted.append(config["column"])
print(json.dumps({"median_seconds": statistics.median(times), "drifted": sorted(drifted),
                  "version": evidently.__version__}))
"""


def evidently_python() -> Path:
    """bench/.venv-evidently/bin/python, created with Evidently and pandas<3 if it is not there yet."""
    venv = HERE / ".venv-evidently"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import evidently"], check=False, capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "evidently", "pandas<3"], check=True)
    return python


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def speed(ref_rows: int, cur_rows: int, columns: int, repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    names = [f"f{i:02d}" for i in range(columns)]
    reference = pd.DataFrame(rng.normal(size=(ref_rows, columns)), columns=names)
    current = pd.DataFrame(rng.normal(size=(cur_rows, columns)), columns=names)
    shifted = names[:5]
    for name in shifted:
        current[name] += 0.5
    start = time.perf_counter()
    profile = build_profile(reference)
    profile_seconds = time.perf_counter() - start
    heald_seconds, report = timed(lambda: compare(profile, current), repeats)
    ks_seconds, ks = timed(lambda: [stats.ks_2samp(reference[c], current[c]) for c in names], repeats)
    pvalues = np.array([r.pvalue for r in ks])
    ruled = holm(pvalues, 0.05) & (np.array([r.statistic for r in ks]) >= 0.1)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    reference.to_parquet(out / "reference.parquet", index=False)
    current.to_parquet(out / "current.parquet", index=False)
    python = evidently_python()
    done = subprocess.run(
        [
            str(python),
            "-c",
            EVIDENTLY_SCRIPT,
            str(out / "reference.parquet"),
            str(out / "current.parquet"),
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    evidently = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "shape": f"reference {ref_rows:,} x {columns}, current {cur_rows:,}",
        "shifted": shifted,
        "profile_seconds": profile_seconds,
        "heald_seconds": heald_seconds,
        "heald_drifted": report.drifted(),
        "ks_seconds": ks_seconds,
        "ks_drifted": [c for c, p in zip(names, pvalues, strict=True) if p < 0.05],
        "ks_ruled": [c for c, r in zip(names, ruled, strict=True) if r],
        "evidently_seconds": evidently["median_seconds"],
        "evidently_drifted": evidently["drifted"],
        "evidently_version": evidently["version"],
        "repeats": repeats,
    }


# -- report ---------------------------------------------------------------------------------------


def fmt(value: int | None) -> str:
    return "missed" if value is None else f"{value:,}"


def markdown(drifts: list[Detection], calms: list[Detection], fast: dict[str, Any], command: str) -> str:
    lines = [HEADING, "", f"Command: `{command}` (2-core machine shared with other work).", ""]
    lines += [
        f"Detection: model onboarded on {TRAIN_ROWS:,} pre-drift rows (RandomForest, 50 trees); labelled batches of "
        f"{BATCH} rows through the real loop; health floor = holdout accuracy - {FLOOR_MARGIN}; persistence 2 of 3, "
        "Holm at alpha 0.05, effect floors KS 0.1 / PSI 0.1. Delay = rows from the change to the end of the batch "
        "whose tick opened heald's first incident (any of data_drift, performance_drop, data_quality, anomaly); "
        "ADWIN (river defaults) reads the same static model's 0/1 errors row by row.",
        "",
        "| stream | drift | change at row | heald delay (rows) | heald alarm | ADWIN delay (rows) | "
        "false alarms before change: heald / ADWIN |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in drifts:
        assert d.drift_at is not None
        heald_rows = [row for row, _ in d.heald_alarms]
        first = next((kind for row, kind in d.heald_alarms if row > d.drift_at), "-")
        before = (len([r for r in heald_rows if r <= d.drift_at]), len([r for r in d.adwin_alarms if r <= d.drift_at]))
        lines.append(
            f"| {d.stream} | {d.kind} | {d.drift_at:,} | {fmt(delay(heald_rows, d.drift_at))} | {first} | "
            f"{fmt(delay(d.adwin_alarms, d.drift_at))} | {before[0]} / {before[1]} |"
        )
    lines += [
        "",
        "| no-drift stream | rows | heald alarms | heald per 10,000 rows | ADWIN alarms | ADWIN per 10,000 rows |",
        "|---|---|---|---|---|---|",
    ]
    for d in calms:
        per = 10_000 / d.rows
        lines.append(
            f"| {d.stream} | {d.rows:,} | {len(d.heald_alarms)} | {len(d.heald_alarms) * per:.2f} | "
            f"{len(d.adwin_alarms)} | {len(d.adwin_alarms) * per:.2f} |"
        )
    total = sum(d.rows for d in calms)
    heald_total = sum(len(d.heald_alarms) for d in calms)
    adwin_total = sum(len(d.adwin_alarms) for d in calms)
    lines.append(
        f"| **all** | {total:,} | {heald_total} | {heald_total * 10_000 / total:.2f} | {adwin_total} | "
        f"{adwin_total * 10_000 / total:.2f} |"
    )
    f = fast
    lines += [
        "",
        f"Speed ({f['shape']}; columns {', '.join(f['shifted'])} shifted by 0.5 sd; median of {f['repeats']} runs "
        "after a warm-up, `time.perf_counter` around the check alone, data in memory):",
        "",
        "| check | seconds | x faster than Evidently | drifted columns |",
        "|---|---|---|---|",
        f"| heald `compare` (profile made once at registration: {f['profile_seconds']:.3f} s) | "
        f"{f['heald_seconds']:.4f} | {f['evidently_seconds'] / f['heald_seconds']:.0f} | "
        f"{', '.join(f['heald_drifted'])} |",
        f"| plain `scipy.stats.ks_2samp` loop, p < 0.05 | {f['ks_seconds']:.4f} | "
        f"{f['evidently_seconds'] / f['ks_seconds']:.0f} | {', '.join(f['ks_drifted'])} |",
        f"| the same loop's results under heald's rules (Holm, KS >= 0.1) | - | - | {', '.join(f['ks_ruled'])} |",
        f"| Evidently {f['evidently_version']} DataDriftPreset (own venv, pandas<3) | "
        f"{f['evidently_seconds']:.3f} | 1 | {', '.join(f['evidently_drifted'])} |",
        "",
        f"heald vs the ks_2samp loop: {f['ks_seconds'] / f['heald_seconds']:.1f}x faster. heald and Evidently flag "
        f"the same columns: {f['heald_drifted'] == f['evidently_drifted']}; so does the ks_2samp loop under heald's "
        f"rules: {f['heald_drifted'] == f['ks_ruled']}. The plain loop at p < 0.05, uncorrected for "
        f"{len(f['shifted']) * 4} tests, also flags unshifted columns: the false alarms multiple-testing "
        "correction exists to prevent.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (or append it), leaving the others alone."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if HEADING in old:
        head, rest = old.split(HEADING, 1)
        tail = rest[rest.find("\n## ") :] if "\n## " in rest else ""
        new = head + text + tail.lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def progress(items: list[Stream]) -> Iterator[Stream]:
    for item in items:
        print(f"  {item.name} ({item.kind})", file=sys.stderr, flush=True)
        yield item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller streams and data; print only")
    args = parser.parse_args()
    logs.configure("error", stream=sys.stderr)
    rows, drift_at = (8_000, 5_000) if args.quick else (30_000, 20_000)
    calm_rows = 8_000 if args.quick else 30_000
    print("detection on drifting streams", file=sys.stderr)
    drifts = [detect(s, rows, drift_at, stop_at_alarm=True) for s in progress(streams())]
    print("false alarms on streams without drift", file=sys.stderr)
    calms = [detect(s, calm_rows, calm_rows, stop_at_alarm=False) for s in progress(calm_streams())]
    print("speed", file=sys.stderr)
    fast = speed(*((20_000, 5_000, 20, 3) if args.quick else (50_000, 10_000, 20, 5)))
    command = "python bench/drift.py" + (" --quick" if args.quick else "")
    text = markdown(drifts, calms, fast, command)
    print(text)
    if not args.quick:
        write_section(text)


if __name__ == "__main__":
    main()
