"""The knowledge store: every reading, conclusion, decision and action of the loop, and the registry's rows.

One class over SQLAlchemy Core runs unchanged on SQLite (the embedded default) and PostgreSQL (shared by
several daemons). Each public method is one transaction, so a crash leaves either all of a change or none
of it; the promotions of the registry go through ``move_alias``, which writes the alias, its history and
the action journal together.

Fencing: the writes that act (``plan_action``, ``transition_action``, ``set_outcome``, ``move_alias``) take
the writer's lease ``epoch`` and are refused with ``StaleEpochError``, in the same transaction, when the
``actor`` lease has moved on to a newer epoch. ``epoch=None`` is an operator's write (healctl holds no
lease): it is not fenced, and the rows it leaves carry no epoch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from datetime import datetime
from enum import Enum
from functools import cache
from types import EllipsisType
from typing import Any, TypeVar, get_type_hints

from sqlalchemy import Row, Text, and_, bindparam, cast, func, insert, null, or_, select, union_all, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from knowledge.errors import DiskFullError, NotFoundError, StaleEpochError, StoreError
from knowledge.sql import engine as engines
from knowledge.sql import schema as t
from knowledge.values import (
    JSON,
    Action,
    ActionKind,
    ActionState,
    Alias,
    AliasMove,
    Batch,
    BatchStatus,
    ColumnMapping,
    Decision,
    Incident,
    IncidentStatus,
    ModelRecord,
    Observation,
    PipelineRun,
    ServedRow,
    SourceState,
    StageRun,
    Symptom,
    SymptomKind,
    Version,
)

ACTIVE_INCIDENT = (IncidentStatus.OPEN, IncidentStatus.MITIGATING, IncidentStatus.ESCALATED)
ACTIVE_ACTION = (ActionState.PLANNED, ActionState.RUNNING)
ACTOR_LEASE = "actor"  # the lease whose holder acts; its epoch fences the writes that act
IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


class SqlKnowledgeStore:
    """The knowledge store on any SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg://...``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Bumped by every alias move and column mapping change made through this store: the API's champion
        # cache re-reads at once when it changes (moves by other processes are caught by its periodic check).
        self.generation = 0
        self._profiles = _ParsedProfiles()

    @classmethod
    def open(cls, url: str) -> SqlKnowledgeStore:
        """Connect, migrate to the newest schema, and return the store; errors name the URL."""
        engine = engines.create(url)
        engines.migrate(engine)
        return cls(engine)

    @property
    def url(self) -> str:
        return engines.safe_url(self.engine.url.render_as_string(hide_password=False))

    def close(self) -> None:
        self.engine.dispose()

    # -- models -------------------------------------------------------------------------------------

    def add_model(self, model: ModelRecord) -> ModelRecord:
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.models).values(**_columns(model)))
        except IntegrityError as exc:
            raise StoreError(f"model {model.name!r} already exists") from exc
        return model

    def get_model(self, name: str) -> ModelRecord:
        with self.engine.connect() as c:
            row = c.execute(select(t.models).where(t.models.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no model named {name!r}")
        return _from_row(ModelRecord, row)

    def find_model(self, name: str) -> ModelRecord | None:
        try:
            return self.get_model(name)
        except NotFoundError:
            return None

    def list_models(self) -> list[ModelRecord]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.models).order_by(t.models.c.name)).all()
        return [_from_row(ModelRecord, r) for r in rows]

    def set_paused(self, name: str, paused: bool) -> None:
        with self.engine.begin() as c:
            done = c.execute(update(t.models).where(t.models.c.name == name).values(paused=paused))
        if done.rowcount == 0:
            raise NotFoundError(f"no model named {name!r}")

    # -- versions and aliases -----------------------------------------------------------------------

    def next_version_number(self, model: str) -> int:
        with self.engine.connect() as c:
            top = c.execute(select(func.max(t.versions.c.number)).where(t.versions.c.model == model)).scalar()
        return int(top or 0) + 1

    def add_version(self, version: Version) -> Version:
        """Record a version whose artifact is already on disk; numbers are unique per model."""
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.versions).values(**_columns(version)))
        except IntegrityError as exc:
            raise StoreError(f"version {version.number} of model {version.model!r} already exists") from exc
        return version

    def get_version(self, model: str, number: int) -> Version:
        with self.engine.connect() as c:
            row = c.execute(_VERSION_COLUMNS.where(t.versions.c.model == model, t.versions.c.number == number)).first()
        if row is None:
            raise NotFoundError(f"model {model!r} has no version {number}")
        return self._version(row)

    def list_versions(self, model: str) -> list[Version]:
        with self.engine.connect() as c:
            rows = c.execute(_VERSION_COLUMNS.where(t.versions.c.model == model).order_by(t.versions.c.number)).all()
        return [self._version(r) for r in rows]

    def _version(self, row: Any) -> Version:
        """A version from its row, the profile parsed from its text only when that text changed (see below)."""
        version = _from_row(Version, row)
        return replace(version, profile=self._profiles.parse(version.model, version.number, row.profile_text))

    def aliases(self, model: str) -> dict[Alias, int]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.aliases).where(t.aliases.c.model == model)).all()
        return {Alias(r.alias): int(r.version) for r in rows}

    def all_aliases(self) -> dict[str, dict[Alias, int]]:
        """Every model's aliases in one query, as ``aliases`` gives one model's; a model with none is absent."""
        with self.engine.connect() as c:
            rows = c.execute(select(t.aliases)).all()
        found: dict[str, dict[Alias, int]] = {}
        for r in rows:
            found.setdefault(r.model, {})[Alias(r.alias)] = int(r.version)
        return found

    def alias(self, model: str, alias: Alias) -> int | None:
        return self.aliases(model).get(alias)

    def move_alias(
        self,
        model: str,
        alias: Alias,
        to_version: int | None,
        *,
        at: datetime,
        actor: str,
        reason: str,
        action_id: int | None = None,
        expect_from: int | EllipsisType | None = ...,
        rolled_back: int | None = None,
        epoch: int | None = None,
    ) -> AliasMove:
        """Point ``alias`` at ``to_version`` (or remove it), with its history and journal, in one transaction.

        ``expect_from`` makes the move conditional: if the alias no longer points where the caller saw
        it, nothing changes and ``StoreError`` says so (a concurrent actor moved it first).
        ``rolled_back`` marks that version as rolled back in the same transaction. A stale ``epoch``
        refuses the whole move (``StaleEpochError``).
        """
        with self.engine.begin() as c:
            current = c.execute(
                select(t.aliases.c.version).where(t.aliases.c.model == model, t.aliases.c.alias == alias)
            ).scalar()
            if expect_from is not ... and current != expect_from:
                raise StoreError(
                    f"alias {alias} of {model!r} points at {current}, not {expect_from}: moved by someone else"
                )
            if to_version is not None:
                _require_version(c, model, to_version)
            _write_alias(c, model, alias, current, to_version)
            move = AliasMove(
                model=model,
                alias=alias,
                from_version=current,
                to_version=to_version,
                at=at,
                actor=actor,
                reason=reason,
                action_id=action_id,
                epoch=epoch,
            )
            c.execute(insert(t.alias_history).values(**_columns(move)))
            if rolled_back is not None:
                c.execute(
                    update(t.versions)
                    .where(t.versions.c.model == model, t.versions.c.number == rolled_back)
                    .values(rolled_back_at=at)
                )
            if action_id is not None:
                c.execute(
                    insert(t.action_events).values(
                        action_id=action_id,
                        at=at,
                        state="running",
                        detail=f"{alias} moved from v{current} to v{to_version}: {reason}",
                    )
                )
            _fence(c, epoch, f"move {alias} of {model!r} to v{to_version}")
        self.generation += 1  # after the commit: a cache that re-reads now sees the move
        return move

    def alias_history(self, model: str, alias: Alias | None = None) -> list[AliasMove]:
        q = select(t.alias_history).where(t.alias_history.c.model == model)
        if alias is not None:
            q = q.where(t.alias_history.c.alias == alias)
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(t.alias_history.c.id)).all()
        return [_from_row(AliasMove, r) for r in rows]

    def mark_stable(self, model: str, number: int, at: datetime) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(t.versions)
                .where(t.versions.c.model == model, t.versions.c.number == number)
                .values(stable_at=at)
            )

    def update_version_profile(self, model: str, number: int, profile: JSON) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(t.versions)
                .where(t.versions.c.model == model, t.versions.c.number == number)
                .values(profile=profile)
            )

    # -- observations and symptoms ------------------------------------------------------------------

    def add_observations(self, observations: Iterable[Observation]) -> int:
        values = [_columns(o) for o in observations]
        if values:
            with self.engine.begin() as c:
                c.execute(insert(t.observations), values)
        return len(values)

    def observations(
        self,
        model: str,
        *,
        metric: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
        rollups: bool = False,
    ) -> list[Observation]:
        """The newest observations of a model, oldest first.

        With ``rollups``, a series that reaches past the raw window goes on with the hourly aggregates that
        retention left (``evidence["aggregate"] == "hour"``, value the mean, with count, min and max): for the
        readers that draw history. The loop's decisions read raw readings only."""
        q = select(t.observations).where(t.observations.c.model == model)
        if metric is not None:
            q = q.where(t.observations.c.metric == metric)
        if since is not None:
            q = q.where(t.observations.c.at >= since)
        # Newest by time, then by id: the (model, metric, at) index already holds that order (SQLite appends the
        # rowid to every index), so a reading of the latest few never sorts a model's whole history.
        q = q.order_by(t.observations.c.at.desc(), t.observations.c.id.desc()).limit(limit)
        with self.engine.connect() as c:
            rows = c.execute(q).all()
        found = [_from_row(Observation, r) for r in reversed(rows)]
        if rollups and len(found) < limit:
            # Series beyond the raw window continue as hourly aggregates, all older than the oldest raw row.
            before = found[0].at if found else None
            found = self._rollups(model, metric, since, before, limit - len(found)) + found
        return found

    def recent_observations(self, model: str, metrics: Sequence[str], *, limit: int) -> dict[str, list[Observation]]:
        """The newest ``limit`` raw readings of each of ``metrics`` for ``model``, oldest first, in one statement:
        what ``observations(model, metric=m, limit=limit)`` gives for each (the analyzer reads several per tick)."""
        names = list(dict.fromkeys(metrics))
        found: dict[str, list[Observation]] = {m: [] for m in names}
        if not names:
            return found
        params = {"model": model, **{f"metric_{i}": m for i, m in enumerate(names)}}
        with self.engine.connect() as c:
            rows = c.execute(_metrics_statement(len(names), limit), params).all()
        for row in sorted(rows, key=lambda r: (r.at, r.id)):
            found[row.metric].append(_from_row(Observation, row))
        return found

    def _rollups(
        self, model: str, metric: str | None, since: datetime | None, before: datetime | None, limit: int
    ) -> list[Observation]:
        """The newest hourly aggregates of a model (older than ``before``) as observations: value is the mean."""
        r = t.observation_rollups
        q = select(r).where(r.c.model == model)
        if metric is not None:
            q = q.where(r.c.metric == metric)
        if since is not None:
            q = q.where(r.c.hour >= since)
        if before is not None:
            q = q.where(r.c.hour < before)
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(r.c.hour.desc(), r.c.id.desc()).limit(limit)).all()
        return [
            Observation(
                at=row.hour,
                model=row.model,
                source=row.source,
                metric=row.metric,
                value=float(row.mean),
                evidence={"aggregate": "hour", "count": row.count, "min": row.min, "max": row.max},
            )
            for row in reversed(rows)
        ]

    # -- retention: raw observations folded into hourly rollups, then dropped past the horizon -------

    def rollup_observations(
        self, model: str, *, before: datetime, dry_run: bool = False, epoch: int | None = None
    ) -> int:
        """Fold a model's raw observations older than ``before`` (floored to the hour) into hourly rollups.

        One transaction: the rollups are written and the raw rows deleted together. Returns the raw rows folded
        (or, with ``dry_run``, that would be). Flooring keeps each hour folded once, whole."""
        o = t.observations
        before = before.replace(minute=0, second=0, microsecond=0)
        old = and_(o.c.model == model, o.c.at < before)
        with self.engine.begin() as c:
            if dry_run:
                return int(c.execute(select(func.count()).where(old)).scalar() or 0)
            hour = _hour(o.c.at, c.dialect.name)
            grouped = (
                select(
                    hour,
                    o.c.model,
                    o.c.source,
                    o.c.metric,
                    func.count(),
                    func.min(o.c.value),
                    func.avg(o.c.value),
                    func.max(o.c.value),
                )
                .where(old)
                .group_by(hour, o.c.model, o.c.source, o.c.metric)
            )
            names = ["hour", "model", "source", "metric", "count", "min", "mean", "max"]
            c.execute(insert(t.observation_rollups).from_select(names, grouped))
            folded = int(c.execute(o.delete().where(old)).rowcount or 0)
            _fence(c, epoch, f"fold the observations of {model!r} older than {before:%Y-%m-%d %H:%M}")
        return folded

    def drop_history(self, *, before: datetime, dry_run: bool = False, epoch: int | None = None) -> dict[str, int]:
        """Delete hourly rollups (and any raw observations) older than ``before``, the retention horizon."""
        o, r = t.observations, t.observation_rollups
        targets = {"observations": (o, o.c.at < before), "observation_rollups": (r, r.c.hour < before)}
        dropped = {}
        with self.engine.begin() as c:
            for name, (table, old) in targets.items():
                if dry_run:
                    dropped[name] = int(c.execute(select(func.count()).select_from(table).where(old)).scalar() or 0)
                else:
                    dropped[name] = int(c.execute(table.delete().where(old)).rowcount or 0)
            _fence(c, epoch, f"drop history older than {before:%Y-%m-%d}")
        return dropped

    def history_size(self, model: str) -> dict[str, int]:
        """How many raw observation rows and hourly rollup rows a model holds."""
        o, r = t.observations, t.observation_rollups
        with self.engine.connect() as c:
            raw = c.execute(select(func.count()).select_from(o).where(o.c.model == model)).scalar()
            folded = c.execute(select(func.count()).select_from(r).where(r.c.model == model)).scalar()
        return {"observations": int(raw or 0), "observation_rollups": int(folded or 0)}

    def latest_observations(
        self, metrics: Sequence[str], *, models: Sequence[str] | None = None
    ) -> dict[tuple[str, str], Observation]:
        """The newest observation of each (model, metric) pair, keyed so; a pair with no reading is absent.

        One statement for every registered model (or those named): per model and metric a correlated
        ``LIMIT 1`` seek down the (model, metric, at) index, so the cost grows with models x metrics and never
        with the length of the history (a GROUP BY max(at) would walk every reading of the metric)."""
        if not metrics:
            return {}
        statement = _latest_statement(tuple(dict.fromkeys(metrics)), models is not None)
        with self.engine.connect() as c:
            rows = c.execute(statement, {} if models is None else {"models": list(models)}).all()
        found = [_from_row(Observation, r) for r in rows]
        return {(ob.model, ob.metric): ob for ob in found}

    def recent_series(
        self, models: Sequence[str], metric: str, *, limit: int, rollups: bool = False
    ) -> dict[str, list[tuple[datetime, float]]]:
        """The newest ``limit`` (time, value) readings of ``metric`` for each model, oldest first; [] for none.

        Bounded for any length of history: one statement of per-model ``ORDER BY at DESC LIMIT n`` seeks down
        the (model, metric, at) index, glued with UNION ALL, reading two columns and no evidence. With
        ``rollups``, a series shorter than ``limit`` goes on into the past with the hourly means retention left
        (as ``observations(..., rollups=True)``), so a chart of a slow-ticking model reaches past the raw window."""
        series: dict[str, list[tuple[datetime, float]]] = {m: [] for m in models}
        names = list(dict.fromkeys(models))
        with self.engine.connect() as c:
            # SQLite caps a compound SELECT at 500 terms by default.
            for start in range(0, len(names), 200):
                chunk = names[start : start + 200]
                params = {"metric": metric, **{f"model_{i}": name for i, name in enumerate(chunk)}}
                rows = c.execute(_recent_statement(len(chunk), limit), params).all()
                # Oldest first, ties by id, as observations() orders them; SQL keeps no order across UNION ALL.
                for row in sorted(rows, key=lambda r: (r[1], r[3])):
                    series[row[0]].append((row[1], float(row[2])))
        if rollups:
            for name in names:
                found = series[name]
                if len(found) < limit:
                    older = self._rollups(name, metric, None, found[0][0] if found else None, limit - len(found))
                    series[name] = [(o.at, o.value) for o in older] + found
        return series

    def add_symptom(self, symptom: Symptom, incident_id: int | None) -> None:
        with self.engine.begin() as c:
            c.execute(insert(t.symptoms).values(**_columns(symptom), incident_id=incident_id))

    def symptoms(self, incident_id: int) -> list[Symptom]:
        with self.engine.connect() as c:
            rows = c.execute(
                select(t.symptoms).where(t.symptoms.c.incident_id == incident_id).order_by(t.symptoms.c.id)
            ).all()
        return [_from_row(Symptom, r) for r in rows]

    # -- incidents ----------------------------------------------------------------------------------

    def open_incident(self, symptom: Symptom) -> Incident:
        """Open an incident for ``symptom``; if one of its model and kind is already active (another daemon
        opened it an instant ago), the symptom joins that one instead: there is never a second."""
        try:
            return self._insert_incident(symptom)
        except IntegrityError:
            active = [i for i in self.active_incidents(symptom.model) if i.kind is symptom.kind]
            if not active:
                raise
            self.add_symptom(symptom, active[0].id)
            return active[0]

    def _insert_incident(self, symptom: Symptom) -> Incident:
        with self.engine.begin() as c:
            new_id = c.execute(
                insert(t.incidents).values(
                    model=symptom.model,
                    kind=symptom.kind.value,
                    status=IncidentStatus.OPEN.value,
                    severity=symptom.severity.value,
                    summary=symptom.summary,
                    opened_at=symptom.at,
                    updated_at=symptom.at,
                    last_seen_at=symptom.at,
                    clear_ticks=0,
                )
            ).inserted_primary_key
            assert new_id is not None
            c.execute(insert(t.symptoms).values(**_columns(symptom), incident_id=new_id[0]))
        return self.get_incident(int(new_id[0]))

    def update_incident(self, incident_id: int, **changes: Any) -> Incident:
        allowed = {
            "status",
            "severity",
            "summary",
            "updated_at",
            "last_seen_at",
            "resolved_at",
            "clear_ticks",
        }
        unknown = set(changes) - allowed - {"acked_by"}
        if unknown:
            raise ValueError(f"cannot change incident fields {sorted(unknown)}")
        values = {k: (v.value if hasattr(v, "value") else v) for k, v in changes.items()}
        with self.engine.begin() as c:
            done = c.execute(update(t.incidents).where(t.incidents.c.id == incident_id).values(**values))
        if done.rowcount == 0:
            raise NotFoundError(f"no incident {incident_id}")
        return self.get_incident(incident_id)

    def get_incident(self, incident_id: int) -> Incident:
        with self.engine.connect() as c:
            row = c.execute(select(t.incidents).where(t.incidents.c.id == incident_id)).first()
        if row is None:
            raise NotFoundError(f"no incident {incident_id}")
        return _from_row(Incident, row)

    def active_incidents(self, model: str | None = None) -> list[Incident]:
        q = select(t.incidents).where(t.incidents.c.status.in_([s.value for s in ACTIVE_INCIDENT]))
        if model is not None:
            q = q.where(t.incidents.c.model == model)
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(t.incidents.c.id)).all()
        return [_from_row(Incident, r) for r in rows]

    def list_incidents(
        self, *, model: str | None = None, status: Sequence[str] | None = None, limit: int = 100
    ) -> list[Incident]:
        """The newest incidents first."""
        q = select(t.incidents)
        if model is not None:
            q = q.where(t.incidents.c.model == model)
        if status:
            q = q.where(t.incidents.c.status.in_(list(status)))
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(t.incidents.c.id.desc()).limit(limit)).all()
        return [_from_row(Incident, r) for r in rows]

    def tally(self, table: str, by: Sequence[str]) -> dict[tuple[str, ...], int]:
        """How many rows of ``table`` (incidents, actions, batches) hold each combination of ``by``'s values."""
        source = t.metadata.tables[table]
        keys = [source.c[name] for name in by]
        with self.engine.connect() as c:
            rows = c.execute(select(*keys, func.count()).group_by(*keys)).all()
        return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in rows}

    # -- actions and their journal ------------------------------------------------------------------

    def plan_action(
        self,
        *,
        model: str,
        kind: ActionKind,
        at: datetime,
        actor: str,
        reason: str,
        incident_id: int | None = None,
        params: JSON | None = None,
        cost: float = 0.0,
        epoch: int | None = None,
    ) -> Action:
        """Write an action to the journal as ``planned``; it runs only after this row is committed.

        The action keeps ``epoch``: its later transitions are written under it, and the leader that
        replaces this one settles the actions of older epochs."""
        with self.engine.begin() as c:
            new_id = c.execute(
                insert(t.actions).values(
                    incident_id=incident_id,
                    model=model,
                    kind=kind.value,
                    params=params or {},
                    state=ActionState.PLANNED.value,
                    cost=cost,
                    actor=actor,
                    reason=reason,
                    planned_at=at,
                    result={},
                    epoch=epoch,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            c.execute(insert(t.action_events).values(action_id=new_id, at=at, state="planned", detail=reason))
            _fence(c, epoch, f"plan {kind.value} of {model!r}")
        return self.get_action(int(new_id))

    def transition_action(
        self,
        action_id: int,
        state: ActionState,
        *,
        at: datetime,
        detail: str = "",
        error: str | None = None,
        result: JSON | None = None,
        outcome: str | None = None,
        epoch: int | None = None,
    ) -> Action:
        """Move an action to ``state`` and journal why; a finished action never moves again.

        Moving a finished action raises ``StoreError``; a stale ``epoch`` raises ``StaleEpochError``."""
        with self.engine.begin() as c:
            current = c.execute(select(t.actions.c.state).where(t.actions.c.id == action_id)).scalar()
            if current is None:
                raise NotFoundError(f"no action {action_id}")
            if ActionState(current).finished:
                raise StoreError(f"action {action_id} already {current}; it cannot become {state}")
            values: dict[str, Any] = {"state": state.value}
            if state is ActionState.RUNNING:
                values["started_at"] = at
            if state.finished:
                values["finished_at"] = at
            if error is not None:
                values["error"] = error
            if result is not None:
                values["result"] = result
            if outcome is not None:
                values["outcome"] = outcome
            c.execute(update(t.actions).where(t.actions.c.id == action_id).values(**values))
            c.execute(
                insert(t.action_events).values(
                    action_id=action_id, at=at, state=state.value, detail=detail or error or ""
                )
            )
            _fence(c, epoch, f"move action {action_id} to {state.value}")
        return self.get_action(action_id)

    def set_outcome(self, action_id: int, outcome: str, *, at: datetime, detail: str, epoch: int | None = None) -> None:
        """Record whether a finished action's effect was verified on later ticks."""
        with self.engine.begin() as c:
            c.execute(update(t.actions).where(t.actions.c.id == action_id).values(outcome=outcome))
            c.execute(
                insert(t.action_events).values(action_id=action_id, at=at, state=f"outcome:{outcome}", detail=detail)
            )
            _fence(c, epoch, f"set the outcome of action {action_id} to {outcome}")

    def get_action(self, action_id: int) -> Action:
        with self.engine.connect() as c:
            row = c.execute(select(t.actions).where(t.actions.c.id == action_id)).first()
        if row is None:
            raise NotFoundError(f"no action {action_id}")
        return _from_row(Action, row)

    def actions(
        self,
        *,
        model: str | None = None,
        incident_id: int | None = None,
        kind: ActionKind | None = None,
        states: Sequence[ActionState] | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[Action]:
        """Actions matching every given filter, oldest first."""
        q = select(t.actions)
        if model is not None:
            q = q.where(t.actions.c.model == model)
        if incident_id is not None:
            q = q.where(t.actions.c.incident_id == incident_id)
        if kind is not None:
            q = q.where(t.actions.c.kind == kind.value)
        if states:
            q = q.where(t.actions.c.state.in_([s.value for s in states]))
        if since is not None:
            q = q.where(t.actions.c.planned_at >= since)
        q = q.order_by(t.actions.c.id.desc()).limit(limit)
        with self.engine.connect() as c:
            rows = c.execute(q).all()
        return [_from_row(Action, r) for r in reversed(rows)]

    def last_actions(self) -> dict[str, Action]:
        """Each model's newest action (highest id, as ``actions(model=..., limit=1)`` gives it), in one query."""
        newest = select(func.max(t.actions.c.id)).group_by(t.actions.c.model)
        with self.engine.connect() as c:
            rows = c.execute(select(t.actions).where(t.actions.c.id.in_(newest))).all()
        return {r.model: _from_row(Action, r) for r in rows}

    def action_events(self, action_id: int) -> list[JSON]:
        with self.engine.connect() as c:
            rows = c.execute(
                select(t.action_events).where(t.action_events.c.action_id == action_id).order_by(t.action_events.c.id)
            ).all()
        return [{"at": r.at, "state": r.state, "detail": r.detail} for r in rows]

    def add_decision(self, decision: Decision) -> None:
        with self.engine.begin() as c:
            c.execute(insert(t.decisions).values(**_columns(decision)))

    def decisions(self, *, incident_id: int | None = None, model: str | None = None) -> list[Decision]:
        q = select(t.decisions)
        if incident_id is not None:
            q = q.where(t.decisions.c.incident_id == incident_id)
        if model is not None:
            q = q.where(t.decisions.c.model == model)
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(t.decisions.c.id)).all()
        return [_from_row(Decision, r) for r in rows]

    # -- batches ------------------------------------------------------------------------------------

    def add_batch(
        self,
        *,
        model: str,
        received_at: datetime,
        source: str,
        path: str,
        rows: int,
        labelled: bool,
        fingerprint: str,
        status: str = "accepted",
        reason: str = "",
        claim: str | None = None,
        pulled: str | None = None,
    ) -> Batch:
        """Record a batch in one transaction; a ``claim`` (a landing file's identity) is recorded at most once.

        A second row for the same claim raises ``StoreError`` and changes nothing; a full disk raises
        ``DiskFullError`` and changes nothing, so the caller can simply try again later. ``pulled`` names the
        file a source's page was written to: its stream's watermark advances in this same transaction.
        """
        values = {k: v for k, v in locals().items() if k not in ("self", "pulled")}  # the columns given above
        try:
            with self.engine.begin() as c:
                new_id = c.execute(insert(t.batches).values(**values)).inserted_primary_key[0]  # type: ignore[index]
                if pulled is not None:
                    _settle_pull(c, model, pulled, rows, received_at)
        except IntegrityError as exc:
            raise StoreError(f"batch {claim!r} of model {model!r} is already recorded") from exc
        except OperationalError as exc:
            if _disk_full(exc):
                raise DiskFullError(f"knowledge store at {self.url}: cannot record batch {claim!r}: disk full") from exc
            raise
        return Batch(id=int(new_id), **values)

    def find_batch(self, model: str, claim: str) -> Batch | None:
        """The batch recorded for a landing file's claim (``<sha256>/<name>``), whatever its status."""
        with self.engine.connect() as c:
            row = c.execute(select(t.batches).where(t.batches.c.model == model, t.batches.c.claim == claim)).first()
        return None if row is None else _from_row(Batch, row)

    def batches(
        self,
        model: str,
        *,
        since: datetime | None = None,
        after_id: int | None = None,
        labelled: bool | None = None,
        status: str | None = "accepted",
        limit: int = 1000,
    ) -> list[Batch]:
        """The newest matching batches, oldest first."""
        q = select(t.batches).where(t.batches.c.model == model)
        if since is not None:
            q = q.where(t.batches.c.received_at >= since)
        if after_id is not None:
            q = q.where(t.batches.c.id > after_id)
        if labelled is not None:
            q = q.where(t.batches.c.labelled == labelled)
        if status is not None:
            q = q.where(t.batches.c.status == status)
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(t.batches.c.id.desc()).limit(limit)).all()
        return [_from_row(Batch, r) for r in reversed(rows)]

    def batches_before(self, model: str, *, before: datetime, status: str, limit: int = 10_000) -> list[Batch]:
        """The oldest batches of a model with ``status`` received before ``before``, oldest first (for retention)."""
        b = t.batches
        q = select(b).where(b.c.model == model, b.c.status == status, b.c.received_at < before)
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(b.c.received_at, b.c.id).limit(limit)).all()
        return [_from_row(Batch, r) for r in rows]

    def collect_batches(self, batches: Sequence[Batch], *, at: datetime, epoch: int | None = None) -> int:
        """Mark batch rows whose files retention is about to remove as tombstones (``BatchStatus.collected``).

        Committed before the files go, so no accepted row ever names a missing file; the row keeps its claim and
        fingerprint, so the same file sent again is still quarantined as a duplicate, not taken in twice."""
        changed = 0
        reason = f"file removed by retention at {at.isoformat()}"
        with self.engine.begin() as c:
            for status in {BatchStatus(b.status) for b in batches}:
                ids = [b.id for b in batches if b.status == status]
                for start in range(0, len(ids), IN_CHUNK):
                    chunk = ids[start : start + IN_CHUNK]
                    q = (
                        update(t.batches)
                        .where(t.batches.c.id.in_(chunk), t.batches.c.status == status.value)
                        .values(status=status.collected.value, reason=reason)
                    )
                    changed += int(c.execute(q).rowcount or 0)
            _fence(c, epoch, f"collect {len(batches)} expired batch rows")
        return changed

    # -- source state: the watermark of each pulled stream, advanced with the batch that records it ---------

    def source_state(self, model: str, stream: str) -> SourceState | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.source_state).where(_stream(model, stream))).first()
        return None if row is None else _from_row(SourceState, row)

    def source_states(self, model: str | None = None) -> list[SourceState]:
        q = select(t.source_state).order_by(t.source_state.c.model, t.source_state.c.stream)
        if model is not None:
            q = q.where(t.source_state.c.model == model)
        with self.engine.connect() as c:
            return [_from_row(SourceState, r) for r in c.execute(q)]

    def begin_pull(self, model: str, stream: str, kind: str, *, at: datetime, pending: JSON) -> bool:
        """Note a page about to be written out (its file, watermark and keys); False if one is pending already.

        The page's batch settles it (``add_batch(pulled=...)``); a page whose file never appeared is dropped
        with ``drop_pending`` and pulled again, from the same watermark.
        """
        s = t.source_state
        with self.engine.begin() as c:
            _ensure_stream(c, model, stream, kind)
            done = c.execute(
                update(s).where(_stream(model, stream), s.c.pending.is_(None)).values(pending=pending, last_pull_at=at)
            )
            return bool(done.rowcount)

    def drop_pending(self, model: str, stream: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.source_state).where(_stream(model, stream)).values(pending=null()))

    def advance_source(self, model: str, stream: str, kind: str, *, at: datetime, watermark: Any, seen: JSON) -> None:
        """A pull that brought nothing new (or only rows already taken): move the watermark, clear the errors."""
        with self.engine.begin() as c:
            _ensure_stream(c, model, stream, kind)
            c.execute(
                update(t.source_state)
                .where(_stream(model, stream))
                .values(watermark=watermark, seen=seen, last_pull_at=at, **_HEALTHY, last_success_at=at)
            )

    def source_failed(self, model: str, stream: str, kind: str, *, at: datetime, error: str, retry_at: datetime) -> int:
        """Count a failed pull and when to try again; returns the failures in a row."""
        s = t.source_state
        with self.engine.begin() as c:
            _ensure_stream(c, model, stream, kind)
            c.execute(
                update(s)
                .where(_stream(model, stream))
                .values(failures=s.c.failures + 1, last_error=error[:2000], last_pull_at=at, retry_at=retry_at)
            )
            return int(c.execute(select(s.c.failures).where(_stream(model, stream))).scalar_one())

    # -- served rows: the id -> row mapping that late labels join ----------------------------------

    def add_served_rows(self, rows: Sequence[ServedRow]) -> None:
        """Record rows the API just served (one transaction), so their labels may come days later."""
        if not rows:
            return
        # This runs for every answered request, so the values are built directly (not through ``_columns``), and
        # rows not labelled yet (all of them, as served) leave label and labelled_at out: SQL NULL, one JSON
        # encoding less per row. The commit is the durable point: the API answers only after it.
        labelled = any(r.label is not None or r.labelled_at is not None for r in rows)
        values = [
            {
                "model": r.model,
                "request_id": r.request_id,
                "served_at": r.served_at,
                "version": r.version,
                "row": r.row,
                "flushed": False,
                "label_flushed": False,
                **({"label": r.label, "labelled_at": r.labelled_at} if labelled else {}),
            }
            for r in rows
        ]
        with self.engine.begin() as c:
            c.execute(insert(t.served_rows), values)

    def label_served(self, model: str, labels: dict[str, Any], at: datetime) -> list[str]:
        """Attach labels to served rows; returns the ids never served (or forgotten), which get nothing.

        A second label for an id replaces the first (and is written out again); the same label twice is a no-op.
        """
        s = t.served_rows
        ids = list(labels)
        with self.engine.begin() as c:
            known: dict[str, Any] = {}
            for start in range(0, len(ids), IN_CHUNK):
                chunk = ids[start : start + IN_CHUNK]
                q = select(s.c.request_id, s.c.label, s.c.labelled_at).where(
                    s.c.model == model, s.c.request_id.in_(chunk)
                )
                known.update({r.request_id: r for r in c.execute(q)})
            for request_id, label in labels.items():
                row = known.get(request_id)
                if row is None or (row.labelled_at is not None and row.label == label):
                    continue
                c.execute(
                    update(s)
                    .where(s.c.model == model, s.c.request_id == request_id)
                    .values(label=label, labelled_at=at, label_flushed=False)
                )
        return [i for i in ids if i not in known]

    def unflushed_served(self, *, labels: bool, limit: int = 100_000) -> list[ServedRow]:
        """Served rows not yet written into an ``api`` batch, or (``labels``) labels not yet in a ``feedback`` one."""
        s = t.served_rows
        q = select(s).where(s.c.label_flushed.is_(False), s.c.labelled_at.is_not(None)) if labels else None
        q = q if q is not None else select(s).where(s.c.flushed.is_(False))
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(s.c.served_at, s.c.request_id).limit(limit)).all()
        return [_from_row(ServedRow, r) for r in rows]

    def mark_flushed(self, model: str, ids: Sequence[str], *, labels: bool) -> None:
        s = t.served_rows
        column = "label_flushed" if labels else "flushed"
        with self.engine.begin() as c:
            for start in range(0, len(ids), IN_CHUNK):
                chunk = list(ids[start : start + IN_CHUNK])
                c.execute(update(s).where(s.c.model == model, s.c.request_id.in_(chunk)).values(**{column: True}))

    def prune_served(self, *, before: datetime) -> int:
        """Forget served rows older than ``before`` (the retention bound) once they were written out."""
        s = t.served_rows
        written = and_(s.c.flushed.is_(True), or_(s.c.labelled_at.is_(None), s.c.label_flushed.is_(True)))
        with self.engine.begin() as c:
            return int(c.execute(s.delete().where(s.c.served_at < before, written)).rowcount or 0)

    def served_count(self, model: str) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(func.count()).where(t.served_rows.c.model == model)).scalar() or 0)

    # -- column mappings: accepted renames, journaled and reversible ---------------------------------

    def add_mapping(self, *, model: str, new: str, old: str, at: datetime, actor: str, reason: str) -> ColumnMapping:
        """Accept ``new`` as the column ``old`` (replacing an active mapping of ``new``), journaled as a control."""
        m = t.column_mappings
        with self.engine.begin() as c:
            c.execute(
                update(m).where(m.c.model == model, m.c.new == new, m.c.removed_at.is_(None)).values(removed_at=at)
            )
            values = {"model": model, "new": new, "old": old, "accepted_at": at, "actor": actor, "reason": reason}
            new_id = c.execute(insert(m).values(**values)).inserted_primary_key[0]  # type: ignore[index]
            c.execute(
                insert(t.controls).values(
                    model=model, kind="map", actor=actor, reason=f"{new} -> {old}: {reason}", created_at=at
                )
            )
        self.generation += 1
        return ColumnMapping(id=int(new_id), model=model, new=new, old=old, accepted_at=at, actor=actor, reason=reason)

    def remove_mapping(self, *, model: str, new: str, at: datetime, actor: str, reason: str) -> ColumnMapping:
        """Undo the active mapping of ``new``; raises ``NotFoundError`` naming it when there is none."""
        m = t.column_mappings
        with self.engine.begin() as c:
            row = c.execute(select(m).where(m.c.model == model, m.c.new == new, m.c.removed_at.is_(None))).first()
            if row is None:
                raise NotFoundError(f"model {model!r} has no active mapping of column {new!r}")
            c.execute(update(m).where(m.c.id == row.id).values(removed_at=at))
            c.execute(
                insert(t.controls).values(
                    model=model, kind="unmap", actor=actor, reason=f"{new} -> {row.old}: {reason}", created_at=at
                )
            )
        self.generation += 1
        return replace(_from_row(ColumnMapping, row), removed_at=at)

    def column_mappings(self, model: str) -> dict[str, str]:
        """The active mappings of ``model``: new column name -> the name the model knows."""
        m = t.column_mappings
        q = select(m.c.new, m.c.old).where(m.c.model == model, m.c.removed_at.is_(None)).order_by(m.c.id)
        with self.engine.connect() as c:
            return {r.new: r.old for r in c.execute(q)}

    def mapping_history(self, model: str) -> list[ColumnMapping]:
        m = t.column_mappings
        with self.engine.connect() as c:
            rows = c.execute(select(m).where(m.c.model == model).order_by(m.c.id)).all()
        return [_from_row(ColumnMapping, r) for r in rows]

    # -- pipeline runs and their stages -------------------------------------------------------------

    def add_pipeline_run(
        self,
        *,
        model: str,
        folder: str,
        trigger: str,
        actor: str,
        started_at: datetime,
        config: JSON,
        resumed_from: int | None = None,
        action_id: int | None = None,
    ) -> PipelineRun:
        """Record a pipeline run as ``running``, before its first stage starts."""
        with self.engine.begin() as c:
            new_id = c.execute(
                insert(t.pipeline_runs).values(
                    model=model,
                    folder=folder,
                    status="running",
                    trigger=trigger,
                    actor=actor,
                    started_at=started_at,
                    resumed_from=resumed_from,
                    action_id=action_id,
                    config=config,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return self.get_pipeline_run(int(new_id))

    def record_stage(self, run_id: int, stage: StageRun) -> None:
        """Write (or overwrite) the record of one stage of a run."""
        values = _columns(stage)
        where = and_(t.stage_runs.c.run_id == run_id, t.stage_runs.c.stage == stage.stage)
        with self.engine.begin() as c:
            done = c.execute(update(t.stage_runs).where(where).values(**values))
            if done.rowcount == 0:
                c.execute(insert(t.stage_runs).values(run_id=run_id, **values))

    def finish_pipeline_run(
        self,
        run_id: int,
        *,
        status: str,
        at: datetime,
        failed_stage: str | None = None,
        error: str | None = None,
    ) -> PipelineRun:
        values = {"status": status, "finished_at": at, "failed_stage": failed_stage, "error": error}
        with self.engine.begin() as c:
            done = c.execute(update(t.pipeline_runs).where(t.pipeline_runs.c.id == run_id).values(**values))
        if done.rowcount == 0:
            raise NotFoundError(f"no pipeline run {run_id}")
        return self.get_pipeline_run(run_id)

    def set_pipeline_run_version(self, run_id: int, version: int) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.pipeline_runs).where(t.pipeline_runs.c.id == run_id).values(version=version))

    def get_pipeline_run(self, run_id: int) -> PipelineRun:
        """A run with its stages in order."""
        with self.engine.connect() as c:
            row = c.execute(select(t.pipeline_runs).where(t.pipeline_runs.c.id == run_id)).first()
            if row is None:
                raise NotFoundError(f"no pipeline run {run_id}")
            stages = c.execute(
                select(t.stage_runs).where(t.stage_runs.c.run_id == run_id).order_by(t.stage_runs.c.position)
            ).all()
        return replace(_from_row(PipelineRun, row), stages=[_from_row(StageRun, s) for s in stages])

    def pipeline_runs(self, model: str, *, status: str | None = None, limit: int = 20) -> list[PipelineRun]:
        """The newest runs of a model (with their stages), oldest first."""
        q = select(t.pipeline_runs.c.id).where(t.pipeline_runs.c.model == model)
        if status is not None:
            q = q.where(t.pipeline_runs.c.status == status)
        with self.engine.connect() as c:
            ids = c.execute(q.order_by(t.pipeline_runs.c.id.desc()).limit(limit)).scalars().all()
        return [self.get_pipeline_run(int(i)) for i in reversed(ids)]

    # -- operator controls: pauses and silences -----------------------------------------------------

    def add_control(
        self,
        *,
        model: str,
        kind: str,
        at: datetime,
        actor: str,
        reason: str,
        symptom: SymptomKind | None = None,
        until: datetime | None = None,
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                insert(t.controls).values(
                    model=model,
                    kind=kind,
                    symptom=symptom.value if symptom else None,
                    until=until,
                    actor=actor,
                    reason=reason,
                    created_at=at,
                )
            )

    def silenced(self, model: str, kind: SymptomKind, now: datetime) -> bool:
        """Whether an operator silenced this symptom kind on this model (or all kinds) at ``now``."""
        q = select(func.count()).where(
            t.controls.c.model == model,
            t.controls.c.kind == "silence",
            or_(t.controls.c.symptom.is_(None), t.controls.c.symptom == kind.value),
            or_(t.controls.c.until.is_(None), t.controls.c.until > now),
            t.controls.c.created_at <= now,
        )
        with self.engine.connect() as c:
            return bool(c.execute(q).scalar())

    def last_control(self, model: str, kind: str) -> datetime | None:
        """When an operator last gave this control (``pause``, ``resume``, ``silence``) for the model."""
        q = select(func.max(t.controls.c.created_at)).where(t.controls.c.model == model, t.controls.c.kind == kind)
        with self.engine.connect() as c:
            value = c.execute(q).scalar()
        return value if isinstance(value, datetime) else None

    # -- leases -------------------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, *, at: datetime, ttl_seconds: float) -> int | None:
        """Take or renew the lease; returns its epoch when ``holder`` holds it, else None."""
        try:
            with self.engine.begin() as c:
                row = c.execute(select(t.leases).where(t.leases.c.name == name).with_for_update()).first()
                if row is None:
                    c.execute(insert(t.leases).values(name=name, holder=holder, epoch=1, renewed_at=at))
                    return 1
                expired = (at - row.renewed_at).total_seconds() > ttl_seconds
                if row.holder == holder or expired:
                    epoch = int(row.epoch) + (0 if row.holder == holder else 1)
                    c.execute(
                        update(t.leases)
                        .where(and_(t.leases.c.name == name, t.leases.c.epoch == row.epoch))
                        .values(holder=holder, epoch=epoch, renewed_at=at)
                    )
                    return epoch
                return None
        except (IntegrityError, OperationalError):
            return None


