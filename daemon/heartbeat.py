"""The watchdog's view of the loop: is it still making progress?

systemd restarts heald when WATCHDOG=1 stops coming. What should stop the pings is a loop that no longer
runs: a tick hung for longer than ``stall_after`` seconds, or no tick started for an interval plus
``stall_after`` (the scheduler died). A model whose part of a tick fails (isolated and recorded by the loop)
or a tick that fails as a whole (logged, retried next interval) is the loop running, not stalled: restarting
heald would not mend a broken file or a full disk, and every restart costs the API its answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Heartbeat:
    """Told when ticks start and end; says whether the loop is progressing, on a monotonic clock."""

    def __init__(self, interval: float, stall_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.stall_after = stall_after
        self.clock = clock
        self.born = clock()
        self.started_at: float | None = None
        self.running = False

    def tick_started(self) -> None:
        self.started_at = self.clock()
        self.running = True

    def tick_ended(self) -> None:
        self.running = False

    def progressing(self) -> bool:
        now = self.clock()
        last = self.started_at if self.started_at is not None else self.born
        if self.running:
            return now - last <= self.stall_after
        return now - last <= self.interval + self.stall_after
