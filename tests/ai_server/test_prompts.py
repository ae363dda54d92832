"""The risk prompt: stable system prefix, context tiers, token budget."""

from __future__ import annotations

from typing import Any

from hsi_client import AnalyzedObject

from ai_server.analysis.event import parse_metadata
from ai_server.analysis.prompts import SYSTEM_PROMPT, EventFacts, build_prompt
from ai_server.imaging import Box


def _count(text: str) -> int:
    return len(text) // 4 + 1


def _facts(**context: Any) -> EventFacts:
    metadata = parse_metadata(
        {
            "camera": {"name": "Front Door", "description": "porch"},
            "started_at": "2026-11-26T23:10:00",
            "context": context,
        },
        2,
    )
    objects = [
        AnalyzedObject(
            "person", 0.91, 0, Box(0, 0, 5, 5), {"clothing": "dark hoodie", "face_visible": False}
        ),
        AnalyzedObject("car", 0.8, 1, Box(0, 0, 5, 5), {"plate": "AB123CD", "color": "red"}),
    ]
    return EventFacts(
        metadata, objects, 2, {0: "a person at a door"}, [{"blur": 12.5, "brightness": 0.1}]
    )


def test_system_prompt_is_the_same_for_every_event() -> None:
    first = build_prompt(
        _facts(home_mode="away"), count_tokens=_count, context_size=4096, answer_tokens=1000
    )
    second = build_prompt(
        _facts(home_mode="home"), count_tokens=_count, context_size=4096, answer_tokens=1000
    )
    assert first.messages[0] == second.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert first.user != second.user


def test_every_tier_appears_in_order_when_it_fits() -> None:
    facts = _facts(
        home_mode="away",
        zones="porch",
        known_matches=[{"class": "person", "name": "Ana", "enrolled": True}],
    )
    prompt = build_prompt(facts, count_tokens=_count, context_size=4096, answer_tokens=1000)
    assert all(state == "full" for state in prompt.tiers.values())
    order = [
        "Event:",
        "Context:",
        "Plates, faces and text:",
        "Captions and recognition:",
        "Attributes:",
        "Image quality:",
    ]
    positions = [prompt.user.index(heading) for heading in order]
    assert positions == sorted(positions)
    for fact in (
        "Front Door",
        "night",
        "person",
        "AB123CD",
        "dark hoodie",
        "Ana",
        "a person at a door",
        "blur 12.5",
    ):
        assert fact in prompt.user
    assert prompt.tokens <= 4096 - 1000


def test_tight_budget_drops_the_least_important_tiers_first() -> None:
    facts = _facts(home_mode="away", zones="porch", recent_events=[{"summary": "x" * 100}] * 5)
    full = build_prompt(facts, count_tokens=_count, context_size=100_000, answer_tokens=0)
    system = _count(SYSTEM_PROMPT)
    tight = build_prompt(
        facts, count_tokens=_count, context_size=system + 32 + 130, answer_tokens=0
    )
    assert tight.tiers["event"] == "full"  # never dropped
    assert tight.tiers["image_quality"] == "dropped"
    assert len(tight.user) < len(full.user)
    assert tight.tokens <= system + 130 + 32


def test_nothing_detected_is_said_plainly() -> None:
    metadata = parse_metadata({}, 1)
    prompt = build_prompt(
        EventFacts(metadata, [], 1), count_tokens=_count, context_size=4096, answer_tokens=100
    )
    assert "nothing detected" in prompt.user
    assert prompt.tiers["context"] == "empty"
