"""Errors of the managed pipeline.

The pipeline imports nothing else of heald, so it has its own small tree; the daemon shows these exactly
like ``knowledge.errors.HealdError``::

    PipelineError          root of every error the pipeline raises on purpose
    ├── DataError          a file or frame is malformed: the message names the file, column or row
    ├── StageError         a pipeline stage failed; says which stage and why
    └── TransientError     a failure worth retrying (a full disk, a killed worker); the runner backs off
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""


class DataError(PipelineError):
    """A file or frame is malformed; the message names the file, column or row."""


class StageError(PipelineError):
    """A pipeline stage failed."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"stage {stage!r} failed: {reason}")
        self.stage = stage
        self.reason = reason


class TransientError(PipelineError):
    """A failure that may pass if tried again later: the runner retries it with backoff."""
