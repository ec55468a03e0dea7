"""Adaptive batching: requests of one model and shape answered by one predict call give the answers each would get
alone; other keys are never mixed in; one request's bad rows are its own problem."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from typing import Any

import pandas as pd
import pytest

from daemon.batching import Batcher, Part
from daemon.compose import Heald
from daemon.onboard import onboard
from daemon.serving import Answer, Champion, ChampionCache, predict_frame, predict_parts, shape
from knowledge.clock import ManualClock
from pipeline.train import TrainParams
from tests.conftest import table


@pytest.fixture
def champion(heald: Heald, clock: ManualClock) -> Champion:
    onboard(
        heald.store,
        heald.registry,
        name="m",
        frame=table(600),
        target="y",
        now=clock.now(),
        params=TrainParams(n_estimators=10),
    )
    return ChampionCache().get(heald.store, heald.registry, "m")


def requests(count: int, size: int) -> list[Part]:
    rows: list[dict[str, Any]] = table(count * size, seed=11).drop(columns=["y"]).to_dict(orient="records")  # type: ignore[assignment]
    return [rows[i * size : (i + 1) * size] for i in range(count)]


def test_batched_answers_equal_answers_alone_row_for_row(champion: Champion) -> None:
    """Ten requests predicted together get, request by request and row by row, what each gets alone."""
    parts = requests(10, 7)
    together = predict_parts(champion, parts)
    alone = [predict_frame(champion, pd.DataFrame(part)) for part in parts]
    assert together == alone
    assert [len(a.predictions) for a in together if isinstance(a, Answer)] == [7] * 10


def test_a_bad_request_in_a_batch_fails_alone(champion: Champion) -> None:
    """A request whose rows cannot be predicted gets its own error; the others of its batch their answers."""
    parts = requests(3, 4)
    bad = [dict(row, a=[1, 2]) for row in parts[1]]
    answers = predict_parts(champion, [parts[0], bad, parts[2]])
    assert isinstance(answers[1], Exception)
    assert answers[0] == predict_frame(champion, pd.DataFrame(parts[0]))
    assert answers[2] == predict_frame(champion, pd.DataFrame(parts[2]))


def test_shape_tells_columns_and_value_types_apart() -> None:
    """Requests with other columns, or other value types in a column, have another shape (another batch)."""
    assert shape([{"a": 1.0, "b": "x"}]) == shape([{"b": "y", "a": 2.5}, {"a": 3.0, "b": "z"}])
    assert shape([{"a": 1.0, "b": "x"}]) != shape([{"a": 1.0}])
    assert shape([{"a": 1.0, "b": "x"}]) != shape([{"a": "1%", "b": "x"}])


def gather(batcher: Batcher[str], calls: Sequence[tuple[Hashable, Part]]) -> tuple[list[object], list[list[Part]]]:
    """Run ``calls`` on threads that all announce themselves before any joins; returns results and batches run."""
    seen: list[list[Part]] = []
    lock = threading.Lock()
    results: list[object] = [None] * len(calls)
    ready = threading.Barrier(len(calls))

    def function(parts: Sequence[Part]) -> list[str | Exception]:
        with lock:
            seen.append(list(parts))
        return [ValueError("bad part") if part[0].get("bad") else f"{part[0]['k']}:{len(part)}" for part in parts]

    def call(i: int, key: Hashable, rows: Part) -> None:
        with batcher.arriving() as arrival:
            ready.wait()
            try:
                results[i] = batcher.run(key, rows, function, arrival)
            except ValueError as exc:
                results[i] = exc

    threads = [threading.Thread(target=call, args=(i, k, r)) for i, (k, r) in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, seen


def test_requests_of_one_key_share_one_call_and_get_their_own_results() -> None:
    """Six requests announced together with one key are run in one call; each gets its own result back."""
    batcher: Batcher[str] = Batcher(window=60, max_rows=6)
    results, seen = gather(batcher, [("m", [{"k": i}]) for i in range(6)])
    assert results == [f"{i}:1" for i in range(6)]
    assert len(seen) == 1 and len(seen[0]) == 6


def test_other_keys_are_never_mixed_and_a_failing_part_fails_alone() -> None:
    """Requests of two keys go to separate calls; a part the function fails gets its exception, the rest results."""
    batcher: Batcher[str] = Batcher(window=0.05, max_rows=1000)
    calls: list[tuple[Hashable, Part]] = [(key, [{"k": i, "key": key}]) for i, key in enumerate("aabab")]
    calls.append(("a", [{"k": 5, "key": "a", "bad": True}]))
    results, seen = gather(batcher, calls)
    assert results[:5] == [f"{i}:1" for i in range(5)] and isinstance(results[5], ValueError)
    assert all(len({p[0]["key"] for p in parts}) == 1 for parts in seen)
    assert sorted(p[0]["k"] for parts in seen for p in parts) == list(range(6))


def test_a_lone_request_does_not_wait_for_company() -> None:
    """With nothing else arriving and no recent company, a request runs at once even with a long window."""
    batcher: Batcher[str] = Batcher(window=3600, max_rows=1000)
    assert batcher.run("m", [{"k": 1}], lambda parts: ["done"] * len(parts)) == "done"
