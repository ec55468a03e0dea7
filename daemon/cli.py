"""healctl: the operator's command line, over the knowledge store (so it works while the daemon is down).

Tables for people on a terminal, tab-separated rows in a pipe (``daemon.output``), ``--json`` for scripts.
Operator actions (rollback, retrain, promote) are journaled exactly like the planner's, with ``healctl`` as
the actor. Errors print one line naming the problem and exit with a status that says what kind of failure
it was (``daemon.exit_codes``: 1 failure, 2 usage, 3 not found, 4 refused); a traceback is a bug.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from daemon import config as configuration
from daemon import landing, logs, views
from daemon.exit_codes import exit_code
from daemon.output import Sheet, number, rounded, show
from knowledge.clock import Clock, SystemClock
from knowledge.errors import ActionError, ConfigError, HealdError, NotFoundError
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Action, ActionKind, ActionState, Alias, SymptomKind, Task
from pipeline.errors import DataError, PipelineError

if TYPE_CHECKING:
    from daemon.compose import Heald
    from pipeline.ingest import Kind

# The ML stack (scikit-learn, pandas, scipy, skops) and the loop that needs it are imported inside the commands
# that train, check data or act (init, pipeline, drift, rollback, retrain, report, demo), never here: `--help`,
# `status`, `incidents`, `models`, `history` and the other commands over the knowledge store start in a
# fraction of the time (bench/cli.py measures it; tests/daemon/test_cli_imports.py keeps it so).

app = typer.Typer(
    help="Operate heald, the self-healing MLOps daemon. Exit status: 0 ok, 1 failure, 2 usage or config error, "
    "3 not found, 4 refused by a safety check.",
    no_args_is_help=True,
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
pipeline_app = typer.Typer(
    help="Run the managed pipeline of a model, or rerun its last failed run.", no_args_is_help=True
)
app.add_typer(pipeline_app, name="pipeline")
out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="config file (default: $HEALD_CONFIG, else /etc/heald/heald.toml if it exists, else built-in defaults)",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


def _version(value: bool) -> None:
    if value:
        out.print(f"healctl {version('heald')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Operate heald, the self-healing MLOps daemon."""


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def _heald(config: Path | None) -> Iterator[Heald]:
    """The whole wired-up heald (loop, sensors, actuators): for commands that run actions or the pipeline."""
    from daemon.compose import build

    settings = _settings(config)
    heald = build(settings, pool="inline")
    try:
        yield heald
    finally:
        heald.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class Knowledge:
    """What the commands that read or journal need: the store and the registry, without the loop."""

    settings: configuration.Settings
    store: SqlKnowledgeStore
    registry: ModelRegistry
    clock: Clock


@contextmanager
def _knowledge(config: Path | None) -> Iterator[Knowledge]:
    """The knowledge store and registry alone: opening them imports no scikit-learn, pandas or skops."""
    from knowledge.artifacts import ArtifactStore

    settings = _settings(config)
    store = SqlKnowledgeStore.open(settings.database)
    try:
        registry = ModelRegistry(store, ArtifactStore(settings.artifacts))
        yield Knowledge(settings=settings, store=store, registry=registry, clock=SystemClock())
    finally:
        store.close()


def _settings(config: Path | None) -> configuration.Settings:
    settings = configuration.load(config)
    logs.configure(settings.log_level, stream=sys.stderr)
    configuration.warn_ignored(settings, logs.get("healctl"))
    return settings


