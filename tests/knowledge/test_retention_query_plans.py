"""Every query a tick makes follows an index, so a tick's store time does not grow with the store's age."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import event

from daemon.compose import Heald
from knowledge.clock import ManualClock
from knowledge.values import Version
from tests.sensing import drop, shop_rows

# Tables that grow with every tick, batch, incident or action: none may be read whole, nor sorted whole.
GROWING = (
    "observations",
    "observation_rollups",
    "batches",
    "symptoms",
    "incidents",
    "actions",
    "action_events",
    "decisions",
    "alias_history",
    "controls",
    "served_rows",
)


@contextmanager
def selects(heald: Heald) -> Iterator[dict[str, Any]]:
    """Every distinct SELECT run on the store meanwhile, with the parameters of its first run."""
    seen: dict[str, Any] = {}

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.setdefault(statement, parameters)

    event.listen(heald.store.engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(heald.store.engine, "before_cursor_execute", grab)


def test_no_tick_query_scans_or_sorts_a_growing_table(
    watched: Heald, champion: Version, clock: ManualClock, rng: np.random.Generator
) -> None:
    """EXPLAIN QUERY PLAN of each query of ticks that sense, open incidents and plan: no full scan of a growing
    table, and the readings of a model are never sorted (their index holds the order)."""
    for i in range(8):
        drop(watched, f"b{i}.csv", shop_rows(300, rng, shift=2.0 if i >= 3 else 0.0))
        clock.advance(timedelta(hours=1))
        if i == 7:
            with selects(watched) as seen:
                watched.loop.tick()
        else:
            watched.loop.tick()
    assert watched.store.active_incidents("shop"), "the ticks measured must plan for an open incident"
    database = watched.store.engine.url.database
    assert database is not None
    con = sqlite3.connect(database)
    bad = []
    for statement, parameters in seen.items():
        plan = [row[3] for row in con.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
        scans = [p for p in plan if p.startswith("SCAN") and p.split()[1] in GROWING]
        sorted_readings = "observations" in statement.split("WHERE")[0] and any("TEMP B-TREE" in p for p in plan)
        if scans or sorted_readings:
            bad.append((" ".join(statement.split())[:160], plan))
    con.close()
    assert len(seen) > 15, "the tick's queries were captured"
    assert bad == []
