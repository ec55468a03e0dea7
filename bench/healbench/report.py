"""The benchmark's report: tables and verdicts for bench/RESULTS.md, a plot per stream, and the README snippet.

Only the section between the healing markers in RESULTS.md is rewritten; other benchmarks' sections stay.
Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healbench.faults import RECOVER_WITHIN, FaultResult
from healbench.trial import Outcome

SYSTEMS = ("heald", "static", "scheduled", "oracle", "arf")
COLOURS = {"heald": "#d62728", "static": "#7f7f7f", "scheduled": "#1f77b4", "oracle": "#2ca02c", "arf": "#9467bd"}
# heald's events on the plot: (what, detail) -> marker, colour, filled, legend label
MARKS = {
    ("incident", "performance_drop"): ("v", "#d62728", True, "incident: performance drop"),
    ("incident", "data_drift"): ("v", "#ff7f0e", True, "incident: data drift"),
    ("retrain", "succeeded"): ("^", "#2ca02c", True, "retrain, promoted"),
    ("retrain", "failed"): ("^", "#2ca02c", False, "retrain, champion kept"),
    ("rollback", "succeeded"): ("s", "#ff7f0e", True, "rollback"),
    ("alert", "succeeded"): ("X", "k", True, "alert (escalated)"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """One 'must show' line, checked against the figures."""

    claim: str
    passed: bool | None  # None: not checked here (e.g. a fault whose prerequisite is missing)
    detail: str

    @property
    def mark(self) -> str:
        return "SKIP" if self.passed is None else "PASS" if self.passed else "FAIL"


def by(rows: Iterable[dict[str, Any]], stream: str, system: str) -> dict[str, Any]:
    return next(r for r in rows if r["stream"] == stream and r["system"] == system)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


# -- verdicts --------------------------------------------------------------------------------------------


def verdicts(outcomes: list[Outcome], faults: list[FaultResult]) -> list[Verdict]:
    rows = [r for o in outcomes for r in o.rows]
    out = []
    for outcome in outcomes:
        if not outcome.stream.drifting:
            continue
        name = outcome.stream.name
        heald, scheduled, static = by(rows, name, "heald"), by(rows, name, "scheduled"), by(rows, name, "static")
        gap = heald["accuracy"] - scheduled["accuracy"]
        frugal = heald["retrains"] * 3 <= scheduled["retrains"]
        matched = gap >= -0.01 and frugal
        out.append(
            Verdict(
                claim=f"{name}: matches scheduled (within 1 point, <= 1/3 retrains) or beats it by > 1 point",
                passed=matched or gap > 0.01,
                detail=f"{_pct(heald['accuracy'])} vs {_pct(scheduled['accuracy'])} ({100 * gap:+.1f} points); "
                f"retrains {heald['retrains']} vs {scheduled['retrains']}",
            )
        )
        out.append(
            Verdict(
                claim=f"{name}: sick time at most half the static model's (or zero)",
                passed=heald["sick_share"] == 0 or heald["sick_share"] <= static["sick_share"] / 2,
                detail=f"{_pct(heald['sick_share'])} % vs static {_pct(static['sick_share'])} %",
            )
        )
    classified = [o.stream.name for o in outcomes if o.stream.task == "classification"]
    if classified and all(any(r["system"] == "arf" and r["stream"] == s for r in rows) for s in classified):
        mine = sum(by(rows, s, "heald")["accuracy"] for s in classified) / len(classified)
        theirs = sum(by(rows, s, "arf")["accuracy"] for s in classified) / len(classified)
        out.append(
            Verdict(
                claim="mean accuracy over the classification streams within 2 points of ARF or better",
                passed=mine >= theirs - 0.02,
                detail=f"heald {_pct(mine)} vs ARF {_pct(theirs)} ({100 * (mine - theirs):+.1f} points)",
            )
        )
    for fault in faults:
        if fault.status == "pending":
            out.append(Verdict(claim=f"fault {fault.fault}", passed=None, detail=fault.note))
            continue
        out.append(
            Verdict(
                claim=f"fault {fault.fault}: healthy, recovered within {RECOVER_WITHIN} ticks of detection",
                passed=fault.status == "recovered",
                detail=f"detected after {_num(fault.detection_ticks)} tick(s), recovered "
                f"{_num(fault.recovery_ticks)} tick(s) later, healthy end: {fault.healthy}",
            )
        )
    return out


# -- tables ----------------------------------------------------------------------------------------------


def stream_table(outcome: Outcome) -> str:
    metric = "R²" if outcome.stream.task == "regression" else "accuracy %"
    lines = [
        f"| system | {metric} | sick % | retrains | retrain compute s | wall s | detection delay (batches) "
        "| false alarms |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in outcome.rows:
        score = f"{row['accuracy']:.3f}" if outcome.stream.task == "regression" else _pct(row["accuracy"])
        retrains = _num(row["retrains"]) if row["system"] != "arf" else f"online ({row.get('tree_resets', 0)} resets)"
        delays = row["detection_delays"]
        shown = "n/a" if delays is None else (", ".join("missed" if d is None else str(d) for d in delays) or "-")
        lines.append(
            f"| {row['system']} | {score} | {_pct(row['sick_share'])} | {retrains} | {row['compute_seconds']:.2f} "
            f"| {row['wall_seconds']:.2f} | {shown} | {row['false_alarms']} |"
        )
    return "\n".join(lines)


def summary_table(outcomes: list[Outcome]) -> str:
    rows = [r for o in outcomes for r in o.rows]
    classified = [o.stream.name for o in outcomes if o.stream.task == "classification"]
    regressed = [o.stream.name for o in outcomes if o.stream.task == "regression"]
    drifting = [o.stream.name for o in outcomes if o.stream.drifting]
    lines = [
        f"| system | mean accuracy % ({len(classified)} classification streams) | mean R² ({len(regressed)}) "
        f"| mean sick % ({len(drifting)} drifting) | retrains | retrain compute s | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for system in SYSTEMS:
        mine = [r for r in rows if r["system"] == system]
        if not mine:
            continue

        def mean(names: list[str], key: str, mine: list[dict[str, Any]] = mine) -> float | None:
            values = [r[key] for r in mine if r["stream"] in names]
            return sum(values) / len(values) if values else None

        r2 = mean(regressed, "accuracy")
        retrains = sum(r["retrains"] or 0 for r in mine) if system != "arf" else None
        lines.append(
            f"| {system} | {_pct(mean(classified, 'accuracy'))} | {'n/a' if r2 is None else f'{r2:.3f}'} "
            f"| {_pct(mean(drifting, 'sick_share'))} | {'online' if retrains is None else retrains} "
            f"| {sum(r['compute_seconds'] for r in mine):.1f} | {sum(r['wall_seconds'] for r in mine):.1f} |"
        )
    return "\n".join(lines)


def fault_table(faults: list[FaultResult]) -> str:
    lines = [
        "| fault | fallback | status | detected (ticks) | recovered (ticks / sim s / wall s) | resolved at tick "
        "| healthy end | remedies |",
        "|---|---|---|---:|---|---:|---|---|",
    ]
    for f in faults:
        if f.status == "pending":
            lines.append(f"| {f.fault} | - | pending | - | - | - | - | {f.note} |")
            continue
        recovered = (
            f"{f.recovery_ticks} / {f.recovery_sim_seconds:.0f} / {f.recovery_wall_seconds:.2f}"
            if f.recovery_ticks is not None and f.recovery_sim_seconds is not None and f.recovery_wall_seconds
            else "not recovered"
        )
        lines.append(
            f"| {f.fault} | {'stable v1' if f.fallback else 'none'} | {f.status} | {_num(f.detection_ticks)} "
            f"| {recovered} | {_num(f.resolved_tick)} | {f.healthy} | {', '.join(f.remedies) or '-'} |"
        )
    return "\n".join(lines)


def behind_arf(outcomes: list[Outcome]) -> str:
    """The classification streams where ARF scored higher than heald, with the gap, largest first."""
    rows = [r for o in outcomes for r in o.rows]
    gaps = []
    raced = {r["stream"] for r in rows if r["system"] == "arf"}
    for outcome in outcomes:
        name = outcome.stream.name
        if outcome.stream.task != "classification" or name not in raced:
            continue
        gap = by(rows, name, "heald")["accuracy"] - by(rows, name, "arf")["accuracy"]
        if gap < 0:
            gaps.append((gap, name))
    return ", ".join(f"{name} ({100 * gap:+.1f})" for gap, name in sorted(gaps)) or "none"


def verdict_list(found: list[Verdict]) -> str:
    return "\n".join(f"- {v.mark}: {v.claim}: {v.detail}" for v in found)


# -- plots -----------------------------------------------------------------------------------------------


def plot(outcome: Outcome, path: Path) -> None:
    """Score per batch for every system, the threshold, the true drifts and heald's incidents and actions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from healbench.measures import drift_batches

    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=100)
    for system, track in outcome.tracks.items():
        ax.plot(
            range(len(track.scores)),
            track.scores,
            label=system,
            color=COLOURS.get(system),
            linewidth=2.2 if system == "heald" else 1.2,
            zorder=3 if system == "heald" else 2,
        )
    ax.axhline(outcome.floor, color="k", linestyle="--", linewidth=0.8, label="health threshold")
    for start, end in drift_batches(outcome.stream):
        if end > start:
            ax.axvspan(start, end, color="#f4a582", alpha=0.35, linewidth=0)
        ax.axvline(start, color="#b2182b", linewidth=0.8)
    low, high = ax.get_ylim()
    seen: set[str] = set()
    for event in outcome.events:
        mark = MARKS.get((event.what, event.detail))
        if mark is None:
            continue
        marker, colour, filled, label = mark
        y = high - (0.03 if event.what == "incident" else 0.08) * (high - low)
        ax.scatter(
            [event.batch],
            [y],
            marker=marker,
            s=60,
            zorder=4,
            label=None if label in seen else label,
            facecolors=colour if filled else "none",
            edgecolors=colour,
        )
        seen.add(label)
    metric = "R²" if outcome.stream.task == "regression" else "accuracy"
    ax.set_xlabel(f"batch ({outcome.stream.batch_rows} rows; one tick of simulated time each)")
    ax.set_ylabel(f"prequential {metric} per batch")
    ax.set_title(f"{outcome.stream.name}: {outcome.stream.source}", fontsize=9)
    ax.legend(loc="lower left", fontsize=7, ncol=3, framealpha=0.85)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# -- the files -------------------------------------------------------------------------------------------


def write_section(results: Path, section: str, key: str) -> None:
    """Replace this benchmark's section ``key`` of RESULTS.md (or append it), leaving other sections alone."""
    start, end = f"<!-- healing-benchmark:{key}:start -->", f"<!-- healing-benchmark:{key}:end -->"
    block = f"{start}\n{section.strip()}\n{end}\n"
    text = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    results.write_text(text, encoding="utf-8")
