"""The rule table of the Plan step: one ``Rule`` per symptom kind, the only place that says how to answer it.

A rule gives, for one ``SymptomKind``:

- ``priority``: which of a model's open incidents is planned for first (lower first);
- ``ladder``: the remedies to try, cheapest feasible first; the planner checks each one's precondition
  (``daemon.planner``) and alerts a person when none is left;
- ``retry`` and ``retries``: the one remedy an incident of this kind may try again after it failed or did
  not help, and how many attempts it may make in all;
- ``scope``: ``MODEL`` (one incident per model) or ``HOST`` (one incident for the machine, whatever the
  number of models that saw it);
- ``learns``: which rows a retrain for it learns (since the symptom began, or the rows the champion served);
- ``urgent``: its remedy ignores cooldowns and the hourly budget (an emergency or undoing a harm);
- ``scale``: the direction of a scale action, read from the symptom's evidence (its cause);
- ``defers_to``: a kind whose open incident carries the remedy instead;
- ``summary``: the incident's one-line text from the reading that raised it.

Adding a symptom kind means one enum member in ``knowledge.values`` and one entry here; a test checks that
every kind has a rule and every remedy an actuator and a cost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from knowledge.values import JSON, ActionKind, Observation, SymptomKind

# Host-level incidents and actions are kept under this name: no model can have it (names start alphanumeric).
HOST = "*host"


class Scope(StrEnum):
    MODEL = "model"
    HOST = "host"


class Learns(StrEnum):
    """Which labelled rows a retrain for the symptom learns."""

    SINCE_SYMPTOM = "since_symptom"  # the concept moved: older rows teach the old one
    SERVED = "served"  # the data is as good as it was: the rows the champion served


# Host readings by cause: a memory-hungry host wants fewer concurrent fits; a CPU busy with other processes
# (or a full disk) is not something our pool size changes: observe and tell.
SHRINK_ON = ("memory_percent", "rss_mb")


def _no_scale(evidence: JSON) -> int:
    return 0


def _grow(evidence: JSON) -> int:
    return 1


def _host_direction(evidence: JSON) -> int:
    over = [str(o) for o in evidence.get("over", [])]
    return -1 if any(o.startswith(SHRINK_ON) for o in over) else 0


def _performance_summary(o: Observation) -> str:
    if o.evidence.get("estimate"):
        return f"estimated accuracy {o.value:.3f} (from confidence; labels late) below the floor by a margin"
    return f"{o.evidence.get('metric', 'performance')} {o.value:.3f} below the health threshold"


def _drift_summary(o: Observation) -> str:
    e = o.evidence
    features = list(e.get("drifted", []))
    parts = []
    if features:
        details = e.get("features", {})
        shown = [
            f"{f} ({details.get(f, {}).get('effect_name', '')}={details.get(f, {}).get('effect', '?')})"
            for f in features[:5]
        ]
        parts.append(f"{len(features)} feature(s) drifted: {', '.join(shown)}")
    if e.get("prediction_drifted"):
        parts.append("predictions drifted")
    if e.get("label_drifted"):
        parts.append("labels drifted")
    return "; ".join(parts) or "inputs drifted"


def _over_summary(o: Observation) -> str:
    return f"{o.metric.replace('_', ' ')}: {', '.join(map(str, o.evidence.get('over', [])))}"


def _pipeline_summary(o: Observation) -> str:
    e = o.evidence
    return f"pipeline run #{e.get('run')} failed at {e.get('stage')}: {e.get('error')}"[:500]


def _shadow_summary(o: Observation) -> str:
    e = o.evidence
    return (
        f"champion v{e.get('version')} scores {e.get('champion_score', 0):.3f} where v{e.get('previous')} it "
        f"replaced scores {e.get('previous_score', 0):.3f} on the same {e.get('rows')} labelled rows"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    kind: SymptomKind
    priority: int
    ladder: tuple[ActionKind, ...]
    summary: Callable[[Observation], str]
    retry: ActionKind | None = None
    retries: int = 3
    scope: Scope = Scope.MODEL
    learns: Learns = Learns.SERVED
    urgent: bool = False
    scale: Callable[[JSON], int] = _no_scale
    defers_to: SymptomKind | None = None


def _table(*rules: Rule) -> dict[SymptomKind, Rule]:
    return {r.kind: r for r in rules}


RULES: Mapping[SymptomKind, Rule] = _table(
    # Undoing a harmful promotion comes before anything else, and ignores cooldowns.
    Rule(
        kind=SymptomKind.BAD_PROMOTION,
        priority=0,
        ladder=(ActionKind.ROLLBACK,),
        urgent=True,
        summary=_shadow_summary,
    ),
    # A file that does not verify: roll back to a stable one, else rebuild at once from the rows it served.
    Rule(
        kind=SymptomKind.ARTIFACT_CORRUPT,
        priority=1,
        ladder=(ActionKind.ROLLBACK, ActionKind.RETRAIN),
        urgent=True,
        summary=lambda o: str(o.evidence.get("reason", "champion artifact does not verify")),
    ),
    # A stage that failed may pass the next time: rerun it a few times, spaced by the cooldown.
    Rule(
        kind=SymptomKind.PIPELINE_FAILED,
        priority=2,
        ladder=(ActionKind.RERUN, ActionKind.RETRAIN),
        retry=ActionKind.RERUN,
        summary=_pipeline_summary,
    ),
    # Drift waits for the labels; an open performance drop carries the remedy.
    Rule(
        kind=SymptomKind.DATA_DRIFT,
        priority=3,
        ladder=(ActionKind.RETRAIN,),
        learns=Learns.SINCE_SYMPTOM,
        defers_to=SymptomKind.PERFORMANCE_DROP,
        summary=_drift_summary,
    ),
    Rule(
        kind=SymptomKind.PERFORMANCE_DROP,
        priority=4,
        ladder=(ActionKind.ROLLBACK, ActionKind.RETRAIN),
        retry=ActionKind.RETRAIN,
        learns=Learns.SINCE_SYMPTOM,
        summary=_performance_summary,
    ),
    Rule(
        kind=SymptomKind.BACKLOG,
        priority=5,
        ladder=(ActionKind.SCALE,),
        scope=Scope.HOST,
        scale=_grow,
        summary=_over_summary,
    ),
    Rule(
        kind=SymptomKind.HOST_PRESSURE,
        priority=6,
        ladder=(ActionKind.SCALE,),
        scope=Scope.HOST,
        scale=_host_direction,
        summary=_over_summary,
    ),
    # No automatic remedy: a person decides (the quarantine keeps the rows and their reasons).
    Rule(kind=SymptomKind.DATA_QUALITY, priority=7, ladder=(), summary=lambda o: "data quality problems"),
    Rule(kind=SymptomKind.ANOMALY, priority=8, ladder=(), summary=lambda o: "unusual readings"),
    # The rows are not lost (the watermark waits); a retrain would not help: back off and tell a person.
    Rule(
        kind=SymptomKind.SOURCE_FAILED,
        priority=9,
        ladder=(),
        summary=lambda o: f"{o.evidence.get('kind')} source ({o.evidence.get('stream')}): {o.evidence.get('error')}"[
            :500
        ],
    ),
)


def owner(kind: SymptomKind, model: str, rules: Mapping[SymptomKind, Rule] = RULES) -> str:
    """Under which name an incident of ``kind`` seen on ``model`` is kept: the model, or the host."""
    return HOST if rules[kind].scope is Scope.HOST else model
