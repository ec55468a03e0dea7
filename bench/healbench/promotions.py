"""Harmful promotions: a promoted version that scored worse than the one it replaced and was kept.

For every champion move that heald made to a version newer than the one it replaced (a promotion, not a
rollback), both versions are scored on the same labelled batches: the ``window`` batches replayed after the
promotion (heald's verification window, ``policy.verify_within`` ticks of one batch each). The promotion is
harmful when the new version scored worse than the old one by more than ``TOLERANCE`` and was still champion
when the window ended. A version whose file is damaged (a fault did it) is scored from heald's in-memory copy
when it has one, and otherwise left out with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from healbench.replay import MODEL, HealdSystem
from healbench.streams import TARGET
from knowledge.errors import HealdError
from knowledge.values import Alias
from pipeline.evaluate import metrics, primary_metric

# Worse by more than this (accuracy points as a share, or R²) counts; smaller gaps are within the noise of a
# few batches' scores. The issue's accuracy check allows one point too.
TOLERANCE = 0.01


@dataclass(frozen=True, slots=True, kw_only=True)
class Promotion:
    """One promotion heald made and how the new version did against the one it replaced."""

    batch: int
    new: int
    old: int
    new_score: float | None
    old_score: float | None
    kept: bool  # still champion when the window ended
    note: str = ""

    @property
    def harmful(self) -> bool:
        if self.new_score is None or self.old_score is None:
            return False
        return self.kept and self.new_score < self.old_score - TOLERANCE

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "new": self.new,
            "old": self.old,
            "new_score": self.new_score,
            "old_score": self.old_score,
            "kept": self.kept,
            "harmful": self.harmful,
            "note": self.note,
        }


def window_batches(system: HealdSystem) -> int:
    """The verification window in batches: heald's own ``verify_within`` (ticks; one batch per tick)."""
    return int(getattr(system.heald.settings.policy, "verify_within", 4))


def promotions(system: HealdSystem, batches: list[pd.DataFrame], window: int | None = None) -> list[Promotion]:
    """Every promotion heald made during the replay of ``batches``, scored over the following window."""
    window = window_batches(system) if window is None else window
    history = system.heald.store.alias_history(MODEL, Alias.CHAMPION)
    found = []
    for position, move in enumerate(history):
        if move.from_version is None or move.to_version is None or move.to_version <= move.from_version:
            continue  # the first champion, or a rollback to an older version
        if move.actor != "heald" or move.at not in system.ticks:
            continue  # an operator's deploy (faults do this) is not heald's decision
        at = system.ticks[move.at]
        seen = batches[at + 1 : at + 1 + window]
        end = at + len(seen)
        later = [m for m in history[position + 1 :] if m.at in system.ticks and system.ticks[m.at] <= end]
        kept = not later and len(seen) == window
        rows = pd.concat(seen, ignore_index=True) if seen else None
        new_score, note_new = _score(system, move.to_version, rows)
        old_score, note_old = _score(system, move.from_version, rows)
        found.append(
            Promotion(
                batch=at,
                new=move.to_version,
                old=move.from_version,
                new_score=new_score,
                old_score=old_score,
                kept=kept,
                note="; ".join(n for n in (note_new, note_old) if n),
            )
        )
    return found


def _score(system: HealdSystem, number: int, rows: pd.DataFrame | None) -> tuple[float | None, str]:
    if rows is None:
        return None, "the replay ended before the window"
    task = system.stream.task
    try:
        model = system.heald.registry.load(system.heald.registry.version(MODEL, number))
    except HealdError as exc:
        return None, f"v{number} cannot be loaded: {exc}"
    predicted = model.predict(rows[system.stream.features])
    return float(metrics(rows[TARGET], predicted, task)[primary_metric(task)]), ""
