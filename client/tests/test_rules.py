"""The ONE rules scorer: every documented factor moves the score, deterministically.

Ported from the server's scorer tests and the integration's former scorer tests. Where the two
scorers disagreed, the library follows the server; each decided case has a test of its own below.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hsi_client import (
    AnalyzedObject,
    BoundingBox,
    CameraInfo,
    EventContext,
    EventMetadata,
    KnownMatch,
    RiskAssessment,
    level_for,
)
from hsi_client.rules import ACTIONS, Quality, distinct_counts, entities, quality_of, score

NOON = datetime(2026, 1, 1, 12, 0)


def objects(*labels: str, frame: int = 0, confidence: float = 0.9) -> list[AnalyzedObject]:
    """One object per label, all on one frame."""
    return [AnalyzedObject(label, confidence, frame, BoundingBox(0, 0, 10, 10)) for label in labels]


def meta(
    time_of_day: str | None = "afternoon",
    home_mode: str | None = "home",
    dwell_seconds: float | None = None,
    known_matches: tuple[KnownMatch, ...] = (),
    camera: str = "Porch",
    started_at: datetime | None = None,
) -> EventMetadata:
    """A daytime event at home, unless told otherwise."""
    ended_at = None
    if dwell_seconds is not None:
        started_at = started_at or NOON
        ended_at = started_at + timedelta(seconds=dwell_seconds)
    return EventMetadata(
        camera=CameraInfo(name=camera),
        started_at=started_at,
        ended_at=ended_at,
        context=EventContext(
            time_of_day=time_of_day, home_mode=home_mode, known_matches=known_matches
        ),
    )


def match(
    enrolled: bool,
    times: int = 1,
    gallery_id: str = "a",
    label: str = "person",
    name: str | None = None,
) -> KnownMatch:
    """A gallery match."""
    return KnownMatch(
        gallery_id, label, name or ("Alice" if enrolled else None), enrolled, 0.95, times
    )


def factors(assessment: RiskAssessment) -> dict[str, float]:
    """Factor name -> contribution."""
    return {f.factor: f.contribution for f in assessment.risk_factors}


# The server's documented factors ---------------------------------------------------------


def test_nothing_in_view_scores_zero() -> None:
    """No objects: 0, low, and a summary that says so."""
    result = score([], meta(camera="Door"))
    assert (result.risk_score, result.risk_level, result.source) == (0, "low", "rules")
    assert result.summary == "No objects of interest at Door."
    assert result.reasoning == "Rule-based score: nothing in view raises the risk."
    # The server's rule: every assessment carries the action of its level (the integration's old
    # scorer had none below 30).
    assert result.recommended_action == ACTIONS["low"]
    assert result.risk_factors == ()
    assert result.flags == ()
    assert result.entities == ()


@pytest.mark.parametrize(
    ("labels", "context", "expected", "expected_factors"),
    [
        (("person",), {}, 25, {"person": 25}),
        (
            ("person", "person", "person"),
            {"time_of_day": "morning"},
            41,
            {"person": 25, "group": 16},
        ),
        (("person", "person"), {}, 33, {"person": 25, "group": 8}),
        (("person",) * 6, {}, 41, {"person": 25, "group": 16}),
        (("car",), {}, 12, {"vehicle": 12}),
        (("car",), {"time_of_day": "night"}, 20, {"vehicle": 12, "night": 8}),
        (("dog",), {"time_of_day": "night"}, 3, {"animal": 3}),
        (("chair",), {}, 2, {"object": 2}),
        (
            ("person",),
            {"time_of_day": "night", "home_mode": "away"},
            70,
            {"person": 25, "night": 20, "home_mode": 25},
        ),
        (("person",), {"home_mode": "armed_away"}, 50, {"person": 25, "home_mode": 25}),
        (("person",), {"home_mode": "Vacation"}, 50, {"person": 25, "home_mode": 25}),
        (("car",), {"home_mode": "away"}, 22, {"vehicle": 12, "home_mode": 10}),
        (("dog",), {"home_mode": "away"}, 3, {"animal": 3}),
        (("person", "knife"), {}, 55, {"person": 25, "weapon_like": 30}),
        (
            ("person", "baseball bat", "scissors"),
            {},
            55,
            {"person": 25, "weapon_like": 30},
        ),
        (
            ("person",),
            {"time_of_day": "evening", "home_mode": "night"},
            35,
            {"person": 25, "home_mode": 10},
        ),
        (("person",), {"home_mode": "armed_night"}, 35, {"person": 25, "home_mode": 10}),
        (("person",), {"home_mode": "sleep"}, 35, {"person": 25, "home_mode": 10}),
        (("car",), {"home_mode": "night"}, 12, {"vehicle": 12}),
        (("person",), {"home_mode": None}, 25, {"person": 25}),
        (
            ("person", "car", "dog"),
            {},
            40,
            {"person": 25, "vehicle": 12, "animal": 3},
        ),
    ],
)
def test_documented_factors(
    labels: tuple[str, ...],
    context: dict[str, Any],
    expected: int,
    expected_factors: dict[str, float],
) -> None:
    """Each factor adds its documented points; the level and the action follow the score."""
    result = score(objects(*labels), meta(**context))
    assert result.risk_score == expected
    assert factors(result) == expected_factors
    assert result.risk_level == level_for(expected)
    assert result.recommended_action == ACTIONS[result.risk_level]


def test_context_raises_and_lowers_risk() -> None:
    """Night, away, dwell and strangers raise the score; household members lower it."""
    day = score(objects("person"), meta())
    assert day.source == "rules"
    assert day.risk_level == "low"
    night = score(objects("person"), meta(time_of_day="night"))
    away = score(objects("person"), meta(time_of_day="night", home_mode="armed_away"))
    lingering = score(
        objects("person", "person"),
        meta(time_of_day="night", home_mode="armed_away", dwell_seconds=200),
    )
    assert day.risk_score < night.risk_score < away.risk_score < lingering.risk_score
    assert lingering.risk_level == "critical"
    assert score(objects("person"), meta(home_mode="armed_night")).risk_score > day.risk_score
    assert score(objects("person"), meta(dwell_seconds=90)).risk_score > day.risk_score
    known = score(objects("person"), meta(time_of_day="night", known_matches=(match(True),)))
    assert known.risk_score < night.risk_score
    repeat = score(objects("person"), meta(known_matches=(match(False, times=3),)))
    assert repeat.risk_score > day.risk_score
    assert "Rule-based" in repeat.reasoning


def test_other_objects() -> None:
    """Vehicles at night, animals and other objects each count a little."""
    car = score(objects("car"), meta())
    assert score(objects("car"), meta(time_of_day="night")).risk_score > car.risk_score
    assert score(objects("dog"), meta()).risk_score == 3
    assert score(objects("chair"), meta()).risk_score == 2


@pytest.mark.parametrize(
    ("seconds", "dwell"),
    [(None, None), (30, None), (59, None), (60, 10), (90, 10), (179, 10), (180, 20), (600, 20)],
)
def test_dwell_counts_for_people(seconds: float | None, dwell: float | None) -> None:
    """+10 from 60 s, +20 from 180 s, with a person."""
    result = score(objects("person"), meta(dwell_seconds=seconds))
    assert factors(result).get("dwell") == dwell
    if dwell:
        assert f"lingered for {int(seconds or 0)} s" in result.reasoning


def test_dwell_needs_a_person() -> None:
    """A car parked for ten minutes does not linger."""
    assert "dwell" not in factors(score(objects("car"), meta(dwell_seconds=600)))


def test_enrolled_household_member_lowers_and_repeat_visitor_raises() -> None:
    """The server's numbers: -30 for a known face at night, +10 for a frequent stranger."""
    known = score(
        objects("person"),
        meta(time_of_day="night", known_matches=(match(True, name="Ana"),)),
    )
    assert factors(known)["known"] == -30
    assert known.risk_score == 15
    assert "recognised: Ana" in known.reasoning
    repeat = score(objects("person"), meta(known_matches=(match(False, times=4),)))
    assert factors(repeat)["repeat"] == 10


