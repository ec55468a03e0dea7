"""The dashboard: read-only HTML pages of the knowledge store, for a person who wants to see what heald did.

Four pages (the overview of every model, one model's history, one incident's timeline, the latest drift
report of a model) and a self-contained report file are built here from the same read models as
``healctl ... --json`` and the API's JSON endpoints (``daemon.views``), so a number shown here equals the
one a script reads. Pages are plain HTML with inline SVG charts (``daemon.charts``) and the stylesheet
shipped in ``daemon/static``: nothing is fetched from another host and no script runs, so they work on an
offline server and as a file attached to a ticket. Nothing here changes state.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from daemon import charts, views
from daemon.compose import Heald, model_settings
from knowledge.errors import NotFoundError
from knowledge.values import Action, ActionState, ModelRecord, Task
from pipeline.ingest import read_table
from pipeline.profile import CategoricalProfile, NumericProfile, Profile, bin_shares

HISTORY = 5000  # newest readings a model page draws (downsampled to charts.MAX_POINTS)
TREND = 60  # readings in an overview sparkline
PERFORMANCE = "performance"
DRIFT = "drift_share"


@cache
def stylesheet() -> str:
    return resources.files("daemon").joinpath("static/dashboard.css").read_text(encoding="utf-8")


def threshold(heald: Heald, model: ModelRecord) -> float:
    """The health floor the loop judges this model's performance readings against."""
    entry = model_settings(heald.settings, model.name)
    return entry.min_accuracy if model.task is Task.CLASSIFICATION else entry.min_r2


def metric_name(model: ModelRecord) -> str:
    return "accuracy" if model.task is Task.CLASSIFICATION else "r2"


# -- pages -------------------------------------------------------------------------------------------------


def overview(heald: Heald) -> str:
    """Every model: champion, health against its threshold, a trend, open incidents, last action; the daemon."""
    snap = views.snapshot(heald.store)
    status = views.status_view(heald.store, heald.registry, snap)
    trends = heald.store.recent_series([m.name for m in snap.models], PERFORMANCE, limit=TREND)
    rows = [
        _overview_row(heald, model, entry, trends[model.name], snap.last_actions.get(model.name))
        for model, entry in zip(snap.models, status["models"], strict=True)
    ]
    table = (
        '<table id="models"><thead><tr><th>model</th><th>champion</th><th>health</th><th>trend</th>'
        "<th>drift</th><th>open incidents</th><th>last action</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        if rows
        else '<p class="empty">No models yet: <code>healctl init</code> adds one.</p>'
    )
    body = f"<h1>heald</h1>{_daemon_panel(heald, status, snap)}<h2>Models</h2>{table}{_open_incidents(heald)}"
    return _page("heald: overview", body)


def model_page(heald: Heald, name: str, *, links: bool = True) -> str:
    """One model: its metric over time with incidents and actions, drift per feature, aliases and versions."""
    return _page(f"heald: {name}", _model_body(heald, heald.store.get_model(name), links=links))


def incident_page(heald: Heald, incident_id: int) -> str:
    """One incident's timeline: symptoms, decisions with the candidates weighed, actions and outcomes."""
    store = heald.store
    incident = views.incident_view(store, store.get_incident(incident_id))
    decisions = {d.at.isoformat(): d for d in store.decisions(incident_id=incident_id)}
    items = []
    for event in views.timeline(store, incident_id):
        decision = decisions.get(event["at"]) if event["what"].startswith("decision") else None
        weighed = ""
        if decision is not None and decision.candidates:
            weighed = "<ul class='candidates'>" + "".join(_candidate(c) for c in decision.candidates) + "</ul>"
        items.append(
            f"<li><time>{escape(event['at'] or '')}</time> <b>{escape(event['what'])}</b> "
            f"<span>{escape(str(event['detail']))}</span>{weighed}</li>"
        )
    head = (
        f"<h1>Incident #{incident['id']}: {escape(incident['kind'])} on "
        f"<a href='/ui/models/{escape(incident['model'])}'>{escape(incident['model'])}</a></h1>"
        f"<p><span class='status {escape(incident['status'])}' data-status='{escape(incident['status'])}'>"
        f"{escape(incident['status'])}</span> {escape(incident['summary'])}</p>"
        f"<p class='muted'>opened {escape(incident['opened_at'] or '')}"
        + (f", resolved {escape(incident['resolved_at'])}" if incident["resolved_at"] else "")
        + (f", acknowledged by {escape(incident['acked_by'])}" if incident["acked_by"] else "")
        + "</p>"
    )
    body = f"{_nav()}{head}<h2>Timeline</h2><ol id='timeline'>{''.join(items)}</ol>"
    return _page(f"heald: incident {incident_id}", body)


