"""The service's clock-driven trigger: APScheduler 3.x calls the tick on an interval, never overlapping.

This is heald's only importer of APScheduler. A tick that overruns its interval is not run twice:
``max_instances=1`` skips the overlapping run and ``coalesce`` folds missed runs into one, which is safe
because a tick is level-triggered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.schedulers.background import BackgroundScheduler


class TickScheduler:
    """Runs ``tick`` every ``seconds`` on a background thread until stopped."""

    def __init__(
        self, tick: Callable[[], None], seconds: float, *, on_overlap: Callable[[], None] | None = None
    ) -> None:
        self._scheduler = BackgroundScheduler(timezone=UTC)
        if on_overlap is not None:
            # A run refused because the previous tick is still going is worth counting (a slow loop shows).
            self._scheduler.add_listener(lambda _event: on_overlap(), EVENT_JOB_MAX_INSTANCES)
        self._job = self._scheduler.add_job(
            tick,
            "interval",
            seconds=seconds,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            id="tick",
        )

    def start(self) -> None:
        self._scheduler.start()

    def reschedule(self, seconds: float) -> None:
        self._job.reschedule("interval", seconds=seconds)

    def stop(self) -> None:
        """Stop triggering and wait for a tick in progress to finish."""
        self._scheduler.shutdown(wait=True)
