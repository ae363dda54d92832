"""Deterministic rule-based risk scoring: used when no LLM is configured, or it fails or times out.

Same shape as the LLM's answer, `source: "rules"`. Every point comes from a named factor, so the
reasoning lists exactly why the score is what it is. The factors and their points:

| factor       | points | when                                                            |
| ------------ | ------ | --------------------------------------------------------------- |
| person       | +25    | at least one person                                             |
| group        | +8 each extra person, at most +16                                 |
| vehicle      | +12    | at least one vehicle                                            |
| animal       | +3     | animals only matter a little                                    |
| object       | +2     | other objects                                                   |
| weapon_like  | +30    | a knife, bat or scissors seen together with a person           |
| night        | +20 person / +8 vehicle, 22:00-06:00 (`time_of_day: night`)      |
| home_mode    | +25 person / +10 vehicle when away or on vacation; +10 person in night mode |
| dwell        | +10 from 60 s, +20 from 180 s, with a person                      |
| known        | -30 when every person matches an enrolled household member      |
| repeat       | +10 when the same unknown person was seen 3+ times today        |
| tamper       | +30 when the enrichment reports a scene change (camera moved or covered) |
| view         | +10 when the view is very dark or blurred (obstructed camera)   |

The score is the clamped sum (0-100); the level follows from it. Nothing in view scores 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import risk
from .event import WEAPON_LIKE_CLASSES, EventMetadata, EventObject, group_of
from .risk import RiskAssessment, RiskFactor

_ACTIONS = {
    "low": "No action needed.",
    "medium": "Review the event when convenient.",
    "high": "Check the camera now.",
    "critical": "Check the camera immediately and consider contacting the authorities.",
}
AWAY_WORDS = ("away", "vacation", "holiday")
NIGHT_MODE_WORDS = ("night", "sleep")


@dataclass(frozen=True)
class Quality:
    """Image-quality facts from the enrichment stage (all optional)."""

    scene_change: bool = False
    dark: bool = False
    blurred: bool = False


def quality_of(images: Sequence[Mapping[str, Any]]) -> Quality:
    """Read `{blur, brightness, scene_change}` dicts per frame (the /enrich `image` shape)."""
    scene = any(bool(img.get("scene_change")) for img in images)
    dark = any(_num(img.get("brightness"), 1.0) < 0.08 for img in images)
    blurred = any(_num(img.get("blur"), 0.0) > 0.85 for img in images)
    return Quality(scene_change=scene, dark=dark, blurred=blurred)


def _num(value: Any, default: float) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def entities(objects: Sequence[EventObject]) -> tuple[dict[str, Any], ...]:
    """What was seen, per class: `{type, count, max_confidence}` (both sources report these)."""
    best: dict[str, float] = {}
    counts = _distinct_counts(objects)
    for obj in objects:
        best[obj.label] = max(best.get(obj.label, 0.0), obj.confidence)
    return tuple(
        {"type": label, "count": counts[label], "max_confidence": round(best[label], 4)}
        for label in sorted(best, key=lambda name: (-counts[name], name))
    )


def _distinct_counts(objects: Sequence[EventObject]) -> Counter[str]:
    """Objects per class in the busiest frame: the same person in 5 frames is one person."""
    per_frame: dict[int, Counter[str]] = {}
    for obj in objects:
        per_frame.setdefault(obj.frame, Counter())[obj.label] += 1
    total: Counter[str] = Counter()
    for counts in per_frame.values():
        for label, count in counts.items():
            total[label] = max(total[label], count)
    return total


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def score(
    objects: Sequence[EventObject], metadata: EventMetadata, quality: Quality = Quality()
) -> RiskAssessment:
    """Score one event from its objects and context."""
    counts = _distinct_counts(objects)
    groups: Counter[str] = Counter()
    for label, count in counts.items():
        groups[group_of(label)] += count
    persons, vehicles = groups["person"], groups["vehicle"]
    factors: list[RiskFactor] = []

    def add(name: str, points: int, why: str) -> None:
        factors.append(RiskFactor(name, float(points), why))

    if persons:
        add("person", 25, f"{_plural(persons, 'person')} in view")
        if persons > 1:
            add("group", min(8 * (persons - 1), 16), "several people together")
        weapons = sorted(label for label in counts if label in WEAPON_LIKE_CLASSES)
        if weapons:
            add("weapon_like", 30, f"{', '.join(weapons)} seen with a person")
    if vehicles:
        add("vehicle", 12, f"{_plural(vehicles, 'vehicle')} in view")
    if groups["animal"]:
        add("animal", 3, "animal activity")
    if groups["other"] and not persons:
        add("object", 2, "other objects in view")

    if metadata.time_of_day == "night":
        if persons:
            add("night", 20, "person present at night")
        elif vehicles:
            add("night", 8, "vehicle present at night")
    mode = (metadata.context.home_mode or "").lower()
    if any(word in mode for word in AWAY_WORDS):
        if persons:
            add("home_mode", 25, "nobody is home")
        elif vehicles:
            add("home_mode", 10, "vehicle while nobody is home")
    elif persons and any(word in mode for word in NIGHT_MODE_WORDS):
        add("home_mode", 10, "household is asleep")
    dwell = metadata.dwell_seconds
    if persons and dwell >= 180:
        add("dwell", 20, f"lingered for {int(dwell)} s")
    elif persons and dwell >= 60:
        add("dwell", 10, f"lingered for {int(dwell)} s")

    matches = [
        m for m in metadata.context.known_matches if group_of(str(m.get("class", ""))) == "person"
    ]
    enrolled = [m for m in matches if m.get("enrolled")]
    if persons and enrolled and len(enrolled) >= persons:
        names = ", ".join(str(m.get("name") or "household member") for m in enrolled)
        add("known", -30, f"recognised: {names}")
    elif persons and any(
        _num(m.get("times_seen_today"), 0) >= 3 for m in matches if not m.get("enrolled")
    ):
        add("repeat", 10, "the same unknown person was seen 3+ times today")

    if quality.scene_change:
        add("tamper", 30, "the camera view changed (moved, covered or sprayed?)")
    if quality.dark or quality.blurred:
        add("view", 10, "the view is very dark or blurred")

    total = sum(f.contribution for f in factors)
    assessment = risk.build(
        total,
        _summary(counts, metadata, persons, vehicles),
        _reasoning(factors, total),
        source="rules",
        risk_factors=tuple(sorted(factors, key=lambda f: -abs(f.contribution))),
        flags=_flags(quality),
        entities=entities(objects),
    )
    return replace(assessment, recommended_action=_ACTIONS[assessment.risk_level])


def _summary(counts: Counter[str], metadata: EventMetadata, persons: int, vehicles: int) -> str:
    if not counts:
        return f"No objects of interest at {metadata.camera.label}."
    parts = [_plural(count, label) for label, count in counts.most_common(3)]
    when = f" at {metadata.time_of_day}" if metadata.time_of_day in ("night", "evening") else ""
    return f"{', '.join(parts).capitalize()} at {metadata.camera.label}{when}."


def _reasoning(factors: Sequence[RiskFactor], total: float) -> str:
    if not factors:
        return "Rule-based score: nothing in view raises the risk."
    parts = [f"{f.description} ({f.contribution:+g})" for f in factors]
    return f"Rule-based score {max(0, min(100, round(total)))}: " + "; ".join(parts) + "."


def _flags(quality: Quality) -> tuple[risk.Flag, ...]:
    flags = []
    if quality.scene_change:
        flags.append(risk.Flag("tamper", "camera view changed", "high"))
    if quality.dark or quality.blurred:
        flags.append(risk.Flag("image_quality", "view is very dark or blurred", "medium"))
    return tuple(flags)
