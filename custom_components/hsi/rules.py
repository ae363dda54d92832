"""Deterministic rule-based risk scoring: the fallback when /analyze is unavailable.

Same shape as the server's risk contract, marked `source: "rules"`. The score follows the
object classes, their count, the time of day, the home mode, the dwell time and the
re-identification matches, never a blind constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .api import RiskAssessment, RiskFactor
from .const import ANIMAL_CLASSES, PERSON_CLASSES, VEHICLE_CLASSES
from .models import KnownMatch


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What the rules look at besides the objects."""

    camera_name: str
    time_of_day: str
    home_mode: str | None
    dwell_seconds: float
    known_matches: Sequence[KnownMatch] = ()


def group_of(label: str) -> str:
    """Person / vehicle / animal / other for a detector class."""
    if label in PERSON_CLASSES:
        return "person"
    if label in VEHICLE_CLASSES:
        return "vehicle"
    if label in ANIMAL_CLASSES:
        return "animal"
    return "other"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def score_event(labels: Sequence[str], context: RuleContext) -> RiskAssessment:
    """Score one event from the classes of its objects (one label per object)."""
    counts = {"person": 0, "vehicle": 0, "animal": 0, "other": 0}
    for label in labels:
        counts[group_of(label)] += 1
    factors: list[RiskFactor] = []

    def add(factor: str, contribution: float, description: str) -> None:
        factors.append(RiskFactor(factor, contribution, description))

    persons, vehicles = counts["person"], counts["vehicle"]
    if persons:
        add("person", 25, f"{_plural(persons, 'person')} detected")
        if persons > 1:
            add("group", min(8 * (persons - 1), 16), "several people together")
    if vehicles:
        add("vehicle", 12, f"{_plural(vehicles, 'vehicle')} detected")
    if counts["animal"]:
        add("animal", 3, "animal activity")
    if counts["other"]:
        add("object", 2, "other objects in view")

    if context.time_of_day == "night":
        if persons:
            add("night", 20, "person present at night")
        elif vehicles:
            add("night", 8, "vehicle present at night")
    mode = (context.home_mode or "").lower()
    if persons and any(word in mode for word in ("away", "vacation")):
        add("home_mode", 25, "nobody is home")
    elif persons and "night" in mode:
        add("home_mode", 10, "household is asleep")
    if persons and context.dwell_seconds >= 180:
        add("dwell", 20, f"lingered for {int(context.dwell_seconds)} s")
    elif persons and context.dwell_seconds >= 60:
        add("dwell", 10, f"lingered for {int(context.dwell_seconds)} s")

    enrolled_persons = {m.entry_id for m in context.known_matches if m.enrolled}
    repeat_unknown = [m for m in context.known_matches if not m.enrolled and m.label == "person"]
    if enrolled_persons:
        add("known", -30 * len(enrolled_persons), "enrolled household member recognised")
    if any(m.times_seen_today >= 3 for m in repeat_unknown):
        add("repeat_visit", 10, "same unknown person seen several times today")

    score = sum(f.contribution for f in factors)
    parts = [
        _plural(count, word)
        for word, count in (
            ("person", persons),
            ("vehicle", vehicles),
            ("animal", counts["animal"]),
        )
        if count
    ]
    seen = ", ".join(parts) if parts else "no relevant objects"
    summary = f"{seen.capitalize()} at {context.camera_name} ({context.time_of_day})"
    reasoning = (
        "Rule-based assessment (no language model): "
        + ("; ".join(f"{f.description} ({f.contribution:+g})" for f in factors) or "nothing")
        + "."
    )
    level_action = "review the snapshot" if score >= 30 else None
    return RiskAssessment.build(
        score,
        summary,
        reasoning,
        risk_factors=factors,
        recommended_action=level_action,
        source="rules",
    )
