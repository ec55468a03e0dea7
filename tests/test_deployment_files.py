"""The deployment files that ship with heald are valid: the unit verifies and is hardened, the example
config loads, and the Prometheus alert rules and the Grafana dashboard check out against what heald exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.compose import Heald
from daemon.config import load
from daemon.metrics import Metrics
from knowledge.values import Version

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "heald.service"
ANALYZE = shutil.which("systemd-analyze")


def local_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's heald, so verify can check the command."""
    text = UNIT.read_text().replace("/opt/heald/bin/heald", str(Path(sys.executable).parent / "heald"))
    copy = tmp_path / "heald.service"
    copy.write_text(text)
    return copy


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_unit_verifies_without_errors(tmp_path: Path) -> None:
    """systemd-analyze verify finds no unknown keys or bad values (recursive errors make warnings fail)."""
    result = subprocess.run(
        [str(ANALYZE), "verify", "--recursive-errors=yes", str(local_unit(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_unit_is_hardened(tmp_path: Path) -> None:
    """The offline security score stays at or below exposure 2.0 (a naive unit scores about 9.6)."""
    result = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", "--threshold=20", str(local_unit(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-500:]


def test_unit_speaks_the_daemon_protocol() -> None:
    """Type=notify with a watchdog, reload by SIGHUP, and no restart loop on configuration errors."""
    text = UNIT.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "RestartPreventExitStatus=2", "WatchdogSec="):
        assert line in text


def test_example_config_loads() -> None:
    """The commented example config is valid as shipped."""
    settings = load(ROOT / "systemd" / "heald.example.toml", environ={})
    assert settings.api_host == "127.0.0.1" and settings.models[0].name == "churn"


PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "heald.json"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make test` installs it through scripts/system-deps"
    return subprocess.run([tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False)


def test_alert_rules_are_valid() -> None:
    """`promtool check rules` accepts the shipped alert rules."""
    result = promtool("check", "rules", "heald.rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_alert_rules_fire_when_they_should() -> None:
    """`promtool test rules`: a stalled loop, failing ticks, an escalation, a model unhealthy for 30 minutes,
    serving from memory and a dead target each fire, and not before their time."""
    result = promtool("test", "rules", "heald.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("", "_total"), "gauge": ("",), "summary": ("",)}


def exported_names(heald: Heald) -> set[str]:
    """The series names a real heald exports, from its TYPE lines (so families without samples yet count)."""
    text = Metrics(heald.store, heald.registry).render().decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            names |= {name.removesuffix("_total") + suffix for suffix in SUFFIXES.get(kind, ("",))}
    return names


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\b((?:heald|process)_[a-z_]+)", text))


def test_rules_and_dashboard_use_only_exported_metrics(watched: Heald, champion: Version) -> None:
    """Every heald_/process_ name in the alert rules and the Grafana dashboard is one /metrics exports."""
    names = exported_names(watched)
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for source, text in (("rules", (PROMETHEUS / "heald.rules.yml").read_text()), ("dashboard", exprs)):
        used = referenced(text)
        assert used, source
        assert used <= names, f"{source} uses metrics heald does not export: {sorted(used - names)}"
    assert dashboard["uid"] == "heald" and len(dashboard["panels"]) >= 10


def example_keys() -> dict[str, set[str]]:
    """Keys the example config sets or shows commented out, per table ("" for the top level)."""
    keys: dict[str, set[str]] = {"": set()}
    table = ""
    for line in (ROOT / "systemd" / "heald.example.toml").read_text().splitlines():
        header = re.fullmatch(r"\[\[?([\w.]+)\]\]?(\s*#.*)?", line.strip())
        if header:
            table = header.group(1).split(".")[-1]  # [models.source] is the table "source"
            keys.setdefault(table, set())
            continue
        key = re.match(r"#?\s*(\w+)\s*=", line.strip())
        if key:
            keys[table].add(key.group(1))
    return keys


def test_example_config_documents_every_setting() -> None:
    """Every key of the settings model (top level, [policy], [pipeline], [monitor], [[models]]) appears in
    systemd/heald.example.toml, set or commented out, and the file names no key heald does not know."""
    from daemon.config import ModelSettings, Monitor, PipelineSettings, Policy, Settings, SourceSettings

    tables = {"": Settings, "policy": Policy, "pipeline": PipelineSettings, "monitor": Monitor, "models": ModelSettings}
    tables["source"] = SourceSettings
    shown = example_keys()
    for table, model in tables.items():
        expected = {name for name, f in model.model_fields.items() if not f.exclude} - set(tables)
        assert expected <= shown[table], f"[{table}] lacks {sorted(expected - shown[table])}"
        assert shown[table] <= expected, f"[{table}] names unknown keys {sorted(shown[table] - expected)}"
