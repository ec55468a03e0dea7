"""The http source: rows (and late labels) from a JSON API, after a watermark or a cursor.

heald asks ``GET <url>?<since_param>=<watermark or cursor>&limit=<n>`` (no ``since`` on the very first pull
unless a start is configured), with ``Authorization: Bearer <token>`` when a token is configured. The answer
is a JSON list of row objects, or an object ``{"rows": [...], "<cursor_field>": <next cursor>}``. A cursor,
when given, is what the next pull sends; otherwise the watermark column of the rows decides.

A timeout, a refused connection, an HTTP error status, an answer larger than ``max_bytes`` and an answer that
is not JSON rows are ``SourceError``s naming the URL (without its query) and the problem; the token never
appears in a message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from knowledge.errors import SourceError
from sensors.sources.base import Page, Stream


class HttpSource:
    """A JSON endpoint (and optionally a labels endpoint) returning rows."""

    kind = "http"

    def __init__(
        self,
        *,
        url: str,
        watermark: str = "",
        labels_url: str = "",
        labels_watermark: str = "",
        token: str = "",
        since_param: str = "since",
        cursor_field: str = "next",
        timeout: float = 10.0,
        max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._urls = {Stream.ROWS: url, Stream.LABELS: labels_url}
        self._columns = {Stream.ROWS: watermark, Stream.LABELS: labels_watermark or watermark}
        self._token = token
        self._since = since_param
        self._cursor = cursor_field
        self._timeout = timeout
        self._max_bytes = max_bytes

    def streams(self) -> tuple[Stream, ...]:
        return (Stream.ROWS, Stream.LABELS) if self._urls[Stream.LABELS] else (Stream.ROWS,)

    def watermark(self, stream: Stream) -> str:
        return self._columns[stream]

    def pull(self, stream: Stream, since: Any, limit: int) -> Page:
        url = self._urls[stream]
        where = f"http source {url.split('?', 1)[0]} ({stream})"
        body = self._get(url, since, limit, where)
        try:
            answer = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(f"{where}: the answer is not JSON ({exc}); it starts {body[:80]!r}") from None
        return _page(answer, self._cursor, where)

    def _get(self, url: str, since: Any, limit: int, where: str) -> bytes:
        params = {"limit": str(limit)}
        if since is not None:
            params[self._since] = _text(since)
        joiner = "&" if urllib.parse.urlsplit(url).query else "?"
        request = urllib.request.Request(url + joiner + urllib.parse.urlencode(params))
        request.add_header("Accept", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:
                body: bytes = answer.read(self._max_bytes + 1)
        except urllib.error.HTTPError as exc:
            raise SourceError(f"{where}: answered HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"{where}: cannot be read: {type(exc).__name__}: {reason}") from None
        if len(body) > self._max_bytes:
            raise SourceError(f"{where}: the answer is larger than max_bytes ({self._max_bytes} bytes); lower `limit`")
        return body


def _page(answer: Any, cursor_field: str, where: str) -> Page:
    """Rows (and the next cursor) from a list of objects or a ``{"rows": [...]}`` object."""
    cursor = None
    if isinstance(answer, dict):
        cursor = answer.get(cursor_field)
        answer = answer.get("rows")
    if not isinstance(answer, list) or not all(isinstance(r, dict) for r in answer):
        raise SourceError(f'{where}: the answer is not a list of row objects (nor {{"rows": [...]}})')
    return Page(rows=answer, cursor=cursor)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else json.dumps(value)
