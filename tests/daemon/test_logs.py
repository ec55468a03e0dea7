"""Logs are JSON lines with stable fields, carry journald priorities, and never leak local variables."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from daemon import logs


@pytest.fixture(autouse=True)
def reset() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_each_event_is_one_json_object_with_utc_time() -> None:
    """An event renders as one JSON line with event, level, ISO UTC timestamp and bound fields."""
    stream = io.StringIO()
    logs.configure("info", stream=stream, console=False)
    logs.get().warning("incident_opened", model="m", incident_id=3)
    (line,) = stream.getvalue().splitlines()
    data = json.loads(line)
    assert data["event"] == "incident_opened" and data["level"] == "warning"
    assert data["model"] == "m" and data["incident_id"] == 3 and data["timestamp"].endswith("Z")


def test_level_filters_lower_events() -> None:
    """Below the configured level nothing is written."""
    stream = io.StringIO()
    logs.configure("warning", stream=stream, console=False)
    logs.get().info("tick_completed")
    assert stream.getvalue() == ""


def test_journald_lines_carry_the_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under journald each line starts with <N> so the journal's priority matches the level."""
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    stream = io.StringIO()
    logs.configure("info", stream=stream, console=False)
    logs.get().error("action_failed", action_id=1)
    logs.get().info("action_succeeded", action_id=2)
    first, second = stream.getvalue().splitlines()
    assert first.startswith("<3>{") and second.startswith("<6>{")
    assert json.loads(first[3:])["event"] == "action_failed"


def test_tracebacks_do_not_show_local_variables() -> None:
    """An exception is logged as structured data without the frame's locals (secrets stay out)."""
    stream = io.StringIO()
    logs.configure("info", stream=stream, console=False)
    password = "hunter2"
    try:
        raise RuntimeError("database refused " + password[:0])
    except RuntimeError:
        logs.get().exception("tick_failed")
    data = json.loads(stream.getvalue())
    assert data["exception"][0]["exc_type"] == "RuntimeError"
    assert "hunter2" not in stream.getvalue()


def test_library_records_are_json_lines_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library that logs through the standard library (apscheduler skipping a job) writes one JSON line with a
    stable event name, its logger and its text, with the journald priority of its level: no plain text reaches
    a journal filter."""
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # restored after the test
    monkeypatch.setattr(root, "level", root.level)
    stream = io.StringIO()
    logs.configure("info", stream=stream, console=False)
    logging.getLogger("apscheduler.scheduler").warning("Execution of job %s skipped", "tick")
    logging.getLogger("apscheduler.scheduler").info("below warning: not written")
    (line,) = stream.getvalue().splitlines()
    assert line.startswith("<4>{")
    data = json.loads(line[3:])
    assert data["event"] == "library_log" and data["level"] == "warning"
    assert data["logger"] == "apscheduler.scheduler" and data["message"] == "Execution of job tick skipped"
