"""The daemon as systemd runs it: a real process, a real notify socket, real signals, a real port, and
JSON logs on stdout."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HEALD = str(Path(sys.executable).parent / "heald")


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(60)
    yield sock
    sock.close()


def messages_until(sock: socket.socket, wanted: str) -> list[str]:
    seen = []
    while True:
        message = sock.recv(4096).decode()
        seen.append(message)
        if wanted in message.splitlines():
            return seen


def start(tmp_path: Path, config: Path, sock: socket.socket) -> subprocess.Popen[str]:
    """Start heald with its stdout going to tmp_path/stdout.jsonl (a file can be read while it runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALD_")}
    env["NOTIFY_SOCKET"] = str(sock.getsockname())
    with (tmp_path / "stdout.jsonl").open("w") as out:
        return subprocess.Popen(
            [HEALD, "--config", str(config)], stdout=out, stderr=subprocess.PIPE, text=True, env=env
        )


def events(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "stdout.jsonl").read_text().splitlines() if line.strip()]


def test_ready_watchdog_reload_and_clean_stop(tmp_path: Path, notify_socket: socket.socket) -> None:
    """READY after start, WATCHDOG per tick, SIGHUP reloads (a bad config is refused), SIGTERM exits 0."""
    config = tmp_path / "heald.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\ntick_seconds = 0.3\napi_port = 0\n', encoding="utf-8")
    proc = start(tmp_path, config, notify_socket)
    try:
        assert any("READY=1" in m for m in messages_until(notify_socket, "READY=1"))
        listening = next(e for e in events(tmp_path) if e["event"] == "api_listening")
        assert listening["host"] == "127.0.0.1"
        # READY came after the port was bound: the API answers right away.
        assert httpx.get(f"http://127.0.0.1:{listening['port']}/healthz", timeout=10).status_code == 200
        messages_until(notify_socket, "WATCHDOG=1")
        messages_until(notify_socket, "WATCHDOG=1")
        config.write_text(
            f'state_dir = "{tmp_path / "state"}"\ntick_seconds = 0.3\napi_port = 0\nbogus = 1\n', encoding="utf-8"
        )
        proc.send_signal(signal.SIGHUP)
        messages_until(notify_socket, "READY=1")
        config.write_text(f'state_dir = "{tmp_path / "state"}"\ntick_seconds = 0.2\napi_port = 0\n', encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        messages_until(notify_socket, "READY=1")
        messages_until(notify_socket, "WATCHDOG=1")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    logged = events(tmp_path)
    names = [e["event"] for e in logged]
    assert "service_started" in names and "leadership_acquired" in names
    assert "config_reload_failed" in names and "config_reloaded" in names
    failed = next(e for e in logged if e["event"] == "config_reload_failed")
    assert "unknown key 'bogus'" in failed["error"]
    assert names[-1] == "service_stopped"
    assert all(str(e["timestamp"]).endswith("Z") for e in logged)
    assert "STOPPING=1" in "\n".join(messages_until(notify_socket, "STOPPING=1"))


def test_bad_config_exits_2_with_the_key_named(tmp_path: Path) -> None:
    """A config error stops the daemon at once with exit status 2 and the key in the message."""
    config = tmp_path / "heald.toml"
    config.write_text("api_port = 'http'\n", encoding="utf-8")
    result = subprocess.run([HEALD, "--config", str(config)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "key 'api_port' = 'http'" in result.stderr and "Traceback" not in result.stderr


def test_once_runs_a_single_tick(tmp_path: Path) -> None:
    """--once ticks once and exits 0 (the smoke test a deployment can run)."""
    config = tmp_path / "heald.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n', encoding="utf-8")
    result = subprocess.run(
        [HEALD, "--once", "--config", str(config)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    names = [json.loads(line)["event"] for line in result.stdout.splitlines()]
    assert names.count("tick_completed") == 1 and names[-1] == "tick_completed"
