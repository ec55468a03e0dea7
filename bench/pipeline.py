"""Benchmark: heald's managed pipeline against a plain scikit-learn script doing the same steps.

Both sides validate, engineer features and train a 50-tree RandomForest on the same generated 100k x 50
mixed table (35 numeric columns with gaps and outliers, 15 categorical ones), measured side by side in one
run with the order alternating between repetitions. heald's figure is the sum of its validate, features
and train stages as its runner records them (so it includes writing every stage's outputs for resume,
fingerprinting them, and the manifest); the plain script does the same computations in memory and keeps
nothing. Cross-validation and tuning are off on both sides (cv_folds = 0, tuning = none) so that the
comparison is of the pipeline around one fit. Reports medians and the ratio, and records them in
bench/RESULTS.md under this benchmark's own heading.

    .venv/bin/python bench/pipeline.py            # 100k x 50, 3 repetitions per side
    .venv/bin/python bench/pipeline.py --quick    # 20k rows, 1 repetition (a smoke run)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.runner import Runner
from pipeline.settings import RunConfig
from pipeline.stages import standard_stages
from pipeline.train import TrainParams, TuningParams, available_cores

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "## Pipeline overhead: heald vs plain scikit-learn (bench/pipeline.py)"
TREES = 50


def table(rows: int, numeric: int = 35, categorical: int = 15, seed: int = 0) -> pd.DataFrame:
    """A mixed table with gaps, outliers and a label that depends on numbers and categories."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(numeric):
        column = rng.normal(0, 1 + i % 5, rows)
        column[rng.random(rows) < 0.03] = np.nan
        column[rng.random(rows) < 0.001] *= 1000
        data[f"n{i:02d}"] = column
    for i in range(categorical):
        levels = np.array([f"c{i}_{k}" for k in range(3 + 2 * i)], dtype=object)
        column = rng.choice(levels, rows)
        column[rng.random(rows) < 0.02] = None
        data[f"c{i:02d}"] = column
    frame = pd.DataFrame(data)
    score = np.nan_to_num(frame["n00"]) + 0.5 * np.nan_to_num(frame["n01"]) + (frame["c00"] == "c0_1") * 1.2
    frame["label"] = np.where(score + rng.normal(0, 1, rows) > 0.3, "yes", "no")
    return frame


def plain(frame: pd.DataFrame) -> dict[str, float]:
    """The same steps as a plain script would write them, timed per phase (wall and CPU seconds)."""
    marks = [(time.perf_counter(), time.process_time())]
    wall = _plain(frame, lambda: marks.append((time.perf_counter(), time.process_time())))
    del wall
    names = ["validate", "features", "train"]
    out = {n: marks[i + 1][0] - marks[i][0] for i, n in enumerate(names)}
    out.update({f"cpu_{n}": marks[i + 1][1] - marks[i][1] for i, n in enumerate(names)})
    return out


def _plain(frame: pd.DataFrame, mark: Any) -> None:
    target = "label"
    features = [c for c in frame.columns if c != target]
    # validate: missing, duplicates, infinities, text that holds numbers, constant columns, the target
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in features if c not in numeric]
    frame[features].isna().sum()
    int(frame.duplicated().sum())
    np.isinf(frame[numeric].to_numpy()).sum()
    for c in categorical:
        pd.to_numeric(pd.Series(frame[c].dropna().unique()), errors="coerce")
    frame[features].nunique()
    frame[target].value_counts()
    np.nanquantile(frame[numeric].to_numpy(), [0.25, 0.75], axis=0)  # the abnormal-values check
    mark()
    # features: split, drop correlated numbers, clip at quantiles, impute, scale, one-hot, drop constants
    learn, _test = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame[target])
    corr = np.abs(np.corrcoef(learn[numeric].fillna(learn[numeric].median()).to_numpy()[::4], rowvar=False))
    keep = [c for j, c in enumerate(numeric) if not any(corr[i, j] > 0.95 for i in range(j))]
    low, high = learn[keep].quantile(0.01), learn[keep].quantile(0.99)
    prep = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        (
                            "numeric",
                            Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                            keep,
                        ),
                        (
                            "categorical",
                            Pipeline(
                                [
                                    ("impute", SimpleImputer(strategy="most_frequent")),
                                    (
                                        "encode",
                                        OneHotEncoder(
                                            handle_unknown="infrequent_if_exist", max_categories=50, sparse_output=False
                                        ),
                                    ),
                                ]
                            ),
                            categorical,
                        ),
                    ]
                ),
            ),
            ("varying", VarianceThreshold(0.0)),
        ]
    )
    x_learn = learn[keep + categorical].copy()
    x_learn[keep] = x_learn[keep].clip(low, high, axis=1)
    matrix = prep.fit_transform(x_learn)
    mark()
    RandomForestClassifier(n_estimators=TREES, n_jobs=available_cores(), random_state=0).fit(matrix, learn[target])
    mark()


