"""The record and alert policy, without Home Assistant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hsi_client import RiskAssessment

from custom_components.hsi.models import SecurityEvent
from custom_components.hsi.policy import Action, alert_due, decide, is_threat

START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
COOLDOWN = 300.0
LOW = "low"  # alert from every level: the cooldown alone decides


def event(
    event_id: str,
    score: int,
    *,
    at: float = 0,
    gallery: set[str] | None = None,
    preliminary: bool = False,
    notify: bool = True,
    camera: str = "cam",
) -> SecurityEvent:
    """An event `at` seconds into the day, lasting 10 s."""
    started = START + timedelta(seconds=at)
    return SecurityEvent(
        event_id=event_id,
        camera_id=camera,
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
    decision = decide(new, None, [], COOLDOWN, LOW)
    assert decision.action is Action.NEW and not decision.update
    assert decision.event.notify
    assert decision.event is not new  # nothing passed in is changed


def test_the_full_analysis_updates_the_preliminary_event() -> None:
    preliminary = event("e1", 40, preliminary=True, notify=True)
    same_level = decide(event("e1", 45), preliminary, [preliminary], COOLDOWN, LOW)
    assert same_level.action is Action.UPDATE and same_level.update
    assert not same_level.event.notify  # the preliminary alert already said "medium"
    higher = decide(event("e1", 70), preliminary, [preliminary], COOLDOWN, LOW)
    assert higher.event.notify  # the level changed: the alert is replaced
    unalerted = event("e1", 40, preliminary=True, notify=False)
    assert decide(event("e1", 40), unalerted, [], COOLDOWN, LOW).event.notify


def test_the_same_visitor_within_the_cooldown_is_folded_in() -> None:
    first = event("e1", 40, gallery={"v1"})
    again = decide(event("e2", 35, at=100, gallery={"v1"}), first, [first], COOLDOWN, LOW)
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
        assert decide(later, first, [], COOLDOWN, LOW).action is Action.NEW, why
    preliminary = event("e1", 40, gallery={"v1"}, preliminary=True)
    assert decide(cases["someone new"], preliminary, [], COOLDOWN, LOW).action is Action.NEW


def test_without_re_identification_the_camera_cooldown_applies() -> None:
    alerted = [event("e1", 40)]
    assert not decide(event("e2", 35, at=100), None, alerted, COOLDOWN, LOW).event.notify
    assert decide(event("e2", 65, at=100), None, alerted, COOLDOWN, LOW).event.notify  # riskier
    assert decide(event("e2", 35, at=311), None, alerted, COOLDOWN, LOW).event.notify  # later
    other = event("e2", 35, at=100, camera="garden")
    assert decide(other, None, alerted, COOLDOWN, LOW).event.notify  # another camera


def test_the_cooldown_follows_identities_across_cameras() -> None:
    alerted = [event("e1", 45, gallery={"w1"}, camera="driveway")]
    same_walker = event("e2", 45, at=40, gallery={"w1"}, camera="front_door")
    assert not alert_due(same_walker, alerted, COOLDOWN, LOW)
    somebody_else = event("e3", 45, at=40, gallery={"w2"}, camera="driveway")
    assert alert_due(somebody_else, alerted, COOLDOWN, LOW)
    walker_and_friend = event("e4", 45, at=40, gallery={"w1", "w2"}, camera="front_door")
    assert alert_due(walker_and_friend, alerted, COOLDOWN, LOW)
    both_told = [*alerted, event("e3", 45, at=40, gallery={"w2"}, camera="garden")]
    assert not alert_due(walker_and_friend, both_told, COOLDOWN, LOW)
    riskier = event("e5", 70, at=40, gallery={"w1"}, camera="front_door")
    assert alert_due(riskier, alerted, COOLDOWN, LOW)
    after = event("e6", 45, at=400, gallery={"w1"}, camera="front_door")
    assert alert_due(after, alerted, COOLDOWN, LOW)


def test_alerts_start_at_the_minimum_level() -> None:
    assert not alert_due(event("e1", 29), [], COOLDOWN, "medium")
    assert alert_due(event("e1", 30), [], COOLDOWN, "medium")
    assert not alert_due(event("e1", 84), [], COOLDOWN, "critical")
    low_preliminary = event("e1", 20, preliminary=True, notify=False)
    raised = decide(event("e1", 40), low_preliminary, [], COOLDOWN, "medium")
    assert raised.action is Action.UPDATE and raised.event.notify  # now worth telling
    alerted = event("e1", 40, preliminary=True)
    lowered = decide(event("e1", 20), alerted, [alerted], COOLDOWN, "medium")
    assert not lowered.event.notify  # below the level: the first alert is not repeated


def test_threat_holds_after_the_event() -> None:
    risky = event("e1", 70)
    ended = risky.ended_at
    assert is_threat(risky, ended + timedelta(seconds=119), threshold=60, hold=120)
    assert not is_threat(risky, ended + timedelta(seconds=121), threshold=60, hold=120)
    assert not is_threat(event("e2", 59), ended, threshold=60, hold=120)
    assert not is_threat(None, ended, threshold=60, hold=120)
