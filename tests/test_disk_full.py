"""A full disk: the state folder on a small tmpfs (mounted as root), filled to the last byte while batches
wait. Intake stops claiming and says so (an event, a metric, the status line); no batch row is written twice;
once space returns intake resumes and every file is recorded exactly once."""

from __future__ import annotations

import errno
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.compose import Heald, build
from daemon.metrics import Metrics
from daemon.onboard import onboard
from daemon.service import Service
from knowledge.clock import ManualClock
from pipeline.train import TrainParams
from sensors.claims import PROCESSING
from tests.conftest import make_settings, table


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs; skipped with the reason when not root or when the mount is refused."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True, text=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the file system refuses another byte."""
    filler = disk / "filler"
    with filler.open("wb") as fh:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
                    fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def claims(heald: Heald) -> list[str]:
    return [b.claim or "" for b in heald.store.batches("m", status=None)]


def test_a_full_disk_pauses_intake_without_duplicates_and_it_resumes(small_disk: Path) -> None:
    """Under ENOSPC no batch row is duplicated and no file is lost; intake_blocked, heald_intake_blocked and the
    STATUS line say so; new files wait in the landing folder; with space back, each file is recorded once."""
    clock = ManualClock()
    heald = build(make_settings(small_disk / "state"), clock=clock, pool="inline")
    try:
        onboard(heald.store, heald.registry, name="m", frame=table(600, seed=1), target="y", now=clock.now(),
                params=TrainParams(n_estimators=10, max_depth=6))  # fmt: skip
        landing = heald.settings.landing / "m"
        landing.mkdir(parents=True)
        # The bad file comes first: quarantining it must write its reason, which a full disk refuses for sure.
        table(100, seed=2).drop(columns="b").to_csv(landing / "a-bad.csv", index=False)
        for i in range(3):
            table(300, seed=10 + i).to_csv(landing / f"b-good-{i}.csv", index=False)
        filler = fill(small_disk)
        metrics = Metrics(heald.store, heald.registry, lambda: heald.loop.p.intake.health)
        with capture_logs() as logged:
            for _ in range(3):
                clock.advance(timedelta(hours=1))
                heald.loop.tick()
        assert claims(heald) == []
        blocked = [e for e in logged if e["event"] == "intake_blocked"]
        assert len(blocked) == 1 and blocked[0]["model"] == "m" and "No space left" in blocked[0]["error"]
        assert 'heald_intake_blocked{model="m"} 1.0' in metrics.render().decode()
        assert "intake paused (disk full) for m" in Service(heald, None)._status([])
        waiting = sorted(p.name for p in landing.iterdir())
        assert waiting == ["b-good-0.csv", "b-good-1.csv", "b-good-2.csv"]  # not claimed while the disk is full
        assert [p.name for p in (heald.settings.landing / PROCESSING / "m").glob("*/*")] == ["a-bad.csv"]

        filler.unlink()
        with capture_logs() as logged:
            for _ in range(2):
                clock.advance(timedelta(hours=1))
                heald.loop.tick()
        assert [e["event"] for e in logged if e["event"].startswith("intake_")] == ["intake_resumed"]
        recorded = Counter(c.split("/", 1)[1] for c in claims(heald))
        assert recorded == Counter(["a-bad.csv", "b-good-0.csv", "b-good-1.csv", "b-good-2.csv"])
        assert [b.rows for b in heald.store.batches("m")] == [300, 300, 300]
        assert all(Path(b.path).is_file() for b in heald.store.batches("m", status=None))
        assert not list(landing.iterdir()) and not list((heald.settings.landing / PROCESSING / "m").iterdir())
        assert 'heald_intake_blocked{model="m"}' not in metrics.render().decode()
    finally:
        heald.close()
