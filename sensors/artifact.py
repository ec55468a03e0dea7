"""Artifact sensor: is the champion's model file present, does it still match its sha256, and does it load?

A file damaged on disk would serve until the next restart and then fail; noticing it now lets the loop
roll back to a stable version while the served model still works. A file that matches its checksum but is
not a loadable model (registered damaged) fails every prediction: it is reported the same way. Loading goes
through the registry's cache, so a healthy champion is read from disk only when its version changes.
"""

from __future__ import annotations

from knowledge.errors import ArtifactError
from knowledge.values import Observation
from sensors.base import SenseContext

SOURCE = "artifact"


class ArtifactSensor:
    """Reports ``artifact_ok`` = 1 when the champion's file verifies, 0 with the reason when it does not."""

    def sense(self, ctx: SenseContext) -> list[Observation]:
        champion = ctx.champion
        if champion is None:
            return [ctx.observe(SOURCE, "artifact_ok", 0.0, reason="model has no champion")]
        try:
            ctx.registry.verify(champion)
            ctx.registry.load(champion)
        except ArtifactError as exc:
            return [ctx.observe(SOURCE, "artifact_ok", 0.0, version=champion.number, reason=str(exc))]
        return [ctx.observe(SOURCE, "artifact_ok", 1.0, version=champion.number)]
