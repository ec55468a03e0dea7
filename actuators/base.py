"""The actuator plug-in point, what an actuator may use, and the recording fake for tests.

``Actuator`` is a one-method protocol. ``ActContext`` gives an actuator the registry, the store and the
settings it needs; ``Outcome`` says whether it worked and what it changed. ``RecordingActuator`` is the
fake: it records the actions it was asked to run and answers with a scripted outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import JSON, Action, ModelRecord

if TYPE_CHECKING:
    from actuators.pool import WorkerPool

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ActSettings:
    """The settings actuators need, taken from the config by the daemon."""

    n_estimators: int = 100
    max_depth: int | None = None
    min_gain: float = 0.0
    min_retrain_rows: int = 400
    min_accuracy: float = 0.8
    min_r2: float = 0.5
    n_jobs: int = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class ActContext:
    """What an actuator may use while it runs."""

    now: datetime
    model: ModelRecord
    registry: ModelRegistry
    store: SqlKnowledgeStore
    settings: ActSettings = ActSettings()
    pool: WorkerPool | None = None
    # The lease epoch the action was planned under: every alias move of the actuator carries it, so a
    # daemon that lost the lease while its action ran cannot promote (None: an operator's action).
    epoch: int | None = None

    def compute(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run heavy work (a fit) on the pool's compute side: a worker process with the ``process`` executor."""
        return function(*args, **kwargs) if self.pool is None else self.pool.compute(function, *args, **kwargs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How an action ended: ``ok`` and a sentence a person can read, plus what changed."""

    ok: bool
    detail: str
    result: JSON = field(default_factory=dict)


class Actuator(Protocol):
    """Carries out one kind of action."""

    def execute(self, action: Action, ctx: ActContext) -> Outcome: ...


class RecordingActuator:
    """A fake actuator: records every action it is given and replies with scripted outcomes (default ok)."""

    def __init__(self, outcomes: Iterable[Outcome] = ()) -> None:
        self._outcomes: Iterator[Outcome] = iter(outcomes)
        self.executed: list[Action] = []

    def execute(self, action: Action, ctx: ActContext) -> Outcome:
        self.executed.append(action)
        return next(self._outcomes, Outcome(ok=True, detail=f"recorded {action.kind} #{action.id}"))
