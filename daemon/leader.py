"""Leadership: when several daemons share one knowledge store, exactly one (the lease holder) acts.

The others keep monitoring (observations and incidents are shared and harmless to record twice over a
tick) but plan and execute nothing. The lease is a row renewed every tick; a holder that stops renewing
loses it after ``ttl_seconds`` and the next daemon takes over with a higher epoch.
"""

from __future__ import annotations

import os
import socket

from daemon.logs import get
from knowledge.clock import Clock
from knowledge.sql.store import SqlKnowledgeStore

log = get("heald.leader")
LEASE = "actor"


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership:
    """Callable the loop asks each tick: may this daemon act?"""

    def __init__(self, store: SqlKnowledgeStore, clock: Clock, *, holder: str, ttl_seconds: float) -> None:
        self.store = store
        self.clock = clock
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self.epoch: int | None = None

    def __call__(self) -> bool:
        epoch = self.store.acquire_lease(LEASE, self.holder, at=self.clock.now(), ttl_seconds=self.ttl_seconds)
        if epoch != self.epoch:
            if epoch is None:
                log.warning("leadership_lost", holder=self.holder, epoch=self.epoch)
            else:
                log.info("leadership_acquired", holder=self.holder, epoch=epoch)
        self.epoch = epoch
        return epoch is not None
