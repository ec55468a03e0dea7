"""Opening the knowledge store's database: engine settings per backend, connectivity check, migrations.

SQLite gets WAL, a busy timeout and full fsync so that a ``kill -9`` never loses a committed promotion;
PostgreSQL gets pre-ping so a restarted server is survived. Errors name the URL (without its password).

A store is never silently re-created or adopted: an SQLite file that is empty (a truncated or half-restored
database) or not SQLite at all, and a database holding tables but no heald schema, are refused with a message;
a new SQLite file is created readable by its owner only, in a folder only its owner can enter.
"""

from __future__ import annotations

import os
import re
import sqlite3
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from knowledge.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_MAGIC = b"SQLite format 3\x00"


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
        except ImportError as exc:
            # The dialect exists but its Python driver is not installed (mysql:// without mysqlclient).
            raise StoreError(
                f"database URL {safe_url(url)}: its driver is not installed ({exc.name or exc}); "
                "heald supports sqlite:/// and postgresql+psycopg://"
            ) from exc
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
    if database and database != ":memory:" and not database.startswith("file:"):
        _sqlite_file(Path(database))
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


def _sqlite_file(path: Path) -> None:
    """Refuse an existing file that is not a database heald can use; create a new one owner-only."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except (FileNotFoundError, NotADirectoryError):
        _create_sqlite(path)
        return
    except IsADirectoryError:
        raise StoreError(f"database file {path} is a directory") from None
    except OSError as exc:
        raise StoreError(f"database file {path} cannot be read: {exc.strerror}") from None
    if not head:
        raise StoreError(
            f"database file {path} is empty (0 bytes): heald will not re-create it over what may be a lost "
            "store; restore it from a backup, or delete it to start afresh"
        )
    if head != SQLITE_MAGIC:
        raise StoreError(f"database file {path} is not an SQLite database (it starts with {head[:8]!r})")
    _refuse_foreign(path)


def _refuse_foreign(path: Path) -> None:
    """Look read-only, before heald's pragmas change the file: tables but no heald schema means another program's."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"database file {path} cannot be opened: {exc}") from None
    _check_tables(tables, str(path))


def _check_tables(tables: set[str], where: str) -> None:
    if tables and "alembic_version" not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(
            f"the database at {where} holds tables that are not heald's ({shown}); "
            "point database_url at an empty database or one heald created"
        )


def _create_sqlite(path: Path) -> None:
    """A new, valid (non-empty) SQLite file with mode 0600, renamed into place so no half-made file remains."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # writes the header: the file is never zero-length
        finally:
            conn.close()
        tmp.replace(path)
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreError(f"cannot create the database file {path}: {reason}") from None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to call on every start. A database that holds tables but
    not heald's schema (no ``alembic_version``) belongs to something else and is refused, never adopted."""
    if _at_head(engine):
        return
    # Alembic (and the DDL of every dialect it loads) costs more to import than a read-only healctl command
    # takes to answer, so it is imported only when there is something to migrate.
    from alembic import command
    from alembic.config import Config
    from alembic.util.exc import CommandError

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    where = safe_url(engine.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            _check_tables(set(inspect(conn).get_table_names()), where)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except CommandError as exc:
        # e.g. a revision this heald does not know: the store was written by a newer heald.
        raise StoreError(f"cannot migrate the knowledge store at {where}: {exc}") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the knowledge store at {where}: {exc}") from exc


def _at_head(engine: Engine) -> bool:
    """Whether the store's ``alembic_version`` already names exactly the heads of the shipped migrations."""
    try:
        with engine.connect() as conn:
            if "alembic_version" not in inspect(conn).get_table_names():
                return False
            current = {str(v) for v in conn.execute(text("SELECT version_num FROM alembic_version")).scalars()}
    except SQLAlchemyError:
        return False  # alembic's own path reports what is wrong
    return current == _heads()


REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=(.*)$", re.MULTILINE)


@cache
def _heads() -> frozenset[str]:
    """The revisions no migration builds on, read from the migration files' text (alembic would import them)."""
    revisions: set[str] = set()
    below: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revisions.update(REVISION.findall(source))
        for line in DOWN_REVISION.findall(source):
            below.update(re.findall(r"[\"']([^\"']+)[\"']", line))
    return frozenset(revisions - below)
