"""A throwaway PostgreSQL server for the test session, started from Debian's binaries without systemd.

initdb refuses to run as root, so as root the server runs as the ``postgres`` user (via runuser). The
cluster lives in a temporary folder, listens only on 127.0.0.1 at a free port, trusts local connections,
and is stopped by its pid when the session ends. In CI a missing server is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(os.environ.get("HEALD_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    return (BIN / "initdb").exists() and (BIN / "pg_ctl").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@contextmanager
def server() -> Iterator[str]:
    """Yield the base URL (``postgresql+psycopg://postgres@127.0.0.1:PORT``) of a fresh server."""
    root = Path(tempfile.mkdtemp(prefix="heald-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres([str(BIN / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
    subprocess.run(
        _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)
            for _ in range(100):
                if not pid_file.exists():
                    break
                time.sleep(0.05)
        shutil.rmtree(root, ignore_errors=True)
