"""The healing benchmark end to end: one short stream and the operational faults, through the real CLI.

It runs ``bench/healing.py`` as a user would (a subprocess, its own temporary state, heald's shipped
defaults, one seed, tiny streams) and checks what the benchmark promises: the JSON has the documented shape,
the injected faults end healthy within their promise (a damaged champion and stable version together within
one tick, a bad promotion rolled back, a crash mid-retrain reconciled and healed), a fault that cannot run
here is reported as pending with its reason, and the report rewrites only its own section of RESULTS.md.
The full benchmark (3 seeds, every stream) is for RESULTS.md, not for this test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = {"heald", "static", "scheduled", "oracle", "arf"}
FAULTS = [
    "corrupt-champion",
    "stage-fails-twice",
    "damage-champion-and-stable",
    "promoted-then-worse",
    "crash-mid-retrain",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, object]], Path]:
    out = tmp_path_factory.mktemp("bench")
    (out / "RESULTS.md").write_text("# Benchmark results\n\n## Someone else's benchmark\n\nkeep me\n")
    done = subprocess.run(
        [
            sys.executable,
            "bench/healing.py",
            "--tiny",
            "--streams",
            "sea-abrupt",
            "--faults",
            ",".join(FAULTS),
            "--json",
            "--write",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,  # a few minutes alone; a shared, loaded machine can take ten times longer
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), out


@pytest.mark.slow
def test_every_system_reports_the_documented_figures(run: tuple[list[dict[str, object]], Path]) -> None:
    """Each of the five systems has one row for the stream, with stream, system, accuracy, sick_share,
    retrains and false_alarms of the right types."""
    rows, _ = run
    streams = [r for r in rows if "fault" not in r]
    assert {r["system"] for r in streams} == SYSTEMS
    assert len(streams) == len(SYSTEMS)
    for row in streams:
        assert row["stream"] == "sea-abrupt"
        assert isinstance(row["accuracy"], float) and 0.0 <= row["accuracy"] <= 1.0
        assert isinstance(row["sick_share"], float) and 0.0 <= row["sick_share"] <= 1.0
        assert row["retrains"] is None if row["system"] == "arf" else isinstance(row["retrains"], int)
        assert isinstance(row["false_alarms"], int)
        assert row["seed"] == 42
    heald = next(r for r in streams if r["system"] == "heald")
    assert isinstance(heald["promotions"], int) and isinstance(heald["harmful_promotions"], int)
    static = next(r for r in streams if r["system"] == "static")
    assert static["retrains"] == 0


@pytest.mark.slow
def test_every_injected_fault_recovers_within_its_promise_and_ends_healthy(
    run: tuple[list[dict[str, object]], Path],
) -> None:
    """A corrupted champion with a stable fallback is rolled back on the tick it is seen; a training stage
    that fails twice is rerun until it passes; champion and stable damaged together are rebuilt within one
    tick; a promoted version that serves worse is rolled back and no harmful promotion stays; a retrain
    killed by a crash is reconciled as aborted by a fresh heald, which retrains again and heals."""
    rows, _ = run
    faults = {r["fault"]: r for r in rows if "fault" in r}
    assert set(faults) == set(FAULTS)
    for fault in faults.values():
        assert fault["status"] == "recovered", fault
        assert fault["healthy"] is True
        assert isinstance(fault["recovery_ticks"], int) and fault["recovery_ticks"] <= fault["within"]
        assert fault["harmful_promotions"] == 0
    for name in ("corrupt-champion", "stage-fails-twice", "damage-champion-and-stable"):
        assert faults[name]["detection_ticks"] == 0  # artifact and pipeline-run sensors look on every tick
    assert faults["corrupt-champion"]["remedies"] == ["rollback:succeeded"]
    assert faults["stage-fails-twice"]["remedies"] == ["rerun:failed", "rerun:succeeded"]
    assert faults["damage-champion-and-stable"]["recovery_ticks"] <= 1
    assert "retrain:succeeded" in faults["damage-champion-and-stable"]["remedies"]
    assert "rollback:succeeded" in faults["promoted-then-worse"]["remedies"]
    assert {"retrain:aborted", "retrain:succeeded"} <= set(faults["crash-mid-retrain"]["remedies"])


def test_a_fault_whose_prerequisite_is_missing_is_reported_pending(tmp_path: Path) -> None:
    """The fault registry is open: a fault that cannot run here is listed as pending with its reason, and
    no heald is started for it."""
    sys.path.append(str(ROOT / "bench"))  # appended: bench/pipeline.py must not shadow the package
    from healbench import faults, replay, streams

    class Unwired:
        name = "needs-a-part"
        description = "a fault whose part is not built yet"
        fallback = False
        drift = False
        label_delay = 0
        within = 3
        after = 8

        def missing(self) -> str | None:
            return "pending: the part is not in this tree"

        def inject(self, system: replay.HealdSystem) -> str:
            raise AssertionError("a pending fault is never injected")

        def recovered(self, system: replay.HealdSystem) -> bool:
            raise AssertionError("a pending fault is never watched")

    result = faults.run(Unwired(), streams.TINY, tmp_path / "state", seed=1)
    assert result.status == "pending" and result.note == "pending: the part is not in this tree"
    assert not (tmp_path / "state").exists()
    assert result.as_row()["fault"] == "needs-a-part"


@pytest.mark.slow
def test_the_report_rewrites_only_its_own_section(run: tuple[list[dict[str, object]], Path]) -> None:
    """RESULTS.md keeps other benchmarks' sections and gains this one, with its command and a plot."""
    _, out = run
    text = (out / "RESULTS.md").read_text()
    assert "## Someone else's benchmark\n\nkeep me" in text
    assert "## Healing benchmark (bench/healing.py), tiny streams" in text
    assert "python bench/healing.py --tiny --streams sea-abrupt" in text
    assert (out / "plots" / "healing-tiny-sea-abrupt.png").stat().st_size > 10_000
    assert "bench/plots/healing-tiny-sea-abrupt.png" in (out / "README-snippet.md").read_text()


