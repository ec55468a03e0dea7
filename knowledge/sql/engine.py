"""Opening the knowledge store's database: engine settings per backend, connectivity check, migrations.

SQLite gets WAL, a busy timeout and full fsync so that a ``kill -9`` never loses a committed promotion;
PostgreSQL gets pre-ping so a restarted server is survived. Errors name the URL (without its password).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from knowledge.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")


def safe_url(url: str) -> str:
    """The URL as it may be shown to a person: the password is masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def create(url: str) -> Engine:
    """An engine for ``url``, configured for its backend, after checking that it answers."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database URL {url!r} is not a valid SQLAlchemy URL") from exc
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite(url, parsed.database)
    else:
        try:
            engine = create_engine(url, pool_pre_ping=True, connect_args=_pg_args(parsed.get_backend_name()))
        except (NoSuchModuleError, ArgumentError) as exc:
            raise StoreError(f"database URL {safe_url(url)}: unsupported backend ({exc})") from exc
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        engine.dispose()
        orig = getattr(exc, "orig", None)
        reason = str(orig) if orig is not None else str(exc)
        raise StoreError(f"cannot reach the knowledge store at {safe_url(url)}: {reason.strip()}") from exc
    return engine


def _pg_args(backend: str) -> dict[str, Any]:
    # A short connect timeout turns an unreachable server into a clear error instead of a long hang.
    return {"connect_timeout": 5} if backend == "postgresql" else {}


def _sqlite(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to call on every start."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the knowledge store at {engine.url!r}: {exc}") from exc