_HEALTHY = {"failures": 0, "last_error": "", "retry_at": None}


def _stream(model: str, stream: str) -> Any:
    return and_(t.source_state.c.model == model, t.source_state.c.stream == stream)


def _ensure_stream(c: Connection, model: str, stream: str, kind: str) -> None:
    """Create the stream's row on its first pull (a second daemon's insert racing ours is harmless)."""
    if c.execute(select(t.source_state.c.model).where(_stream(model, stream))).first() is None:
        c.execute(
            insert(t.source_state).values(
                model=model, stream=stream, kind=kind, seen={}, rows=0, batches=0, failures=0, last_error=""
            )
        )


def _settle_pull(c: Connection, model: str, pulled: str, rows: int, at: datetime) -> None:
    """Advance the stream whose pending page was written to ``pulled``, inside the batch's transaction."""
    s = t.source_state
    for state in c.execute(select(s).where(s.c.model == model, s.c.pending.is_not(None))):
        pending = state.pending
        if not pending or pending.get("file") != pulled:
            continue
        c.execute(
            update(s)
            .where(_stream(model, state.stream))
            .values(
                watermark=pending.get("watermark"),
                seen=pending.get("seen", {}),
                pending=null(),
                rows=s.c.rows + rows,
                batches=s.c.batches + 1,
                last_success_at=at,
                **_HEALTHY,
            )
        )


