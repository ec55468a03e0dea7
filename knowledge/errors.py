"""The exception tree of heald, shared by every layer of the loop.

Every error heald raises on purpose derives from ``HealdError`` and carries a message that names the
thing that was wrong (a key, a file, a version), so the CLI and the daemon can show it without a
traceback::

    HealdError
    ├── ConfigError            a setting is missing, unknown, of the wrong type or out of range
    ├── StoreError             the knowledge store cannot be reached or migrated
    │   ├── StaleEpochError    a write carried a lease epoch that is no longer the current one (fenced)
    │   └── DiskFullError      a write failed because the disk (or quota) is full; retried when space returns
    ├── NotFoundError          a model, version, incident or action that does not exist
    │   └── NoChampionError    a model exists but no version is its champion (nothing to serve)
    ├── ArtifactError          a model file is missing, unreadable, or fails its sha256 check
    ├── SourceError            a data source (a database query, an HTTP API) failed or answered badly
    └── ActionError            a remediation could not be carried out (no target, not better, ...)

The pipeline, which imports nothing of heald, has its own small tree rooted at
``pipeline.errors.PipelineError`` (malformed data is its ``DataError``); the CLI and daemon treat both
roots alike.
"""

from __future__ import annotations


class HealdError(Exception):
    """Root of every error heald raises on purpose."""


class ConfigError(HealdError):
    """A setting is missing, unknown, of the wrong type or out of range."""


class StoreError(HealdError):
    """The knowledge store cannot be reached, opened or migrated."""


class StaleEpochError(StoreError):
    """A daemon wrote with a lease epoch another daemon has since replaced: the write was refused whole.

    It derives from ``StoreError`` because to the code that tried the write it is a store refusal like any
    other (an actuator reports its action failed); the loop catches it first and stops acting.
    """


class DiskFullError(StoreError):
    """A write failed because the file system holding it is full (ENOSPC, EDQUOT or SQLite's "disk is full")."""


class NotFoundError(HealdError):
    """A model, version, incident or action that does not exist."""


class NoChampionError(NotFoundError):
    """A model exists but no version is its champion, so there is nothing to serve (the API answers 503)."""


class ArtifactError(HealdError):
    """A model file is missing, unreadable, or its sha256 does not match the registry."""


class SourceError(HealdError):
    """A data source (a database query, an HTTP API) cannot be reached, timed out, or answered badly."""


class ActionError(HealdError):
    """A remediation could not be carried out; the message says why (no target, not better, ...)."""