def test_same_person_in_many_frames_is_one_person() -> None:
    """Counts are per class in the busiest frame, not per detection."""
    seen = [*objects("person", frame=0), *objects("person", frame=1), *objects("person", frame=2)]
    result = score(seen, meta())
    assert result.risk_score == 25
    assert result.entities[0] == {"type": "person", "count": 1, "max_confidence": 0.9}
    assert distinct_counts(
        [*objects("person", "person", frame=0), *objects("person", "car", frame=1)]
    ) == {"person": 2, "car": 1}


def test_tamper_and_image_quality() -> None:
    """A scene change and a dark view add points and raise flags."""
    quality = quality_of([{"scene_change": {"changed": True}, "brightness": 0.02}])
    result = score([], meta(), quality)
    assert factors(result) == {"tamper": 30, "view": 10}
    assert {(f.type, f.severity) for f in result.flags} == {
        ("tamper", "high"),
        ("image_quality", "medium"),
    }
    assert result.risk_score == 40


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        ([], Quality()),
        ([{}], Quality()),
        # The /enrich `image` shape: scene_change is {similarity, changed}.
        ([{"scene_change": {"similarity": 0.95, "changed": False}}], Quality()),
        ([{"scene_change": {"similarity": 0.2, "changed": True}}], Quality(scene_change=True)),
        ([{"scene_change": True}], Quality(scene_change=True)),
        ([{"scene_change": None}], Quality()),
        ([{"brightness": 0.5}, {"brightness": 0.02}], Quality(dark=True)),
        # "very dark" is darker than the server's `dark` flag (mean luma below 0.12 by default).
        ([{"brightness": 0.1, "dark": True}], Quality()),
        ([{"brightness": True}], Quality()),
        ([{"brightness": "0.01"}], Quality()),
        # `blur` is the variance of the Laplacian (lower is blurrier, no fixed scale): a sharp
        # view is no blurred view; the server's `blurry` verdict decides.
        ([{"blur": 350.0, "blurry": False}], Quality()),
        ([{"blur": 5.0, "blurry": True}], Quality(blurred=True)),
        ([{"blur": 350.0}], Quality()),
        (
            [{"brightness": 0.5, "blurry": False}, {"scene_change": {"changed": True}}],
            Quality(scene_change=True),
        ),
    ],
)
def test_quality_of(images: list[dict[str, Any]], expected: Quality) -> None:
    """The /enrich `image` facts of each frame to the three facts the rules use."""
    assert quality_of(images) == expected


