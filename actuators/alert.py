"""Alert actuator: hand the problem to a person, through the log line that log-based alerting matches on.

It is the last rung of the escalation ladder and the circuit breaker's answer; it always succeeds, since
telling someone is all it promises.
"""

from __future__ import annotations

import structlog

from actuators.base import ActContext, Outcome
from actuators.notify import LogOnly, Notifier
from knowledge.values import Action

log = structlog.get_logger("heald.alert")


class AlertActuator:
    """Emits ``alert_raised`` at error level with the model, incident and reason."""

    def __init__(self, notifier: Notifier | None = None) -> None:
        self.notifier = notifier or LogOnly()

    def execute(self, action: Action, ctx: ActContext) -> Outcome:
        log.error(
            "alert_raised",
            model=ctx.model.name,
            incident_id=action.incident_id,
            action_id=action.id,
            reason=action.reason,
        )
        alert = {"event": "alert_raised", "model": ctx.model.name, "incident_id": action.incident_id}
        alert |= {"action_id": action.id, "reason": action.reason, "at": ctx.now.isoformat()}
        # Delivery happens off the loop's thread (actuators.notify); the log line above is always there.
        sent = self.notifier.send(alert)
        where = "alert sent to the webhook and logged" if sent else "alert logged (alert_raised)"
        return Outcome(ok=True, detail=f"{where}: {action.reason}")