def _fence(c: Connection, epoch: int | None, what: str) -> None:
    """Refuse the transaction unless ``epoch`` is still the actor lease's epoch (None: an operator, unfenced).

    It runs as the transaction's last statement: the conditional UPDATE locks the lease row until commit,
    so a takeover either committed first (and this write is refused) or waits for this one to commit (and
    the new holder's settling sees it). On SQLite the transaction already holds the database's write lock.
    """
    if epoch is None:
        return
    lease = t.leases.c
    done = c.execute(update(t.leases).where(lease.name == ACTOR_LEASE, lease.epoch == epoch).values(epoch=lease.epoch))
    if done.rowcount == 0:
        current = c.execute(select(lease.epoch, lease.holder).where(lease.name == ACTOR_LEASE)).first()
        now = f"epoch {current.epoch} held by {current.holder!r}" if current else "no holder"
        raise StaleEpochError(f"refused to {what}: lease epoch {epoch} is stale ({ACTOR_LEASE!r} lease is at {now})")


def _hour(column: Any, dialect: str) -> Any:
    """The hour a timestamp falls in, computed by the database (SQLite keeps UTC text; PostgreSQL a timestamptz)."""
    if dialect == "sqlite":
        return func.substr(column, 1, 13).concat(":00:00.000000")
    return func.date_trunc("hour", column, "UTC")


