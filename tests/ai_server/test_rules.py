"""The rule-based scorer: every documented factor moves the score, deterministically."""

from __future__ import annotations

from typing import Any

import pytest

from ai_server.analysis import rules
from ai_server.analysis.event import EventObject, parse_metadata
from ai_server.imaging import Box


def _objects(*labels: str, frame: int = 0) -> list[EventObject]:
    return [EventObject(label, 0.9, frame, Box(0, 0, 10, 10)) for label in labels]


def _meta(**context: Any) -> Any:
    data: dict[str, Any] = {"camera": {"name": "Porch"}, "context": context}
    for key in ("started_at", "ended_at"):
        if key in context:
            data[key] = context.pop(key)
    return parse_metadata(data, 1)


def _factors(assessment: Any) -> dict[str, float]:
    return {f.factor: f.contribution for f in assessment.risk_factors}


def test_nothing_in_view_scores_zero() -> None:
    result = rules.score([], _meta(time_of_day="afternoon"))
    assert result.risk_score == 0 and result.risk_level == "low" and result.source == "rules"
    assert "No objects" in result.summary


@pytest.mark.parametrize(
    ("labels", "context", "expected", "factors"),
    [
        (("person",), {"time_of_day": "afternoon"}, 25, {"person": 25}),
        (
            ("person", "person", "person"),
            {"time_of_day": "morning"},
            41,
            {"person": 25, "group": 16},
        ),
        (("car",), {"time_of_day": "night"}, 20, {"vehicle": 12, "night": 8}),
        (("dog",), {"time_of_day": "night"}, 3, {"animal": 3}),
        (
            ("person",),
            {"time_of_day": "night", "home_mode": "away"},
            70,
            {"person": 25, "night": 20, "home_mode": 25},
        ),
        (("person", "knife"), {"time_of_day": "afternoon"}, 55, {"person": 25, "weapon_like": 30}),
        (
            ("person",),
            {"time_of_day": "evening", "home_mode": "night"},
            35,
            {"person": 25, "home_mode": 10},
        ),
    ],
)
def test_documented_factors(
    labels: tuple[str, ...], context: dict[str, Any], expected: int, factors: dict[str, float]
) -> None:
    result = rules.score(_objects(*labels), _meta(**context))
    assert result.risk_score == expected
    assert _factors(result) == factors
    assert result.risk_level == rules.risk.level_for(expected)
    assert result.recommended_action


def test_dwell_counts_for_people() -> None:
    short = rules.score(
        _objects("person"), _meta(started_at="2026-01-01T12:00:00", ended_at="2026-01-01T12:01:30")
    )
    long = rules.score(
        _objects("person"), _meta(started_at="2026-01-01T12:00:00", ended_at="2026-01-01T12:05:00")
    )
    assert _factors(short)["dwell"] == 10 and _factors(long)["dwell"] == 20


def test_enrolled_household_member_lowers_and_repeat_visitor_raises() -> None:
    known = rules.score(
        _objects("person"),
        _meta(
            time_of_day="night",
            known_matches=[{"class": "person", "enrolled": True, "name": "Ana"}],
        ),
    )
    assert _factors(known)["known"] == -30 and known.risk_score == 15
    repeat = rules.score(
        _objects("person"),
        _meta(known_matches=[{"class": "person", "enrolled": False, "times_seen_today": 4}]),
    )
    assert _factors(repeat)["repeat"] == 10


def test_same_person_in_many_frames_is_one_person() -> None:
    objects = [
        *_objects("person", frame=0),
        *_objects("person", frame=1),
        *_objects("person", frame=2),
    ]
    result = rules.score(objects, _meta(time_of_day="afternoon"))
    assert result.risk_score == 25
    assert result.entities[0] == {"type": "person", "count": 1, "max_confidence": 0.9}


def test_tamper_and_image_quality() -> None:
    quality = rules.quality_of([{"scene_change": {"changed": True}, "brightness": 0.02}])
    result = rules.score([], _meta(), quality)
    assert _factors(result) == {"tamper": 30, "view": 10}
    assert {f.type for f in result.flags} == {"tamper", "image_quality"}


def test_is_deterministic() -> None:
    args = (_objects("person", "car"), _meta(time_of_day="night", home_mode="vacation"))
    assert rules.score(*args) == rules.score(*args)
