"""A model whose source is a real PostgreSQL table: rows inserted over time become batches exactly once (across
restarts and a crash between writing a page and recording it), a page is bounded per tick, rows sharing a
watermark across two pages are neither lost nor repeated, late rows within the look-back are taken once, a
label table filled later joins its rows, and a table that breaks opens one ``source_failed`` incident that
resolves when it is back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from daemon.compose import Heald
from knowledge.clock import ManualClock
from knowledge.values import SymptomKind
from sensors.sources.base import Stream
from tests.sensing import MODEL, TARGET
from tests.sources import (
    LABELS_QUERY,
    archived_ids,
    insert_visits,
    onboard_shop,
    sql_settings,
    start,
    tick,
    user_database,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def users(pg_url: str) -> Iterator[Engine]:
    engine = user_database(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sourced(tmp_path: Path, clock: ManualClock, pg_url: str, users: Engine) -> Iterator[Heald]:
    heald = start(sql_settings(tmp_path / "state", pg_url), clock)
    onboard_shop(heald, clock)
    yield heald
    heald.close()


def test_rows_inserted_over_time_become_batches_exactly_once_across_a_restart(
    tmp_path: Path, clock: ManualClock, pg_url: str, users: Engine, sourced: Heald
) -> None:
    """300 rows sharing three timestamps arrive as pages of at most 250 (the rest next tick), 100 more after a
    restart come in one page, and every id is archived exactly once; the watermark is the newest timestamp."""
    rng = np.random.default_rng(1)
    t0 = clock.now()
    ids = [i for n in range(3) for i in insert_visits(users, 1 + 100 * n, 100, t0 + timedelta(minutes=n), rng)]
    tick(sourced, clock)
    tick(sourced, clock)
    tick(sourced, clock)
    sourced.close()
    ids += insert_visits(users, 301, 100, t0 + timedelta(minutes=30), rng)
    again = start(sql_settings(tmp_path / "state", pg_url), clock)
    try:
        tick(again, clock)
        tick(again, clock)
        batches = again.store.batches(MODEL)
        state = again.store.source_state(MODEL, Stream.ROWS)
    finally:
        again.close()
    assert [b.rows for b in batches] == [250, 50, 100]
    assert all(b.source == "sql" and b.status == "accepted" and b.labelled for b in batches)
    assert sorted(archived_ids(batches)) == ids
    assert state is not None and state.rows == 400 and state.batches == 3 and state.pending is None
    assert state.watermark == {"at": (t0 + timedelta(minutes=30)).isoformat()}


def test_a_crash_after_the_page_is_written_records_it_once_and_a_crash_before_pulls_it_again(
    tmp_path: Path, clock: ManualClock, pg_url: str, users: Engine, sourced: Heald
) -> None:
    """A page written to the landing folder but not recorded (a crash) is recorded once by the next daemon,
    which does not pull those rows again; a page noted as pending whose file never appeared is pulled again."""
    rng = np.random.default_rng(2)
    ids = insert_visits(users, 1, 120, clock.now(), rng)
    puller = sourced.loop.p.sources
    assert puller is not None
    pulled = puller.pull(sourced.store.get_model(MODEL), sourced.store, clock.now())  # ... and the daemon dies
    assert [e.name for e in pulled.events] == ["source_pulled"]
    sourced.close()
    again = start(sql_settings(tmp_path / "state", pg_url), clock)
    try:
        tick(again, clock)
        ids += insert_visits(users, 121, 30, clock.now(), rng)
        # A crash between noting the next page and writing its file: the note names a file that never appeared.
        again.store.begin_pull(MODEL, Stream.ROWS, "sql", at=clock.now(), pending={"file": "sql-rows-00000002.csv"})
        tick(again, clock)
        tick(again, clock)
        batches = again.store.batches(MODEL)
    finally:
        again.close()
    assert [b.rows for b in batches] == [120, 30]
    assert sorted(archived_ids(batches)) == ids


def test_late_rows_within_the_look_back_are_taken_once(
    tmp_path: Path, clock: ManualClock, pg_url: str, users: Engine
) -> None:
    """A row committed late with an older timestamp (within ``lookback``) is taken on a later pull; the rows
    read again in the window are dropped by key, so every id is archived once."""
    heald = start(sql_settings(tmp_path / "state", pg_url, lookback=600), clock)
    try:
        onboard_shop(heald, clock)
        rng = np.random.default_rng(4)
        t0 = clock.now()
        ids = insert_visits(heald_users := users, 1, 60, t0, rng)
        tick(heald, clock)
        ids += insert_visits(heald_users, 61, 40, t0 - timedelta(minutes=5), rng)  # late, older watermark
        tick(heald, clock)
        tick(heald, clock)
        batches = heald.store.batches(MODEL)
    finally:
        heald.close()
    assert [b.rows for b in batches] == [60, 40]
    assert sorted(archived_ids(batches)) == ids


def test_a_label_table_filled_later_joins_its_rows(
    tmp_path: Path, clock: ManualClock, pg_url: str, users: Engine
) -> None:
    """Unlabelled rows arrive first; when their labels land in the label table, the labels query (a join by
    id) brings them as a labelled ``feedback`` batch of those very rows, and the performance sensor scores it."""
    settings = sql_settings(tmp_path / "state", pg_url, labels_query=LABELS_QUERY, labels_watermark="labelled_at")
    heald = start(settings, clock)
    try:
        onboard_shop(heald, clock)
        rng = np.random.default_rng(5)
        ids = insert_visits(users, 1, 200, clock.now(), rng, labelled=False)
        tick(heald, clock)
        [unlabelled] = heald.store.batches(MODEL)
        with users.begin() as c:
            c.execute(
                text("INSERT INTO labels SELECT id, (id % 2), :at FROM visits WHERE id <= 150"),
                {"at": clock.now()},
            )
        tick(heald, clock)
        tick(heald, clock)
        batches = heald.store.batches(MODEL)
        readings = heald.store.observations(MODEL, metric="performance")
    finally:
        heald.close()
    assert not unlabelled.labelled and unlabelled.source == "sql" and unlabelled.rows == 200
    [labels] = batches[1:]
    assert labels.source == "feedback" and labels.labelled and labels.rows == 150
    joined = pd.read_csv(labels.path)
    assert sorted(joined["source_key"]) == ids[:150]
    assert (joined[TARGET] == joined["source_key"] % 2).all()
    assert readings, "the labelled rows were scored"


def test_a_table_that_breaks_and_comes_back_opens_and_resolves_one_incident(
    clock: ManualClock, users: Engine, sourced: Heald
) -> None:
    """The table renamed away (a changed schema) fails every pull: the tick goes on, one ``source_failed``
    incident opens and a person is alerted; with the table back the rows come in once and the incident
    resolves."""
    rng = np.random.default_rng(6)
    ids = insert_visits(users, 1, 80, clock.now(), rng)
    with users.begin() as c:
        c.execute(text("ALTER TABLE visits RENAME TO visits_moved"))
    for _ in range(3):
        tick(sourced, clock)
    state = sourced.store.source_state(MODEL, Stream.ROWS)
    open_ = sourced.store.active_incidents(MODEL)
    with users.begin() as c:
        c.execute(text("ALTER TABLE visits_moved RENAME TO visits"))
    for _ in range(4):
        tick(sourced, clock)
    incidents = [i for i in sourced.store.list_incidents() if i.kind is SymptomKind.SOURCE_FAILED]
    assert state is not None and state.failures == 3 and "visits" in state.last_error
    assert [i.kind for i in open_] == [SymptomKind.SOURCE_FAILED]
    assert len(incidents) == 1 and incidents[0].status.value == "resolved"
    assert [a.kind.value for a in sourced.store.actions(model=MODEL)] == ["alert"]
    assert sorted(archived_ids(sourced.store.batches(MODEL))) == ids
    after = sourced.store.source_state(MODEL, Stream.ROWS)
    assert after is not None and after.failures == 0 and after.last_error == ""
