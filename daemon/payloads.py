"""Checks on what the prediction API is handed, before any of it reaches a model or the loop's batches.

Two guards: ``BodyLimit`` refuses a request body beyond ``api_max_bytes`` with 413 before it is parsed (a
declared Content-Length is refused at once; a chunked body is counted as it arrives), and ``row_problems``
names every served value a model cannot take: a null, NaN or infinite feature, a list or object where a
value belongs, text in a numeric column. Both are plain ASGI and Python, so the API module stays the only
importer of FastAPI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.numbers import is_word, parse_numbers

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

SHOWN = 5  # problems listed in one answer; the count says how many there were


class BodyLimit:
    """ASGI middleware: a body over ``limit()`` bytes gets 413 naming the limit and is never parsed."""

    def __init__(self, app: App, limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit, f"{int(declared)} bytes declared")
            return
        body, message = await _read(receive, limit)
        if body is None:
            await _too_large(send, limit, "more arrived")
            return
        await self.app(scope, _replay(body, message), send)


async def _read(receive: Receive, limit: int) -> tuple[bytes | None, Message | None]:
    """The whole body (None once it passes ``limit``); a disconnect message is handed on as it came."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes, last: Message | None) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return last or {"type": "http.disconnect"}

    return receive


async def _too_large(send: Send, limit: int, seen: str) -> None:
    detail = f"request body too large ({seen}): the limit is api_max_bytes = {limit}"
    payload = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    # The client may still be sending: ask it to close rather than read the rest of a body we refuse.
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def row_problems(rows: Sequence[Mapping[str, Any]], features: Sequence[str], kinds: Mapping[str, str]) -> list[str]:
    """What is wrong with the served rows, as ``row 3: feature 'a' is null`` (empty when nothing is).

    ``kinds`` maps a feature to ``numeric`` or ``categorical`` (from the champion's profile); a feature it
    does not know is checked for nulls and shape only.
    """
    return list(_problems(rows, features, kinds))


def _problems(rows: Sequence[Mapping[str, Any]], features: Sequence[str], kinds: Mapping[str, str]) -> Iterator[str]:
    for i, row in enumerate(rows):
        for feature in features:
            if feature in row:
                problem = value_problem(row[feature], kinds.get(feature))
                if problem:
                    yield f"row {i}: feature {feature!r} {problem}"


def value_problem(value: Any, kind: str | None) -> str:
    """Why one served value cannot be predicted on ('' when it can)."""
    if value is None:
        return "is null"
    if isinstance(value, dict | list):
        return f"is a JSON {'object' if isinstance(value, dict) else 'array'}, not a single value"
    if isinstance(value, float) and math.isnan(value):
        return "is NaN"
    if isinstance(value, float) and math.isinf(value):
        return "is infinite"
    if kind == "numeric" and isinstance(value, str) and (is_word(value) or not value.strip()):
        return f"= {value[:40]!r} is text, but the model takes a number"
    # Numbers written as the training file wrote them ("27%", "$1,200") are read the same way here.
    if (
        kind == "numeric"
        and isinstance(value, str)
        and not math.isfinite(parse_numbers(np.array([value], dtype=object))[0])
    ):
        return f"= {value!r} is not a finite number"
    return ""


def summary(problems: list[str]) -> str:
    shown = "; ".join(problems[:SHOWN])
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    return f"rows hold values the model cannot take: {shown}{more}"
