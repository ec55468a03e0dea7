"""Memory benchmark: a heald serving one model over real HTTP and retraining it N times keeps a flat RSS.

Each round serves predictions through the API (uvicorn on loopback), drops a labelled batch in the landing
folder, runs one tick of the loop (intake, sensors, analysis, planning) and then a retrain through the
journal, exactly as `healctl retrain` does; the retrain always promotes (min_gain = -1), so every round makes
a new champion: the worst case for a cache that kept every version. RSS is read after each round.

The peer is heald's registry as it was before the cache was bounded (every version ever loaded or
registered kept): ``--peer unbounded`` runs the same rounds with it, for the side-by-side ratio.

    .venv/bin/python bench/memory.py                      # 50 retrains, the bounded cache
    .venv/bin/python bench/memory.py --peer unbounded     # the same with the old, unbounded cache
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.api import ApiServer, create_app
from daemon.capture import Capture
from daemon.compose import build
from daemon.config import ModelSettings, Policy, Settings
from daemon.metrics import Metrics
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.registry import ModelRegistry
from knowledge.values import ActionKind, ActionState
from pipeline.train import TrainParams

FLAT = 0.20  # the bound: RSS within 20 % of its value after the 5th retrain


def rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
    a, b = rng.normal(0, 1, n), rng.normal(0, 1, n)
    c = rng.choice(["red", "green", "blue"], n)
    return pd.DataFrame({"a": a, "b": b, "c": c, "y": (a + b > 0).astype(int)})


def unbounded(registry: ModelRegistry, key: tuple[str, int, str], estimator: Any) -> None:
    registry._cache[key] = estimator  # the peer: remember everything, as before


def run(retrains: int, trees: int, peer: str) -> list[float]:
    if peer == "unbounded":
        ModelRegistry._remember = unbounded  # type: ignore[method-assign]
    rng = np.random.default_rng(5)
    process = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="heald-memory-") as tmp:
        settings = Settings.model_validate(
            {
                "state_dir": Path(tmp) / "state",
                "n_estimators": trees,
                "executor": "inline",
                "api_token": "bench",
                "policy": Policy(min_gain=-1.0, min_retrain_rows=300, cooldown_seconds=0),
                "models": [ModelSettings(name="m", target="y", task="classification")],
            }
        )
        clock = ManualClock()
        heald = build(settings, clock=clock, pool="inline")
        onboard(
            heald.store,
            heald.registry,
            name="m",
            frame=rows(1500, rng),
            target="y",
            now=clock.now(),
            params=TrainParams(n_estimators=trees, n_jobs=1),
        )
        capture = Capture(settings.landing, lambda: heald.store)
        server = ApiServer(create_app(lambda: heald, capture, Metrics(heald.store, heald.registry)), "127.0.0.1", 0)
        port = server.start()
        record = heald.store.get_model("m")
        rss: list[float] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for i in range(1, retrains + 1):
                since = clock.now()
                clock.advance(timedelta(minutes=10))
                served = rows(200, rng).drop(columns="y").to_dict(orient="records")
                assert client.post("/models/m/predict", json={"rows": served}).status_code == 200
                landing = settings.landing / "m"
                landing.mkdir(parents=True, exist_ok=True)
                rows(600, rng).to_csv(landing / f"labelled-{i:03d}.csv", index=False)
                capture.flush(clock.now())
                heald.loop.tick()
                clock.advance(timedelta(minutes=1))
                action = heald.store.plan_action(
                    model="m",
                    kind=ActionKind.RETRAIN,
                    at=clock.now(),
                    actor="healctl",
                    reason="memory bench",
                    params={"since": since.isoformat()},
                )
                heald.loop.start(action, record, clock.now())
                heald.loop.collect(clock.now())
                done = heald.store.get_action(action.id)
                if done.state is not ActionState.SUCCEEDED:
                    raise SystemExit(f"retrain {i} did not succeed: {done.error}")
                rss.append(process.memory_info().rss / 2**20)
                print(
                    f"retrain {i:3d}: champion v{heald.registry.champion('m').number}, "  # type: ignore[union-attr]
                    f"cached {len(heald.registry.held())}, rss {rss[-1]:.1f} MiB",
                    flush=True,
                )
        server.stop()
        heald.close()
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrains", type=int, default=50)
    parser.add_argument("--trees", type=int, default=50, help="n_estimators of every version")
    parser.add_argument("--peer", choices=["none", "unbounded"], default="none")
    args = parser.parse_args()
    rss = run(args.retrains, args.trees, args.peer)
    base = rss[4] if len(rss) >= 5 else rss[0]
    after = rss[4:] if len(rss) >= 5 else rss
    growth = max(after) / base - 1
    print(f"\n{platform.python_version()} on {platform.machine()}, {psutil.cpu_count()} cores, peer={args.peer}")
    print(f"RSS after retrain 5: {base:.1f} MiB; max after it: {max(after):.1f} MiB; last: {rss[-1]:.1f} MiB")
    marks = ", ".join(f"#{i}: {rss[i - 1]:.1f}" for i in (1, 5, 10, 20, 30, 40, 50) if i <= len(rss))
    print(f"RSS (MiB) by retrain: {marks}")
    verdict = "holds" if growth <= FLAT else "does NOT hold"
    print(f"growth after the 5th retrain: {growth:+.1%} (bound {FLAT:.0%}): {verdict}")


if __name__ == "__main__":
    main()
