"""The puller's rules, with a scripted source (``sensors.sources.base.ScriptedSource``) over a real SQLite
store: failures back off, doubling up to the cap, with no reading while waiting; a page missing its key or
watermark column is a failure that names the columns; the watermark asked for is moved back by the look-back;
a first watermark is parsed from the config as what it looks like."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.sources import start_value
from knowledge.errors import SourceError
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ModelRecord, Task
from sensors.sources.base import Page, ScriptedSource, Stream
from sensors.sources.puller import Pulling, SourcePuller

T0 = datetime(2026, 5, 1, tzinfo=UTC)
MODEL = ModelRecord(name="m", task=Task.CLASSIFICATION, target="y", created_at=T0, features=["a"])


@pytest.fixture
def store(tmp_path: Path) -> SqlKnowledgeStore:
    return SqlKnowledgeStore.open(f"sqlite:///{tmp_path / 'heald.db'}")


def puller(tmp_path: Path, source: ScriptedSource, **how: object) -> SourcePuller:
    settings = {"key": "id", "backoff": 60.0, "max_backoff": 300.0, **how}
    return SourcePuller(tmp_path / "landing", {"m": Pulling(source=source, **settings)})  # type: ignore[arg-type]


def test_failures_back_off_doubling_up_to_the_cap_with_no_reading_while_waiting(
    tmp_path: Path, store: SqlKnowledgeStore
) -> None:
    """Failed pulls are retried after 60 s, 120 s, 240 s, then 300 s (the cap); a tick inside the wait asks
    nothing and reports nothing, so an open incident neither grows nor resolves."""
    source = ScriptedSource([SourceError("down")] * 5)
    pull = puller(tmp_path, source)
    delays, now = [], T0
    for _ in range(5):
        pulled = pull.pull(MODEL, store, now)
        assert [o.value for o in pulled.observations] == [1.0]
        state = store.source_state("m", Stream.ROWS)
        assert state is not None and state.retry_at is not None
        waiting = pull.pull(MODEL, store, state.retry_at - timedelta(seconds=1))
        assert waiting.observations == [] and waiting.events == []
        delays.append((state.retry_at - now).total_seconds())
        now = state.retry_at
    assert delays == [60.0, 120.0, 240.0, 300.0, 300.0]
    assert len(source.asked) == 5


def test_a_page_without_its_key_or_watermark_is_a_failure_naming_the_columns(
    tmp_path: Path, store: SqlKnowledgeStore
) -> None:
    """Rows whose key or watermark column vanished (a changed schema) are not written out: the pull fails
    with a message naming the missing and the present columns, and the watermark stays."""
    source = ScriptedSource([Page(rows=[{"ident": 1, "at": 5, "a": 1.0}])])
    pulled = puller(tmp_path, source).pull(MODEL, store, T0)
    [event] = pulled.events
    assert event.name == "source_failed"
    assert "['id']" in str(event.fields["error"]) and "ident" in str(event.fields["error"])
    assert not (tmp_path / "landing" / "m").exists()
    state = store.source_state("m", Stream.ROWS)
    assert state is not None and state.watermark is None and state.failures == 1


def test_the_watermark_asked_for_is_moved_back_by_the_look_back_and_read_again_rows_are_dropped(
    tmp_path: Path, store: SqlKnowledgeStore
) -> None:
    """After a page up to watermark 10, the next pull asks from 10 - lookback (7) for max_rows plus the keys
    already taken; rows it had already taken are not written again."""
    first = Page(rows=[{"id": i, "at": i, "a": 1.0} for i in (8, 9, 10)])
    again = Page(rows=[{"id": i, "at": i, "a": 1.0} for i in (8, 9, 10)])
    source = ScriptedSource([first, again])
    pull = puller(tmp_path, source, lookback=3.0, start=0, max_rows=50)
    pull.pull(MODEL, store, T0)
    written = sorted((tmp_path / "landing" / "m").iterdir())
    store.add_batch(
        model="m", received_at=T0, source="scripted", path="x", rows=3, labelled=False, fingerprint="",
        claim="c/" + written[0].name, pulled=written[0].name,
    )  # fmt: skip
    second = pull.pull(MODEL, store, T0 + timedelta(hours=1))
    assert source.asked == [(Stream.ROWS, 0, 50), (Stream.ROWS, 7, 53)]
    assert [e.name for e in second.events] == []
    assert [p.name for p in written] == ["scripted-rows-00000001.csv"]
    state = store.source_state("m", Stream.ROWS)
    assert state is not None and state.watermark == 10 and sorted(state.seen) == ["10", "8", "9"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("", None), ("0", 0), ("2.5", 2.5), ("2026-01-01T00:00:00+00:00", datetime(2026, 1, 1, tzinfo=UTC)),
     ("abc", "abc")],
)  # fmt: skip
def test_the_first_watermark_is_read_as_what_it_looks_like(text: str, value: object) -> None:
    """``start`` is an integer, a number, a time or text, so it compares with the column it is bound against."""
    assert start_value(text) == value
