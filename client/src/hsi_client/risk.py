"""The risk contract: levels and their bounds, and the assessment every scorer returns.

`risk_score` is an integer 0-100 (clamped); `risk_level` always follows from it: low 0-29,
medium 30-59, high 60-84, critical 85-100.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Self

RiskLevel = Literal["low", "medium", "high", "critical"]
RISK_LEVELS: Final[tuple[RiskLevel, ...]] = ("low", "medium", "high", "critical")
# The lowest score of each level, highest level first.
LEVEL_FLOORS: Final[tuple[tuple[int, RiskLevel], ...]] = (
    (85, "critical"),
    (60, "high"),
    (30, "medium"),
    (0, "low"),
)
SEVERITIES: Final = ("low", "medium", "high")


def level_for(score: float) -> RiskLevel:
    """The level a score belongs to (clamped first)."""
    clamped = clamp_score(score)
    return next(level for floor, level in LEVEL_FLOORS if clamped >= floor)


def level_ranges() -> dict[RiskLevel, tuple[int, int]]:
    """Each level's lowest and highest score, low first."""
    ranges: dict[RiskLevel, tuple[int, int]] = {}
    top = 100
    for floor, level in LEVEL_FLOORS:
        ranges[level] = (floor, top)
        top = floor - 1
    return dict(reversed(ranges.items()))


def describe_levels() -> str:
    """`low 0-29, medium 30-59, ...`: the bounds as text (prompts, docs)."""
    return ", ".join(f"{level} {lo}-{hi}" for level, (lo, hi) in level_ranges().items())


def level_rank(level: str) -> int:
    """0 for low up to 3 for critical: levels compare by rank."""
    return RISK_LEVELS.index(level)


def clamp_score(value: float) -> int:
    """Any finite number to an integer 0-100 (NaN counts as 0)."""
    if not math.isfinite(value):
        return 0 if math.isnan(value) else (100 if value > 0 else 0)
    return max(0, min(100, round(value)))


def as_float(value: Any, default: float = 0.0) -> float:
    """A number from an answer, or `default` for anything else."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True, slots=True)
class RiskFactor:
    """One contribution to a risk score."""

    factor: str
    contribution: float
    description: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a risk factor."""
        return cls(
            factor=str(data.get("factor", "")),
            contribution=as_float(data.get("contribution")),
            description=str(data.get("description", "")),
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the contract shape."""
        return {
            "factor": self.factor,
            "contribution": self.contribution,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class Flag:
    """Something the owner must know beside the score: tampering, a weapon, bad image quality."""

    type: str
    description: str
    severity: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a flag."""
        return cls(
            type=str(data.get("type", "")),
            description=str(data.get("description", "")),
            severity=str(data.get("severity", "")),
        )

    def as_dict(self) -> dict[str, str]:
        """Return the contract shape."""
        return {"type": self.type, "description": self.description, "severity": self.severity}


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """The risk part of an analysis, from the LLM (`source: llm`) or the rules (`rules`)."""

    risk_score: int
    summary: str
    reasoning: str
    source: str = "llm"
    risk_factors: tuple[RiskFactor, ...] = ()
    flags: tuple[Flag, ...] = ()
    entities: tuple[dict[str, Any], ...] = ()
    recommended_action: str | None = None

    @property
    def risk_level(self) -> RiskLevel:
        """Always the level of the score."""
        return level_for(self.risk_score)

    @classmethod
    def build(
        cls,
        score: float,
        summary: str,
        reasoning: str,
        *,
        source: str,
        risk_factors: tuple[RiskFactor, ...] = (),
        flags: tuple[Flag, ...] = (),
        entities: tuple[dict[str, Any], ...] = (),
        recommended_action: str | None = None,
    ) -> Self:
        """An assessment with the score clamped (the level follows from it)."""
        return cls(
            risk_score=clamp_score(score),
            summary=summary,
            reasoning=reasoning,
            source=source,
            risk_factors=risk_factors,
            flags=flags,
            entities=entities,
            recommended_action=recommended_action,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse `risk`; a level that disagrees with the score is recomputed."""
        return cls.build(
            as_float(data["risk_score"]),
            str(data.get("summary", "")),
            str(data.get("reasoning", "")),
            source=str(data.get("source") or "llm"),
            risk_factors=tuple(
                RiskFactor.from_dict(f) for f in data.get("risk_factors") or [] if _is_map(f)
            ),
            flags=tuple(Flag.from_dict(f) for f in data.get("flags") or [] if _is_map(f)),
            entities=tuple(dict(e) for e in data.get("entities") or [] if _is_map(e)),
            recommended_action=data.get("recommended_action"),
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the contract shape."""
        return {
            "risk_score": self.risk_score,
            "risk_level": self.risk_level,
            "summary": self.summary,
            "reasoning": self.reasoning,
            "risk_factors": [f.as_dict() for f in self.risk_factors],
            "entities": list(self.entities),
            "flags": [f.as_dict() for f in self.flags],
            "recommended_action": self.recommended_action,
            "source": self.source,
        }


def _is_map(value: Any) -> bool:
    return isinstance(value, Mapping)