def drift_page(heald: Heald, name: str, *, links: bool = True) -> str:
    """The latest drift report of a model: per feature, reference against current, the test and the verdict."""
    model = heald.store.get_model(name)
    return _page(f"heald: drift of {name}", (_nav() if links else "") + _drift_body(heald, model))


def report(heald: Heald, name: str) -> str:
    """One self-contained HTML file: the model page and its latest drift report, readable without heald."""
    model = heald.store.get_model(name)
    generated = f"<p class='muted'>Report written {heald.clock.now():%Y-%m-%d %H:%M} UTC by healctl report.</p>"
    body = _model_body(heald, model, links=False) + generated + _drift_body(heald, model)
    return _page(f"heald report: {name}", body)


# -- overview parts ----------------------------------------------------------------------------------------


def _overview_row(
    heald: Heald, model: ModelRecord, entry: dict[str, Any], trend: list[tuple[datetime, float]], action: Action | None
) -> str:
    floor = threshold(heald, model)
    performance, estimate = entry["performance"], entry["accuracy_estimate"]
    if performance is None and estimate is not None:
        shown, note = estimate, " <span class='muted'>(estimate: labels late)</span>"
    else:
        shown, note = performance, ""
    if shown is None:
        health = "<span class='muted'>no readings</span>"
    else:
        state = "healthy" if shown >= floor else "unhealthy"
        health = (
            f"<span class='health {state}' data-value='{shown}'>{metric_name(model)} {shown:.3f}</span> "
            f"<span class='muted'>floor {floor:g}</span>{note}"
        )
    drift = entry["drift"]
    drift_cell = "-" if drift is None else escape(", ".join(drift["drifted"]) or "no drift")
    last = (
        f"{escape(action.kind.value)} <span class='muted'>{escape(action.state.value)}</span>"
        if action is not None
        else "-"
    )
    champion = entry["champion"]
    return (
        f"<tr data-model='{escape(model.name)}'><td><a href='/ui/models/{escape(model.name)}'>"
        f"{escape(model.name)}</a>{' (paused)' if entry['paused'] else ''}</td>"
        f"<td data-field='champion'>{'v' + str(champion) if champion is not None else '-'}</td>"
        f"<td data-field='health'>{health}</td>"
        f"<td>{charts.sparkline([value for _, value in trend], floor)}</td>"
        f"<td>{drift_cell}</td>"
        f"<td data-field='open_incidents'>{entry['open_incidents']}</td><td>{last}</td></tr>"
    )


def _daemon_panel(heald: Heald, status: dict[str, Any], snap: views.Snapshot) -> str:
    """The daemon as the store shows it: last tick, worker pool, tick interval (no lease is taken to look)."""
    # The artifact sensor reads every model on every tick, so its newest reading is the last tick.
    latest = [snap.reading(m.name, "artifact_ok") for m in snap.models]
    last_tick = max((o.at for o in latest if o is not None), default=None)
    s = heald.settings
    return (
        "<section id='daemon' class='panel'>"
        f"<div><span class='muted'>last tick</span> {last_tick:%Y-%m-%d %H:%M:%S} UTC</div>"
        if last_tick
        else "<section id='daemon' class='panel'><div><span class='muted'>last tick</span> none yet</div>"
    ) + (
        f"<div><span class='muted'>tick every</span> {s.tick_seconds:g} s</div>"
        f"<div><span class='muted'>worker pool</span> {escape(s.executor)}, {s.workers} of at most "
        f"{s.max_workers}</div>"
        f"<div><span class='muted'>open incidents</span> <span data-field='open_total'>"
        f"{status['open_incidents']}</span></div></section>"
    )