def test_is_deterministic() -> None:
    """The same event scores the same, every time."""
    args = (objects("person", "car"), meta(time_of_day="night", home_mode="vacation"))
    assert score(*args) == score(*args)


def test_score_is_clamped() -> None:
    """Far above 100 is 100; below 0 is 0; the reasoning reports the clamped score."""
    high = score(
        objects("person", "person", "person", "knife"),
        meta(time_of_day="night", home_mode="away", dwell_seconds=300),
        Quality(scene_change=True, dark=True),
    )
    assert sum(factors(high).values()) > 100
    assert (high.risk_score, high.risk_level) == (100, "critical")
    assert high.recommended_action == ACTIONS["critical"]
    assert high.reasoning.startswith("Rule-based score 100: ")
    known = score(objects("person"), meta(known_matches=(match(True),)))
    assert sum(factors(known).values()) == -5
    assert (known.risk_score, known.risk_level) == (0, "low")


def test_factors_sorted_by_weight_and_reasoning_lists_them() -> None:
    """Largest contributions first; the reasoning names each factor with its points."""
    result = score(objects("person", "car"), meta(time_of_day="night", home_mode="away"))
    assert [f.factor for f in result.risk_factors] == ["person", "home_mode", "night", "vehicle"]
    assert result.reasoning == (
        "Rule-based score 82: 1 person in view (+25); 1 vehicle in view (+12); "
        "person present at night (+20); nobody is home (+25)."
    )


def test_summary() -> None:
    """The three most numerous classes, the camera, and the time when it is night or evening."""
    seen = objects("person", "person", "car", "dog", "cat")
    assert score(seen, meta(time_of_day="night")).summary == (
        "2 persons, 1 car, 1 dog at Porch at night."
    )
    assert (
        score(objects("car"), meta(time_of_day="evening")).summary == "1 car at Porch at evening."
    )
    assert score(objects("car"), meta(time_of_day="morning")).summary == "1 car at Porch."
    unnamed = EventMetadata(camera=CameraInfo(id="camera.porch"))
    assert score(objects("car"), unnamed).summary == "1 car at camera.porch."
    assert score(objects("car"), EventMetadata()).summary == "1 car at camera."


def test_time_of_day_from_started_at() -> None:
    """Without a time of day in the context, the start time's hour decides."""
    late = meta(time_of_day=None, started_at=datetime(2026, 1, 1, 23, 30))
    assert factors(score(objects("person"), late)) == {"person": 25, "night": 20}
    assert factors(score(objects("person"), meta(time_of_day="NIGHT")))["night"] == 20


