"""The dashboard in a real headless Chromium, over the state `healctl demo` leaves: every page loads with no
console error and no request to another host, its charts are drawn with the expected series and markers, and
the numbers it shows are those `healctl status --json` and `healctl incidents --json` print."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from daemon import config as configuration
from daemon import views
from daemon.api import ApiServer, create_app
from daemon.capture import Capture
from daemon.compose import Heald, build
from daemon.metrics import Metrics
from knowledge.values import ActionState
from tests import browser as chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]
HEALCTL = str(Path(sys.executable).parent / "healctl")
MODEL = "churn"


@dataclass(frozen=True, slots=True)
class Site:
    heald: Heald
    base: str
    host: str
    config: Path


def healctl(*args: str) -> object:
    done = subprocess.run([HEALCTL, *args], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The demo's knowledge store behind a real API server on loopback."""
    state = tmp_path_factory.mktemp("dashboard") / "demo"
    healctl("demo", "--json", "--state-dir", str(state))
    config = state / "heald.toml"
    heald = build(configuration.load(config), pool="inline")
    server = ApiServer(
        create_app(lambda: heald, Capture(heald.settings.landing), Metrics(heald.store, heald.registry)), "127.0.0.1", 0
    )
    port = server.start()
    yield Site(heald=heald, base=f"http://127.0.0.1:{port}", host=f"127.0.0.1:{port}", config=config)
    server.stop()
    heald.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not chromium.available():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; `make test` installs it (scripts/system-deps)")
        pytest.skip("chromium is not installed (run scripts/system-deps)")
    with chromium.chromium() as opened:
        yield opened


def test_overview_shows_the_numbers_status_json_prints(site: Site, browser: Browser) -> None:
    """The overview lists every model with the champion, performance and open incidents of `healctl status
    --json`, and the daemon's total of open incidents; it loads nothing from another host."""
    status = healctl("status", "--json", "--config", str(site.config))
    assert isinstance(status, dict)
    with chromium.visit(browser, site.base + "/", allowed_host=site.host) as seen:
        page = seen.page
        for model in status["models"]:
            row = page.locator(f"tr[data-model='{model['model']}']")
            assert row.locator("[data-field='champion']").inner_text() == f"v{model['champion']}"
            shown = row.locator("[data-field='health'] .health").get_attribute("data-value")
            assert shown is not None and float(shown) == model["performance"]
            assert int(row.locator("[data-field='open_incidents']").inner_text()) == model["open_incidents"]
            assert row.locator("svg.sparkline polyline.series").count() == 1
        assert int(page.locator("[data-field='open_total']").inner_text()) == status["open_incidents"]
        assert seen.errors == [] and seen.foreign == []


def test_model_page_draws_the_metric_incidents_and_actions(site: Site, browser: Browser) -> None:
    """The model page draws the metric with its threshold, one shaded span per incident, one marker per
    finished action, a drift heatmap over the model's features, and every version and alias move."""
    store = site.heald.store
    first = store.observations(MODEL, metric="performance", limit=5000)[0].at
    finished = [
        a for a in store.actions(model=MODEL, since=first) if a.state in (ActionState.SUCCEEDED, ActionState.FAILED)
    ]
    incidents = store.list_incidents(model=MODEL, limit=500)
    with chromium.visit(browser, f"{site.base}/ui/models/{MODEL}", allowed_host=site.host) as seen:
        chart = seen.page.locator("#health-chart svg.chart")
        series = 1 + bool(store.observations(MODEL, metric="accuracy_estimate", limit=1))
        assert chart.locator("polyline.series").count() == series
        assert chart.locator("line.threshold").get_attribute("data-value") == "0.8"
        assert chart.locator("rect.incident").count() == len(incidents) > 0
        assert chart.locator("g.marker").count() == len(finished) > 0
        kinds = {k for k in chart.locator("g.marker").evaluate_all("els => els.map(e => e.dataset.kind)")}
        assert {"retrain", "rollback"} <= kinds
        features = set(store.get_model(MODEL).features)
        heat = seen.page.locator("#drift-heatmap rect.cell")
        assert heat.count() > 0
        assert set(heat.evaluate_all("els => els.map(e => e.dataset.feature)")) <= features
        assert seen.page.locator("#versions tr[data-version]").count() == len(store.list_versions(MODEL))
        assert seen.page.locator("#aliases tbody tr").count() == len(store.alias_history(MODEL))
        assert seen.errors == [] and seen.foreign == []


