"""The exit statuses of healctl and heald, one per kind of failure, so scripts can tell them apart.

======  ==========  ==========================================================================
status  name        when
======  ==========  ==========================================================================
0       ok          the command did what it was asked
1       failure     the work was tried and failed: an action, a pipeline run, a crash of heald
                    itself
2       usage       the command line, the config or a data file named on it is wrong (click's
                    usage errors, a bad key or value, a file that fails validation), or heald cannot
                    start on it: the knowledge store it names cannot be opened (unreachable, no
                    driver, an empty or foreign file)
3       not found   no such model, version, incident or action
4       refused     a safety check said no: a version that was rolled back, an artifact that does
                    not verify, nothing to roll back to, a version below the health threshold
======  ==========  ==========================================================================

A rule lives in one table: ``EXIT_FOR`` maps heald's exception tree onto these statuses (first match wins,
so subclasses come before their parents).
"""

from __future__ import annotations

from enum import IntEnum

from knowledge.errors import ActionError, ArtifactError, ConfigError, HealdError, NotFoundError, StoreError
from pipeline.errors import PipelineError


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    NOT_FOUND = 3
    REFUSED = 4


EXIT_FOR: tuple[tuple[type[Exception], ExitCode], ...] = (
    (NotFoundError, ExitCode.NOT_FOUND),
    (ConfigError, ExitCode.USAGE),
    # Every start-up failure is one line and status 2, whatever the program: a store that cannot be opened
    # is the config's URL or path pointing at the wrong thing, not work that was tried and failed.
    (StoreError, ExitCode.USAGE),
    (ActionError, ExitCode.REFUSED),
    (ArtifactError, ExitCode.REFUSED),
    (HealdError, ExitCode.FAILURE),
    # The pipeline's errors reach the command line from the data a person named (init, drift): bad input.
    (PipelineError, ExitCode.USAGE),
)


def exit_code(error: Exception) -> ExitCode:
    """The status a command exits with after ``error``."""
    return next((code for kind, code in EXIT_FOR if isinstance(error, kind)), ExitCode.FAILURE)
