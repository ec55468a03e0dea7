"""Scale actuator: change the number of workers that run actions, one step at a time, within bounds.

A growing backlog asks for one more worker; host pressure asks for one fewer (fewer concurrent fits use
less CPU and memory). One step per action keeps a wrong guess cheap, and the loop verifies the effect
before it scales again.
"""

from __future__ import annotations

from actuators.base import ActContext, Outcome
from knowledge.values import Action


class ScaleActuator:
    """Resizes the worker pool by ``params["step"]`` (+1 or -1), between 1 and ``max_workers``."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers

    def execute(self, action: Action, ctx: ActContext) -> Outcome:
        if ctx.pool is None:
            return Outcome(ok=False, detail="no worker pool to scale")
        before = ctx.pool.size()
        wanted = min(max(before + int(action.params.get("step", 1)), 1), self.max_workers)
        if wanted == before:
            return Outcome(ok=False, detail=f"worker pool already at its bound ({before} of {self.max_workers})")
        after = ctx.pool.resize(wanted)
        if after != wanted:
            return Outcome(ok=False, detail=f"worker pool cannot be resized (asked {wanted}, has {after})")
        return Outcome(
            ok=True, detail=f"worker pool scaled from {before} to {after}", result={"from": before, "to": after}
        )
