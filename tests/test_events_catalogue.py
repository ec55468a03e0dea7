"""docs/events.md lists every event the code can log, at the level it is logged, with its fields."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("daemon", "sensors", "actuators", "pipeline", "knowledge")
LEVELS = {"debug": "debug", "info": "info", "warning": "warning", "error": "error", "exception": "error"}
LEVELS["critical"] = "critical"


@dataclass(frozen=True)
class Emitted:
    event: str
    level: str
    fields: frozenset[str]
    where: str

    def at(self, where: str) -> Emitted:
        return replace(self, where=where)


def emitted() -> list[Emitted]:
    """Every ``<logger>.<level>("event", key=...)`` call in heald's packages, and every intake event
    (``<run>.event("event", Level.X, key=...)``, logged by the loop with the model added)."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                deferred = _intake_event(node) or _library_event(node)
                if deferred is not None:
                    found.append(deferred.at(f"{path.relative_to(ROOT)}:{node.lineno}"))
                    continue
                call = _log_call(node)
                if call is None:
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                first = call.args[0] if call.args else None
                assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                    f"{where}: the event name must be a string literal so this catalogue can be checked"
                )
                assert isinstance(call.func, ast.Attribute)
                keys = frozenset(k.arg for k in call.keywords if k.arg is not None)
                found.append(Emitted(first.value, LEVELS[call.func.attr], keys, where))
    return found


def _intake_event(node: ast.AST) -> Emitted | None:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "event"):
        return None
    if len(node.args) < 2 or not isinstance(node.args[0], ast.Constant):
        return None
    level = node.args[1]
    if not (isinstance(level, ast.Attribute) and isinstance(level.value, ast.Name) and level.value.id == "Level"):
        return None
    keys = frozenset(k.arg for k in node.keywords if k.arg is not None) | {"model"}
    return Emitted(str(node.args[0].value), level.attr.lower(), keys, "")


def _library_event(node: ast.AST) -> Emitted | None:
    """``event["event"] = "name"``: daemon.logs renames a library's record (warning or above; its logger and text)."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript)):
        return None
    key, value = node.targets[0].slice, node.value
    if not (isinstance(key, ast.Constant) and key.value == "event" and isinstance(value, ast.Constant)):
        return None
    return Emitted(str(value.value), "warning", frozenset({"logger", "message"}), "")


def _log_call(node: ast.AST) -> ast.Call | None:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LEVELS):
        return None
    owner = node.func.value
    return node if isinstance(owner, ast.Name) and owner.id in ("log", "logger") else None


def catalogue() -> dict[str, tuple[str, frozenset[str]]]:
    """docs/events.md's table: event -> (level, fields)."""
    rows = {}
    for line in (ROOT / "docs" / "events.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[1], frozenset(re.findall(r"`(\w+)`", cells[2])))
    return rows


def test_the_scan_finds_the_events_alerting_depends_on() -> None:
    """The scanner itself works: the escalation, the alert and the per-batch events are found."""
    names = {e.event for e in emitted()}
    assert {"incident_escalated", "alert_raised", "batch_accepted", "batch_quarantined", "config_invalid"} <= names
    assert {"intake_blocked", "batch_skipped"} <= names


def test_every_emitted_event_is_documented_with_its_level_and_fields() -> None:
    """No event reaches the log without a row in docs/events.md naming its level and every field."""
    documented = catalogue()
    problems = []
    for e in emitted():
        if e.event not in documented:
            problems.append(f"{e.where}: {e.event} is not in docs/events.md")
            continue
        level, fields = documented[e.event]
        if e.level != level and not (e.event == "tick_completed" and e.level == "debug"):
            problems.append(f"{e.where}: {e.event} is logged at {e.level}, documented as {level}")
        if not e.fields <= fields:
            problems.append(f"{e.where}: {e.event} fields {sorted(e.fields - fields)} are not documented")
    assert not problems, "\n".join(problems)


def test_every_documented_event_is_emitted() -> None:
    """The catalogue holds no event the code no longer logs."""
    stale = set(catalogue()) - {e.event for e in emitted()}
    assert not stale, f"docs/events.md lists events nothing emits: {sorted(stale)}"


def test_a_config_error_at_start_is_a_json_line(tmp_path: Path) -> None:
    """`heald` with a bad config exits 2 and says why in one JSON line (`config_invalid`), so the journal
    recipe and log-based alerting see it like every other event."""
    config = tmp_path / "heald.toml"
    config.write_text(f'state_dir = "{tmp_path}"\napi_port = "http"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALD_")}
    heald = Path(sys.executable).parent / "heald"
    done = subprocess.run(
        [heald, "--config", config], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 2
    lines = [json.loads(line) for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    [line] = lines
    assert line["event"] == "config_invalid" and line["level"] == "error"
    assert "key 'api_port' = 'http'" in line["error"] and str(config) in line["error"]
