"""systemd glue: sd_notify without a library (one datagram to ``$NOTIFY_SOCKET``).

The service reports READY=1 once the store is open and migrated, WATCHDOG=1 while the loop makes progress
(``daemon.heartbeat``), a one-line STATUS, and STOPPING=1 on the way out. Outside systemd (no socket) every
call is a no-op.
"""

from __future__ import annotations

import os
import socket


def notify(**fields: str | int) -> bool:
    """Send ``KEY=value`` lines (e.g. ``notify(READY=1, STATUS="ok")``); returns whether anyone listened."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message, address)
        except OSError:
            return False
    return True


def watchdog_seconds() -> float | None:
    """The watchdog interval systemd set for this process (``$WATCHDOG_USEC``), or None without one."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid.isdigit() and int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000
