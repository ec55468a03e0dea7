"""The HTTP API (FastAPI on uvicorn): predictions, feedback, status, incidents, models, health and metrics.

Predictions are answered by the model's champion (loaded once per version, after its sha256 matched) and
the served rows are captured for the loop without slowing the request. Endpoints that change state need
the API token (``Authorization: Bearer <api_token>``, exactly); with no token configured they are refused.
A body over ``api_max_bytes`` or more rows than ``api_max_rows`` get 413; a null, NaN or wrongly typed
feature gets 422 naming the row and feature (daemon/payloads.py). The server binds to ``api_host``
(127.0.0.1 by default). This module is heald's only importer of FastAPI and uvicorn.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import pandas as pd
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from daemon import pages, views
from daemon.batching import Batcher, Part
from daemon.capture import Capture
from daemon.compose import Heald
from daemon.logs import get
from daemon.metrics import CONTENT_TYPE, Metrics
from daemon.payloads import BodyLimit, row_problems, summary
from daemon.serving import Answer, Champion, ChampionCache, predict_parts, shape
from knowledge.errors import ArtifactError, NoChampionError, NotFoundError
from pipeline.errors import DataError
from pipeline.profile import Profile

log = get("heald.api")
MAX_ROWS = 10_000


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The row limit is api_max_rows, checked in the endpoint (413), since it comes from the config.
    rows: list[dict[str, Any]] = Field(min_length=1, description="feature rows")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: dict[str, Any] = Field(min_length=1, max_length=MAX_ROWS, description="request id -> true label")


def create_app(current: Callable[[], Heald], capture: Capture, metrics: Metrics) -> FastAPI:
    """The API over whichever heald is current (a config reload swaps it)."""
    # The interactive /docs and /redoc pages load their scripts from a public CDN: blank on an offline
    # server, so they are off; /openapi.json still describes the API.
    app = FastAPI(title="heald", summary="The self-healing MLOps daemon's API.", docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, limit=lambda: current().settings.api_max_bytes)
    _health_routes(app, current, metrics)
    _read_routes(app, current)
    _page_routes(app, current)
    _prediction_routes(app, current, capture, metrics)
    return app


def _health_routes(app: FastAPI, current: Callable[[], Heald], metrics: Metrics) -> None:
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(response: Response) -> dict[str, Any]:
        heald = current()
        problems = []
        for model in heald.store.list_models():
            champion = heald.registry.champion(model.name)
            if champion is None:
                problems.append(f"{model.name}: no champion")
            elif not heald.registry.verifies(champion):
                memory = (
                    " (serving from the in-memory copy)"
                    if heald.registry.in_memory_only(model.name, champion.number)
                    else ""
                )
                problems.append(f"{model.name}: champion v{champion.number} does not verify{memory}")
        if problems:
            response.status_code = 503
        return {"ready": not problems, "problems": problems}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)


def _read_routes(app: FastAPI, current: Callable[[], Heald]) -> None:
    @app.get("/status")
    def status() -> dict[str, Any]:
        heald = current()
        return views.status_view(heald.store, heald.registry)

    @app.get("/incidents")
    def incidents(model: str | None = None, open_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        statuses = ["open", "mitigating", "escalated"] if open_only else None
        return views.incidents_view(current().store, model=model, status=statuses, limit=limit)

    @app.get("/incidents/{incident_id}")
    def incident(incident_id: int) -> dict[str, Any]:
        store = current().store
        one = views.incident_view(store, _found(lambda: store.get_incident(incident_id)))
        return {**one, "timeline": views.timeline(store, incident_id)}

    @app.get("/models")
    def models() -> list[dict[str, Any]]:
        store = current().store
        return [
            views.version_view(v, store.aliases(m.name))
            for m in store.list_models()
            for v in store.list_versions(m.name)
        ]

    @app.get("/models/{name}")
    def model_versions(name: str) -> list[dict[str, Any]]:
        store = current().store
        _found(lambda: store.get_model(name))
        aliases = store.aliases(name)
        return [views.version_view(v, aliases) for v in store.list_versions(name)]


def _page_routes(app: FastAPI, current: Callable[[], Heald]) -> None:
    """The dashboard (``daemon.pages``): read-only HTML, so no token, like the JSON read endpoints."""

    def html(render: Callable[[], str]) -> HTMLResponse:
        try:
            return HTMLResponse(render())
        except NotFoundError as exc:
            return HTMLResponse(pages.not_found(str(exc)), status_code=404)

    @app.get("/", response_class=HTMLResponse)
    def overview() -> HTMLResponse:
        return html(lambda: pages.overview(current()))

    @app.get("/ui/models/{name}", response_class=HTMLResponse)
    def model_page(name: str) -> HTMLResponse:
        return html(lambda: pages.model_page(current(), name))

    @app.get("/ui/models/{name}/drift", response_class=HTMLResponse)
    def drift_page(name: str) -> HTMLResponse:
        return html(lambda: pages.drift_page(current(), name))

    @app.get("/ui/incidents/{incident_id}", response_class=HTMLResponse)
    def incident_page(incident_id: int) -> HTMLResponse:
        return html(lambda: pages.incident_page(current(), incident_id))


def _prediction_routes(app: FastAPI, current: Callable[[], Heald], capture: Capture, metrics: Metrics) -> None:
    def token(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = current().settings.api_token
        if not expected:
            raise HTTPException(403, "state-changing endpoints are disabled: set api_token in the config")
        # Exactly "Bearer <token>" (the scheme is case-insensitive, RFC 7235); a bare token is refused.
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(
                401,
                "missing or wrong API token (Authorization: Bearer <api_token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    cache = ChampionCache()
    batcher: Batcher[Served] = Batcher(window=0.005, max_rows=1000)

    @app.post("/models/{name}/predict")
    def predict(name: str, body: PredictRequest) -> dict[str, Any]:
        started = time.perf_counter()
        heald = current()
        settings = heald.settings
        cache.refresh = settings.serving_refresh_ms / 1000
        batcher.window, batcher.max_rows = settings.serving_batch_window_ms / 1000, settings.serving_max_batch_rows
        if len(body.rows) > settings.api_max_rows:
            metrics.rejected.labels("predict").inc()
            raise HTTPException(413, f"{len(body.rows)} rows: the limit is api_max_rows = {settings.api_max_rows}")
        with batcher.arriving() as arrival:
            champion = _served_champion(cache, heald, name)
            # Values of the features a row carries are checked first (a missing feature is served degraded below),
            # per request and before batching: one bad request never fails the others of its batch.
            problems = row_problems(body.rows, champion.model.features, champion.kinds)
            if problems:
                metrics.rejected.labels("predict").inc()
                raise HTTPException(422, summary(problems))
            # Rows in the training file's shape are welcome: target, ids and excluded columns are ignored, and
            # a missing feature is answered degraded (filled from the reference) rather than refused.
            key = (name, champion.stamp, shape(body.rows))
            try:
                served = batcher.run(key, body.rows, lambda parts: _serve(heald, capture, champion, parts), arrival)
            except (DataError, ValueError, TypeError) as exc:
                metrics.rejected.labels("predict").inc()
                raise HTTPException(422, f"rows cannot be predicted: {exc}") from None
        filled = sorted({*served.answer.filled, *_partly_missing(champion, body.rows)})
        metrics.predictions.labels(name).inc(len(served.ids))
        for column in filled:
            metrics.degraded.labels(name, column).inc(len(served.ids))
        if filled:
            log.warning("prediction_degraded", model=name, missing=filled, rows=len(served.ids))
        metrics.request_seconds.labels(name).observe(time.perf_counter() - started)
        return {
            "model": name,
            "version": served.answer.version,
            "ids": served.ids,
            "predictions": served.answer.predictions,
            "degraded": bool(filled),
            "missing": filled,
        }

    @app.post("/models/{name}/feedback", dependencies=[Depends(token)])
    def feedback(name: str, body: FeedbackRequest) -> dict[str, Any]:
        heald = current()
        _found(lambda: heald.store.get_model(name))
        labels = _spelled_labels(heald, name, body.labels)
        unknown = capture.feedback(name, labels, at=heald.clock.now())
        return {"accepted": len(body.labels) - len(unknown), "unknown": unknown}


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """One request's answer and the ids its captured rows got."""

    answer: Answer
    ids: list[str]


