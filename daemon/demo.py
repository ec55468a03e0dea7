"""The demo: heald on embedded defaults, healing a drift and a corrupted artifact in simulated time.

It trains a first model on data it generates, then replays a labelled stream one batch per simulated hour
through the real loop (intake from the landing folder, sensors, analyzer, planner, actuators). An abrupt
drift hits at ``drift_at``; later the champion's file is corrupted on disk. Each batch is first predicted
by the serving champion, then dropped with its labels in the landing folder (test-then-train), and a
static copy of version 1 predicts the same rows to show what would have happened without heald.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daemon.compose import Heald, build
from daemon.config import ModelSettings, Policy, Settings, SourceSettings
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import IncidentStatus
from pipeline.train import TrainParams
from sensors.host import HostGauge

MODEL = "churn"
TARGET = "churned"


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    ticks: int = 48
    batch_rows: int = 400
    drift_at: int = 10
    corrupt_at: int = 30
    seed: int = 7


@dataclass(slots=True, kw_only=True)
class TickView:
    """One simulated hour, as the live view shows it."""

    tick: int
    champion: int | None
    healed_accuracy: float
    static_accuracy: float
    open_incidents: int
    events: list[str] = field(default_factory=list)


def generate(rows: int, *, drifted: bool, rng: np.random.Generator) -> pd.DataFrame:
    """Customer rows; after the drift, usage moves and churn follows price rather than support calls."""
    tenure = rng.gamma(2.0, 12.0, rows)
    usage = rng.normal(50, 15, rows) + (25 if drifted else 0)
    price = rng.normal(30, 8, rows) * (1.4 if drifted else 1.0)
    calls = rng.poisson(2, rows).astype(float)
    region = rng.choice(["north", "south", "east", "west"], rows, p=[0.4, 0.3, 0.2, 0.1])
    if drifted:
        score = 0.12 * (price - 42) - 0.03 * (usage - 75) - 0.02 * tenure
    else:
        score = 0.9 * (calls - 2) - 0.04 * (tenure - 24) - 0.02 * (usage - 50)
    flip = rng.random(rows) < 0.05
    churned = ((score > 0) ^ flip).astype(int)
    return pd.DataFrame(
        {"tenure": tenure, "usage": usage, "price": price, "calls": calls, "region": region, TARGET: churned}
    )


# Where each simulated hour's labelled batch goes: the landing folder by default, or a table a sql source reads.
Feed = Callable[[Heald, int, pd.DataFrame], None]


def drop_in_landing(heald: Heald, tick: int, batch: pd.DataFrame) -> None:
    landing = heald.settings.landing / MODEL
    landing.mkdir(parents=True, exist_ok=True)
    batch.to_csv(landing / f"batch-{tick:04d}.csv", index=False)


def demo_settings(state: Path, source: SourceSettings | None = None) -> Settings:
    return Settings(
        state_dir=state,
        n_estimators=60,
        max_depth=12,
        tick_seconds=3600,
        executor="inline",
        policy=Policy(stable_after=4, min_retrain_rows=600),
        models=[
            ModelSettings(
                name=MODEL, target=TARGET, task="classification", min_accuracy=0.8, source=source or SourceSettings()
            )
        ],
    )


def write_config(settings: Settings, path: Path) -> None:
    """A TOML config for the demo's state, so healctl can inspect it afterwards."""
    path.write_text(
        f'state_dir = "{settings.state_dir}"\n'
        f"n_estimators = {settings.n_estimators}\nmax_depth = {settings.max_depth}\n"
        f"tick_seconds = {settings.tick_seconds}\n\n"
        f'[[models]]\nname = "{MODEL}"\ntarget = "{TARGET}"\ntask = "classification"\nmin_accuracy = 0.8\n',
        encoding="utf-8",
    )


