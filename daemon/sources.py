"""Sources from config: the composition root's helper that turns each model's ``[models.source]`` into a puller.

Secrets are read here, once, when heald is wired: a SQLAlchemy URL or an HTTP endpoint from ``url``, from the
environment variable ``url_env`` names, or from the first line of ``url_file``; an HTTP bearer token from
``token_env`` or ``token_file``. They are handed to the source and never logged (messages show the URL
without its password, the endpoint without its query, and never the token).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.config import Settings, SourceSettings
from daemon.views import iso
from knowledge.errors import ConfigError, SourceError
from knowledge.values import SourceState
from sensors.sources.base import Page, Source, Stream
from sensors.sources.http import HttpSource
from sensors.sources.puller import Pulling
from sensors.sources.sql import SqlSource
from sensors.sources.watermarks import decode


def pullings(settings: Settings, environ: Mapping[str, str]) -> dict[str, Pulling]:
    """A ``Pulling`` for every model whose source is ``sql`` or ``http``; ``ConfigError`` names what is missing."""
    found = {}
    for model in settings.models:
        config = model.source
        if config.kind == "landing":
            continue
        where = f"{settings.source}: models.{model.name}.source"
        try:
            source: Source = _source(config, environ, where)
        except ConfigError as exc:  # healctl runs without the daemon's secrets; the daemon reports it per pull
            source = Unconfigured(kind=config.kind, error=str(exc))
        found[model.name] = Pulling(
            source=source,
            key=config.key,
            start=start_value(config.start),
            lookback=config.lookback,
            max_rows=config.max_rows_per_tick,
            backoff=config.backoff_seconds,
            max_backoff=config.max_backoff_seconds,
        )
    return found


class Unconfigured:
    """A source whose URL or token could not be read: every pull fails with that reason (a source incident)."""

    def __init__(self, *, kind: str, error: str) -> None:
        self.kind = kind
        self.error = error

    def streams(self) -> tuple[Stream, ...]:
        return (Stream.ROWS,)

    def watermark(self, stream: Stream) -> str:
        return ""

    def pull(self, stream: Stream, since: Any, limit: int) -> Page:
        raise SourceError(self.error)


def start_value(text: str) -> Any:
    """The configured first watermark as what it looks like: an integer, a number, a time, or text (None if empty)."""
    if not text:
        return None
    for parse in (int, float, datetime.fromisoformat):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def _source(config: SourceSettings, environ: Mapping[str, str], where: str) -> Source:
    url = _secret(config.url, config.url_env, config.url_file, environ, f"{where}.url")
    if config.kind == "sql":
        return SqlSource(
            url=url,
            query=config.query,
            watermark=config.watermark,
            labels_query=config.labels_query,
            labels_watermark=config.labels_watermark,
            timeout=config.timeout_seconds,
        )
    token = _secret("", config.token_env, config.token_file, environ, f"{where}.token") if _has_token(config) else ""
    return HttpSource(
        url=url,
        watermark=config.watermark,
        labels_url=config.labels_url,
        labels_watermark=config.labels_watermark,
        token=token,
        since_param=config.since_param,
        cursor_field=config.cursor_field,
        timeout=config.timeout_seconds,
        max_bytes=config.max_bytes,
    )


def _has_token(config: SourceSettings) -> bool:
    return bool(config.token_env or config.token_file)


def _secret(value: str, env: str, file: Path | None, environ: Mapping[str, str], what: str) -> str:
    """The value given inline, else from the named environment variable, else from the file's first line."""
    if value:
        return value
    if env:
        if not environ.get(env):
            raise ConfigError(f"{what}: environment variable {env} is not set (or empty)")
        return environ[env]
    assert file is not None  # the settings' validator asked for one of the three
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what}: file {file} cannot be read: {type(exc).__name__}") from None
    if not lines or not lines[0].strip():
        raise ConfigError(f"{what}: file {file} is empty")
    return lines[0].strip()


def source_view(state: SourceState, now: datetime) -> dict[str, Any]:
    """A stream's state for `healctl sources`: the watermark as a person reads it, and the lag behind now."""
    mark = decode(state.watermark)
    lag = (now - mark).total_seconds() if isinstance(mark, datetime) and mark.tzinfo is not None else None
    return {
        "model": state.model,
        "stream": state.stream,
        "kind": state.kind,
        "watermark": mark.isoformat() if isinstance(mark, datetime) else mark,
        "pending": (state.pending or {}).get("file"),
        "rows": state.rows,
        "batches": state.batches,
        "lag_seconds": lag,
        "last_pull_at": iso(state.last_pull_at),
        "last_success_at": iso(state.last_success_at),
        "failures": state.failures,
        "last_error": state.last_error,
        "retry_at": iso(state.retry_at) if state.failures else None,
    }