def _open_incidents(heald: Heald) -> str:
    rows = [
        f"<tr><td><a href='/ui/incidents/{i.id}'>#{i.id}</a></td><td>{escape(i.model)}</td>"
        f"<td>{escape(i.kind.value)}</td><td><span class='status {escape(i.status.value)}'>"
        f"{escape(i.status.value)}</span></td><td>{escape(i.summary)}</td></tr>"
        for i in heald.store.list_incidents(limit=20)
    ]
    if not rows:
        return "<h2>Incidents</h2><p class='empty'>No incidents.</p>"
    return (
        "<h2>Recent incidents</h2><table id='incidents'><thead><tr><th>id</th><th>model</th><th>kind</th>"
        f"<th>status</th><th>summary</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


# -- model page parts --------------------------------------------------------------------------------------


def _model_body(heald: Heald, model: ModelRecord, *, links: bool) -> str:
    store = heald.store
    floor = threshold(heald, model)
    # Time and value only, newest HISTORY of each: no evidence is parsed and months of history cost the same.
    # Past the raw window the chart goes on with retention's hourly means.
    readings = store.recent_series([model.name], PERFORMANCE, limit=HISTORY, rollups=True)[model.name]
    estimates = store.recent_series([model.name], "accuracy_estimate", limit=HISTORY, rollups=True)[model.name]
    series = {metric_name(model): [charts.Point(at=at, value=value) for at, value in readings]}
    if estimates:
        series["estimate (unlabelled)"] = [charts.Point(at=at, value=value) for at, value in estimates]
    start = readings[0][0] if readings else None
    incidents = [i for i in store.list_incidents(model=model.name, limit=500) if start is None or _after(i, start)]
    spans = [
        charts.Span(start=i.opened_at, end=i.resolved_at, label=f"#{i.id} {i.kind.value}: {i.status.value}")
        for i in incidents
    ]
    markers = [
        charts.Marker(
            at=a.finished_at or a.planned_at, kind=a.kind.value, label=f"#{a.id} {a.kind.value} {a.state.value}"
        )
        for a in store.actions(model=model.name, since=start, limit=500)
        if a.state in (ActionState.SUCCEEDED, ActionState.FAILED)
    ]
    chart = charts.time_chart(
        charts.TimeChart(series=series, threshold=floor, spans=spans, markers=markers, title=f"{model.name} health")
    )
    nav = _nav() if links else ""
    drift_link = f" <a href='/ui/models/{escape(model.name)}/drift'>latest drift report</a>" if links else ""
    return (
        f"{nav}<h1>{escape(model.name)}</h1><p class='muted'>{escape(model.task.value)} of "
        f"<code>{escape(model.target)}</code>; health floor {metric_name(model)} {floor:g}.{drift_link}</p>"
        f"<h2>Health over time</h2><div id='health-chart'>{chart}</div>"
        f"<p class='muted'>Shaded: incidents. Markers: finished actions (green retrain, red rollback).</p>"
        f"<h2>Drift per feature</h2><div id='drift-heatmap'>{_drift_heatmap(heald, model)}</div>"
        f"<h2>Alias history</h2>{_alias_table(heald, model)}<h2>Versions</h2>{_version_table(heald, model)}"
    )


def _after(incident: Any, start: datetime) -> bool:
    return incident.resolved_at is None or incident.resolved_at >= start


def _drift_heatmap(heald: Heald, model: ModelRecord) -> str:
    readings = heald.store.observations(model.name, metric=DRIFT, limit=charts.MAX_POINTS)
    features = sorted({f for o in readings for f in o.evidence.get("features", {})})
    rows: dict[str, list[float | None]] = {f: [] for f in features}
    for o in readings:
        for f in features:
            effect = o.evidence.get("features", {}).get(f, {}).get("effect")
            rows[f].append(float(effect) if isinstance(effect, int | float) else None)
    return charts.heatmap(f"{model.name} drift effect per feature", [o.at for o in readings], rows)


def _alias_table(heald: Heald, model: ModelRecord) -> str:
    moves = heald.store.alias_history(model.name)
    if not moves:
        return "<p class='empty'>No alias has moved yet.</p>"
    rows = "".join(
        f"<tr><td>{m.at:%Y-%m-%d %H:%M}</td><td>{escape(m.alias.value)}</td>"
        f"<td>{_v(m.from_version)} &rarr; {_v(m.to_version)}</td><td>{escape(m.actor)}</td>"
        f"<td>{escape(m.reason)}</td></tr>"
        for m in reversed(moves)
    )
    return (
        "<table id='aliases'><thead><tr><th>when</th><th>alias</th><th>move</th><th>by</th><th>why</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _version_table(heald: Heald, model: ModelRecord) -> str:
    aliases = heald.store.aliases(model.name)
    rows = []
    for version in reversed(heald.store.list_versions(model.name)):
        view = views.version_view(version, aliases)
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(view["metrics"].items()) if isinstance(v, int | float))
        rows.append(
            f"<tr data-version='{view['version']}'><td>v{view['version']}</td>"
            f"<td>{escape(', '.join(view['aliases']))}</td><td>{escape(metrics)}</td>"
            f"<td>{escape(view['created_at'] or '')}</td><td>{escape(view['created_by'])}</td>"
            f"<td>{'rolled back' if view['rolled_back_at'] else ''}</td></tr>"
        )
    return (
        "<table id='versions'><thead><tr><th>version</th><th>aliases</th><th>metrics</th><th>created</th>"
        f"<th>by</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _v(number: int | None) -> str:
    return f"v{number}" if number is not None else "-"


# -- drift report ------------------------------------------------------------------------------------------


def _drift_body(heald: Heald, model: ModelRecord) -> str:
    """The drift sensor's latest reading as it was stored (the verdicts the loop acted on), with the champion's
    reference distributions beside the current ones of the newest batch read back from the archive."""
    readings = heald.store.observations(model.name, metric=DRIFT, limit=1)
    if not readings:
        return f"<h1>Drift of {escape(model.name)}</h1><p class='empty'>No drift reading yet.</p>"
    reading = readings[0]
    evidence = reading.evidence
    version = evidence.get("version")
    profile = _profile(heald, model, version)
    frame = _newest_batch(heald, model, reading.at)
    sections = []
    for column, found in sorted(evidence.get("features", {}).items()):
        verdict = str(found.get("verdict", ""))
        reason = f" ({escape(str(found['reason']))})" if found.get("reason") else ""
        bars = _distribution(profile, frame, column) if profile is not None and frame is not None else ""
        sections.append(
            f"<section class='feature' data-feature='{escape(column)}' data-verdict='{escape(verdict)}'>"
            f"<h3>{escape(column)} <span class='verdict {escape(verdict.replace(' ', '-'))}'>{escape(verdict)}"
            f"</span></h3><p class='muted'>{escape(str(found.get('test', '')))} statistic {found.get('statistic')}, "
            f"p {found.get('pvalue')}, {escape(str(found.get('effect_name', 'effect')))} {found.get('effect')}"
            f"{reason}</p>{bars}</section>"
        )
    extra = [
        name
        for name, flag in (("predictions", "prediction_drifted"), ("labels", "label_drifted"))
        if evidence.get(flag)
    ]
    head = (
        f"<h1>Drift of {escape(model.name)}</h1><p class='muted'>Reading of {reading.at:%Y-%m-%d %H:%M} on "
        f"{evidence.get('rows', '?')} rows against champion v{version}'s reference; "
        f"{escape(str(evidence.get('correction', 'holm')))} correction at alpha {evidence.get('alpha', '?')}; "
        f"<span id='drifted-count'>{len(evidence.get('drifted', []))}</span> of {len(sections)} features drifted"
        + (f"; {escape(' and '.join(extra))} drifted too" if extra else "")
        + ".</p>"
    )
    return f"<div id='drift-report'>{head}{''.join(sections)}</div>"


def _profile(heald: Heald, model: ModelRecord, version: object) -> Profile | None:
    if not isinstance(version, int):
        return None
    try:
        return Profile.from_json(heald.store.get_version(model.name, version).profile)
    except NotFoundError:
        return None


def _newest_batch(heald: Heald, model: ModelRecord, at: datetime) -> pd.DataFrame | None:
    """The newest accepted batch received by ``at`` whose archived file is still there, for its distributions."""
    for batch in reversed(heald.store.batches(model.name, limit=20)):
        path = Path(batch.path)
        if batch.received_at <= at and path.is_file():
            return read_table(path)
    return None


def _distribution(profile: Profile, frame: pd.DataFrame, column: str) -> str:
    reference = profile.columns.get(column)
    if reference is None or column not in frame.columns:
        return ""
    values = frame[column].dropna()
    if isinstance(reference, NumericProfile) and reference.bin_edges.size >= 2:
        edges = reference.bin_edges
        current = bin_shares(values.to_numpy(dtype=float), edges)
        labels = [f"{edges[i]:.3g}" for i in range(edges.size - 1)]
        return charts.paired_bars(column, labels, list(reference.bin_shares), [float(x) for x in current])
    if isinstance(reference, CategoricalProfile):
        shares = values.astype(str).value_counts(normalize=True)
        labels = sorted(set(reference.frequencies) | set(shares.index))[:20]
        return charts.paired_bars(
            column,
            labels,
            [reference.frequencies.get(k, 0.0) for k in labels],
            [float(shares.get(k, 0.0)) for k in labels],
        )
    return ""


# -- shared ------------------------------------------------------------------------------------------------


def _candidate(candidate: dict[str, Any]) -> str:
    feasible = "feasible" if candidate.get("feasible") else "not feasible"
    return (
        f"<li>{escape(str(candidate.get('kind')))} <span class='muted'>cost {candidate.get('cost', 0):.0f} s, "
        f"{feasible}: {escape(str(candidate.get('why', '')))}</span></li>"
    )


def _nav() -> str:
    return "<nav><a href='/'>&larr; overview</a></nav>"


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{stylesheet()}</style></head><body><main>{body}</main></body></html>"
    )


def not_found(what: str) -> str:
    return _page("heald: not found", f"{_nav()}<h1>Not found</h1><p>{escape(what)}</p>")
