"""The healing benchmark: heald's real loop against static, scheduled, oracle and online-learning peers.

Replays labelled streams batch by batch in simulated time through heald's own ``tick()`` (predict with the
champion, then reveal the labels), side by side with a static RandomForest, a RandomForest retrained on a
fixed schedule, an oracle RandomForest retrained at the true drift points and river's Adaptive Random
Forest; then injects operational faults into a running loop and measures recovery.

    python bench/healing.py --quick          # a few minutes on 2 cores; writes RESULTS.md, plots, snippet
    python bench/healing.py                  # the full streams (about three times longer)
    python bench/healing.py --quick --json   # the figures as JSON on stdout (writes nothing unless --write)

Logs go to stderr; ``--json`` output is the only thing on stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# heald's packages first: bench/pipeline.py (another benchmark) must not shadow the `pipeline` package.
sys.path[:0] = [str(HERE.parent), str(HERE)]

from healbench import faults as faultbook  # noqa: E402
from healbench import report, streams, trial  # noqa: E402
from healbench.replay import DEFAULT_TICK, MARGIN, SHIPPED  # noqa: E402

PLOT_FOR_README = "cancer-subgroup"
HOURLY = 3600.0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="short streams (a few minutes on 2 cores)")
    size.add_argument("--tiny", action="store_true", help="very short streams, for the end-to-end test")
    parser.add_argument("--streams", default="all", help="comma-separated stream names, or 'all' or 'none'")
    parser.add_argument("--faults", default="all", help="comma-separated fault names, or 'all' or 'none'")
    parser.add_argument("--no-arf", action="store_true", help="leave river's ARF out (it is the slowest peer)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--write", action="store_true", help="with --json: also write the report files")
    parser.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md, plots/ and the snippet go")
    parser.add_argument("--seed", type=int, default=42, help="the first seed; the others follow it")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per stream (default 3; 1 with --tiny)")
    parser.add_argument("--fault-seeds", type=int, default=None, help="seeds per fault (default: as --seeds)")
    parser.add_argument(
        "--hourly-streams", default="all", help="streams of the 1 h tick check: comma-separated names, or 'all'"
    )
    parser.add_argument(
        "--tick-seconds", type=float, default=DEFAULT_TICK, help="simulated seconds per tick (default: shipped)"
    )
    parser.add_argument(
        "--hourly-check",
        choices=["on", "off"],
        default=None,
        help="also replay each stream's first seed with heald alone at 1 h ticks (default on; off with --tiny)",
    )
    return parser.parse_args(argv)


def chosen(option: str, known: list[str], what: str) -> list[str]:
    if option == "all":
        return known
    if option == "none":
        return []
    names = [n.strip() for n in option.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; known: {', '.join(known)}")
    return names


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from daemon import logs

    logs.configure("critical", stream=sys.stderr)  # the store keeps every event; stderr shows progress
    size = streams.TINY if args.tiny else streams.QUICK if args.quick else streams.FULL
    names = chosen(args.streams, list(streams.CATALOGUE), "stream")
    fault_names = chosen(args.faults, [f.name for f in faultbook.FAULTS], "fault")
    seeds = [args.seed + k for k in range(args.seeds or (1 if args.tiny else 3))]
    hourly = (args.hourly_check or ("off" if args.tiny else "on")) == "on" and args.tick_seconds != HOURLY
    hourly_names = set(chosen(args.hourly_streams, names, "stream")) if hourly else set()
    fault_seeds = seeds[: args.fault_seeds] if args.fault_seeds else seeds
    systems = {"heald", "static", "scheduled", "oracle"} | (set() if args.no_arf else {"arf"})
    began = time.perf_counter()
    outcomes: list[trial.Outcome] = []
    variants: list[trial.Outcome] = []
    fault_results = []
    with tempfile.TemporaryDirectory(prefix="heald-bench-") as scratch:
        for name in names:
            for seed in seeds:
                stream = streams.load(name, size, seed)
                say(f"{name} seed {seed}: {len(stream.frame)} rows, {len(stream.batches())} batches ...")
                state = Path(scratch) / f"{name}-{seed}"
                outcomes.append(trial.run(stream, state, seed, systems, tick_seconds=args.tick_seconds))
                say(f"  {brief(outcomes[-1].rows)}")
            if name in hourly_names:
                stream = streams.load(name, size, seeds[0])
                state = Path(scratch) / f"{name}-hourly"
                variants.append(trial.run(stream, state, seeds[0], {"heald"}, tick_seconds=HOURLY))
                say(f"  at 1 h ticks: {brief(variants[-1].rows)}")
        for fault in (f for f in faultbook.FAULTS if f.name in fault_names):
            for seed in fault_seeds:
                result = faultbook.run(fault, size, Path(scratch) / f"fault-{fault.name}-{seed}", seed)
                result.seed = seed
                say(f"fault {fault.name} seed {seed}: {result.status} {result.note}")
                fault_results.append(result)
    elapsed = time.perf_counter() - began
    rows = [r for o in outcomes for r in o.rows] + [f.as_row() for f in fault_results]
    rows += [r | {"system": f"heald@{HOURLY:.0f}s"} for o in variants for r in o.rows]
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    command = "python bench/healing.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if not args.json or args.write:
        write(args.out, outcomes, variants, fault_results, command.strip(), size, seeds, args.tick_seconds, elapsed)
    found = report.verdicts(outcomes, fault_results, variants)
    say(report.verdict_list(found))
    say(f"done in {elapsed:.0f} s")
    return 0


def say(text: str) -> None:
    sys.stderr.write(text + "\n")


def brief(rows: list[dict[str, Any]]) -> str:
    return "  ".join(f"{r['system']} {r['accuracy']:.3f}/{r['sick_share']:.2f}/{r['retrains']}" for r in rows)


def write(
    out: Path,
    outcomes: list[trial.Outcome],
    variants: list[trial.Outcome],
    faults: list[faultbook.FaultResult],
    command: str,
    size: streams.Size,
    seeds: list[int],
    tick: float,
    elapsed: float,
) -> None:
    plots = out / "plots"
    for outcome in report.first_seed(outcomes):
        report.plot(outcome, plots / plot_name(size, outcome.stream.name))
    found = report.verdicts(outcomes, faults, variants)
    section = render(outcomes, variants, faults, found, command, size, seeds, tick, elapsed)
    report.write_section(out / "RESULTS.md", section, key=size.name)
    (out / "README-snippet.md").write_text(snippet(outcomes, found, command, size, seeds), encoding="utf-8")


def plot_name(size: streams.Size, stream: str) -> str:
    return f"healing-{size.name}-{stream}.png"


def render(
    outcomes: list[trial.Outcome],
    variants: list[trial.Outcome],
    faults: list[faultbook.FaultResult],
    found: list[report.Verdict],
    command: str,
    size: streams.Size,
    seeds: list[int],
    tick: float,
    elapsed: float,
) -> str:
    import river
    import sklearn

    passed = sum(v.passed is True for v in found)
    checked = sum(v.passed is not None for v in found)
    policy = SHIPPED.policy
    parts = [
        f"## Healing benchmark (bench/healing.py), {size.name} streams",
        f"Command: `{command}` ({size.name} streams, seeds {', '.join(map(str, seeds))}; {elapsed / 60:.1f} min in "
        f"all on {platform.machine()} with 2 shared cores; Python {platform.python_version()}, scikit-learn "
        f"{sklearn.__version__}, river {river.__version__}). `--json` prints the same figures.",
        HOW.format(
            tick=f"{tick:.0f}",
            trees=SHIPPED.n_estimators,
            warmup=size.warmup,
            batch=size.batch_rows,
            policy=", ".join(f"{k} {v}" for k, v in policy.model_dump().items()),
            margin=round(100 * MARGIN["classification"]),
            margin_r2=MARGIN["regression"],
            seeds=len(seeds),
        ),
        "### Summary (mean over seeds, then over streams)",
        report.summary_table(outcomes),
        f"### Must show ({passed} of {checked} checked hold)",
        report.verdict_list(found),
        "### The same defaults at 1 h ticks (heald alone, first seed)",
        report.variant_table(outcomes, variants) if variants else "Not run (`--hourly-check off`).",
        "### Harmful promotions",
        report.promotion_text(outcomes, faults),
        "### Faults injected into a running loop",
        FAULTS_TEXT.format(warm=faultbook.WARM_TICKS, batch=size.batch_rows),
        report.fault_table(faults),
        "### Per stream (mean ± standard deviation over seeds; plots show the first seed)",
    ]
    for outcome in report.first_seed(outcomes):
        stream = outcome.stream
        drift = ", ".join(
            f"{d.kind} from replayed row {d.at} (batch {d.at // stream.batch_rows})"
            + (f" over {d.width} rows" if d.width else "")
            for d in stream.drifts
        )
        parts += [
            f"#### {stream.name}",
            f"{stream.source}. {len(stream.frame)} rows: {stream.warmup} to train the first model, then "
            f"{len(stream.batches())} batches of {stream.batch_rows}. True drift: {drift or 'none known'}. "
            f"Health threshold (first seed) {outcome.floor:.3f}.",
            report.stream_table(outcomes, stream.name),
            f"![{stream.name}](plots/{plot_name(size, stream.name)})",
        ]
    return "\n\n".join(parts) + "\n"


def snippet(
    outcomes: list[trial.Outcome], found: list[report.Verdict], command: str, size: streams.Size, seeds: list[int]
) -> str:
    names = [o.stream.name for o in outcomes]
    plotted = PLOT_FOR_README if PLOT_FOR_README in names else next(iter(names), "")
    passed = sum(v.passed is True for v in found)
    checked = sum(v.passed is not None for v in found)
    failed = [v.claim for v in found if v.passed is False]
    return (
        "## Does healing work?\n\n"
        "heald, with its shipped default settings and only a health threshold per stream, replays labelled "
        "streams with known drift (river's SEA, STAGGER, Agrawal, Hyperplane, RandomRBF; slow gradual drift; a "
        "100-batch stream with several drifts), river's bundled real datasets and scikit-learn's real data "
        "with a subgroup shift or a harmless input drift, through its real loop, batch by batch, against a "
        "static model, scheduled retraining, an oracle that retrains at the true drift points, and river's "
        f"Adaptive Random Forest, over {len(seeds)} seed(s); then it injects faults (damaged artifacts, a "
        "failing pipeline stage, a bad promotion, late labels, a crash mid-retrain) and measures recovery.\n\n"
        f"{report.summary_table(outcomes)}\n\n"
        f"![heald and its peers on {plotted}](bench/plots/{plot_name(size, plotted)})\n\n"
        f"{passed} of {checked} 'must show' checks hold"
        + (f" ({len(failed)} fail: {'; '.join(failed[:6])}{' ...' if len(failed) > 6 else ''})" if failed else "")
        + "; per-stream tables, plots, the injected faults and the reasons where heald loses are in "
        f"[bench/RESULTS.md](bench/RESULTS.md). These figures come from `{command}`.\n"
    )


HOW = """\
How it runs. heald runs with its shipped `Settings` defaults: a {tick} s tick, {trees} trees, and the shipped
policy ({policy}). The only per-stream inputs are what a user states: target, task, the health threshold and
the batch size. The threshold is the first model's held-out score minus {margin} points (accuracy) or
{margin_r2} (R²), set before any batch is replayed. Every stream trains a first RandomForest on its first rows
({warmup} for the synthetic ones) through heald's onboarding; every system starts from that model. The rest
is replayed in batches ({batch} rows for most synthetic streams), one tick of simulated time per batch. For
each batch every system predicts first, then the labels are revealed: heald's batch lands in its landing
folder and `loop.tick()` runs (intake, sensors, analyzer, incidents, planner, actuators on the inline pool).
The scheduled peer retrains each time as many new labelled rows have arrived as the first model was trained
on, on exactly those rows; the oracle retrains once per true change point on rows since it, as soon as it
has as many rows as heald's `min_retrain_rows`; ARF learns every row after predicting it (it also learned
the warm-up rows). Each stream runs with {seeds} seed(s) (data, forests and ARF all follow the seed).

