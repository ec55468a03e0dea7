"""Configuration: one TOML file plus ``HEALD_*`` environment overrides, validated once at start.

The paper's Table 2 settings are top-level keys (``data_path``, ``model_path``, ``batch_size``,
``n_estimators``, ``max_depth``, ``api_host``, ``api_port``, ``log_level``, ``drift_threshold``), so each has
the obvious environment name (``HEALD_API_PORT``). Nested policy keys use a double underscore
(``HEALD_POLICY__COOLDOWN_SECONDS``). Every error names the key, the value and the file.

Nothing else in heald reads files or the environment for settings: the loaded ``Settings`` is passed down.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from knowledge.errors import ConfigError
from pipeline.floors import JS_FLOOR, KS_FLOOR, PSI_FLOOR, WASSERSTEIN_FLOOR  # not pipeline.drift: no numpy

ENV_PREFIX = "HEALD_"
GENERATED = "# Written by `healctl init`; it rewrites this file only while this first line stays.\n"
DEFAULT_PATHS = (Path("/etc/heald/heald.toml"),)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Policy(Strict):
    """How the planner behaves: the rules that keep remediation from making things worse or storming."""

    persistence: int = Field(2, ge=1, description="symptom must be seen in this many of the last `window` ticks")
    window: int = Field(3, ge=1)
    resolve_after: int = Field(2, ge=1, description="healthy ticks before an incident resolves (hysteresis)")
    verify_within: int = Field(
        4, ge=1, description="labelled batches after an action before its effect must show (capped at 3x ticks)"
    )
    cooldown_batches: int = Field(
        2, ge=0, description="labelled batches after an action before another of its kind on the model"
    )
    cooldown_seconds: float = Field(1800, ge=0, description="wall-time cap of a cooldown (a stream may stop)")
    max_actions_per_hour: int = Field(6, ge=1, description="global budget of automatic actions")
    breaker_failures: int = Field(3, ge=1, description="failed actions in a row that stop automatic remediation")
    stable_after: int = Field(6, ge=1, description="healthy ticks before a champion is marked stable")
    min_gain: float = Field(0.0, description="a challenger must beat the champion by at least this")
    min_retrain_rows: int = Field(400, ge=10, description="labelled rows after the alarm needed to retrain")
    shadow_batches: int = Field(
        4, ge=0, description="labelled batches after a promotion on which the replaced version is scored in shadow"
    )
    shadow_margin: float = Field(
        0.02, ge=0, description="a promoted version this much worse than the one it replaced is rolled back"
    )


class PipelineSettings(Strict):
    """The managed pipeline: feature engineering, tuning and cross-validation (the ``[pipeline]`` table)."""

    tuning: Literal["none", "grid", "random"] = Field("none", description="hyperparameter search, if any")
    cv_folds: int = Field(5, ge=0, le=20, description="k of k-fold cross-validation; below 2 turns it off")
    search_iterations: int = Field(20, ge=1, le=1000, description="candidates tried by the random search")
    test_size: float = Field(0.2, gt=0, lt=1, description="share of labelled rows held out for testing")
    numeric_impute: Literal["median", "mean"] = "median"
    scaling: Literal["standard", "minmax", "none"] = "standard"
    clip_quantile: float = Field(0.01, ge=0, lt=0.5, description="outliers clipped to [q, 1-q]; 0 turns it off")
    correlation_threshold: float = Field(0.95, gt=0, le=1, description="drop a numeric column this correlated")
    max_categories: int = Field(50, ge=2, description="one-hot columns per category column (rarer ones grouped)")
    min_rows: int = Field(20, ge=2, description="labelled rows below which training is refused")
    n_jobs: int = Field(0, ge=0, description="cores for training; 0 means every core this process may use")
    retries: int = Field(3, ge=1, le=10, description="attempts of a stage that fails transiently")
    retry_delay: float = Field(1.0, ge=0, description="seconds before the first retry; doubles each time")


class Monitor(Strict):
    """What the sensors and the analyzer count as a problem, beyond the paper's drift settings."""

    drift_min_psi: float = Field(PSI_FLOOR, ge=0, description="smallest PSI that counts as drift for a category column")
    drift_min_wasserstein: float = Field(
        WASSERSTEIN_FLOOR, ge=0, description="smallest Wasserstein distance / reference sd that counts as drift"
    )
    drift_min_js: float = Field(
        JS_FLOOR, ge=0, le=1, description="smallest Jensen-Shannon distance that counts as drift for categories"
    )
    estimate_margin: float = Field(
        0.05, ge=0, le=1, description="an accuracy estimate must be this far under the floor to count"
    )
    performance_window_rows: int = Field(2000, ge=10, description="labelled rows in the rolling performance window")
    performance_min_rows: int = Field(
        30, ge=1, description="labelled rows a performance reading needs; smaller batches are pooled until then"
    )
    max_missing_increase: float = Field(0.2, ge=0, le=1, description="missing share above the reference's")
    max_unseen_share: float = Field(0.05, ge=0, le=1, description="share of rows in categories never seen")
    max_out_of_range_share: float = Field(0.05, ge=0, le=1, description="share of numbers outside the reference range")
    cpu_percent: float = Field(0, ge=0, description="0 = not checked: a busy CPU is what a batch daemon is for")
    memory_percent: float = Field(90, ge=0)
    disk_percent: float = Field(95, ge=0, description="of the file system holding state_dir")
    load_per_cpu: float = Field(4.0, ge=0)
    rss_mb: float = Field(4096, ge=0, description="the daemon's own resident memory")
    max_pending: int = Field(8, ge=0, description="actions waiting or running in the worker pool")
    anomaly: bool = Field(True, description="run the IsolationForest over each model's observations")
    anomaly_warmup: int = Field(30, ge=5, description="healthy ticks before the anomaly detector is fitted")
    anomaly_refit_every: int = Field(20, ge=1)
    anomaly_history: int = Field(500, ge=10)
    anomaly_tolerance: float = Field(0.05, ge=0, description="how far under the healthy scores is anomalous")


