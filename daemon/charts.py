"""Charts for the dashboard: server-rendered SVG, so the pages need no script, no font and no other host.

Every chart is a plain ``<svg>`` string built from numbers the caller already has; nothing here reads the
store. Series are downsampled to at most ``MAX_POINTS`` buckets (the mean of each) so months of history
draw as fast as a day. Each drawn element carries a ``class`` naming what it is (``series``, ``threshold``,
``incident``, ``marker``, ``cell``, ``bar``) and, where useful, ``data-*`` attributes with its exact value:
a browser test counts them and a person hovering sees a ``<title>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

MAX_POINTS = 240
WIDTH, HEIGHT = 720, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 12, 12, 26
PALETTE = ("#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777")
MARKER_COLOURS = {
    "retrain": "#16a34a",
    "rollback": "#dc2626",
    "rerun": "#0891b2",
    "scale": "#64748b",
    "alert": "#f59e0b",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    at: datetime
    value: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A shaded stretch of time (an incident): from ``start`` to ``end`` (None: still open)."""

    start: datetime
    end: datetime | None
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Marker:
    """A moment on the time axis (an action or an alias move), drawn as a labelled tick."""

    at: datetime
    kind: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeChart:
    """A metric over time with its health threshold, incidents shaded and actions marked."""

    series: dict[str, list[Point]]
    threshold: float | None = None
    spans: list[Span] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    title: str = ""


def downsample(points: Sequence[Point], limit: int = MAX_POINTS) -> list[Point]:
    """At most ``limit`` points: the mean value and the first time of each run of neighbours."""
    if len(points) <= limit:
        return list(points)
    size = -(-len(points) // limit)
    out = []
    for start in range(0, len(points), size):
        chunk = points[start : start + size]
        out.append(Point(at=chunk[0].at, value=sum(p.value for p in chunk) / len(chunk)))
    return out


class _Axes:
    """Maps times and values to pixels inside the plotting area."""

    def __init__(self, start: datetime, end: datetime, low: float, high: float) -> None:
        self.start, self.seconds = start, max((end - start).total_seconds(), 1.0)
        self.low, self.span = low, max(high - low, 1e-9)

    def x(self, at: datetime) -> float:
        share = (at - self.start).total_seconds() / self.seconds
        return round(PAD_LEFT + min(max(share, 0.0), 1.0) * (WIDTH - PAD_LEFT - PAD_RIGHT), 1)

    def y(self, value: float) -> float:
        share = (value - self.low) / self.span
        return round(HEIGHT - PAD_BOTTOM - share * (HEIGHT - PAD_TOP - PAD_BOTTOM), 1)


def time_chart(chart: TimeChart) -> str:
    """The chart as one ``<svg>`` element; an empty-state message when there is nothing to draw."""
    series = {name: downsample(points) for name, points in chart.series.items() if points}
    times = [p.at for points in series.values() for p in points]
    if not times:
        return _empty(chart.title, "no readings yet")
    times += [s.start for s in chart.spans] + [m.at for m in chart.markers]
    values = [p.value for points in series.values() for p in points]
    if chart.threshold is not None:
        values.append(chart.threshold)
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or 0.05
    axes = _Axes(min(times), max(times), low - pad, high + pad)
    parts = [_frame(chart.title, axes, min(times), max(times))]
    parts += [_span(axes, s, max(times)) for s in chart.spans]
    if chart.threshold is not None:
        y = axes.y(chart.threshold)
        parts.append(
            f'<line class="threshold" data-value="{chart.threshold:g}" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
            f'y1="{y}" y2="{y}" stroke="#dc2626" stroke-dasharray="5 4"><title>health threshold '
            f"{chart.threshold:g}</title></line>"
        )
    for index, (name, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{axes.x(p.at)},{axes.y(p.value)}" for p in points)
        parts.append(
            f'<polyline class="series" data-series="{escape(name)}" data-points="{len(points)}" fill="none" '
            f'stroke="{colour}" stroke-width="1.8" points="{path}"><title>{escape(name)}</title></polyline>'
        )
    parts += [_marker(axes, m) for m in chart.markers]
    parts.append(_legend(list(series)))
    return _svg(chart.title, "".join(parts))


def heatmap(title: str, times: list[datetime], rows: dict[str, list[float | None]], ceiling: float = 0.5) -> str:
    """A row per feature, a column per reading; darker is a larger drift effect (capped at ``ceiling``)."""
    if not times or not rows:
        return _empty(title, "no drift readings yet")
    label_width, cell_height = 130, 16
    height = PAD_TOP + cell_height * len(rows) + PAD_BOTTOM
    width = (WIDTH - label_width - PAD_RIGHT) / len(times)
    parts = []
    # Formatted once, not per cell: a month of readings for a few dozen features is thousands of cells.
    stamps = [f"{at:%Y-%m-%d %H:%M}" for at in times]
    xs = [f"{label_width + c * width:.1f}" for c in range(len(times))]
    cell = f'width="{max(width - 0.5, 0.5):.1f}" height="{cell_height - 2}" fill="rgb(220,38,38)"'
    for r, (name, effects) in enumerate(rows.items()):
        y = PAD_TOP + r * cell_height
        label = escape(name)
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end" font-size="11">{escape(name[:18])}</text>'
        )
        for c, effect in enumerate(effects):
            if effect is None:
                continue
            strength = min(max(effect, 0.0) / ceiling, 1.0)
            parts.append(
                f'<rect class="cell" data-feature="{label}" data-effect="{effect:g}" x="{xs[c]}" y="{y}" {cell} '
                f'fill-opacity="{0.05 + 0.95 * strength:.2f}"><title>{label} {stamps[c]}: effect {effect:.3g}</title>'
                "</rect>"
            )
    parts.append(
        f'<text x="{label_width}" y="{height - 8}" font-size="11">{times[0]:%Y-%m-%d %H:%M}</text>'
        f'<text x="{WIDTH - PAD_RIGHT}" y="{height - 8}" font-size="11" text-anchor="end">'
        f"{times[-1]:%Y-%m-%d %H:%M}</text>"
    )
    return _svg(title, "".join(parts), height=height)


def paired_bars(title: str, labels: list[str], reference: list[float], current: list[float]) -> str:
    """Reference and current shares side by side per bin or category (a histogram of each)."""
    if not labels:
        return _empty(title, "no distribution to show")
    height, top = 170, max([*reference, *current, 1e-9])
    slot = (WIDTH - PAD_LEFT - PAD_RIGHT) / len(labels)
    bar = max(slot / 2 - 2, 1.0)
    parts = []
    for i, label in enumerate(labels):
        x = PAD_LEFT + i * slot
        for j, (share, colour, side) in enumerate(
            ((reference[i], "#94a3b8", "reference"), (current[i], "#2563eb", "current"))
        ):
            h = share / top * (height - PAD_TOP - PAD_BOTTOM)
            parts.append(
                f'<rect class="bar" data-side="{side}" data-share="{share:.4f}" x="{x + j * (bar + 1):.1f}" '
                f'y="{height - PAD_BOTTOM - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)} {side}: {share:.1%}</title></rect>"
            )
        if len(labels) <= 12:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - 8}" font-size="10" text-anchor="middle">'
                f"{escape(label[:10])}</text>"
            )
    parts.append(_legend(["reference", "current"], colours=("#94a3b8", "#2563eb")))
    return _svg(title, "".join(parts), height=height)


