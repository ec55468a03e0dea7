"""The demo's screen: a live view while the stream replays, then the incidents and a before/after summary."""

from __future__ import annotations

import json
import sys
from collections import deque
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from daemon import logs, output, views
from daemon.cli import incidents_table
from daemon.compose import build
from daemon.demo import Scenario, TickView, demo_settings, run


def play(state: Path, *, ticks: int, as_json: bool) -> None:
    console = Console(stderr=as_json)
    state.mkdir(parents=True, exist_ok=True)
    log_path = state.parent / f"{state.name}.log"
    with log_path.open("w", encoding="utf-8") as log_file:
        logs.configure("info", stream=log_file, console=False)
        scenario = Scenario(ticks=ticks, corrupt_at=min(30, ticks - 10))
        recent: deque[TickView] = deque(maxlen=12)
        if as_json:
            summary = run(state, scenario)
        else:
            console.print(f"[bold]heald demo[/bold]: {ticks} simulated hours, state in {state}, logs in {log_path}")
            with Live(_frame(recent, ticks), console=console, refresh_per_second=8) as live:

                def show(view: TickView) -> None:
                    recent.append(view)
                    live.update(_frame(recent, ticks))

                summary = run(state, scenario, on_tick=show)
    heald = build(demo_settings(state), pool="inline")
    try:
        incidents = views.incidents_view(heald.store, limit=100)
    finally:
        heald.close()
    if as_json:
        sys.stdout.write(json.dumps(incidents, indent=2) + "\n")
        return
    output.show(console, incidents_table(incidents))
    console.print(_summary(summary))
    console.print(f"Inspect it yourself: healctl incidents --config {state / 'heald.toml'}")


def _frame(recent: deque[TickView], ticks: int) -> Panel:
    table = Table(expand=True)
    for column in ("hour", "champion", "accuracy (heald)", "accuracy (no healing)", "open", "events"):
        table.add_column(column)
    for v in recent:
        table.add_row(
            str(v.tick),
            f"v{v.champion}" if v.champion else "-",
            _acc(v.healed_accuracy),
            _acc(v.static_accuracy),
            str(v.open_incidents),
            "; ".join(v.events),
        )
    done = recent[-1].tick if recent else 0
    return Panel(Group(table), title=f"simulated hour {done}/{ticks}")


def _acc(value: float) -> str:
    color = "green" if value >= 0.8 else "red"
    return f"[{color}]{value:.3f}[/{color}]"


def _summary(s: dict[str, float]) -> Table:
    table = Table(title="before / after (from the drift on)")
    table.add_column("")
    table.add_column("without healing")
    table.add_column("with heald")
    table.add_row("mean accuracy", f"{s['accuracy_without_healing']:.3f}", f"{s['accuracy_with_healing']:.3f}")
    table.add_row("hours below 0.80", f"{s['sick_share_without_healing']:.0%}", f"{s['sick_share_with_healing']:.0%}")
    table.add_row("model versions", "1", str(int(s["versions"])))
    return table
