"""The LLM side of the risk contract: clamping, validation of LLM answers, the schema.

Levels and their bounds are the client library's (client/tests/test_risk.py)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hsi_client import level_for

from ai_server.analysis import risk


@pytest.mark.parametrize(("raw", "clamped"), [(-20, 0), (150, 100), (72.6, 73), ("44", 44)])
def test_scores_are_clamped(raw: Any, clamped: int) -> None:
    text = json.dumps({"risk_score": raw, "summary": "s", "reasoning": "r"})
    assessment = risk.parse_llm_output(text)
    assert assessment.risk_score == clamped
    assert assessment.risk_level == level_for(clamped)


def test_a_level_that_disagrees_with_the_score_is_recomputed() -> None:
    text = json.dumps({"risk_score": 90, "risk_level": "low", "summary": "s", "reasoning": "r"})
    assert risk.parse_llm_output(text).as_dict()["risk_level"] == "critical"


def test_full_answer_keeps_factors_flags_and_action() -> None:
    answer = {
        "reasoning": "A person at night.\nUnknown.",
        "risk_factors": [
            {"factor": "night", "contribution": 20, "description": "late"},
            {"factor": "", "contribution": 5, "description": "dropped: no name"},
            "not an object",
        ],
        "risk_score": 64,
        "risk_level": "high",
        "summary": "Unknown person at the door",
        "recommended_action": "Check the camera",
        "flags": [
            {"type": "tamper", "description": "x", "severity": "high"},
            {"type": "odd", "description": "bad severity", "severity": "extreme"},
        ],
        "extra": "ignored",
    }
    result = risk.parse_llm_output(json.dumps(answer)).as_dict()
    assert result["reasoning"] == "A person at night. Unknown."
    assert result["risk_factors"] == [
        {"factor": "night", "contribution": 20.0, "description": "late"}
    ]
    assert [f["type"] for f in result["flags"]] == ["tamper"]
    assert result["recommended_action"] == "Check the camera"
    assert result["source"] == "llm"
    assert "extra" not in result


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"summary": "s", "reasoning": "r"}', "risk_score"),
        ('{"risk_score": "high", "summary": "s", "reasoning": "r"}', "risk_score"),
        ('{"risk_score": true, "summary": "s", "reasoning": "r"}', "risk_score"),
        ('{"risk_score": 10, "summary": "", "reasoning": 3}', "empty"),
    ],
)
def test_unusable_answers_are_refused(text: str, why: str) -> None:
    with pytest.raises(risk.RiskParseError, match=why):
        risk.parse_llm_output(text)


def test_schema_is_valid_and_bounds_every_string_and_list() -> None:
    jsonschema.Draft202012Validator.check_schema(risk.RISK_SCHEMA)

    def walk(node: dict[str, Any]) -> None:
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node and "pattern" in node
        if node.get("type") == "integer":
            assert "enum" in node  # llama.cpp's grammar ignores minimum/maximum
        if node.get("type") == "array":
            assert "maxItems" in node
            walk(node["items"])
        for child in node.get("properties", {}).values():
            walk(child)

    walk(risk.RISK_SCHEMA)
    assert set(risk.RISK_SCHEMA["required"]) >= {"risk_score", "risk_level", "summary", "reasoning"}


def test_schema_refuses_what_the_contract_forbids() -> None:
    good = {
        "reasoning": "r",
        "risk_factors": [],
        "risk_score": 50,
        "risk_level": "medium",
        "summary": "s",
        "recommended_action": "a",
        "flags": [],
    }
    jsonschema.validate(good, risk.RISK_SCHEMA)
    for bad in (
        {**good, "risk_score": 101},
        {**good, "summary": 'say "hi"'},
        {**good, "risk_level": "extreme"},
        {**good, "summary": "x" * 500},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, risk.RISK_SCHEMA)