class Retention(Strict):
    """How long history is kept (the ``[retention]`` table); ``healctl gc`` and the daemon's daily run apply it."""

    raw_days: float = Field(7, gt=0, description="observations kept raw; older ones become hourly min/mean/max/count")
    horizon_days: float = Field(400, gt=0, description="hourly rollups older than this are dropped")
    batch_days: float = Field(
        30, ge=0, description="archived batches older than this go unless a kept version needs them; 0 keeps all"
    )
    quarantine_days: float = Field(0, ge=0, description="quarantined files are evidence: 0 keeps them forever")
    gc_every_hours: float = Field(24, ge=0, description="how often the leader collects garbage; 0: only `healctl gc`")

    @model_validator(mode="after")
    def _raw_within_horizon(self) -> Retention:
        if self.raw_days > self.horizon_days:
            raise ValueError(f"raw_days ({self.raw_days}) must not exceed horizon_days ({self.horizon_days})")
        return self


class SourceSettings(Strict):
    """Where a model's batches come from (``[models.source]``): the landing folder, a database query or an API.

    ``sql`` and ``http`` pages are written into the landing folder and taken by the same intake as dropped
    files (validation, quarantine with a reason, exactly once); the watermark advances with the batch.
    """

    kind: Literal["landing", "sql", "http"] = "landing"
    url: str = Field("", description="sql: a SQLAlchemy URL; http: the endpoint answering rows as JSON")
    url_env: str = Field("", description="environment variable holding the URL (keeps a password out of the file)")
    url_file: Path | None = Field(None, description="file holding the URL (its first line)")
    token_env: str = Field("", description="http: environment variable holding a bearer token")
    token_file: Path | None = Field(None, description="http: file holding a bearer token (its first line)")
    query: str = Field("", description="sql: the rows, with a :watermark bind parameter (use >= :watermark)")
    labels_query: str = Field(
        "", description="sql: labelled rows (the row's columns and the target) since :watermark, e.g. a join"
    )
    labels_url: str = Field("", description="http: the endpoint answering labelled rows")
    watermark: str = Field("", description="column that only grows as rows arrive: updated-at time or increasing id")
    labels_watermark: str = Field("", description="the labels' watermark column (default: `watermark`)")
    key: str = Field("", description="column naming a row: rows read again within the look-back are dropped by it")
    start: str = Field(
        "", description="the first watermark: 0 for an id, an ISO time for a timestamp (http: empty sends none)"
    )
    since_param: str = Field("since", description="http: query parameter carrying the watermark or cursor")
    cursor_field: str = Field("next", description="http: field of an object answer holding the next cursor")
    lookback: float = Field(
        0, ge=0, description="read again this far behind the watermark (seconds for times, units for numbers)"
    )
    max_rows_per_tick: int = Field(10_000, ge=1, le=10_000_000, description="rows one pull takes; the rest next tick")
    timeout_seconds: float = Field(10, gt=0, le=3600)
    max_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="http: a larger answer is refused")
    backoff_seconds: float = Field(60, gt=0, description="wait after a failed pull; doubles with each failure")
    max_backoff_seconds: float = Field(3600, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> SourceSettings:
        if self.kind == "landing":
            return self
        missing = [name for name, given in self._required() if not given]
        if missing:
            raise ValueError(f"a {self.kind} source needs {', '.join(missing)}")
        return self

    def _required(self) -> list[tuple[str, bool]]:
        where = bool(self.url or self.url_env or self.url_file)
        if self.kind == "sql":
            given = {"query": self.query, "watermark": self.watermark, "start": self.start, "key": self.key}
            return [("url (or url_env, url_file)", where), *((k, bool(v)) for k, v in given.items())]
        return [("url (or url_env, url_file)", where), ("key", bool(self.key))]


class ModelSettings(Strict):
    """A model under management."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    target: str
    task: Literal["classification", "regression"] | None = None
    data: Path | None = Field(None, description="training data for `healctl init` and full retrains")
    exclude: list[str] = Field(default_factory=list, description="columns never used as features (ids, leaks)")
    numeric: list[str] = Field(
        default_factory=list, description="columns declared numeric: words in them fail validation, not categories"
    )
    min_accuracy: float = Field(0.8, ge=0, le=1, description="classification health threshold")
    min_r2: float = Field(0.5, le=1, description="regression health threshold")
    health: dict[str, float] = Field(
        default_factory=dict, description="more bounds, e.g. {f1_macro = 0.7, rmse = 12.0}: floors, ceilings for errors"
    )
    source: SourceSettings = Field(SourceSettings(), description="where batches come from; default the landing folder")


class Settings(Strict):
    """Every setting of heald; see systemd/heald.example.toml for a commented example."""

    state_dir: Path = Path("/var/lib/heald")
    database_url: str = ""
    data_path: Path | None = Field(None, description="landing folder; default state_dir/landing")
    model_path: Path | None = Field(None, description="artifact folder; default state_dir/artifacts")
    batch_size: int = Field(
        500, ge=1, le=10_000_000, description="accepted (Table 2) and unused: evidence is counted in rows that arrive"
    )
    n_estimators: int = Field(100, ge=1, le=10_000)
    max_depth: int | None = Field(None, ge=1, le=1000)
    api_host: str = "127.0.0.1"
    api_port: int = Field(8377, ge=0, le=65535, description="0 picks a free port (tests)")
    api_token: str = Field("", description="bearer token for state-changing endpoints; empty disables them")
    api_enabled: bool = True
    api_max_rows: int = Field(10_000, ge=1, le=1_000_000, description="rows in one request; more is refused (413)")
    api_max_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="bytes in one request body; more is refused (413) before parsing"
    )
    serving_batch_window_ms: float = Field(
        5, ge=0, le=1000, description="how long concurrent predict requests of one model and shape are gathered"
    )
    serving_max_batch_rows: int = Field(1000, ge=1, le=1_000_000, description="rows that close a batch at once")
    serving_refresh_ms: float = Field(
        1000, gt=0, le=600_000, description="how often serving re-reads the champion alias moved by another process"
    )
    alert_webhook_url: str = Field(
        "", description="POST each alert as JSON here (retried); empty: alerts are log lines"
    )
    alert_webhook_token: str = Field("", description="sent as Authorization: Bearer <token> to the webhook")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    drift_threshold: float = Field(0.05, gt=0, lt=1, description="family-wise p-value for drift tests")
    drift_min_effect: float = Field(KS_FLOOR, ge=0, le=1, description="smallest KS statistic that counts as drift")
    drift_min_rows: int = Field(100, ge=5, description="rows below which no drift verdict is given")
    tick_seconds: float = Field(60, gt=0)
    tick_threads: int = Field(0, ge=0, le=256, description="models sensed and analyzed at once; 0: one per core")
    tick_processes: int = Field(
        0, ge=0, le=64, description="processes that sense and analyze models (past the GIL); 0: threads in heald's own"
    )
    workers: int = Field(1, ge=1, le=256, description="workers that run actions at start")
    max_workers: int = Field(4, ge=1, le=256, description="the most the scale action may grow the pool to")
    # "process": an action's fit runs in worker processes, so a retrain never slows the API (the default).
    executor: Literal["inline", "threads", "process", "dask"] = "process"
    worker_idle: bool = Field(
        True,
        description="process workers run under SCHED_IDLE (only on CPU nothing else wants); false: nice 10 only, "
        "so retrains still progress on a host other work keeps busy",
    )
    dask_scheduler: str = Field("", description="tcp://host:8786 of a Dask scheduler; empty starts a local cluster")
    policy: Policy = Policy()
    pipeline: PipelineSettings = PipelineSettings()
    monitor: Monitor = Monitor()
    retention: Retention = Retention()
    models: list[ModelSettings] = Field(default_factory=list)
    source: str = Field("<defaults>", exclude=True)
    ignored_env: tuple[str, ...] = Field((), exclude=True, description="unknown HEALD_* variables, warned about")

    @model_validator(mode="after")
    def _unique_models(self) -> Settings:
        names = [m.name for m in self.models]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"model names must be unique; repeated: {duplicated}")
        return self

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'heald.db'}"

    @property
    def landing(self) -> Path:
        return self.data_path or self.state_dir / "landing"

    @property
    def artifacts(self) -> Path:
        return self.model_path or self.state_dir / "artifacts"

    def model(self, name: str) -> ModelSettings:
        for m in self.models:
            if m.name == name:
                return m
        raise ConfigError(f"{self.source}: no model named {name!r} under [[models]]")

    def redacted(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets masked, for `healctl config check`."""
        data = self.model_dump(mode="json")
        for key in ("api_token", "alert_webhook_token"):
            if data.get(key):
                data[key] = "***"
        if "@" in data.get("database_url", "") and ":" in data["database_url"].split("@")[0]:
            head, tail = data["database_url"].split("@", 1)
            data["database_url"] = head.rsplit(":", 1)[0] + ":***@" + tail
        for model in data.get("models", []):
            source = model.get("source", {})
            if "@" in source.get("url", ""):
                source["url"] = _mask_password(source["url"])
        return data


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate the settings; raise ``ConfigError`` naming the key (or variable), value and file.

    Unknown keys in the file are errors; unknown ``HEALD_*`` variables are not (a shell or a unit may carry
    variables meant for another tool or version), so they are ignored and listed in ``ignored_env``.
    """
    environ = os.environ if environ is None else environ
    if path is None and environ.get("HEALD_CONFIG"):
        path = Path(environ["HEALD_CONFIG"])
    if path is None:
        path = next((p for p in DEFAULT_PATHS if p.exists()), None)
    raw = _read(path) if path is not None else {}
    source = str(path) if path is not None else "<defaults>"
    overrides, variables, ignored = from_env(environ)
    merged = _overlay(raw, overrides)
    try:
        return Settings.model_validate({**merged, "source": source, "ignored_env": ignored})
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source, merged, variables)) from None


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


EnvOverrides = tuple[dict[str, Any], dict[tuple[str, ...], str], tuple[str, ...]]


def from_env(environ: Mapping[str, str]) -> EnvOverrides:
    """The ``HEALD_*`` overrides: ``HEALD_API_PORT=9000`` -> {"api_port": "9000"}, ``HEALD_POLICY__WINDOW=5``
    -> {"policy": {"window": "5"}}; with the variable behind each key path, and the names that match no key."""
    out: dict[str, Any] = {}
    variables: dict[tuple[str, ...], str] = {}
    ignored: list[str] = []
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == "HEALD_CONFIG":
            continue
        keys = tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        if not _known(Settings, keys):
            ignored.append(name)
            continue
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = _env_value(value)
        variables[keys] = name
    return out, variables, tuple(ignored)


def warn_ignored(settings: Settings, log: Any) -> None:
    """Log each unknown ``HEALD_*`` variable by name (called once logging is configured)."""
    for name in settings.ignored_env:
        log.warning("config_env_ignored", variable=name, reason=f"{name} matches no setting; it is ignored")


MODEL_NAME = re.compile(ModelSettings.model_fields["name"].metadata[0].pattern)


def check_model_name(name: str) -> None:
    """Refuse a model name that could not be written to the config or used as a folder name."""
    if not MODEL_NAME.fullmatch(name):
        raise ConfigError(
            f"model name {name!r} is invalid: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )


def _known(model: type[BaseModel], keys: tuple[str, ...]) -> bool:
    """Whether ``keys`` names a setting: a field, or a field of a nested table (``policy``, ``monitor``...)."""
    field = model.model_fields.get(keys[0])
    if field is None or keys[0] in ("source", "ignored_env"):
        return False
    if len(keys) == 1:
        return True
    nested = field.annotation
    return isinstance(nested, type) and issubclass(nested, BaseModel) and _known(nested, keys[1:])


def _env_value(value: str) -> Any:
    # Lists and tables (e.g. HEALD_MODELS) may be given as JSON; scalars stay strings for pydantic to coerce.
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _mask_password(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host`` (a URL without a password is kept)."""
    head, tail = url.split("@", 1)
    return head.rsplit(":", 1)[0] + ":***@" + tail if ":" in head.split("//", 1)[-1] else url


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _overlay(merged[key], value)
        else:
            merged[key] = value
    return merged


def _explain(
    exc: ValidationError, source: str, data: Mapping[str, Any], variables: Mapping[tuple[str, ...], str] | None = None
) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        variable = _variable(error["loc"], variables or {})
        if variable is not None:
            # The bad value came from the environment: name the variable, not the file, or no one finds it.
            lines.append(
                f"environment variable {variable} (over {source}): key '{key}' = {error['input']!r}: {error['msg']}"
            )
            continue
        if error["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'")
            continue
        shown = f" = {error['input']!r}" if error["type"] != "missing" and not isinstance(error["input"], dict) else ""
        lines.append(f"{source}: key '{key}'{shown}: {error['msg']}")
    return "\n".join(lines)


def _variable(loc: tuple[int | str, ...], variables: Mapping[tuple[str, ...], str]) -> str | None:
    """The ``HEALD_*`` variable that set the value at ``loc`` (or a table holding it, e.g. HEALD_MODELS)."""
    parts = tuple(str(part) for part in loc)
    for size in range(len(parts), 0, -1):
        if parts[:size] in variables:
            return variables[parts[:size]]
    return None


def with_model(settings: Settings, entry: ModelSettings) -> dict[str, Any]:
    """The settings as TOML-ready data (defaults left out), with ``entry`` added or replacing its namesake."""
    data = settings.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    data["state_dir"] = str(settings.state_dir.resolve())
    models = [m for m in data.get("models", []) if m["name"] != entry.name]
    other = {"classification": "min_r2", "regression": "min_accuracy"}.get(entry.task or "")
    # Only the threshold of the model's task: a classifier's config has no min_r2 to puzzle over.
    fresh = {
        k: v for k, v in entry.model_dump(mode="json", exclude_none=True).items() if v not in ({}, []) and k != other
    }
    data["models"] = [*models, fresh]
    return data


def write(path: Path, data: dict[str, Any]) -> None:
    """Write a config file that ``load`` accepts; refuse to overwrite one a person wrote."""
    if path.exists():
        try:
            first = path.read_text(encoding="utf-8").splitlines(keepends=True)[:1]
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} exists and cannot be read: {exc}") from None
        if first != [GENERATED]:
            raise ConfigError(f"config file {path} exists and was not written by healctl; choose another path")
    try:
        Settings.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        raise ConfigError(_explain(exc, str(path), data)) from None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # The file may hold api_token: readable by its owner only, from the moment it exists.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(GENERATED + tomli_w.dumps(data))
    tmp.chmod(0o600)  # an older tmp left by a crash keeps its mode through O_TRUNC
    tmp.replace(path)
