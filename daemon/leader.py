"""Leadership: when several daemons share one knowledge store, exactly one (the lease holder) acts.

The others keep monitoring (observations and incidents are shared and harmless to record twice over a
tick) but plan, execute and settle nothing. The lease is a row with a holder, an epoch and the time it was
last renewed. The holder renews it every tick and, in the service, from a renewal thread a few times per
tick (so a long tick does not lose it); a holder that stops renewing (killed, frozen, cut off) loses it
``ttl_seconds`` later and the next daemon takes over with a higher epoch.

The TTL follows the tick: it is one tick, so a follower takes over at its second tick after the holder's
last renewal at the latest. The epoch fences: every write that acts carries it and the store refuses it
once a newer epoch exists, so a holder that was frozen and wakes up after a takeover writes nothing.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

from daemon.logs import get
from knowledge.clock import Clock
from knowledge.sql.store import ACTOR_LEASE, SqlKnowledgeStore

log = get("heald.leader")
RENEWALS_PER_TICK = 4  # renewals per TTL: a holder survives a stall of 3/4 of a tick


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_ttl(tick_seconds: float) -> float:
    """How long a lease outlives its last renewal: one tick, so takeover comes within two ticks of a death."""
    return tick_seconds


def renewal_seconds(tick_seconds: float) -> float:
    return lease_ttl(tick_seconds) / RENEWALS_PER_TICK


class Leadership:
    """Takes or renews the actor lease; calling it returns the epoch held, or None while another holds it."""

    def __init__(self, store: SqlKnowledgeStore, clock: Clock, *, holder: str, ttl_seconds: float) -> None:
        self.store = store
        self.clock = clock
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self.epoch: int | None = None
        self._lock = threading.Lock()  # the tick and the renewal thread renew from different threads

    def __call__(self) -> int | None:
        with self._lock:
            epoch = self.store.acquire_lease(
                ACTOR_LEASE, self.holder, at=self.clock.now(), ttl_seconds=self.ttl_seconds
            )
            if epoch != self.epoch:
                if epoch is None:
                    log.warning("leadership_lost", holder=self.holder, epoch=self.epoch)
                else:
                    log.info("leadership_acquired", holder=self.holder, epoch=epoch, previous=self.epoch)
            self.epoch = epoch
            return epoch


class LeaseRenewer:
    """A thread that calls ``renew`` every ``interval()`` seconds until stopped (the lease between ticks)."""

    def __init__(self, renew: Callable[[], object], interval: Callable[[], float]) -> None:
        self._renew = renew
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heald-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval()):
            try:
                self._renew()
            except Exception:  # a failed renewal is the next tick's problem; the renewals must go on
                log.exception("lease_renewal_failed")
