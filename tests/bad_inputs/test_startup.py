"""Start-up failures of the real `heald` and `healctl` processes: every one is a single line on stderr and exit
status 2, never a traceback; a store that is empty, foreign or unreachable is refused, never re-created or
adopted, and the state folder is left exactly as it was (nothing lost, nothing made)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from daemon import cli, service
from knowledge.sql.store import SqlKnowledgeStore

BIN = Path(sys.executable).parent
PROGRAMS = {
    "heald": lambda config: [str(BIN / "heald"), "--config", str(config), "--once"],
    "healctl": lambda config: [str(BIN / "healctl"), "status", "--config", str(config)],
}
ENTRY = {"heald": service.main, "healctl": cli.main}


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real program in its own process (each costs seconds of imports: used for a representative few)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("HEALD_")}
    full.update(env or {}, COLUMNS="400")
    return subprocess.run(argv, capture_output=True, text=True, env=full, timeout=300, check=False)


def run_inside(
    argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> subprocess.CompletedProcess[str]:
    """The same entry point in this process: its exit status and both streams, as the process would give."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    program = Path(argv[0]).name
    code = 0
    try:
        ENTRY[program](argv[1:])
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        structlog.reset_defaults()
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out.out, out.err)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content (folders as 'dir'): what 'nothing lost' compares. An SQLite
    database counts by its rows (a journal-mode switch rewrites its header, not its data); SQLite's own
    -wal and -shm companions are not content."""
    found = {}
    for path in sorted([root, *root.rglob("*")] if root.exists() else []):
        if path.name.endswith(("-wal", "-shm")):
            continue
        found[str(path)] = "dir" if path.is_dir() else content(path)
    return found


def content(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\0") and len(data) % 512 == 0:
        try:
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
            try:
                return "\n".join(conn.iterdump())
            finally:
                conn.close()
        except sqlite3.Error:
            pass
    return hashlib.sha256(data).hexdigest()


def config(tmp: Path, extra: str = "", state: Path | None = None) -> Path:
    path = tmp / "heald.toml"
    path.write_text(f'state_dir = "{state or tmp / "state"}"\napi_enabled = false\n{extra}', encoding="utf-8")
    return path


def db_file(content: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / "state").mkdir()
        (tmp / "state" / "heald.db").write_bytes(content)
        return config(tmp)

    return make


def db_folder(tmp: Path) -> Path:
    (tmp / "state" / "heald.db").mkdir(parents=True)
    return config(tmp)


def sqlite_with(*statements: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / "state").mkdir()
        conn = sqlite3.connect(tmp / "state" / "heald.db")
        for statement in statements:
            conn.execute(statement)
        conn.commit()
        conn.close()
        return config(tmp)

    return make


def truncated_store(tmp: Path) -> Path:
    """A real heald store cut short after its first pages (a half-copied backup)."""
    path = tmp / "state" / "heald.db"
    SqlKnowledgeStore.open(f"sqlite:///{path}").close()
    data = path.read_bytes()
    for extra in (tmp / "state").glob("heald.db-*"):
        extra.unlink()
    path.write_bytes(data[:4096] + b"\0" * 100)
    return config(tmp)


def state_under_a_file(tmp: Path) -> Path:
    (tmp / "a-file").write_text("not a folder")
    return config(tmp, state=tmp / "a-file" / "state")


def url(value: str) -> Callable[[Path], Path]:
    return lambda tmp: config(tmp, f'database_url = "{value}"\n')


def text(extra: str) -> Callable[[Path], Path]:
    return lambda tmp: config(tmp, extra)


def missing_config(tmp: Path) -> Path:
    return tmp / "nowhere.toml"


def folder_config(tmp: Path) -> Path:
    (tmp / "conf.d").mkdir()
    return tmp / "conf.d"


# name -> (make the world and return the config path, environment, words stderr must hold, words it must not)
Case = tuple[Callable[[Path], Path], dict[str, str], str, str]
CASES: dict[str, Case] = {
    "empty database file": (db_file(b""), {}, "is empty (0 bytes)", ""),
    "text file as the database": (db_file(b"customer,total\n1,2\n"), {}, "is not an SQLite database", ""),
    "Parquet file as the database": (db_file(b"PAR1\x15\x04" + b"\0" * 64), {}, "is not an SQLite database", ""),
    "database path is a folder": (db_folder, {}, "is a directory", ""),
    "another program's SQLite database": (
        sqlite_with("CREATE TABLE customers (id INTEGER)", "INSERT INTO customers VALUES (7)"),
        {},
        "holds tables that are not heald's (customers)",
        "",
    ),
    "store of a newer heald": (
        sqlite_with(
            "CREATE TABLE alembic_version (version_num VARCHAR(32))", "INSERT INTO alembic_version VALUES ('9999')"
        ),
        {},
        "Can't locate revision identified by '9999'",
        "",
    ),
    "truncated heald store": (truncated_store, {}, "malformed", ""),
    "state folder under a file": (state_under_a_file, {}, "cannot create the database file", ""),
    "mysql URL without its driver": (
        url("mysql://app:hunter2@127.0.0.1/shop"),
        {},
        "driver is not installed",
        "hunter2",
    ),
    "not a URL": (url("nonsense"), {}, "is not a valid SQLAlchemy URL", ""),
    "unknown backend": (url("nosuchdb://x/y"), {}, "unsupported backend", ""),
    "PostgreSQL not listening": (
        url("postgresql+psycopg://app:hunter2@127.0.0.1:1/heald"),
        {},
        "cannot reach the knowledge store at postgresql+psycopg://app:***@127.0.0.1:1/heald",
        "hunter2",
    ),
    "unknown key in the file": (text("checkout = 1\n"), {}, "heald.toml: unknown key 'checkout'", ""),
    "bad value in the file": (text("tick_seconds = -1\n"), {}, "heald.toml: key 'tick_seconds' = -1", ""),
    "bad value in the environment": (text(""), {"HEALD_API_PORT": "http"}, "environment variable HEALD_API_PORT", ""),
    "bad nested value in the environment": (
        text(""),
        {"HEALD_POLICY__WINDOW": "0"},
        "environment variable HEALD_POLICY__WINDOW",
        "",
    ),
    "config file missing": (missing_config, {}, "nowhere.toml does not exist", ""),
    "config path is a folder": (folder_config, {}, "conf.d cannot be read", ""),
    "config not TOML": (text("state_dir = \n"), {}, "is not valid TOML", ""),
}


# These cases run through real processes; the rest through the same entry points in this process.
REAL = {
    ("empty database file", "heald"),
    ("mysql URL without its driver", "healctl"),
    ("state folder under a file", "heald"),
}


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_start_up_failure_is_one_line_and_exit_2(
    tmp_path: Path, case: str, program: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit status 2, one line on stderr naming the problem (no traceback, no password), and the state folder
    exactly as before: an empty or foreign database is neither re-created nor adopted."""
    make, env, words, secret = CASES[case]
    path = make(tmp_path)
    before = snapshot(tmp_path)
    argv = PROGRAMS[program](path)
    done = run(argv, env) if (case, program) in REAL else run_inside(argv, env, monkeypatch, capsys)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (case, done.returncode, done.stderr[-2000:])
    assert len(lines) == 1 and words in lines[0], (case, done.stderr[-2000:])
    assert "Traceback" not in done.stderr + done.stdout
    assert not secret or secret not in done.stderr + done.stdout
    after = snapshot(tmp_path)
    assert after == before, case