def _disk_full(exc: OperationalError) -> bool:
    """Whether the database refused a write for want of space (SQLite says so in words, PostgreSQL by code)."""
    text = str(exc.orig if exc.orig is not None else exc).lower()
    return "disk is full" in text or "no space left" in text or getattr(exc.orig, "sqlstate", None) == "53100"


def _require_version(c: Connection, model: str, number: int) -> None:
    found = c.execute(select(t.versions.c.id).where(t.versions.c.model == model, t.versions.c.number == number)).first()
    if found is None:
        raise NotFoundError(f"model {model!r} has no version {number}")


def _write_alias(c: Connection, model: str, alias: Alias, current: int | None, to: int | None) -> None:
    where = and_(t.aliases.c.model == model, t.aliases.c.alias == alias.value)
    if to is None:
        c.execute(t.aliases.delete().where(where))
    elif current is None:
        c.execute(insert(t.aliases).values(model=model, alias=alias.value, version=to))
    else:
        c.execute(update(t.aliases).where(where).values(version=to))


@cache
def _latest_statement(metrics: tuple[str, ...], named: bool) -> Any:
    """``latest_observations``'s statement, built once per metrics (and whether models are named)."""
    o = t.observations.alias("newest")
    parts = []
    for metric in metrics:
        newest = (
            select(o.c.id)
            .where(o.c.model == t.models.c.name, o.c.metric == metric)
            .order_by(o.c.at.desc(), o.c.id.desc())
            .limit(1)
            .correlate(t.models)
            .scalar_subquery()
        )
        part = select(newest).select_from(t.models)
        parts.append(part.where(t.models.c.name.in_(bindparam("models", expanding=True))) if named else part)
    ids = union_all(*parts) if len(parts) > 1 else parts[0]
    return select(t.observations).where(t.observations.c.id.in_(ids))


