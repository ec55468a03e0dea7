"""State is created readable by its owner only, with or without systemd's UMask: folders 0700, the database,
model files and the generated config holding api_token 0600, even under a permissive umask of 000."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import config as configuration
from daemon.compose import build
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from pipeline.train import TrainParams
from tests.conftest import make_settings, table


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask a careless shell could have: nothing heald makes may rely on it."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def state(tmp_path: Path, open_umask: None) -> Path:
    settings = make_settings(tmp_path / "state", api_token="t0ken")
    heald = build(settings, clock=ManualClock(), pool="inline")
    try:
        onboard(
            heald.store,
            heald.registry,
            name="m",
            frame=table(200),
            target="y",
            now=heald.clock.now(),
            params=TrainParams(n_estimators=2, n_jobs=1),
        )
        configuration.write(settings.state_dir / "heald.toml", settings.model_dump(mode="json", exclude_defaults=True))
    finally:
        heald.close()
    return settings.state_dir


# what -> (path under the state folder, the mode it must have)
MODES = {
    "state folder": (".", 0o700),
    "database": ("heald.db", 0o600),
    "artifact folder": ("artifacts/m", 0o700),
    "model file": ("artifacts/m/v0001.skops", 0o600),
    "reference sample": ("artifacts/m/v0001.reference.parquet", 0o600),
    "generated config with api_token": ("heald.toml", 0o600),
}


@pytest.mark.parametrize("what", sorted(MODES))
def test_state_is_owner_only_under_a_permissive_umask(state: Path, what: str) -> None:
    """Each kind of state heald creates has exactly the owner-only mode, whatever the umask; it still works."""
    relpath, wanted = MODES[what]
    path = state / relpath
    assert mode(path) == wanted, f"{what}: {oct(mode(path))}"
    if what == "generated config with api_token":
        assert configuration.load(path, environ={}).api_token == "t0ken"