@pytest.mark.parametrize("name", ["../evil", "has space", "-dash-first", "x" * 65, "tab\tname"])
def test_an_invalid_model_name_is_refused_before_anything_is_made(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """healctl init refuses a name that cannot be a folder or a config entry: exit 2, the name quoted, and no
    model, artifact or config written (before, a '../evil' model wrote its artifact outside the folder)."""
    data = tmp_path / "data.csv"
    data.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
    path = config(tmp_path)
    before = snapshot(tmp_path)
    argv = [str(BIN / "healctl"), "init", "--name", name, "--data", str(data), "--target", "y", "--config", str(path)]
    done = run_inside(argv, {}, monkeypatch, capsys)
    assert done.returncode == 2, done.stderr
    assert f"model name {name!r} is invalid" in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(tmp_path) == before


def test_unknown_heald_variables_are_warned_about_by_name_and_ignored(tmp_path: Path) -> None:
    """A stray HEALD_CHECKOUT (meant for another tool) no longer stops heald or healctl: both run, exit 0, and
    say which variable they ignored; a known variable beside it still applies."""
    path = config(tmp_path)
    env = {"HEALD_CHECKOUT": "main", "HEALD_POLICY__NOPE": "1", "HEALD_BATCH_SIZE": "77"}
    checked = run([str(BIN / "healctl"), "config", "check", "--json", "--config", str(path)], env)
    assert checked.returncode == 0, checked.stderr
    assert '"batch_size": 77' in checked.stdout
    daemon = run(PROGRAMS["heald"](path), env)
    assert daemon.returncode == 0, daemon.stderr
    for name in ("HEALD_CHECKOUT", "HEALD_POLICY__NOPE"):
        assert f'"variable": "{name}"' in daemon.stdout and "config_env_ignored" in daemon.stdout, daemon.stdout[-2000:]
    status = run([str(BIN / "healctl"), "status", "--config", str(path)], env)
    assert status.returncode == 0 and "HEALD_CHECKOUT" in status.stderr, status.stderr