def test_incident_pages_match_incidents_json(site: Site, browser: Browser) -> None:
    """Every incident's page shows the status `healctl incidents --json` prints and its whole timeline."""
    listed = healctl("incidents", "--json", "--config", str(site.config))
    assert isinstance(listed, list) and listed
    for incident in listed:
        with chromium.visit(browser, f"{site.base}/ui/incidents/{incident['id']}", allowed_host=site.host) as seen:
            assert seen.page.locator("[data-status]").get_attribute("data-status") == incident["status"]
            expected = len(views.timeline(site.heald.store, incident["id"]))
            assert seen.page.locator("#timeline > li").count() == expected
            assert seen.errors == [] and seen.foreign == []


def test_drift_report_compares_every_feature_with_its_reference(site: Site, browser: Browser) -> None:
    """The drift report has a section per feature with reference-against-current bars, and the features it
    calls drifted in the latest batch are those `healctl status --json` reports from the last tick."""
    features = site.heald.store.get_model(MODEL).features
    status = healctl("status", "--json", "--config", str(site.config))
    assert isinstance(status, dict)
    (model,) = status["models"]
    with chromium.visit(browser, f"{site.base}/ui/models/{MODEL}/drift", allowed_host=site.host) as seen:
        sections = seen.page.locator("section.feature")
        assert sorted(sections.evaluate_all("els => els.map(e => e.dataset.feature)")) == sorted(features)
        drifted = seen.page.locator("section.feature[data-verdict='drift']")
        assert sorted(drifted.evaluate_all("els => els.map(e => e.dataset.feature)")) == sorted(model["drifted"])
        assert seen.page.locator("rect.bar[data-side='reference']").count() > 0
        assert seen.page.locator("rect.bar[data-side='current']").count() > 0
        assert seen.errors == [] and seen.foreign == []


def test_unknown_pages_answer_404_with_a_page(site: Site, browser: Browser) -> None:
    """A model or incident that does not exist gets a 404 page naming it, not a server error."""
    with chromium.visit(browser, site.base + "/", allowed_host=site.host) as seen:
        answer = seen.page.request.get(f"{site.base}/ui/models/nope")
        assert answer.status == 404 and "nope" in answer.text()
        assert seen.page.request.get(f"{site.base}/ui/incidents/99999").status == 404
        assert seen.page.request.get(f"{site.base}/docs").status == 404  # its scripts would come from a CDN


def test_report_file_opens_offline_with_the_same_charts(site: Site, browser: Browser, tmp_path: Path) -> None:
    """`healctl report` writes one file that Chromium renders with no network at all, with the model page's
    chart (same series and markers) and the drift report's sections."""
    out = tmp_path / "report.html"
    done = subprocess.run(
        [HEALCTL, "report", MODEL, "--out", str(out), "--config", str(site.config)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with chromium.visit(browser, f"{site.base}/ui/models/{MODEL}", allowed_host=site.host) as live:
        expected = {
            what: live.page.locator(f"#health-chart {what}").count() for what in ("polyline.series", "g.marker")
        }
    with chromium.visit(browser, out.as_uri(), allowed_host=None) as seen:
        for what, count in expected.items():
            assert seen.page.locator(f"#health-chart {what}").count() == count
        assert seen.page.locator("section.feature").count() == len(site.heald.store.get_model(MODEL).features)
        assert seen.errors == [] and seen.foreign == []
