"""The sql source: rows (and late labels) read from any database SQLAlchemy reaches, after a watermark.

The configured query carries a ``:watermark`` bind parameter (write ``WHERE updated_at >= :watermark``: rows at
the watermark itself are read again and dropped by key, so rows sharing a timestamp across two pages are never
lost). heald wraps it to take the oldest rows first, a page at a time::

    SELECT * FROM (<query>) AS heald_page ORDER BY <watermark> LIMIT :heald_limit

This is heald's one reader of *other people's* databases; the knowledge store has its own (``knowledge.sql``).
Errors name the source and the problem, never the URL's password.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from knowledge.errors import SourceError
from sensors.sources.base import Page, Stream


class SqlSource:
    """A query (and optionally a labels query) on a SQLAlchemy URL."""

    kind = "sql"

    def __init__(
        self,
        *,
        url: str,
        query: str,
        watermark: str,
        labels_query: str = "",
        labels_watermark: str = "",
        timeout: float = 10.0,
    ) -> None:
        self._url = url
        self._queries = {Stream.ROWS: query, Stream.LABELS: labels_query}
        self._columns = {Stream.ROWS: watermark, Stream.LABELS: labels_watermark or watermark}
        self._timeout = timeout
        self._engine: Engine | None = None

    @property
    def where(self) -> str:
        """The URL without its password, for messages."""
        try:
            return make_url(self._url).render_as_string(hide_password=True)
        except ArgumentError:
            return "<an invalid SQLAlchemy URL>"

    def streams(self) -> tuple[Stream, ...]:
        return (Stream.ROWS, Stream.LABELS) if self._queries[Stream.LABELS] else (Stream.ROWS,)

    def watermark(self, stream: Stream) -> str:
        return self._columns[stream]

    def pull(self, stream: Stream, since: Any, limit: int) -> Page:
        try:
            engine = self._connect()
            column = engine.dialect.identifier_preparer.quote(self._columns[stream])
            sql = text(f"SELECT * FROM ({self._queries[stream]}) AS heald_page ORDER BY {column} LIMIT :heald_limit")
            with engine.connect() as c:
                rows = [dict(r) for r in c.execute(sql, {"watermark": since, "heald_limit": limit}).mappings()]
        except SQLAlchemyError as exc:
            # The driver's first line says what failed (refused, timeout, no such column) without the statement.
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:500]
            raise SourceError(f"sql source {self.where} ({stream} query): {type(exc).__name__}: {detail}") from None
        return Page(rows=rows)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def _connect(self) -> Engine:
        if self._engine is None:
            try:
                url = make_url(self._url)
            except ArgumentError:
                raise SourceError(f"sql source: {self.where}") from None
            self._engine = create_engine(
                url, pool_pre_ping=True, connect_args=_timeouts(url.get_backend_name(), self._timeout)
            )
        return self._engine


def _timeouts(backend: str, seconds: float) -> dict[str, Any]:
    """Bound the connection and each statement, so a hung database costs a tick at most ``seconds``."""
    if backend == "postgresql":
        return {"connect_timeout": max(1, round(seconds)), "options": f"-c statement_timeout={int(seconds * 1000)}"}
    if backend == "sqlite":
        return {"timeout": seconds}
    return {}