def run(
    state: Path,
    scenario: Scenario,
    on_tick: Callable[[TickView], None] | None = None,
    host_gauge: HostGauge | None = None,
    source: SourceSettings | None = None,
    feed: Feed = drop_in_landing,
) -> dict[str, Any]:
    """Play the scenario in ``state`` (wiped first); returns the figures for the summary.

    ``host_gauge`` replaces the real host readings (tests pass a fake: a loaded machine must not change them);
    ``source`` and ``feed`` play it with another source, e.g. rows inserted into a table a sql source reads.
    """
    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True)
    settings = demo_settings(state, source)
    write_config(settings, state / "heald.toml")
    clock = ManualClock()
    heald = build(settings, clock=clock, pool="inline", host_gauge=host_gauge)
    try:
        return _play(heald, clock, scenario, on_tick, feed)
    finally:
        heald.close()


def _play(
    heald: Heald,
    clock: ManualClock,
    scenario: Scenario,
    on_tick: Callable[[TickView], None] | None,
    feed: Feed = drop_in_landing,
) -> dict[str, Any]:
    rng = np.random.default_rng(scenario.seed)
    first = onboard(
        heald.store,
        heald.registry,
        name=MODEL,
        frame=generate(3000, drifted=False, rng=rng),
        target=TARGET,
        now=clock.now(),
        params=TrainParams(n_estimators=60, max_depth=12, random_state=scenario.seed),
        actor="demo",
    )
    static = heald.registry.load(first)
    healed, unhealed = [], []
    for tick in range(1, scenario.ticks + 1):
        clock.advance(timedelta(hours=1))
        events = []
        if tick == scenario.corrupt_at:
            events.append(_corrupt(heald))
        batch = generate(scenario.batch_rows, drifted=tick >= scenario.drift_at, rng=rng)
        features = batch.drop(columns=[TARGET])
        healed.append(_accuracy(heald, features, batch[TARGET]))
        unhealed.append(float((static.predict(features) == batch[TARGET]).mean()))
        feed(heald, tick, batch)
        report = heald.loop.tick()
        events += [f"incident #{i} opened" for i in report.opened]
        events += [f"action #{a} started" for a in report.started]
        events += [f"incident #{i} resolved" for i in report.resolved]
        if tick == scenario.drift_at:
            events.insert(0, "drift begins")
        if on_tick:
            champion = heald.registry.champion(MODEL)
            on_tick(
                TickView(
                    tick=tick,
                    champion=champion.number if champion else None,
                    healed_accuracy=healed[-1],
                    static_accuracy=unhealed[-1],
                    open_incidents=len(heald.store.active_incidents(MODEL)),
                    events=events,
                )
            )
    after = slice(scenario.drift_at - 1, None)
    return {
        "ticks": scenario.ticks,
        "accuracy_with_healing": float(np.mean(healed[after])),
        "accuracy_without_healing": float(np.mean(unhealed[after])),
        "accuracy_before_drift": float(np.mean(healed[: scenario.drift_at - 1])),
        "sick_share_with_healing": float(np.mean(np.array(healed[after]) < 0.8)),
        "sick_share_without_healing": float(np.mean(np.array(unhealed[after]) < 0.8)),
        "versions": len(heald.store.list_versions(MODEL)),
        "resolved": len(heald.store.list_incidents(status=[IncidentStatus.RESOLVED.value])),
    }


def _accuracy(heald: Heald, features: pd.DataFrame, labels: pd.Series[Any]) -> float:
    """What the service would have served: the champion's predictions, before the labels are known."""
    champion = heald.registry.champion(MODEL)
    if champion is None:
        return 0.0
    estimator = heald.registry.load(champion)
    return float((estimator.predict(features) == labels).mean())


def _corrupt(heald: Heald) -> str:
    champion = heald.registry.champion(MODEL)
    assert champion is not None
    path = heald.settings.artifacts / champion.artifact
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64
    path.write_bytes(bytes(data))
    return f"champion v{champion.number} file corrupted"
