"""The risk contract: levels follow clamped scores; assessments parse and round-trip."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hsi_client import RISK_LEVELS, Flag, RiskAssessment, RiskFactor, level_for, level_rank
from hsi_client.risk import as_float, clamp_score, describe_levels, level_ranges


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, "low"),
        (29, "low"),
        (30, "medium"),
        (59, "medium"),
        (60, "high"),
        (84, "high"),
        (85, "critical"),
        (100, "critical"),
        (29.4, "low"),
        (29.6, "medium"),
        (-5, "low"),
        (140, "critical"),
        (math.nan, "low"),
        (math.inf, "critical"),
        (-math.inf, "low"),
    ],
)
def test_level_for(score: float, level: str) -> None:
    """Each level's bounds; scores are clamped (and rounded) first."""
    assert level_for(score) == level


@pytest.mark.parametrize(
    ("value", "clamped"),
    [(-1, 0), (0, 0), (50.4, 50), (50.6, 51), (100, 100), (1e9, 100), (math.nan, 0)],
)
def test_clamp_score(value: float, clamped: int) -> None:
    """Any number to an integer 0-100; NaN counts as 0."""
    assert clamp_score(value) == clamped
    assert isinstance(clamp_score(value), int)


def test_level_rank() -> None:
    """Levels compare by rank; an unknown level is an error."""
    assert [level_rank(level) for level in RISK_LEVELS] == [0, 1, 2, 3]
    assert level_rank("critical") > level_rank("medium")
    with pytest.raises(ValueError):  # noqa: PT011 - no message is promised
        level_rank("severe")


def test_level_ranges() -> None:
    """The bounds, low first, and as text for prompts and docs."""
    assert level_ranges() == {
        "low": (0, 29),
        "medium": (30, 59),
        "high": (60, 84),
        "critical": (85, 100),
    }
    assert describe_levels() == "low 0-29, medium 30-59, high 60-84, critical 85-100"


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [(3, 0.0, 3.0), ("2.5", 0.0, 2.5), (None, 0.0, 0.0), ("x", -1.0, -1.0), ([1], 7.0, 7.0)],
)
def test_as_float(value: Any, default: float, expected: float) -> None:
    """Numbers (and numeric strings) from an answer; anything else is the default."""
    assert as_float(value, default) == expected


def test_from_dict_recomputes_a_disagreeing_level() -> None:
    """The level always follows the score; scores are clamped."""
    risk = RiskAssessment.from_dict(
        {"risk_score": 140, "risk_level": "low", "summary": "s", "reasoning": "r"}
    )
    assert (risk.risk_score, risk.risk_level, risk.source) == (100, "critical", "llm")
    low = RiskAssessment.from_dict({"risk_score": -5, "summary": "", "reasoning": ""})
    assert (low.risk_score, low.risk_level) == (0, "low")
    wrong = RiskAssessment.from_dict({"risk_score": "45", "risk_level": "critical"})
    assert (wrong.risk_score, wrong.risk_level) == (45, "medium")
    assert (wrong.summary, wrong.reasoning) == ("", "")


def test_from_dict_is_lenient_and_typed() -> None:
    """Factors and flags become tuples of dataclasses; entries that are no objects are dropped."""
    risk = RiskAssessment.from_dict(
        {
            "risk_score": 61.6,
            "summary": "s",
            "reasoning": "r",
            "source": "rules",
            "risk_factors": [{"factor": "person", "contribution": "25", "description": "p"}, 3],
            "flags": [{"type": "tamper", "description": "moved", "severity": "high"}, "x"],
            "entities": [{"type": "person", "count": 1}, None],
            "recommended_action": "Check",
        }
    )
    assert risk.risk_score == 62
    assert risk.risk_level == "high"
    assert risk.source == "rules"
    assert risk.risk_factors == (RiskFactor("person", 25.0, "p"),)
    assert risk.flags == (Flag("tamper", "moved", "high"),)
    assert risk.entities == ({"type": "person", "count": 1},)
    assert risk.recommended_action == "Check"
    bare = RiskAssessment.from_dict({"risk_score": 10, "source": None, "risk_factors": None})
    assert (bare.source, bare.risk_factors, bare.flags, bare.entities) == ("llm", (), (), ())
    assert RiskFactor.from_dict({}) == RiskFactor("", 0.0, "")
    assert Flag.from_dict({}) == Flag("", "", "")
    with pytest.raises(KeyError):
        RiskAssessment.from_dict({"summary": "no score"})


def test_as_dict_round_trip() -> None:
    """as_dict is the contract shape, with the level; from_dict reads it back unchanged."""
    risk = RiskAssessment.build(
        72.4,
        "Unknown person",
        "Night, away.",
        source="rules",
        risk_factors=(RiskFactor("person", 25.0, "1 person"), RiskFactor("night", 20.0, "night")),
        flags=(Flag("tamper", "camera view changed", "high"),),
        entities=({"type": "person", "count": 1, "max_confidence": 0.9},),
        recommended_action="Check the camera now.",
    )
    data = risk.as_dict()
    assert data == {
        "risk_score": 72,
        "risk_level": "high",
        "summary": "Unknown person",
        "reasoning": "Night, away.",
        "risk_factors": [
            {"factor": "person", "contribution": 25.0, "description": "1 person"},
            {"factor": "night", "contribution": 20.0, "description": "night"},
        ],
        "entities": [{"type": "person", "count": 1, "max_confidence": 0.9}],
        "flags": [{"type": "tamper", "description": "camera view changed", "severity": "high"}],
        "recommended_action": "Check the camera now.",
        "source": "rules",
    }
    assert RiskAssessment.from_dict(data) == risk
    assert isinstance(risk.risk_factors, tuple)
    assert isinstance(risk.flags, tuple)


def test_risk_level_is_a_property_of_the_score() -> None:
    """risk_level is no field: it cannot disagree with the score."""
    risk = RiskAssessment(risk_score=85, summary="", reasoning="")
    assert risk.risk_level == "critical"
    assert risk.source == "llm"
    assert "risk_level" not in RiskAssessment.__dataclass_fields__