def _healbench() -> None:
    if str(ROOT / "bench") not in sys.path:
        sys.path.append(str(ROOT / "bench"))  # appended: bench/pipeline.py must not shadow the package


def test_cancer_subgroup_inverts_the_subgroup_only_and_shifts_the_mix() -> None:
    """In the shifted third the large-radius subgroup makes up most rows and its labels are inverted against
    the same rows before the drift; rows outside it keep the original relation (benign mostly 1)."""
    _healbench()
    from healbench import streams

    stream = streams.load("cancer-subgroup", streams.QUICK, seed=3)
    replay = stream.frame.iloc[stream.warmup :].reset_index(drop=True)
    first, second = stream.drifts
    cut = float(stream.initial()["x0"].quantile(0.8))
    before, shifted = replay.iloc[: first.at], replay.iloc[first.at : second.at]
    assert (shifted["x0"] > cut).mean() > 2 * (before["x0"] > cut).mean()
    big_before = before[before["x0"] > cut][streams.TARGET].mean()
    big_after = shifted[shifted["x0"] > cut][streams.TARGET].mean()
    assert big_before < 0.3 and big_after > 0.7  # large tumours: malignant (0) before, labelled 1 after
    small_after = replay.iloc[second.at :]
    small_after = small_after[small_after["x0"] < float(stream.initial()["x0"].quantile(0.3))]
    assert small_after[streams.TARGET].mean() > 0.8


def test_digits_input_drift_changes_the_mix_not_the_relation() -> None:
    """After the drift most rows are digits 0-4, before it the digits are evenly mixed; the stream is marked
    harmless, so the benchmark checks that heald does not retrain on it."""
    _healbench()
    from healbench import streams

    stream = streams.load("digits-input-drift", streams.QUICK, seed=3)
    replay = stream.frame.iloc[stream.warmup :].reset_index(drop=True)
    start = stream.drifts[0].at
    assert stream.harmless
    assert (replay.iloc[:start][streams.TARGET] <= 4).mean() < 0.6
    assert (replay.iloc[start:][streams.TARGET] <= 4).mean() > 0.8


def test_the_long_stream_has_100_batches_and_several_drifts() -> None:
    """The quick long stream replays at least 100 batches and has at least 3 abrupt drifts."""
    _healbench()
    from healbench import streams

    stream = streams.load("sea-long", streams.QUICK, seed=1)
    assert len(stream.batches()) >= 100
    assert len(stream.drifts) >= 3


def test_a_promotion_is_harmful_only_when_worse_beyond_tolerance_and_kept() -> None:
    """A promoted version scoring more than the tolerance below the one it replaced is harmful only if it
    was still champion at the end of the window; a rolled-back or close one is not."""
    _healbench()
    from healbench.promotions import TOLERANCE, Promotion

    worse = 0.9 - 2 * TOLERANCE
    assert Promotion(batch=3, new=2, old=1, new_score=worse, old_score=0.9, kept=True).harmful
    assert not Promotion(batch=3, new=2, old=1, new_score=worse, old_score=0.9, kept=False).harmful
    assert not Promotion(batch=3, new=2, old=1, new_score=0.9 - TOLERANCE / 2, old_score=0.9, kept=True).harmful
    assert not Promotion(batch=3, new=2, old=1, new_score=None, old_score=0.9, kept=True).harmful


def test_spread_over_seeds_is_mean_and_sample_deviation() -> None:
    """Figures over seeds are reported as the mean and the sample standard deviation (0 for one seed)."""
    _healbench()
    from healbench.report import Spread

    three = Spread.of([0.8, 0.9, 1.0])
    assert abs(three.mean - 0.9) < 1e-12 and abs(three.sd - 0.1) < 1e-12 and three.n == 3
    assert Spread.of([0.7]).sd == 0.0


def test_the_benchmark_pool_answers_every_worker_pool_method() -> None:
    """The benchmark wraps heald's pool to time actions; a method the loop or an actuator calls (``compute``,
    ``size``) missing from the wrapper fails every action in the benchmark, so each protocol member must be there."""
    check = (
        "import sys; sys.path[:0] = ['.', 'bench']\n"
        "from actuators.pool import WorkerPool\n"
        "from healbench.replay import TimedPool\n"
        "members = [m for m in vars(WorkerPool) if not m.startswith('_')]\n"
        "missing = [m for m in members if not callable(getattr(TimedPool, m, None))]\n"
        "print(len(members), missing)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    count, missing = done.stdout.strip().split(" ", 1)
    assert int(count) >= 6 and missing == "[]"