@cache
def _recent_statement(models: int, limit: int) -> Any:
    """``recent_series``'s statement for ``models`` models, built once (building it costs more than running it)."""
    o = t.observations
    parts = [
        select(
            select(o.c.model, o.c.at, o.c.value, o.c.id)
            .where(o.c.model == bindparam(f"model_{i}"), o.c.metric == bindparam("metric"))
            .order_by(o.c.at.desc(), o.c.id.desc())
            .limit(limit)
            .subquery()
        )
        for i in range(models)
    ]
    return union_all(*parts) if len(parts) > 1 else parts[0]


@cache
def _metrics_statement(metrics: int, limit: int) -> Any:
    """``recent_observations``' statement for ``metrics`` metrics: per metric an index seek on (model, metric, at)
    for its newest ``limit`` rows, glued with UNION ALL."""
    o = t.observations
    parts = [
        select(
            select(o)
            .where(o.c.model == bindparam("model"), o.c.metric == bindparam(f"metric_{i}"))
            .order_by(o.c.at.desc(), o.c.id.desc())
            .limit(limit)
            .subquery()
        )
        for i in range(metrics)
    ]
    return union_all(*parts) if len(parts) > 1 else parts[0]


# -- row <-> value ------------------------------------------------------------------------------------

V = TypeVar("V")