@config_app.command("check")
def config_check(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Validate the config and print the effective settings."""
    settings = configuration.load(config)
    data = settings.redacted()
    if as_json:
        _print_json(data)
        return
    out.print(f"[green]config ok[/green]: {settings.source}")
    for key, value in data.items():
        out.print(f"  {key} = {json.dumps(value, default=str)}")


@app.command()
def status(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Each model's champion, latest performance, drift and artifact verdicts, and open incidents."""
    with _knowledge(config) as heald:
        data = views.status_view(heald.store, heald.registry)
    if as_json:
        _print_json(data)
        return
    columns = ("model", "task", "champion", "stable", "performance", "drift", "quality", "artifact", "open")
    table = Sheet(title="heald status", columns=columns, wrap=frozenset({"drift", "quality"}))
    for m in data["models"]:
        perf = number(m["performance"], 3)
        if m["performance"] is None and m["accuracy_estimate"] is not None:
            perf = f"~{number(m['accuracy_estimate'], 3)} (est.)"
        artifact = {None: "-", True: "ok", False: "[red]BAD[/red]"}[m["artifact_ok"]]
        name = m["model"] + (" (paused)" if m["paused"] else "")
        row = (name, m["task"], _v(m["champion"]), _v(m["stable"]), perf, _drift_cell(m["drift"]))
        table.add(*row, _quality_cell(m["quality"]), artifact, str(m["open_incidents"]))
    show(out, table)


def _drift_cell(drift: dict[str, Any] | None) -> str:
    if drift is None:
        return "-"
    if drift["verdict"] == "no drift":
        return "[green]no drift[/green]"
    return f"[yellow]drift[/yellow]: {', '.join(drift['drifted'][:4])}"


def _quality_cell(quality: dict[str, Any] | None) -> str:
    if quality is None:
        return "-"
    if quality["verdict"] == "ok":
        return "[green]ok[/green]"
    first = quality["problems"][0][:60] if quality["problems"] else ""
    return f"[red]{quality['verdict']}[/red]: {first}"


@app.command()
def drift(
    reference: Annotated[Path, typer.Option(help="reference data (what the model learned from), CSV or Parquet")],
    current: Annotated[Path, typer.Option(help="current data to check, CSV or Parquet")],
    target: Annotated[str | None, typer.Option(help="label column: tested as label drift, not as a feature")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run heald's drift and quality checks on two files: per column test, statistic, p-value, effect, verdict."""
    from daemon.onboard import detect_task
    from pipeline.drift import DriftSettings, compare
    from pipeline.ingest import read_table
    from pipeline.profile import build_profile
    from pipeline.quality import check

    settings = configuration.load(config)
    ref, cur = read_table(reference), read_table(current)
    if target is not None and target not in ref.columns:
        raise DataError(f"{reference.name}: target column {target!r} is not in the file")
    features = [c for c in ref.columns if c != target]
    labels = ref[target].dropna() if target else None
    classification = labels is not None and detect_task(labels) is Task.CLASSIFICATION
    profile = build_profile(ref, features=features, labels=labels, classification=classification)
    thresholds = DriftSettings(
        alpha=settings.drift_threshold,
        min_effect=settings.drift_min_effect,
        min_psi=settings.monitor.drift_min_psi,
        min_wasserstein=settings.monitor.drift_min_wasserstein,
        min_js=settings.monitor.drift_min_js,
        min_rows=settings.drift_min_rows,
    )
    current_labels = cur[target].dropna() if target and target in cur.columns else None
    report = compare(profile, cur, settings=thresholds, labels=current_labels)
    quality = check(profile, cur, ignore=(target,) if target else ())
    data = views.drift_view(report, quality)
    if as_json:
        _print_json(data)
        return
    show(out, drift_table(data, reference.name, current.name))
    for problem in data["quality"]:
        out.print(f"[red]quality[/red] {problem['check']}: {problem['detail']}", highlight=False)
    tested = len([c for c in data["columns"] if c["verdict"] in ("drift", "no drift")])
    out.print(
        f"{len(data['drifted'])} of {tested} tested columns drifted "
        f"(Holm at alpha={data['alpha']}; effect floors KS {data['min_effect_ks']}, PSI {data['min_effect_psi']}; "
        f"no verdict below {data['min_rows']} rows)",
        highlight=False,
    )


def drift_table(data: dict[str, Any], reference: str, current: str) -> Sheet:
    columns = ("column", "test", "statistic", "p-value", "effect", "verdict")
    table = Sheet(title=f"drift: {current} against {reference}", columns=columns)
    for c in data["columns"]:
        verdict = {"drift": "[red]drift[/red]", "no drift": "[green]no drift[/green]"}.get(c["verdict"], c["verdict"])
        name = c["column"] if c["role"] == "feature" else f"({c['column']})"
        effect = f"{c['effect_name']}={c['effect']:.4f}"
        if c["test"] == "ks" and "wasserstein" in c:
            effect += f" W={c['wasserstein']:.4g}"
        table.add(name, c["test"], f"{c['statistic']:.4f}", f"{c['pvalue']:.3g}", effect, verdict)
    return table


@app.command()
def incidents(
    incident_id: Annotated[int | None, typer.Argument(help="show one incident's timeline")] = None,
    model: Annotated[str | None, typer.Option(help="only this model")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="only open, mitigating or escalated")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List incidents (newest first) or show one incident's timeline."""
    with _knowledge(config) as heald:
        if incident_id is not None:
            one = views.incident_view(heald.store, heald.store.get_incident(incident_id))
            one["timeline"] = views.timeline(heald.store, incident_id)
            _show_incident(one, as_json)
            return
        status_filter = ["open", "mitigating", "escalated"] if open_only else None
        data = views.incidents_view(heald.store, model=model, status=status_filter, limit=limit)
    if as_json:
        _print_json(data)
        return
    show(out, incidents_table(data))


def incidents_table(data: list[dict[str, Any]]) -> Sheet:
    """Incidents as a table; every column is kept (on a narrow terminal the actions and summary wrap)."""
    columns = ("id", "model", "kind", "status", "opened", "resolved", "actions", "summary")
    table = Sheet(title="incidents", columns=columns, wrap=frozenset({"actions", "summary"}))
    for i in data:
        acts = ", ".join(f"{a['kind']} {_STATE_MARK.get(a['state'], a['state'])}" for a in i["actions"]) or "-"
        row = (str(i["id"]), i["model"], i["kind"], _status(i["status"]), _t(i["opened_at"]), _t(i["resolved_at"]))
        table.add(*row, acts, escape(i["summary"]))
    return table


_STATE_MARK = {"succeeded": "ok", "failed": "FAILED", "running": "...", "planned": "...", "aborted": "aborted"}


def _show_incident(one: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(one)
        return
    out.print(f"[bold]incident #{one['id']}[/bold] {one['model']} {one['kind']} {_status(one['status'])}")
    out.print(f"  {escape(one['summary'])}", highlight=False)
    table = Sheet(title="timeline", columns=("at", "what", "detail"), wrap=frozenset({"detail"}))
    for e in one["timeline"]:
        table.add(_t(e["at"]), e["what"], escape(_detail(e["detail"])))
    show(out, table)


def _detail(detail: Any) -> str:
    """A timeline entry's detail for people: floats rounded, dicts as ``key=value`` pairs."""
    detail = rounded(detail)
    if isinstance(detail, dict):
        return " ".join(f"{key}={json.dumps(value, default=str)}" for key, value in detail.items())
    return str(detail)


@app.command()
def models(
    name: Annotated[str | None, typer.Argument(help="one model's versions")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List every version (or one model's) with its test metrics, aliases and health."""
    with _knowledge(config) as heald:
        names = [name] if name else [m.name for m in heald.store.list_models()]
        data = []
        for model in names:
            heald.store.get_model(model)
            aliases = heald.store.aliases(model)
            data += [views.version_view(v, aliases) for v in heald.store.list_versions(model)]
    if as_json:
        _print_json(data)
        return
    columns = ("model", "version", "aliases", "health", "test metrics", "cv", "created", "by")
    table = Sheet(title="versions", columns=columns, wrap=frozenset({"test metrics"}))
    for v in data:
        shown = {k: val for k, val in v["metrics"].items() if not k.startswith("cv_")}
        metrics = " ".join(f"{k}={val:.3f}" for k, val in list(shown.items())[:4])
        cv = v["metrics"]
        cv_text = f"{cv['cv_mean']:.3f}±{cv['cv_std']:.3f}" if "cv_mean" in cv else "-"
        health = v["health"] if v["health"] == "healthy" else f"[red]{v['health']}[/red]"
        table.add(
            v["model"],
            f"v{v['version']}",
            ",".join(v["aliases"]),
            health,
            metrics,
            cv_text,
            _t(v["created_at"]),
            v["created_by"],
        )
    show(out, table)


@app.command()
def sources(
    name: Annotated[str | None, typer.Argument(help="one model's sources")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each pulled source's state: last pull, watermark, rows and batches taken, lag, errors and back-off."""
    from daemon.sources import source_view

    with _knowledge(config) as heald:
        if name is not None:
            heald.store.get_model(name)
        now = heald.clock.now()
        data = [source_view(s, now) for s in heald.store.source_states(name)]
    if as_json:
        _print_json(data)
        return
    columns = ("model", "stream", "kind", "last pull", "watermark", "rows", "batches", "lag", "failures", "error")
    table = Sheet(title="sources", columns=columns, wrap=frozenset({"error"}))
    for s in data:
        lag = "-" if s["lag_seconds"] is None else f"{s['lag_seconds'] / 60:.0f} min"
        failing = f"[red]{s['failures']}[/red]" if s["failures"] else "0"
        row = (s["model"], s["stream"], s["kind"], _t(s["last_pull_at"]), str(s["watermark"]), str(s["rows"]))
        table.add(*row, str(s["batches"]), lag, failing, s["last_error"] or "-")
    show(out, table)


@app.command()
def history(model: str, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every alias move of a model: when, from which version to which, by whom and why."""
    with _knowledge(config) as heald:
        heald.store.get_model(model)
        moves: list[dict[str, Any]] = [
            {
                "at": views.iso(m.at),
                "alias": m.alias.value,
                "from": m.from_version,
                "to": m.to_version,
                "actor": m.actor,
                "reason": m.reason,
                "action_id": m.action_id,
            }
            for m in heald.store.alias_history(model)
        ]
    if as_json:
        _print_json(moves)
        return
    columns = ("at", "alias", "from", "to", "actor", "reason")
    table = Sheet(title=f"alias history of {model}", columns=columns, wrap=frozenset({"reason"}))
    for m in moves:
        table.add(_t(m["at"]), m["alias"], _v(m["from"]), _v(m["to"]), m["actor"], escape(m["reason"]))
    show(out, table)


@app.command()
def report(
    model: str,
    out_file: Annotated[Path, typer.Option("--out", help="the HTML file to write")] = Path("report.html"),
    config: ConfigOpt = None,
) -> None:
    """Write one self-contained HTML file of a model's page and its latest drift report (for a ticket or an email)."""
    from daemon import pages  # the dashboard's renderer, only for this command

    with _heald(config) as heald:
        page = pages.report(heald, model)
    out_file.write_text(page, encoding="utf-8")
    out.print(f"wrote {out_file} ({len(page) // 1024} KiB): open it in a browser, no network needed")


def _operator_action(config: Path | None, model: str, kind: ActionKind, reason: str, params: dict[str, Any]) -> None:
    with _heald(config) as heald:
        record = heald.store.get_model(model)
        now = heald.clock.now()
        action = heald.store.plan_action(model=model, kind=kind, at=now, actor="healctl", reason=reason, params=params)
        heald.loop.start(action, record, now)
        heald.loop.collect(now)
        done = heald.store.get_action(action.id)
    if done.state is not ActionState.SUCCEEDED:
        raise HealdError(f"{kind.value} of {model} failed: {done.error}")
    out.print(f"[green]{kind.value} #{done.id} succeeded[/green]: {escape(_detail(done.result or {}))}")


@app.command()
def rollback(
    model: str,
    reason: Annotated[str, typer.Option(help="why, for the journal")] = "operator request",
    config: ConfigOpt = None,
) -> None:
    """Roll the champion back to the newest stable version that verifies."""
    _operator_action(config, model, ActionKind.ROLLBACK, reason, {})


@app.command()
def retrain(
    model: str,
    since_hours: Annotated[float, typer.Option(help="train on labelled batches of the last N hours")] = 24.0,
    reason: Annotated[str, typer.Option(help="why, for the journal")] = "operator request",
    config: ConfigOpt = None,
) -> None:
    """Retrain on recent labelled batches; promote only if not worse than the champion."""
    since = datetime.now(UTC) - timedelta(hours=since_hours)
    _operator_action(config, model, ActionKind.RETRAIN, reason, {"since": since.isoformat()})


@app.command()
def promote(
    model: str,
    number: Annotated[int, typer.Argument(metavar="VERSION", help="the version number to make champion")],
    reason: Annotated[str, typer.Option(help="why, for the journal")],
    force: Annotated[
        bool, typer.Option("--force", help="a person overrides: promote a version that was rolled back or is unhealthy")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Make a chosen version champion, journaled; refused if its file does not verify, and (unless --force) if
    it was rolled back or is below its health threshold."""
    with _knowledge(config) as heald:
        target = heald.registry.version(model, number)
        action = _journal(heald, model, ActionKind.PROMOTE, reason, {"version": number, "force": force})
        try:
            _promotable(heald, target.model, target.number, force=force)
            move = heald.registry.promote(
                model, number, at=heald.clock.now(), actor="healctl", reason=reason, action_id=action.id
            )
        except HealdError as exc:
            _settle(heald, action, False, str(exc), {"version": number})
            raise
        detail = f"champion moved from {_v(move.from_version)} to v{move.to_version}"
        _settle(heald, action, True, detail, {"from_version": move.from_version, "to_version": move.to_version})
    out.print(f"[green]promote #{action.id} succeeded[/green]: {model} {detail}", highlight=False)


def _promotable(heald: Knowledge | Heald, model: str, number: int, *, force: bool) -> None:
    """The checks a rollback makes too (the file verifies, nothing rolled back comes back unasked), and health."""
    version = heald.registry.version(model, number)
    if heald.store.alias(model, Alias.CHAMPION) == number:
        raise ActionError(f"{model} v{number} is already the champion")
    heald.registry.verify(version)
    if force:
        return
    if version.rolled_back_at is not None:
        raise ActionError(f"{model} v{number} was rolled back on {views.iso(version.rolled_back_at)}; pass --force")
    if version.health != "healthy":
        raise ActionError(f"{model} v{number} is {version.health} (below its health threshold); pass --force")


@app.command()
def submit(
    model: str,
    file: Annotated[Path, typer.Argument(help="the batch, CSV or Parquet (with the target column if labelled)")],
    config: ConfigOpt = None,
) -> None:
    """Hand a batch to the daemon: copied atomically into the model's landing folder, owned by the service."""
    with _knowledge(config) as heald:
        heald.store.get_model(model)
        target = landing.submit(file, heald.settings.landing / model)
    out.print(f"{model}: batch {target.name} waits in {target.parent}; the next tick takes it in", highlight=False)


def _control(config: Path | None, model: str, kind: str, reason: str, **extra: Any) -> None:
    with _knowledge(config) as heald:
        heald.store.get_model(model)
        now = heald.clock.now()
        if kind in ("pause", "resume"):
            heald.store.set_paused(model, kind == "pause")
        heald.store.add_control(model=model, kind=kind, at=now, actor="healctl", reason=reason, **extra)
    out.print(f"{model}: {kind} recorded")


@app.command()
def pause(model: str, reason: str = "operator pause", config: ConfigOpt = None) -> None:
    """Stop automatic remediation for a model (monitoring goes on)."""
    _control(config, model, "pause", reason)


@app.command()
def resume(model: str, reason: str = "operator resume", config: ConfigOpt = None) -> None:
    """Resume automatic remediation (also closes the circuit breaker)."""
    _control(config, model, "resume", reason)


@app.command()
def silence(
    model: str,
    kind: Annotated[str | None, typer.Option(help="symptom kind, e.g. data_drift (default: all)")] = None,
    hours: Annotated[float, typer.Option(min=0.01, help="how long")] = 4.0,
    reason: str = "operator silence",
    config: ConfigOpt = None,
) -> None:
    """Open no new incidents of a kind for a while."""
    symptom = _symptom_kind(kind)
    until = datetime.now(UTC) + timedelta(hours=hours)
    _control(config, model, "silence", reason, symptom=symptom, until=until)


@app.command("map")
def map_column(
    model: str,
    new: Annotated[str, typer.Option("--from", help="the column's new name, as rows now carry it")],
    old: Annotated[str, typer.Option("--to", help="the feature column the model was trained on")],
    undo: Annotated[bool, typer.Option("--undo", help="remove the mapping of --from instead")] = False,
    reason: str = "operator mapping",
    config: ConfigOpt = None,
) -> None:
    """Accept a renamed column: rows carrying --from are read as --to, served and learned normally (journaled)."""
    with _knowledge(config) as heald:
        record = heald.store.get_model(model)
        now = heald.clock.now()
        if undo:
            removed = heald.store.remove_mapping(model=model, new=new, at=now, actor="healctl", reason=reason)
            out.print(f"{model}: mapping {new} -> {removed.old} removed; rows carrying {new!r} are degraded again")
            return
        if old not in record.features:
            raise NotFoundError(
                f"model {model!r} has no feature column {old!r} (its features: {list(record.features)})"
            )
        if new in record.features:
            raise HealdError(f"{new!r} is already a feature column of model {model!r}; it cannot stand for {old!r}")
        heald.store.add_mapping(model=model, new=new, old=old, at=now, actor="healctl", reason=reason)
    out.print(
        f"{model}: column {new!r} is now read as {old!r} (undo: healctl map {model} --from {new} --to {old} --undo)"
    )


def _symptom_kind(kind: str | None) -> SymptomKind | None:
    if kind is None:
        return None
    try:
        return SymptomKind(kind)
    except ValueError:
        raise HealdError(f"unknown symptom kind {kind!r}; one of {[k.value for k in SymptomKind]}") from None


@app.command()
def ack(
    incident_id: int, by: Annotated[str, typer.Option(help="who takes it")] = "operator", config: ConfigOpt = None
) -> None:
    """Acknowledge an incident: a person has seen it."""
    with _knowledge(config) as heald:
        heald.store.get_incident(incident_id)
        heald.store.update_incident(incident_id, acked_by=by, updated_at=heald.clock.now())
    out.print(f"incident #{incident_id} acknowledged by {by}")


@app.command()
def init(
    name: Annotated[str, typer.Option(help="model name")],
    data: Annotated[Path, typer.Option(help="training data, CSV or Parquet")],
    target: Annotated[str, typer.Option(help="target column")],
    task: Annotated[Task | None, typer.Option(help="override task detection")] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="a column never to use as a feature (repeatable)")
    ] = None,
    write_config: Annotated[
        Path | None, typer.Option(help="config file to write for the daemon (default: STATE_DIR/heald.toml)")
    ] = None,
    accept_unhealthy: Annotated[
        bool, typer.Option("--accept-unhealthy", help="make v1 champion even below the model's health threshold")
    ] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a model from your own data: validate, train and evaluate v1, make it champion and stable."""
    from daemon.compose import model_settings
    from daemon.onboard import create
    from daemon.progress import StageProgress

    configuration.check_model_name(name)  # before anything is trained: the name becomes a folder
    with _heald(config) as heald:
        with StageProgress(err if as_json else out, f"init {name}") as progress:
            created = create(
                heald,
                name=name,
                data=data,
                target=target,
                task=task,
                listener=progress,
                accept_unhealthy=accept_unhealthy,
                exclude=exclude,
            )
        version = created.version
        view = views.version_view(version, heald.store.aliases(name))
        model = heald.store.get_model(name)
        known = model_settings(heald.settings, name)
        excluded = sorted({*known.exclude, *(exclude or [])})
        entry = known.model_copy(
            update={"target": target, "task": model.task.value, "data": data.resolve(), "exclude": excluded}
        )
        path = write_config or heald.settings.state_dir / "heald.toml"
        configuration.write(path, configuration.with_model(heald.settings, entry))
    if as_json:
        _print_json({**view, "config": str(path), "pipeline_run": created.recorded.row.id})
        return
    _print_validation(created.recorded.run.value("validate"))
    out.print(f"[green]model {name} created[/green]: v{version.number} champion and stable, {version.health}")
    out.print(f"test metrics ({model.task.value}, held-out rows):")
    for key, value in version.metrics.items():
        out.print(f"  {key} = {value:.4f}")
    for reason in view["health_reasons"]:
        out.print(f"  [yellow]health:[/yellow] {reason}")
    source = heald.settings.source
    if source in ("<defaults>", str(path)):
        out.print(f"config written to {path}: start the daemon with `heald --config {path}`")
    else:
        # The daemon already running on the person's config (the service's /etc/heald/heald.toml, say) takes the
        # model from the store; that file is theirs to edit, so the entry is only pointed at, never merged in.
        out.print(
            f"model settings written to {path}; the daemon using {source} takes the model on its next tick. To keep "
            f"this model's settings (target, exclusions) there, copy its [[models]] entry from {path} into {source}.",
            markup=False,
        )


STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "red"}


def _print_validation(report: dict[str, Any]) -> None:
    """The validation report, one line per check: pass, warn or fail, and what it found."""
    out.print(f"validation of {report['rows']} rows:")
    for name, verdict in report["checks"].items():
        style = STATUS_STYLE.get(verdict["status"], "white")
        line = f"  [{style}]{verdict['status']:<4}[/{style}] {name}: {escape(verdict['message'])}"
        out.print(line, highlight=False, soft_wrap=True)


def _schema(heald: Knowledge | Heald, name: str) -> dict[str, Kind]:
    """The columns and kinds the model's champion was trained on."""
    from pipeline.ingest import DatasetInfo

    model = heald.store.get_model(name)
    champion = heald.registry.champion(name)
    dataset = champion.profile.get("dataset") if champion is not None else None
    if dataset:
        info = DatasetInfo.from_json(dataset)
        return {c.name: c.kind for c in info.columns if c.name != model.target}
    return dict.fromkeys(model.features, "categorical")


def _journal(heald: Knowledge | Heald, model: str, kind: ActionKind, reason: str, params: dict[str, Any]) -> Action:
    now = heald.clock.now()
    action = heald.store.plan_action(model=model, kind=kind, at=now, actor="healctl", reason=reason, params=params)
    return heald.store.transition_action(action.id, ActionState.RUNNING, at=now, detail="run by healctl")


def _settle(heald: Knowledge | Heald, action: Action, ok: bool, detail: str, result: dict[str, Any]) -> None:
    state = ActionState.SUCCEEDED if ok else ActionState.FAILED
    heald.store.transition_action(
        action.id, state, at=heald.clock.now(), detail=detail, error=None if ok else detail, result=result
    )


@pipeline_app.command("run")
def pipeline_run(
    name: str,
    data: Annotated[
        list[Path] | None, typer.Option("--data", help="data files (default: the model's `data` in the config)")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole pipeline on the model's data; promote the new version only if it is not worse."""
    from actuators.runs import promote_if_not_worse, recorded_run, register_run
    from daemon.compose import model_settings, runs_folder
    from daemon.onboard import run_config, runner
    from daemon.progress import StageProgress

    with _heald(config) as heald:
        model = heald.store.get_model(name)
        entry = model_settings(heald.settings, name)
        files = list(data or ([entry.data] if entry.data else []))
        if not files:
            raise ConfigError(f"{heald.settings.source}: model {name!r} has no `data` under [[models]]; pass --data")
        cfg = run_config(
            heald.settings, name=name, data=files, target=model.target, task=model.task, schema=_schema(heald, name)
        )
        action = _journal(heald, name, ActionKind.RETRAIN, "operator pipeline run", {"pipeline": cfg.data})
        with StageProgress(err if as_json else out, f"pipeline {name}") as progress:
            done = recorded_run(
                heald.store,
                runner(heald.settings),
                root=runs_folder(heald.settings),
                now=heald.clock.now(),
                trigger="operator",
                actor="healctl",
                config=cfg,
                action_id=action.id,
                forward=progress,
            )
        if done.row.status != "succeeded":
            detail = f"pipeline run #{done.row.id} failed at {done.row.failed_stage}: {done.row.error}"
            _settle(heald, action, False, detail, {"run": done.row.id})
            raise HealdError(f"{detail} (fix it, then `healctl pipeline rerun {name}`)")
        now = heald.clock.now()
        version = register_run(heald.registry, done.run, model=name, at=now, created_by="healctl", run_id=done.row.id)
        judged = promote_if_not_worse(
            heald.registry,
            done.run,
            version,
            at=now,
            actor="healctl",
            min_gain=heald.settings.policy.min_gain,
            action_id=action.id,
        )
        result = {"run": done.row.id, "version": version.number, **judged.as_json()}
        _settle(heald, action, True, judged.detail, result)
        view = views.version_view(heald.registry.version(name, version.number), heald.store.aliases(name))
    if not as_json:
        _print_validation(done.run.value("validate"))
    _report_version({**view, **result}, judged.detail, as_json)


@pipeline_app.command("rerun")
def pipeline_rerun(name: str, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Rerun the model's last failed pipeline run from the stage that failed, reusing the stages before it."""
    from actuators.base import ActContext
    from actuators.rerun import RerunActuator
    from daemon.compose import act_settings, retry_policy, runs_folder
    from daemon.progress import StageProgress

    with _heald(config) as heald:
        model = heald.store.get_model(name)
        action = _journal(heald, name, ActionKind.RERUN, "operator rerun", {})
        ctx = ActContext(
            now=heald.clock.now(),
            model=model,
            registry=heald.registry,
            store=heald.store,
            settings=act_settings(heald.settings, name),
        )
        with StageProgress(err if as_json else out, f"rerun {name}") as progress:
            actuator = RerunActuator(runs_folder(heald.settings), retry=retry_policy(heald.settings), listener=progress)
            outcome = actuator.execute(action, ctx)
        _settle(heald, action, outcome.ok, outcome.detail, outcome.result)
        if not outcome.ok:
            raise HealdError(f"rerun of {name} failed: {outcome.detail}")
        number = int(outcome.result["version"])
        view = views.version_view(heald.registry.version(name, number), heald.store.aliases(name))
    _report_version({**view, **outcome.result}, outcome.detail, as_json)


@pipeline_app.command("runs")
def pipeline_runs(
    name: str,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A model's pipeline runs with each stage's status and duration."""
    with _knowledge(config) as heald:
        heald.store.get_model(name)
        data = [views.pipeline_run_view(r) for r in heald.store.pipeline_runs(name, limit=limit)]
    if as_json:
        _print_json(data)
        return
    columns = ("id", "status", "trigger", "started", "stages", "version", "error")
    table = Sheet(title=f"pipeline runs of {name}", columns=columns, wrap=frozenset({"stages", "error"}))
    for r in data:
        stages = " ".join(f"{s['stage']}:{s['status']}" for s in r["stages"])
        resumed = f" (rerun of #{r['resumed_from']})" if r["resumed_from"] else ""
        table.add(
            str(r["id"]),
            r["status"] + resumed,
            r["trigger"],
            _t(r["started_at"]),
            stages,
            _v(r["version"]),
            escape(r["error"] or ""),
        )
    show(out, table)


def _report_version(view: dict[str, Any], detail: str, as_json: bool) -> None:
    if as_json:
        _print_json(view)
        return
    out.print(f"[green]{detail}[/green]")
    for key, value in view["metrics"].items():
        out.print(f"  {key} = {value:.4f}")


@app.command()
def demo(
    as_json: JsonOpt = False,
    state_dir: Annotated[Path, typer.Option(help="where the demo keeps its state (wiped first)")] = Path(".heald/demo"),
    ticks: Annotated[int, typer.Option(min=30, help="simulated hours")] = 48,
) -> None:
    """Train a model, then replay a stream with a drift and a corrupted artifact, and watch heald heal both."""
    from daemon.demo_view import play

    play(state_dir.resolve(), ticks=ticks, as_json=as_json)


def _v(number: int | None) -> str:
    return "-" if number is None else f"v{number}"


def _t(value: str | None) -> str:
    """An ISO time as `MM-DD HH:MM` (UTC), short enough for a table column."""
    return "-" if not value else value[5:16].replace("T", " ")


def _status(status: str) -> str:
    color = {"resolved": "green", "escalated": "red", "open": "yellow", "mitigating": "cyan"}.get(status, "white")
    return f"[{color}]{status}[/{color}]"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn heald's own errors into one clear line and their exit status."""
    try:
        # Standalone mode lets click report usage errors itself (exit 2); our errors surface here.
        app(args=argv, prog_name="healctl")
    except (HealdError, PipelineError, OSError) as exc:
        # A message is text, not markup (``[[models]]`` would vanish); soft_wrap keeps it on one line.
        one_line = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        err.print(f"[red]error:[/red] {escape(one_line)}", highlight=False, soft_wrap=True)
        raise SystemExit(exit_code(exc)) from None
