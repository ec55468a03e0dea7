"""Logs: one JSON object per line on stdout, for log-based alerting; readable lines on a terminal.

Event names are stable snake_case past-tense words (``incident_opened``, ``action_succeeded``) with the
fields alerting needs (``model``, ``incident_id``, ``action_id``). Under journald each line starts with a
``<N>`` priority so the journal's level matches the event's. Tracebacks never show local variables,
which could hold secrets. This module is the only one that configures structlog.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, WrappedLogger

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
SYSLOG_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}


def configure(level: str = "info", *, stream: TextIO | None = None, console: bool | None = None) -> None:
    """Set up structlog once, at the edge of the program."""
    stream = stream or sys.stdout
    if console is None:
        console = stream.isatty()
    journald = bool(os.environ.get("JOURNAL_STREAM")) and not console
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if console:
        renderer: list[Any] = [structlog.dev.ConsoleRenderer(colors=True)]
    else:
        renderer = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(sort_keys=False),
        ]
        if journald:
            renderer.append(_journald_prefix)
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library (uvicorn, apscheduler) go quiet below warning, and what
    # they do say comes out as the same JSON lines (event ``library_log``), so a journal filter never meets text.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, _library_event],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def _library_event(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """A library's record: its free text becomes ``message`` under one stable event name."""
    event["message"] = str(event.get("event", ""))
    event["event"] = "library_log"
    return event


def _journald_prefix(_logger: WrappedLogger, _name: str, line: str | EventDict) -> str:
    text = str(line)
    level = text.split('"level": "', 1)[1].split('"', 1)[0] if '"level": "' in text else "info"
    return f"<{SYSLOG_PRIORITY.get(level, 6)}>{text}"


def get(name: str = "heald") -> Any:
    """A logger; bind ``model=...`` and friends to it."""
    return structlog.get_logger(name)