def sparkline(values: list[float], threshold: float | None = None) -> str:
    """A small trend for a table cell: the newest readings, the threshold as a faint line."""
    if len(values) < 2:
        return '<span class="muted">-</span>'
    values = [p.value for p in downsample([Point(at=datetime.min, value=v) for v in values], 60)]
    low, high = min([*values, *([threshold] if threshold is not None else [])]), max(values)
    span, w, h = (high - low) or 1.0, 120, 28
    step = w / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{h - 2 - (v - low) / span * (h - 4):.1f}" for i, v in enumerate(values))
    line = ""
    if threshold is not None:
        y = h - 2 - (threshold - low) / span * (h - 4)
        line = f'<line x1="0" x2="{w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#dc2626" stroke-opacity=".5"/>'
    return (
        f'<svg class="sparkline" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">{line}'
        f'<polyline class="series" fill="none" stroke="#2563eb" stroke-width="1.5" points="{points}"/></svg>'
    )


def _frame(title: str, axes: _Axes, start: datetime, end: datetime) -> str:
    bottom = HEIGHT - PAD_BOTTOM
    top, low = axes.low + axes.span, axes.low
    return (
        f'<line x1="{PAD_LEFT}" x2="{PAD_LEFT}" y1="{PAD_TOP}" y2="{bottom}" stroke="#94a3b8"/>'
        f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#94a3b8"/>'
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" font-size="10" text-anchor="end">{top:.3g}</text>'
        f'<text x="{PAD_LEFT - 4}" y="{bottom}" font-size="10" text-anchor="end">{low:.3g}</text>'
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 8}" font-size="10">{start:%Y-%m-%d %H:%M}</text>'
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">{end:%Y-%m-%d %H:%M}</text>'
    )


def _span(axes: _Axes, span: Span, last: datetime) -> str:
    x0, x1 = axes.x(span.start), axes.x(span.end or last)
    return (
        f'<rect class="incident" x="{x0}" y="{PAD_TOP}" width="{max(x1 - x0, 2.0):.1f}" '
        f'height="{HEIGHT - PAD_TOP - PAD_BOTTOM}" fill="#f59e0b" fill-opacity="0.15">'
        f"<title>{escape(span.label)}</title></rect>"
    )


def _marker(axes: _Axes, marker: Marker) -> str:
    x, colour = axes.x(marker.at), MARKER_COLOURS.get(marker.kind, "#334155")
    return (
        f'<g class="marker" data-kind="{escape(marker.kind)}"><line x1="{x}" x2="{x}" y1="{PAD_TOP}" '
        f'y2="{HEIGHT - PAD_BOTTOM}" stroke="{colour}" stroke-width="1.2"/>'
        f'<circle cx="{x}" cy="{PAD_TOP + 4}" r="4" fill="{colour}"/>'
        f"<title>{escape(marker.label)}</title></g>"
    )


def _legend(names: list[str], colours: Sequence[str] = PALETTE) -> str:
    items = []
    for i, name in enumerate(names):
        x = PAD_LEFT + 8 + i * 130
        items.append(
            f'<rect x="{x}" y="{PAD_TOP}" width="10" height="10" fill="{colours[i % len(colours)]}"/>'
            f'<text x="{x + 14}" y="{PAD_TOP + 9}" font-size="11">{escape(name[:18])}</text>'
        )
    return "".join(items)


def _svg(title: str, body: str, height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{body}</svg>'
    )


def _empty(title: str, message: str) -> str:
    return f'<p class="empty" aria-label="{escape(title)}">{escape(message)}</p>'