def _columns(value: Any) -> dict[str, Any]:
    """A value object's fields as column values (enums by their value)."""
    return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


@cache
def _enum_fields(cls: type[Any]) -> dict[str, type[Enum]]:
    hints = get_type_hints(cls)
    return {name: hint for name, hint in hints.items() if isinstance(hint, type) and issubclass(hint, Enum)}


# A version's row with its profile as stored text: the profile (a few hundred KB of JSON for a wide table) is read
# on every tick of every model, and parsing it again each time was a large share of a tick; see _ParsedProfiles.
_VERSION_COLUMNS = select(
    *[c for c in t.versions.c if c.name != "profile"], cast(t.versions.c.profile, Text).label("profile_text")
)


class _ParsedProfiles:
    """Each model's most recently read profile, parsed, with the text it was parsed from.

    Reading a version again returns the held parse when the stored text is the same, so the result is always
    what the row holds now (another daemon's update included), at the cost of a string comparison. Callers
    treat ``Version.profile`` as read-only, as ``Version`` itself is."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, str, Any]] = {}
        self._lock = threading.Lock()  # models are read from several threads (ticks, API)

    def parse(self, model: str, number: int, text: str | None) -> Any:
        if text is None:
            return {}
        with self._lock:
            held = self._held.get(model)
        if held is not None and held[0] == number and held[1] == text:
            return held[2]
        parsed = json.loads(text)
        with self._lock:
            self._held[model] = (number, text, parsed)
        return parsed


def _from_row(cls: type[V], row: Row[Any]) -> V:
    """A value object from the row's columns of the same names, enums rebuilt from their values."""
    mapping = row._mapping
    enums = _enum_fields(cls)  # type: ignore[arg-type]  # classes are hashable; mypy cannot see it for type[V]
    kwargs = {
        f.name: enums[f.name](mapping[f.name]) if f.name in enums else mapping[f.name]
        for f in fields(cls)  # type: ignore[arg-type]
        if f.name in mapping
    }
    return cls(**kwargs)
