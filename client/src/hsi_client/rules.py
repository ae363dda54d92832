"""The deterministic rule-based risk scorer: the ONE fallback of the server and the integration.

Used by the server when no LLM is configured, or it fails or times out, and by the integration
when the server cannot analyse an event (and for the fast path's preliminary alert). Same shape as
the LLM's answer, `source: "rules"`. Every point comes from a named factor, so the reasoning lists
exactly why the score is what it is:

| factor       | points                                                                      |
| ------------ | --------------------------------------------------------------------------- |
| person       | +25 when at least one person is in view                                     |
| group        | +8 for each extra person, at most +16                                       |
| weapon_like  | +30 for a knife, bat or scissors seen together with a person                |
| vehicle      | +12 when at least one vehicle is in view                                    |
| animal       | +3: animals only matter a little                                            |
| object       | +2 for other objects, when no person is in view                             |
| night        | +20 with a person, +8 with only a vehicle, 22:00-06:00                      |
| home_mode    | away/vacation/holiday: +25 with a person, +10 with only a vehicle;          |
|              | night/sleep mode: +10 with a person                                         |
| dwell        | +10 from 60 s, +20 from 180 s, with a person                                |
| known        | -30 once, when every person in view is an enrolled household member         |
| repeat       | +10 when the same unknown person was seen 3+ times today                    |
| tamper       | +30 when the view changed (camera moved or covered)                         |
| view         | +10 when the view is very dark or blurred                                   |

Counts are distinct objects: per class, the most seen at once in one frame (the same person in
five frames is one person). The score is the clamped sum (0-100); the level follows from it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from .models import AnalyzedObject, EventMetadata
from .risk import Flag, RiskAssessment, RiskFactor, clamp_score
from .taxonomy import WEAPON_LIKE_CLASSES, group_of

ACTIONS: Final = {
    "low": "No action needed.",
    "medium": "Review the event when convenient.",
    "high": "Check the camera now.",
    "critical": "Check the camera immediately and consider contacting the authorities.",
}
AWAY_WORDS: Final = ("away", "vacation", "holiday")
NIGHT_MODE_WORDS: Final = ("night", "sleep")
# Mean luma (0-1) below which a view is very dark: darker than the server's own `dark` flag.
DARK_BRIGHTNESS: Final = 0.08


@dataclass(frozen=True, slots=True)
class Quality:
    """Image-quality facts from the enrichment stage (all optional)."""

    scene_change: bool = False
    dark: bool = False
    blurred: bool = False


def quality_of(images: Sequence[Mapping[str, Any]]) -> Quality:
    """Read the /enrich `image` facts of each frame.

    `brightness` is the mean luma (0-1); `blurry` is the server's verdict (its `blur` is the
    variance of the Laplacian, lower is blurrier, and has no fixed scale); `scene_change` is
    `{similarity, changed}` (a plain boolean is accepted too).
    """
    return Quality(
        scene_change=any(_changed(img.get("scene_change")) for img in images),
        dark=any(_num(img.get("brightness"), 1.0) < DARK_BRIGHTNESS for img in images),
        blurred=any(img.get("blurry") is True for img in images),
    )


def _changed(scene_change: Any) -> bool:
    if isinstance(scene_change, Mapping):
        return scene_change.get("changed") is True
    return scene_change is True


def _num(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def distinct_counts(objects: Sequence[AnalyzedObject]) -> Counter[str]:
    """Objects per class in the busiest frame: the same person in 5 frames is one person."""
    per_frame: dict[int, Counter[str]] = {}
    for obj in objects:
        per_frame.setdefault(obj.frame, Counter())[obj.label] += 1
    total: Counter[str] = Counter()
    for counts in per_frame.values():
        for label, count in counts.items():
            total[label] = max(total[label], count)
    return total


def entities(objects: Sequence[AnalyzedObject]) -> tuple[dict[str, Any], ...]:
    """What was seen, per class: `{type, count, max_confidence}` (both sources report these)."""
    best: dict[str, float] = {}
    counts = distinct_counts(objects)
    for obj in objects:
        best[obj.label] = max(best.get(obj.label, 0.0), obj.confidence)
    return tuple(
        {"type": label, "count": counts[label], "max_confidence": round(best[label], 4)}
        for label in sorted(best, key=lambda name: (-counts[name], name))
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def score(
    objects: Sequence[AnalyzedObject], metadata: EventMetadata, quality: Quality = Quality()
) -> RiskAssessment:
    """Score one event from its objects and context."""
    counts = distinct_counts(objects)
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

    matches = [m for m in metadata.context.known_matches if group_of(m.label) == "person"]
    enrolled = [m for m in matches if m.enrolled]
    if persons and enrolled and len({m.gallery_id for m in enrolled}) >= persons:
        names = ", ".join(dict.fromkeys(m.name or "household member" for m in enrolled))
        add("known", -30, f"recognised: {names}")
    elif persons and any(m.times_seen_today >= 3 for m in matches if not m.enrolled):
        add("repeat", 10, "the same unknown person was seen 3+ times today")

    if quality.scene_change:
        add("tamper", 30, "the camera view changed (moved, covered or sprayed?)")
    if quality.dark or quality.blurred:
        add("view", 10, "the view is very dark or blurred")

    total = sum(f.contribution for f in factors)
    assessment = RiskAssessment.build(
        total,
        _summary(counts, metadata),
        _reasoning(factors, total),
        source="rules",
        risk_factors=tuple(sorted(factors, key=lambda f: -abs(f.contribution))),
        flags=_flags(quality),
        entities=entities(objects),
    )
    return replace(assessment, recommended_action=ACTIONS[assessment.risk_level])


def _summary(counts: Counter[str], metadata: EventMetadata) -> str:
    if not counts:
        return f"No objects of interest at {metadata.camera.label}."
    parts = [_plural(count, label) for label, count in counts.most_common(3)]
    when = f" at {metadata.time_of_day}" if metadata.time_of_day in ("night", "evening") else ""
    return f"{', '.join(parts).capitalize()} at {metadata.camera.label}{when}."


def _reasoning(factors: Sequence[RiskFactor], total: float) -> str:
    if not factors:
        return "Rule-based score: nothing in view raises the risk."
    parts = [f"{f.description} ({f.contribution:+g})" for f in factors]
    return f"Rule-based score {clamp_score(total)}: " + "; ".join(parts) + "."


def _flags(quality: Quality) -> tuple[Flag, ...]:
    flags = []
    if quality.scene_change:
        flags.append(Flag("tamper", "camera view changed", "high"))
    if quality.dark or quality.blurred:
        flags.append(Flag("image_quality", "view is very dark or blurred", "medium"))
    return tuple(flags)