class CpuListener:
    """Hears the runner's stage changes and notes the CPU seconds each stage used (all threads)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def stage_changed(self, run: Any, record: Any) -> None:
        if record.status == "running" and record.attempts == 1:
            self.started[record.stage] = time.process_time()
        elif record.status == "succeeded":
            self.cpu[record.stage] = time.process_time() - self.started[record.stage]


def heald(path: Path, folder: Path) -> dict[str, float]:
    config = RunConfig(
        model="bench",
        data=[str(path)],
        target="label",
        task="classification",
        train=TrainParams(n_estimators=TREES),
        tuning=TuningParams(tuning="none", cv_folds=0),
    )
    listener = CpuListener()
    run = Runner(standard_stages(), listener=listener).run(config, folder)
    run.record.raise_for_failure()
    seconds = {s.stage: s.seconds for s in run.record.stages}
    seconds.update({f"cpu_{k}": v for k, v in listener.cpu.items()})
    seconds["saving"] = sum(float(s.summary.get("save_seconds", 0.0)) for s in run.record.stages[1:4])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20k rows, one repetition, nothing recorded")
    args = parser.parse_args()
    rows, reps = (20_000, 1) if args.quick else (args.rows, args.repetitions)
    frame = table(rows)
    work = Path(tempfile.mkdtemp(prefix="heald-bench-"))
    path = work / "table.parquet"
    frame.to_parquet(path, index=False)
    frame = pd.read_parquet(path)  # both sides see the same dtypes
    timings: dict[str, list[dict[str, float]]] = {"heald": [], "plain": []}
    for rep in range(reps):
        order = ["heald", "plain"] if rep % 2 == 0 else ["plain", "heald"]
        for side in order:
            if side == "heald":
                timings[side].append(heald(path, work / f"run{rep}"))
            else:
                timings[side].append(plain(frame.copy()))
            shown = timings[side][-1].items()
            print(f"rep {rep + 1} {side}: " + ", ".join(f"{k} {v:.2f}s" for k, v in shown), flush=True)
    report(timings, rows, frame.shape[1] - 1, reps, args.quick)


def report(timings: dict[str, list[dict[str, float]]], rows: int, columns: int, reps: int, quick: bool) -> None:
    phases = ["validate", "features", "train"]

    def median(side: str, phase: str | None) -> float:
        values = [sum(t[p] for p in phases) if phase is None else t[phase] for t in timings[side]]
        return statistics.median(values)

    def cpu(side: str, phase: str | None) -> float:
        keys = [f"cpu_{p}" for p in phases] if phase is None else [f"cpu_{phase}"]
        return statistics.median(sum(t[k] for k in keys) for t in timings[side])

    def fastest(side: str, phase: str | None) -> float:
        return min(sum(t[p] for p in phases) if phase is None else t[phase] for t in timings[side])

    lines = [
        HEADING,
        "",
        f"{rows:,} rows x {columns} columns (35 numeric with 3 % gaps and rare outliers, 15 categorical), "
        f"binary label; RandomForest of {TREES} trees on {available_cores()} cores; cross-validation and tuning off "
        f"on both sides; medians of {reps} interleaved repetitions per side. Python {platform.python_version()}.",
        "",
        "| phase | heald median (s) | plain median (s) | heald / plain | heald min (s) | plain min (s) |",
        "|---|---|---|---|---|---|",
    ]
    for phase in [*phases, None]:
        h, p = median("heald", phase), median("plain", phase)
        h_min, p_min = fastest("heald", phase), fastest("plain", phase)
        name = phase or "**validate + features + train**"
        lines.append(f"| {name} | {h:.2f} | {p:.2f} | {h / p:.3f} | {h_min:.2f} | {p_min:.2f} |")
    lines += [
        "",
        "CPU seconds (all threads; far less sensitive than wall time to other jobs on the shared cores):",
        "",
        "| phase | heald median CPU (s) | plain median CPU (s) | heald / plain |",
        "|---|---|---|---|",
    ]
    for phase in [*phases, None]:
        h_cpu, p_cpu = cpu("heald", phase), cpu("plain", phase)
        name = phase or "**validate + features + train**"
        lines.append(f"| {name} | {h_cpu:.2f} | {p_cpu:.2f} | {h_cpu / p_cpu:.3f} |")
    total_h, total_p = median("heald", None), median("plain", None)
    cpu_ratio = cpu("heald", None) / cpu("plain", None)
    ingest = statistics.median(t["ingest"] for t in timings["heald"])
    saving = statistics.median(t["saving"] for t in timings["heald"])
    lines += [
        "",
        f"heald's overhead over plain scikit-learn: **{(total_h / total_p - 1) * 100:+.1f} %** in wall time, "
        f"**{(cpu_ratio - 1) * 100:+.1f} %** in CPU time (medians). "
        f"Of heald's validate + features + train, {saving:.2f} s (median) went to writing the stages' outputs "
        "for resume (the engineered training matrix as float32 .npy, the split rows as Parquet, the fitted "
        "preprocessing and the forest as skops). "
        f"heald also spent {ingest:.2f} s in its ingest stage (reading, describing and snapshotting the "
        "table), which is not counted: the plain script was handed the frame.",
        "",
        f"Command: `.venv/bin/python bench/pipeline.py --repetitions {reps}`",
        "",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if not quick:
        record(text)


def record(section: str) -> None:
    """Replace this benchmark's section of RESULTS.md (or add it), leaving the other sections alone."""
    existing = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n\n"
    if HEADING in existing:
        before, rest = existing.split(HEADING, 1)
        after = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        existing = before + section + ("\n" + after if after else "")
    else:
        existing = existing.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(existing, encoding="utf-8")


if __name__ == "__main__":
    main()