def test_entities() -> None:
    """Per class: distinct count and best confidence, most numerous first, then by name."""
    seen = [
        *objects("person", "person", confidence=0.7),
        AnalyzedObject("person", 0.95, 1, BoundingBox(0, 0, 1, 1)),
        *objects("dog", "car"),
    ]
    assert entities(seen) == (
        {"type": "person", "count": 2, "max_confidence": 0.95},
        {"type": "car", "count": 1, "max_confidence": 0.9},
        {"type": "dog", "count": 1, "max_confidence": 0.9},
    )
    assert score(seen, meta()).entities == entities(seen)


# Where the server's and the integration's former scorers disagreed: the server's rule ---------


def test_known_lowers_once_when_every_person_is_enrolled() -> None:
    """-30 once, however many enrolled members: not -30 per member."""
    both = score(
        objects("person", "person"),
        meta(known_matches=(match(True, gallery_id="a"), match(True, gallery_id="b", name="Bo"))),
    )
    assert [f.factor for f in both.risk_factors].count("known") == 1
    assert factors(both)["known"] == -30
    assert both.risk_score == 25 + 8 - 30
    assert "recognised: Alice, Bo" in both.reasoning


def test_stranger_beside_household_member_is_not_lowered() -> None:
    """Two people, one of them enrolled: the stranger keeps the score up."""
    result = score(objects("person", "person"), meta(known_matches=(match(True),)))
    assert "known" not in factors(result)
    assert result.risk_score == 33


def test_one_member_matched_twice_is_not_two_members() -> None:
    """Two matches of the same gallery entry count as one enrolled person."""
    twice = (match(True, gallery_id="a"), match(True, gallery_id="a"))
    result = score(objects("person", "person"), meta(known_matches=twice))
    assert "known" not in factors(result)
    single = score(objects("person"), meta(known_matches=twice))
    assert factors(single)["known"] == -30
    assert single.reasoning.count("Alice") == 1


def test_known_needs_a_person_match_and_a_person() -> None:
    """An enrolled car lowers nothing; an enrolled match without a person in view lowers nothing."""
    car = score(objects("person"), meta(known_matches=(match(True, label="car"),)))
    assert "known" not in factors(car)
    nobody = score(objects("car"), meta(known_matches=(match(True),)))
    assert "known" not in factors(nobody)
    assert nobody.risk_score == 12


def test_holiday_counts_as_away() -> None:
    """'holiday' is away, like 'away' and 'vacation'."""
    result = score(objects("person"), meta(home_mode="holiday"))
    assert factors(result)["home_mode"] == 25
    assert "nobody is home" in result.reasoning


def test_repeat_factor_name() -> None:
    """The factor is `repeat` (the integration called it `repeat_visit`)."""
    result = score(objects("person"), meta(known_matches=(match(False, times=3),)))
    assert "repeat" in factors(result)
    assert "repeat_visit" not in factors(result)
    # Fewer than 3 sightings, an enrolled match or no person in view: no repeat.
    assert "repeat" not in factors(
        score(objects("person"), meta(known_matches=(match(False, times=2),)))
    )
    assert "repeat" not in factors(score(objects("car"), meta(known_matches=(match(False, 5),))))
    assert "repeat" not in factors(
        score(objects("person"), meta(known_matches=(match(False, 5, label="car"),)))
    )


def test_weapon_like() -> None:
    """A knife, bat or scissors with a person: +30; without a person it is just an object."""
    result = score(objects("person", "knife"), meta())
    assert factors(result)["weapon_like"] == 30
    assert "knife seen with a person" in result.reasoning
    alone = score(objects("knife"), meta())
    assert factors(alone) == {"object": 2}


def test_airplane_is_not_a_vehicle() -> None:
    """An aeroplane overhead is no visitor: an other object, not a vehicle."""
    result = score(objects("airplane"), meta(time_of_day="night", home_mode="away"))
    assert factors(result) == {"object": 2}
    assert score(objects("boat"), meta()).risk_score == 12


def test_object_only_counts_without_a_person() -> None:
    """Other objects add +2 only when no person is in view."""
    assert factors(score(objects("person", "chair", "backpack"), meta())) == {"person": 25}
    assert factors(score(objects("chair", "backpack"), meta())) == {"object": 2}
