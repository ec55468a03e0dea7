"""CLI start-up benchmark: how long `healctl status --json` takes to start and answer, side by side with
importing the ML stack alone (`python -c "import sklearn.ensemble, pandas"`), the issue's yardstick.

One state folder holds a trained model with a champion (so `status` reads real rows); then every command
below runs as a fresh process, in alternation (A B C ... A B C ...), so a busy moment of the shared machine
falls on all of them alike. Medians of ``--runs`` runs each, and ratios to the yardstick. Then one
``python -X importtime -c "import daemon.cli"`` says where the CLI's own import time goes (SQLAlchemy,
pydantic, rich...), the next cost after the ML stack left.

    .venv/bin/python bench/cli.py              # 15 runs of each command
    .venv/bin/python bench/cli.py --runs 30
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.compose import build
from daemon.config import load
from daemon.onboard import onboard
from pipeline.train import TrainParams

BIN = Path(sys.executable).parent
YARDSTICK = "import sklearn.ensemble, pandas"


def prepare(folder: Path) -> Path:
    """A config whose store holds model ``churn`` with a champion; returns the config's path."""
    config = folder / "heald.toml"
    config.write_text(f'state_dir = "{folder / "state"}"\n', encoding="utf-8")
    heald = build(load(config, environ={}), pool="inline")
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 600), rng.normal(0, 1, 600)
    frame = pd.DataFrame({"a": a, "b": b, "c": rng.choice(["x", "y"], 600), "churned": (a + b > 0).astype(int)})
    params = TrainParams(n_estimators=20, max_depth=6, n_jobs=1)
    now = datetime.now(UTC)
    onboard(heald.store, heald.registry, name="churn", frame=frame, target="churned", now=now, params=params)
    heald.close()
    return config


def commands(config: Path) -> dict[str, list[str]]:
    python = str(BIN / "python")
    healctl = str(BIN / "healctl")
    return {
        "healctl status --json": [healctl, "status", "--json", "--config", str(config)],
        "healctl --help": [healctl, "--help"],
        "healctl models churn": [healctl, "models", "churn", "--config", str(config)],
        f'python -c "{YARDSTICK}"': [python, "-c", YARDSTICK],
        'python -c "import sqlalchemy"': [python, "-c", "import sqlalchemy"],
        'python -c "pass"': [python, "-c", "pass"],
    }


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, check=False, capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return elapsed


def import_costs(env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """Time ``import daemon.cli`` spends in each top-level package's own modules (self time), largest first."""
    result = subprocess.run(
        [str(BIN / "python"), "-X", "importtime", "-c", "import daemon.cli"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    costs: dict[str, float] = defaultdict(float)
    for line in result.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        costs[fields[2].strip().split(".")[0]] += int(fields[0]) / 1e6
    return sorted(costs.items(), key=lambda item: -item[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (at least 10)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALD_")}
    with tempfile.TemporaryDirectory() as tmp:
        runs = commands(prepare(Path(tmp)))
        times: dict[str, list[float]] = {name: [] for name in runs}
        for argv in runs.values():  # one warm-up each: the page cache, not the first run, is measured
            timed(argv, env)
        for _ in range(max(args.runs, 10)):
            for name, argv in runs.items():
                times[name].append(timed(argv, env))
        costs = import_costs(env)
    yard = statistics.median(times[f'python -c "{YARDSTICK}"'])
    print(f"# {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {args.runs} runs each")
    print()
    print("| command | median s | min s | max s | ratio to the yardstick |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.3f} | {min(values):.3f} | {max(values):.3f} | {median / yard:.2f} |")
    print()
    print("Where `import daemon.cli` spends its time, by top-level package (self time, one `-X importtime` run):")
    print()
    for package, seconds in costs:
        print(f"- {package}: {seconds * 1000:.0f} ms")
    status = statistics.median(times["healctl status --json"])
    verdict = "holds" if status < yard / 2 else "does NOT hold"
    print()
    print(f"`healctl status --json` / yardstick = {status / yard:.2f} (must be < 0.5): {verdict}")


if __name__ == "__main__":
    main()
