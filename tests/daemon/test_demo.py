"""The demo, run as `healctl demo --json` in a real process: heald heals the drift and the corrupt file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEALCTL = str(Path(sys.executable).parent / "healctl")
INCIDENT_KEYS = {"id", "model", "kind", "status", "opened_at", "resolved_at", "actions"}


@pytest.mark.slow
def test_demo_resolves_drift_by_retrain_and_corruption_by_rollback(tmp_path: Path) -> None:
    """The final incidents include the drift's performance_drop resolved by a retrain (the data_drift it came with
    resolved too) and an artifact_corrupt by a rollback, in the JSON shape `healctl incidents --json` prints."""
    state = tmp_path / "demo"
    result = subprocess.run(
        [HEALCTL, "demo", "--json", "--state-dir", str(state)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    incidents = json.loads(result.stdout)
    assert all(set(i) >= INCIDENT_KEYS for i in incidents)
    assert all({"id", "kind", "state"} <= set(a) for i in incidents for a in i["actions"])

    def healed(kind: str, by: str) -> bool:
        return any(
            i["kind"] == kind
            and i["status"] == "resolved"
            and any(a["kind"] == by and a["state"] == "succeeded" for a in i["actions"])
            for i in incidents
        )

    assert healed("performance_drop", "retrain")
    assert any(i["kind"] == "data_drift" and i["status"] == "resolved" for i in incidents)
    assert healed("artifact_corrupt", "rollback")

    listed = subprocess.run(
        [HEALCTL, "incidents", "--json", "--config", str(state / "heald.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == incidents

    status = subprocess.run(
        [HEALCTL, "status", "--json", "--config", str(state / "heald.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    (model,) = json.loads(status.stdout)["models"]
    assert model["model"] == "churn" and model["artifact_ok"] is True and model["open_incidents"] == 0