def _served_champion(cache: ChampionCache, heald: Heald, name: str) -> Champion:
    """The cached champion of ``name``: 404 for an unknown model, 503 without a champion that verifies."""
    try:
        return cache.get(heald.store, heald.registry, name)
    except NoChampionError as exc:
        raise HTTPException(503, str(exc)) from None
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ArtifactError as exc:
        raise HTTPException(503, str(exc)) from None


def _partly_missing(champion: Champion, rows: list[dict[str, Any]]) -> set[str]:
    """Features some rows lack (after accepted renames): those rows are served degraded too."""
    named = [{champion.mappings.get(k, k) for k in row} for row in rows]
    return {f for f in champion.model.features if any(f not in keys for keys in named)}


def _serve(heald: Heald, capture: Capture, champion: Champion, parts: Sequence[Part]) -> list[Served | Exception]:
    """Predict a batch's parts in one call and capture every served row in one write; ids stay per request."""
    answers = predict_parts(champion, parts)
    target = champion.model.target
    kept = [(part, a) for part, a in zip(parts, answers, strict=True) if isinstance(a, Answer)]
    captured = [[{k: v for k, v in row.items() if k != target} for row in part] for part, _ in kept]
    ids = iter(
        capture.served_parts(champion.model.name, captured, at=heald.clock.now(), version=champion.version.number)
    )
    return [Served(answer=a, ids=next(ids)) if isinstance(a, Answer) else a for a in answers]


def _spelled_labels(heald: Heald, name: str, labels: dict[str, Any]) -> dict[str, Any]:
    """The labels as the training file spelled them, or 422 naming those the model cannot take (none is kept)."""
    empty = [i for i, label in labels.items() if not isinstance(label, str | int | float) or pd.isna(label)]
    if empty:
        raise HTTPException(422, f"labels for ids {empty[:5]} are empty or not one value; send a class or a number")
    champion = heald.registry.champion(name)
    profile = Profile.from_json(champion.profile) if champion is not None else None
    spec = profile.label_spec if profile is not None else None
    if spec is None:
        return labels
    problem = spec.problems(pd.Series(list(labels.values()), dtype=object), where=f"labels for model {name!r}")
    if problem:
        raise HTTPException(422, problem)
    return {i: spec.value(label) for i, label in labels.items()}


T = TypeVar("T")


def _found(read: Callable[[], T]) -> T:
    try:
        return read()
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None


class ApiServer:
    """uvicorn on a background thread; ``start`` returns once the port is bound."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        # On a thread that is not the main one uvicorn leaves signal handling to heald.
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="heald-api", daemon=True)

    def start(self, timeout: float = 30.0) -> int:
        """Start serving; returns the bound port (useful with port 0)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the API could not listen on {self.server.config.host}:{self.server.config.port}")
            time.sleep(0.02)
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        log.info("api_listening", host=self.server.config.host, port=port)
        return port

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
