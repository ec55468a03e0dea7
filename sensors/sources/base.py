"""The protocol of a data source: one method that reads a page of rows after a watermark.

A source knows how to ask (a query, a URL) and nothing of heald's state: the puller (``sensors.sources.puller``)
keeps the watermark, the keys already taken, the back-off, and turns pages into landing batches. A ``rows``
stream brings new rows (labelled or not); a ``labels`` stream brings rows whose label arrived later, which
become labelled batches like the API's feedback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

PULLED = re.compile(r"^(?:feedback-)?(?P<kind>[a-z]+)-(?:rows|labels)-\d{8}\.csv$")


class Stream(StrEnum):
    ROWS = "rows"
    LABELS = "labels"


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """Rows a source answered, oldest watermark first; ``cursor`` is the next cursor when the source gives one."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    cursor: Any = None


def pulled_kind(name: str) -> str | None:
    """The source kind (``sql``, ``http``) that wrote a landing file of this name, or None."""
    match = PULLED.match(name)
    return match["kind"] if match else None


class Source(Protocol):
    """Reads pages of rows; raises ``knowledge.errors.SourceError`` naming what failed (never a secret)."""

    kind: str

    def streams(self) -> tuple[Stream, ...]: ...

    def watermark(self, stream: Stream) -> str:
        """The column whose value orders this stream's rows ("" for a cursor-only source)."""
        ...

    def pull(self, stream: Stream, since: Any, limit: int) -> Page: ...


class LandingSource:
    """Today's default: producers drop files in the landing folder; there is nothing to pull."""

    kind = "landing"

    def streams(self) -> tuple[Stream, ...]:
        return ()

    def watermark(self, stream: Stream) -> str:
        return ""

    def pull(self, stream: Stream, since: Any, limit: int) -> Page:
        return Page()


class ScriptedSource:
    """A fake source for unit tests: answers prepared pages (or raises prepared errors) one call at a time."""

    kind = "scripted"

    def __init__(self, answers: list[Page | Exception], column: str = "at") -> None:
        self.answers = list(answers)
        self.column = column
        self.asked: list[tuple[Stream, Any, int]] = []

    def streams(self) -> tuple[Stream, ...]:
        return (Stream.ROWS,)

    def watermark(self, stream: Stream) -> str:
        return self.column

    def pull(self, stream: Stream, since: Any, limit: int) -> Page:
        self.asked.append((stream, since, limit))
        answer = self.answers.pop(0) if self.answers else Page()
        if isinstance(answer, Exception):
            raise answer
        return answer