"Sick %" is the share of replayed batches whose score is below the threshold, for every system alike.
Detection delay counts batches from a drift's first batch to the tick heald opened an incident for it;
an incident outside every drift's window (start to end + 8 batches) is a false alarm. "Fits" counts every
retrain heald ran, promoted or not. A promotion is harmful when the promoted version scored worse (by more
than one point) than the version it replaced over the verification window that followed (`verify_within`
batches) and was still champion at the end of it."""

FAULTS_TEXT = """\
Each fault runs in a fresh heald with shipped defaults on SEA with 10 % label noise ({batch}-row batches):
{warm} labelled ticks, then the fault. Faults that need heald to retrain (late labels, crash mid-retrain)
run on the same stream with an abrupt concept change (threshold 8 -> 9.5) at the injection. 'fallback:
stable v1' means an operator deployed v2 at tick 1, so v1 is a stable version to roll back to. Recovery
counts ticks from detection until the fault's own test holds: the champion loads from disk and verifies
(artifact faults), the newest pipeline run succeeded (stage fault), the bad version is no longer champion
and the last batch scored above the threshold (bad promotion), the last batch scored above the threshold
(late labels), the crashed retrain was reconciled as aborted and a later retrain was promoted (crash).
'within' is the promise for that fault."""


if __name__ == "__main__":
    raise SystemExit(main())
