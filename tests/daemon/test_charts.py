"""The dashboard's SVG charts: bounded size whatever the history, an element per thing drawn, and an empty
state instead of a broken chart when there is nothing to draw."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from daemon import charts

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def points(n: int) -> list[charts.Point]:
    return [charts.Point(at=T0 + timedelta(minutes=i), value=(i % 10) / 10) for i in range(n)]


def test_downsample_bounds_the_points_and_keeps_the_mean() -> None:
    """A month of minute readings draws as at most MAX_POINTS points whose mean is the readings' mean."""
    month = points(30 * 24 * 60)
    drawn = charts.downsample(month)
    assert len(drawn) <= charts.MAX_POINTS
    assert drawn[0].at == month[0].at
    mean = sum(p.value for p in month) / len(month)
    assert abs(sum(p.value for p in drawn) / len(drawn) - mean) < 0.01
    assert charts.downsample(points(5)) == points(5)


def test_time_chart_draws_each_series_span_marker_and_the_threshold() -> None:
    """Two series, one incident and two actions give two polylines, one shaded rect, two markers and a
    threshold line carrying its value."""
    svg = charts.time_chart(
        charts.TimeChart(
            series={"accuracy": points(500), "estimate": points(50)},
            threshold=0.8,
            spans=[charts.Span(start=T0 + timedelta(minutes=10), end=None, label="#1 drift")],
            markers=[
                charts.Marker(at=T0 + timedelta(minutes=20), kind="retrain", label="#1"),
                charts.Marker(at=T0 + timedelta(minutes=30), kind="rollback", label="#2"),
            ],
            title="m",
        )
    )
    assert svg.count('class="series"') == 2
    assert svg.count('class="incident"') == 1
    assert svg.count('class="marker"') == 2
    assert 'class="threshold" data-value="0.8"' in svg
    drawn = [int(n) for n in re.findall(r'data-points="(\d+)"', svg)]
    assert drawn[0] <= charts.MAX_POINTS < 500 and drawn[1] == 50


def test_names_are_escaped() -> None:
    """A feature or series name with markup in it is shown as text, never as markup."""
    svg = charts.heatmap("t", [T0], {"<script>x</script>": [0.3]})
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_nothing_to_draw_gives_an_empty_state() -> None:
    """No readings give a message, not an empty or broken chart."""
    assert "no readings yet" in charts.time_chart(charts.TimeChart(series={"accuracy": []}))
    assert "no drift readings" in charts.heatmap("t", [], {})
    assert "no distribution" in charts.paired_bars("t", [], [], [])
    assert "muted" in charts.sparkline([0.5])


def test_paired_bars_draw_reference_and_current_per_bin() -> None:
    """Each bin gets a reference bar and a current bar with its share."""
    svg = charts.paired_bars("usage", ["a", "b", "c"], [0.2, 0.3, 0.5], [0.5, 0.3, 0.2])
    assert svg.count('data-side="reference"') == 3 and svg.count('data-side="current"') == 3
    assert 'data-share="0.5000"' in svg
