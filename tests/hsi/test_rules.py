"""The rule-based fallback scorer: deterministic, context-sensitive, never a constant."""

from __future__ import annotations

from custom_components.hsi.models import KnownMatch
from custom_components.hsi.rules import RuleContext, group_of, score_event


def ctx(**changes: object) -> RuleContext:
    """A daytime context at home."""
    base: dict[str, object] = {
        "camera_name": "Door",
        "time_of_day": "afternoon",
        "home_mode": "home",
        "dwell_seconds": 5,
        "known_matches": (),
    }
    return RuleContext(**(base | changes))  # type: ignore[arg-type]


def match(enrolled: bool, times: int = 1, entry_id: str = "a") -> KnownMatch:
    """A gallery match."""
    return KnownMatch(entry_id, "person", "Alice" if enrolled else None, enrolled, 0.95, times)


def test_groups() -> None:
    """Detector classes fall into groups."""
    assert [group_of(c) for c in ("person", "truck", "cat", "chair")] == [
        "person",
        "vehicle",
        "animal",
        "other",
    ]


def test_context_raises_and_lowers_risk() -> None:
    """Night, away, dwell and strangers raise the score; household members lower it."""
    day = score_event(["person"], ctx())
    assert day.source == "rules"
    assert day.risk_level == "low"
    night = score_event(["person"], ctx(time_of_day="night"))
    away = score_event(["person"], ctx(time_of_day="night", home_mode="armed_away"))
    lingering = score_event(
        ["person", "person"], ctx(time_of_day="night", home_mode="armed_away", dwell_seconds=200)
    )
    assert day.risk_score < night.risk_score < away.risk_score < lingering.risk_score
    assert lingering.risk_level == "critical"
    assert score_event(["person"], ctx(home_mode="armed_night")).risk_score > day.risk_score
    assert score_event(["person"], ctx(dwell_seconds=90)).risk_score > day.risk_score
    known = score_event(["person"], ctx(time_of_day="night", known_matches=[match(True)]))
    assert known.risk_score < night.risk_score
    repeat = score_event(["person"], ctx(known_matches=[match(False, times=3)]))
    assert repeat.risk_score > day.risk_score
    assert "Rule-based" in repeat.reasoning


def test_other_objects() -> None:
    """Vehicles at night, animals and other objects each count a little."""
    car = score_event(["car"], ctx())
    assert score_event(["car"], ctx(time_of_day="night")).risk_score > car.risk_score
    assert score_event(["dog"], ctx()).risk_score == 3
    assert score_event(["chair"], ctx()).risk_score == 2
    empty = score_event([], ctx())
    assert empty.risk_score == 0
    assert empty.summary == "No relevant objects at Door (afternoon)"
    assert empty.recommended_action is None
