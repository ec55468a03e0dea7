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

from healbench.faults import FaultResult
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


# -- aggregation over seeds ------------------------------------------------------------------------------


def first_seed(outcomes: list[Outcome]) -> list[Outcome]:
    """One outcome per stream (its first seed), in the order the streams ran: for plots and descriptions."""
    seen: dict[str, Outcome] = {}
    for outcome in outcomes:
        seen.setdefault(outcome.stream.name, outcome)
    return list(seen.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class Spread:
    """A figure over seeds: its mean and (sample) standard deviation."""

    mean: float
    sd: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        n = len(values)
        mean = sum(values) / n
        sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
        return cls(mean=mean, sd=sd, n=n)


def spread(rows: Iterable[dict[str, Any]], stream: str, system: str, key: str) -> Spread | None:
    values = [float(r[key]) for r in rows if r["stream"] == stream and r["system"] == system and r[key] is not None]
    return Spread.of(values) if values else None


def _need(rows: list[dict[str, Any]], stream: str, system: str, key: str) -> Spread:
    found = spread(rows, stream, system, key)
    if found is None:
        raise KeyError(f"no {key!r} for {system} on {stream}")
    return found


# -- verdicts --------------------------------------------------------------------------------------------


def verdicts(
    outcomes: list[Outcome], faults: list[FaultResult], variants: list[Outcome] | None = None
) -> list[Verdict]:
    rows = [r for o in outcomes for r in o.rows]
    out = []
    systems = {r["system"] for r in rows}
    for outcome in first_seed(outcomes):
        name = outcome.stream.name
        if not {"heald", "static", "scheduled"} <= systems:
            break
        heald, static = _need(rows, name, "heald", "accuracy"), _need(rows, name, "static", "accuracy")
        scheduled = _need(rows, name, "scheduled", "accuracy")
        fits, their_fits = _need(rows, name, "heald", "retrains"), _need(rows, name, "scheduled", "retrains")
        best = max(static.mean, scheduled.mean)
        gap = heald.mean - best
        frugal = fits.mean * 3 <= their_fits.mean
        out.append(
            Verdict(
                claim=f"{name}: mean >= max(static, scheduled) - 1 point with <= 1/3 of scheduled's fits, "
                "or beats both by > 1 point",
                passed=(gap >= -0.01 and frugal) or gap > 0.01,
                detail=f"heald {_pm(heald)} vs static {_pm(static)}, scheduled {_pm(scheduled)} "
                f"({100 * gap:+.1f} points); fits {fits.mean:.1f} vs {their_fits.mean:.1f}",
            )
        )
        sick, static_sick = _need(rows, name, "heald", "sick_share"), _need(rows, name, "static", "sick_share")
        out.append(
            Verdict(
                claim=f"{name}: sick time at most half the static model's",
                passed=sick.mean <= static_sick.mean / 2,
                detail=f"{_pct(sick.mean)} % vs static {_pct(static_sick.mean)} %",
            )
        )
        if outcome.stream.harmless:
            out.append(
                Verdict(
                    claim=f"{name}: input drift without harm, heald does not retrain",
                    passed=fits.mean == 0,
                    detail=f"fits per seed {[r['retrains'] for r in _rows_of(rows, name, 'heald')]}",
                )
            )
    classified = [o.stream.name for o in first_seed(outcomes) if o.stream.task == "classification"]
    if classified and all(spread(rows, s, "arf", "accuracy") for s in classified):
        mine = sum(_need(rows, s, "heald", "accuracy").mean for s in classified) / len(classified)
        theirs = sum(_need(rows, s, "arf", "accuracy").mean for s in classified) / len(classified)
        out.append(
            Verdict(
                claim=f"mean accuracy over the {len(classified)} classification streams above ARF's",
                passed=mine > theirs,
                detail=f"heald {_pct(mine)} vs ARF {_pct(theirs)} ({100 * (mine - theirs):+.1f} points)",
            )
        )
    harmful = sum(len([p for p in o.promotions if p.harmful]) for o in outcomes)
    harmful += sum(f.harmful_promotions for f in faults)
    promoted = sum(len(o.promotions) for o in outcomes) + sum(f.promotions for f in faults)
    out.append(
        Verdict(
            claim="harmful promotions in every run and fault: 0",
            passed=harmful == 0,
            detail=f"{harmful} of {promoted} promotions heald made",
        )
    )
    for variant in variants or []:
        name = variant.stream.name
        hourly = by(variant.rows, name, "heald")
        shipped = next(r for r in rows if r["stream"] == name and r["system"] == "heald" and r["seed"] == variant.seed)
        gap = hourly["accuracy"] - shipped["accuracy"]
        out.append(
            Verdict(
                claim=f"{name}: the same defaults at 1 h ticks score within 1 point of the shipped tick",
                passed=abs(gap) <= 0.01,
                detail=f"{_pct(hourly['accuracy'])} at 1 h vs {_pct(shipped['accuracy'])} ({100 * gap:+.1f}); "
                f"fits {hourly['retrains']} vs {shipped['retrains']}",
            )
        )
    for name, results in _by_fault(faults).items():
        if all(f.status == "pending" for f in results):
            out.append(Verdict(claim=f"fault {name}", passed=None, detail=results[0].note))
            continue
        within = results[0].within
        ok = [f.status == "recovered" for f in results]
        detail = (
            f"{sum(ok)} of {len(ok)} seeds; detected after {[f.detection_ticks for f in results]} tick(s), "
            f"recovered {[f.recovery_ticks for f in results]} tick(s) later, healthy end {[f.healthy for f in results]}"
        )
        if name == "promoted-then-worse":
            rolled = [any(r.startswith("rollback:succeeded") for r in f.remedies) for f in results]
            out.append(
                Verdict(claim=f"fault {name}: the bad promotion is rolled back", passed=all(rolled), detail=detail)
            )
        out.append(
            Verdict(
                claim=f"fault {name}: healthy, recovered within {within} tick(s) of detection",
                passed=all(ok),
                detail=detail,
            )
        )
    return out


def _rows_of(rows: list[dict[str, Any]], stream: str, system: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["stream"] == stream and r["system"] == system]


def _by_fault(faults: list[FaultResult]) -> dict[str, list[FaultResult]]:
    grouped: dict[str, list[FaultResult]] = {}
    for fault in faults:
        grouped.setdefault(fault.fault, []).append(fault)
    return grouped


# -- tables ----------------------------------------------------------------------------------------------


def _pm(value: Spread | None, regression: bool = False) -> str:
    if value is None:
        return "n/a"
    if regression:
        return f"{value.mean:.3f} ± {value.sd:.3f}"
    return f"{100 * value.mean:.1f} ± {100 * value.sd:.1f}"


def stream_table(outcomes: list[Outcome], name: str) -> str:
    rows = [r for o in outcomes if o.stream.name == name for r in o.rows]
    regression = rows[0]["task"] == "regression"
    metric = "R²" if regression else "accuracy %"
    lines = [
        f"| system | {metric} | sick % | fits | retrain compute s | wall s | detection delay (batches, per seed) "
        "| false alarms | promotions (harmful) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for system in SYSTEMS:
        mine = [r for r in rows if r["system"] == system]
        if not mine:
            continue
        fits = spread(mine, name, system, "retrains")
        shown_fits = (
            f"online ({sum(r.get('tree_resets', 0) for r in mine)} resets)"
            if system == "arf"
            else ("n/a" if fits is None else f"{fits.mean:.1f} ± {fits.sd:.1f}")
        )
        delays = [r["detection_delays"] for r in mine if r["detection_delays"] is not None]
        shown = (
            "n/a"
            if not delays
            else "; ".join(", ".join("missed" if d is None else str(d) for d in per) or "-" for per in delays)
        )
        promoted = (
            f"{sum(r['promotions'] for r in mine)} ({sum(r['harmful_promotions'] for r in mine)})"
            if system == "heald"
            else "-"
        )
        lines.append(
            f"| {system} | {_pm(spread(mine, name, system, 'accuracy'), regression)} "
            f"| {_pm(spread(mine, name, system, 'sick_share'))} | {shown_fits} "
            f"| {sum(r['compute_seconds'] for r in mine) / len(mine):.2f} "
            f"| {sum(r['wall_seconds'] for r in mine) / len(mine):.2f} | {shown} "
            f"| {sum(r['false_alarms'] for r in mine) / len(mine):.1f} | {promoted} |"
        )
    return "\n".join(lines)


def summary_table(outcomes: list[Outcome]) -> str:
    rows = [r for o in outcomes for r in o.rows]
    streams = first_seed(outcomes)
    classified = [o.stream.name for o in streams if o.stream.task == "classification"]
    regressed = [o.stream.name for o in streams if o.stream.task == "regression"]
    every = [o.stream.name for o in streams]
    lines = [
        f"| system | mean accuracy % ({len(classified)} classification streams) | mean R² ({len(regressed)}) "
        f"| mean sick % ({len(every)} streams) | fits per seed | retrain compute s per seed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for system in SYSTEMS:
        if not any(r["system"] == system for r in rows):
            continue

        def mean(names: list[str], key: str, system: str = system) -> float | None:
            values = [s.mean for n in names if (s := spread(rows, n, system, key)) is not None]
            return sum(values) / len(values) if values else None

        r2 = mean(regressed, "accuracy")
        fits = mean(every, "retrains")
        total_fits = None if fits is None else fits * len(every)
        compute = mean(every, "compute_seconds")
        lines.append(
            f"| {system} | {_pct(mean(classified, 'accuracy'))} | {'n/a' if r2 is None else f'{r2:.3f}'} "
            f"| {_pct(mean(every, 'sick_share'))} | {'online' if total_fits is None else f'{total_fits:.1f}'} "
            f"| {0.0 if compute is None else compute * len(every):.1f} |"
        )
    return "\n".join(lines)


def variant_table(outcomes: list[Outcome], variants: list[Outcome]) -> str:
    rows = [r for o in outcomes for r in o.rows]
    lines = [
        "| stream | heald, shipped tick: score / sick % / fits | heald, 1 h tick: score / sick % / fits |",
        "|---|---|---|",
    ]
    for variant in variants:
        name = variant.stream.name
        hourly = by(variant.rows, name, "heald")
        shipped = next(r for r in rows if r["stream"] == name and r["system"] == "heald" and r["seed"] == variant.seed)
        cells = [f"{_score(r)} / {_pct(r['sick_share'])} / {r['retrains']}" for r in (shipped, hourly)]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _score(row: dict[str, Any]) -> str:
    return f"{row['accuracy']:.3f}" if row["task"] == "regression" else _pct(row["accuracy"])


def promotion_text(outcomes: list[Outcome], faults: list[FaultResult]) -> str:
    harmful = [(o, p) for o in outcomes for p in o.promotions if p.harmful]
    total = sum(len(o.promotions) for o in outcomes) + sum(f.promotions for f in faults)
    count = len(harmful) + sum(f.harmful_promotions for f in faults)
    lines = [f"{count} harmful of {total} promotions heald made in the stream runs and the fault runs."]
    for outcome, p in harmful:
        lines.append(
            f"- {outcome.stream.name} seed {outcome.seed}: v{p.new} promoted over v{p.old} at batch {p.batch}; "
            f"over the next window it scored {p.new_score:.3f} where v{p.old} would have scored {p.old_score:.3f}, "
            "and it was still champion at the end of the window"
        )
    for fault in faults:
        if fault.harmful_promotions:
            lines.append(f"- fault {fault.fault} seed {fault.seed}: {fault.harmful_promotions} harmful")
    return "\n".join(lines)


def fault_table(faults: list[FaultResult]) -> str:
    lines = [
        "| fault | fallback | within | recovered (seeds) | detected (ticks) | recovered (ticks) | resolved at tick "
        "| healthy end | remedies (first seed) |",
        "|---|---|---:|---|---|---|---|---|---|",
    ]
    for name, results in _by_fault(faults).items():
        first = results[0]
        if all(f.status == "pending" for f in results):
            lines.append(f"| {name} | - | - | pending | - | - | - | - | {first.note} |")
            continue
        ok = sum(f.status == "recovered" for f in results)
        lines.append(
            f"| {name} | {'stable v1' if first.fallback else 'none'} | {first.within} | {ok} of {len(results)} "
            f"| {', '.join(_num(f.detection_ticks) for f in results)} "
            f"| {', '.join(_num(f.recovery_ticks) for f in results)} "
            f"| {', '.join(_num(f.resolved_tick) for f in results)} | {', '.join(str(f.healthy) for f in results)} "
            f"| {', '.join(first.remedies) or '-'} |"
        )
    return "\n".join(lines)


def behind_arf(outcomes: list[Outcome]) -> str:
    """The classification streams where ARF scored higher than heald (means over seeds), largest gap first."""
    rows = [r for o in outcomes for r in o.rows]
    gaps = []
    for outcome in first_seed(outcomes):
        name = outcome.stream.name
        arf = spread(rows, name, "arf", "accuracy")
        if outcome.stream.task != "classification" or arf is None:
            continue
        gap = _need(rows, name, "heald", "accuracy").mean - arf.mean
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
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(text, encoding="utf-8")
