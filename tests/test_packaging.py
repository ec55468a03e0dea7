"""Packaging: the wheel holds exactly heald's five packages (generic names, so this is checked), its
migrations and typed markers, and both console scripts run from an installation of that wheel alone."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"daemon", "sensors", "actuators", "pipeline", "knowledge"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("heald-*.whl")
    return built


def test_wheel_holds_exactly_our_packages(wheel: Path) -> None:
    """Top-level entries are our five packages and the dist-info; no tests, no bench, no stray modules."""
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == PACKAGES | {next(t for t in top if t.endswith(".dist-info"))}
    assert "knowledge/sql/migrations/env.py" in names
    assert any(n.startswith("knowledge/sql/migrations/versions/0001") for n in names)
    assert all(f"{p}/py.typed" in names for p in PACKAGES)


def test_each_package_is_ours(wheel: Path) -> None:
    """Each top-level package's __init__ says it is a heald stage (guards against a same-named stranger)."""
    archive = zipfile.ZipFile(wheel)
    for package in PACKAGES:
        doc = archive.read(f"{package}/__init__.py").decode()
        assert "MAPE-K" in doc or "pipeline" in doc.lower(), package


def test_console_scripts_run_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    """heald and healctl are declared entry points and run (--help) from the wheel's own files."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import daemon; print(daemon.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(target))
    for script, expected in (("healctl", "Operate heald"), ("heald", "self-healing MLOps daemon")):
        result = subprocess.run(
            [sys.executable, str(target / "bin" / script), "--help"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout
