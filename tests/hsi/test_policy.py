"""The record and alert policy, without Home Assistant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hsi_client import RiskAssessment

from custom_components.hsi.models import SecurityEvent
from custom_components.hsi.policy import Action, decide, is_threat

START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
COOLDOWN = 300.0


def event(
    event_id: str,
    score: int,
    *,
    at: float = 0,
    gallery: set[str] | None = None,
    preliminary: bool = False,
    notify: bool = True,
) -> SecurityEvent:
    """An event `at` seconds into the day, lasting 10 s."""
    started = START + timedelta(seconds=at)
    return SecurityEvent(
        event_id=event_id,
        camera_id="cam",
        camera_name="Door",
        camera_entity="camera.door",
        trigger="motion",
        started_at=started,
        ended_at=started + timedelta(seconds=10),
        objects=[],
        risk=RiskAssessment.build(score, "s", "r", source="llm"),
        preliminary=preliminary,
        notify=notify,
        gallery_ids=gallery or set(),
    )


def test_a_first_event_is_new_and_alerted() -> None:
    new = event("e1", 40)
    decision = decide(new, None, None, COOLDOWN)
    assert decision.action is Action.NEW and not decision.update
    assert decision.event.notify
    assert decision.event is not new  # nothing passed in is changed


def test_the_full_analysis_updates_the_preliminary_event() -> None:
    preliminary = event("e1", 40, preliminary=True, notify=True)
    same_level = decide(event("e1", 45), preliminary, preliminary, COOLDOWN)
    assert same_level.action is Action.UPDATE and same_level.update
    assert not same_level.event.notify  # the preliminary alert already said "medium"
    higher = decide(event("e1", 70), preliminary, preliminary, COOLDOWN)
    assert higher.event.notify  # the level changed: the alert is replaced
    unalerted = event("e1", 40, preliminary=True, notify=False)
    assert decide(event("e1", 40), unalerted, None, COOLDOWN).event.notify


def test_the_same_visitor_within_the_cooldown_is_folded_in() -> None:
    first = event("e1", 40, gallery={"v1"})
    again = decide(event("e2", 35, at=100, gallery={"v1"}), first, first, COOLDOWN)
    assert again.action is Action.REPEAT and again.update
    assert again.event.event_id == "e1"
    assert again.event.occurrences == 2
    assert again.event.ended_at == START + timedelta(seconds=110)
    assert not again.event.notify


def test_what_is_not_a_repeat() -> None:
    first = event("e1", 40, gallery={"v1"})
    cases = {
        "someone new": event("e2", 40, at=100, gallery={"v1", "v2"}),
        "after the cooldown": event("e2", 40, at=400, gallery={"v1"}),
        "riskier": event("e2", 70, at=100, gallery={"v1"}),
        "nobody re-identified": event("e2", 40, at=100),
    }
    for why, later in cases.items():
        assert decide(later, first, None, COOLDOWN).action is Action.NEW, why
    preliminary = event("e1", 40, gallery={"v1"}, preliminary=True)
    assert decide(cases["someone new"], preliminary, None, COOLDOWN).action is Action.NEW


def test_alerts_are_quiet_within_the_cooldown_unless_riskier() -> None:
    alerted = event("e1", 40)
    assert not decide(event("e2", 35, at=100), alerted, alerted, COOLDOWN).event.notify
    assert decide(event("e2", 65, at=100), alerted, alerted, COOLDOWN).event.notify
    assert decide(event("e2", 35, at=311), alerted, alerted, COOLDOWN).event.notify


def test_threat_holds_after_the_event() -> None:
    risky = event("e1", 70)
    ended = risky.ended_at
    assert is_threat(risky, ended + timedelta(seconds=119), threshold=60, hold=120)
    assert not is_threat(risky, ended + timedelta(seconds=121), threshold=60, hold=120)
    assert not is_threat(event("e2", 59), ended, threshold=60, hold=120)
    assert not is_threat(None, ended, threshold=60, hold=120)
