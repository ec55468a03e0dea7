"""Rollback actuator: point the champion back at the newest stable version whose file verifies, or at the
version named by ``params["to"]`` (undoing a harmful promotion; the reason carries the shadow evidence).

The version rolled back from is marked as such in the same transaction, so the loop never promotes it
again without a person; the move is conditional on the champion not having moved meanwhile.
"""

from __future__ import annotations

from actuators.base import ActContext, Outcome
from knowledge.errors import ActionError, ArtifactError, StoreError
from knowledge.values import Action


class RollbackActuator:
    """Rolls the champion back to the newest verifying stable version."""

    def execute(self, action: Action, ctx: ActContext) -> Outcome:
        to = action.params.get("to")
        evidence = action.params.get("evidence")
        reason = f"{action.reason}; evidence: {evidence}" if evidence else action.reason
        try:
            move = ctx.registry.rollback(
                ctx.model.name,
                at=ctx.now,
                actor="heald",
                reason=reason,
                action_id=action.id,
                to=int(to) if to is not None else None,
                epoch=ctx.epoch,
            )
        except (ActionError, ArtifactError, StoreError) as exc:
            return Outcome(ok=False, detail=str(exc))
        return Outcome(
            ok=True,
            detail=f"champion rolled back from v{move.from_version} to v{move.to_version}",
            result={"from_version": move.from_version, "to_version": move.to_version},
        )
