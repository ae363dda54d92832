"""The record and alert policy, without Home Assistant."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hsi_client import RiskAssessment

from custom_components.hsi.models import SecurityEvent
from custom_components.hsi.policy import (
    Action,
    AlertPlan,
    AlertRules,
    QuietMode,
    Route,
    Sent,
    alert_due,
    decide,
    in_quiet_hours,
    is_threat,
    plan_alert,
)

START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
COOLDOWN = 300.0
COOLDOWN_TD = timedelta(seconds=COOLDOWN)
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


# Delivering ------------------------------------------------------------------------------------

ROUTES = {
    "low": Route.TIMELINE,
    "medium": Route.ACTIVE,
    "high": Route.TIME_SENSITIVE,
    "critical": Route.CRITICAL,
}
RULES = AlertRules(routes=ROUTES, min_level="medium", cooldown=COOLDOWN)
NOON = datetime(2026, 11, 27, 12, 0)  # local time of the plans (quiet hours are local)


def summarised(base: SecurityEvent, summary: str) -> SecurityEvent:
    """The same event with another summary (what the notification shows)."""
    risk = RiskAssessment.build(base.risk.risk_score, summary, "r", source="llm")
    return base.updated(risk=risk)


def test_a_new_alert_is_routed_by_its_level() -> None:
    assert plan_alert(event("e1", 40), {}, RULES, now=NOON) == AlertPlan("hsi-e1", Route.ACTIVE)
    assert plan_alert(event("e1", 70), {}, RULES, now=NOON) == AlertPlan(
        "hsi-e1", Route.TIME_SENSITIVE
    )
    assert plan_alert(event("e1", 90), {}, RULES, now=NOON) == AlertPlan("hsi-e1", Route.CRITICAL)
    # Low is below the alert level; "timeline only" records without a notification.
    assert plan_alert(event("e1", 20), {}, RULES, now=NOON) is None
    everything = AlertRules(routes=ROUTES, min_level="low", cooldown=COOLDOWN)
    assert plan_alert(event("e1", 20), {}, everything, now=NOON) is None
    passive_low = AlertRules(
        routes=ROUTES | {"low": Route.PASSIVE}, min_level="low", cooldown=COOLDOWN
    )
    assert plan_alert(event("e1", 20), {}, passive_low, now=NOON) == AlertPlan(
        "hsi-e1", Route.PASSIVE
    )
    # Someone dealt with it already (false alarm, acknowledged): nothing more, not even updates.
    handled = event("e1", 70).updated(false_alarm=True)
    ledger = {"e1": Sent.of(summarised(event("e1", 40), "earlier"), "hsi-e1")}
    assert plan_alert(handled, ledger, RULES, now=NOON) is None
    assert plan_alert(event("e1", 70).updated(acknowledged=True), {}, RULES, now=NOON) is None
    # What the record policy did not find worth an alert stays quiet.
    assert plan_alert(event("e1", 70, notify=False), {}, RULES, now=NOON) is None


def test_snooze_and_the_condition_hold_new_alerts_back() -> None:
    risky = event("e1", 90)
    later = NOON + timedelta(hours=1)
    assert plan_alert(risky, {}, RULES, now=NOON, snoozed_until=later) is None
    assert plan_alert(risky, {}, RULES, now=later, snoozed_until=later) is not None  # over
    assert plan_alert(risky, {}, RULES, now=NOON, condition_met=False) is None


def test_quiet_hours() -> None:
    night = time(22, 0), time(7, 0)
    silent = AlertRules(ROUTES, "medium", COOLDOWN, *night, QuietMode.SILENT)
    recorded = AlertRules(ROUTES, "medium", COOLDOWN, *night, QuietMode.TIMELINE)
    at_3am = datetime(2026, 11, 27, 3, 0)
    high = event("e1", 70)
    assert plan_alert(high, {}, silent, now=at_3am) == AlertPlan("hsi-e1", Route.PASSIVE)
    assert plan_alert(high, {}, recorded, now=at_3am) is None
    assert plan_alert(high, {}, recorded, now=NOON) == AlertPlan("hsi-e1", Route.TIME_SENSITIVE)
    # Critical comes through quiet hours, at full volume.
    critical = event("e2", 90)
    assert plan_alert(critical, {}, silent, now=at_3am) == AlertPlan("hsi-e2", Route.CRITICAL)
    assert plan_alert(critical, {}, recorded, now=at_3am) == AlertPlan("hsi-e2", Route.CRITICAL)


def test_quiet_hours_window() -> None:
    assert in_quiet_hours(time(23, 0), time(22, 0), time(7, 0))
    assert in_quiet_hours(time(6, 59), time(22, 0), time(7, 0))
    assert not in_quiet_hours(time(7, 0), time(22, 0), time(7, 0))
    assert not in_quiet_hours(time(21, 59), time(22, 0), time(7, 0))
    assert in_quiet_hours(time(13, 0), time(12, 0), time(14, 0))
    assert not in_quiet_hours(time(14, 0), time(12, 0), time(14, 0))
    assert not in_quiet_hours(time(3, 0), None, time(7, 0))
    assert not in_quiet_hours(time(3, 0), time(7, 0), time(7, 0))


def test_the_analysis_replaces_the_fast_path_alert() -> None:
    preliminary = summarised(event("e1", 70, preliminary=True), "A person at the door")
    ledger = {"e1": Sent.of(preliminary, "hsi-e1")}
    # Same level, analysed: the notification changes silently, under the same tag.
    analysed = summarised(event("e1", 72, notify=False), "A courier leaves a parcel")
    assert plan_alert(analysed, ledger, RULES, now=NOON) == AlertPlan(
        "hsi-e1", Route.PASSIVE, replaces=True
    )
    # Riskier: it replaces the first one at the new level's volume.
    critical = summarised(event("e1", 90), "Someone tries the door handle")
    assert plan_alert(critical, ledger, RULES, now=NOON) == AlertPlan(
        "hsi-e1", Route.CRITICAL, replaces=True
    )
    # Lower, below the alert level: still replaced (silently), so the phone shows the analysis.
    relief = summarised(event("e1", 10, notify=False), "A neighbour walks past")
    assert plan_alert(relief, ledger, RULES, now=NOON) == AlertPlan(
        "hsi-e1", Route.PASSIVE, replaces=True
    )
    # Nothing it shows changed (the same visitor folded in again): nothing is sent.
    shown = Sent.of(analysed, "hsi-e1")
    repeat = analysed.updated(occurrences=2)
    assert plan_alert(repeat, {"e1": shown}, RULES, now=NOON) is None
    # A snoozed camera's notification that is out already still shows the analysis, silently.
    snoozed = plan_alert(analysed, ledger, RULES, now=NOON, snoozed_until=NOON + COOLDOWN_TD)
    assert snoozed == AlertPlan("hsi-e1", Route.PASSIVE, replaces=True)
    riskier_snoozed = plan_alert(
        critical, ledger, RULES, now=NOON, snoozed_until=NOON + COOLDOWN_TD
    )
    assert riskier_snoozed == AlertPlan("hsi-e1", Route.PASSIVE, replaces=True)


def test_the_same_visitor_on_the_next_camera_updates_the_notification() -> None:
    driveway = event("e1", 45, gallery={"w1"}, camera="driveway")
    ledger = {"e1": Sent.of(driveway, "hsi-e1")}
    # The record policy found nobody new (notify False): the walker's notification follows.
    door = event("e2", 45, at=40, gallery={"w1"}, camera="front_door", notify=False)
    assert plan_alert(door, ledger, RULES, now=NOON) == AlertPlan(
        "hsi-e1", Route.PASSIVE, replaces=True
    )
    after = event("e3", 45, at=400, gallery={"w1"}, camera="front_door", notify=False)
    assert plan_alert(after, ledger, RULES, now=NOON) is None
    stranger = event("e4", 45, at=40, gallery={"w2"}, camera="front_door", notify=False)
    assert plan_alert(stranger, ledger, RULES, now=NOON) is None
    below = event("e5", 20, at=40, gallery={"w1"}, camera="front_door", notify=False)
    assert plan_alert(below, ledger, RULES, now=NOON) is None  # below the alert level
    snoozed = plan_alert(door, ledger, RULES, now=NOON, snoozed_until=NOON + COOLDOWN_TD)
    assert snoozed is None  # the snoozed camera adds nothing
    # Nobody re-identified: the camera's own latest notification within the cooldown.
    anonymous = event("e6", 40)
    camera_ledger = {"e6": Sent.of(anonymous, "hsi-e6")}
    again = event("e7", 40, at=100, notify=False)
    assert plan_alert(again, camera_ledger, RULES, now=NOON) == AlertPlan(
        "hsi-e6", Route.PASSIVE, replaces=True
    )
    elsewhere = event("e8", 40, at=100, notify=False, camera="garden")
    assert plan_alert(elsewhere, camera_ledger, RULES, now=NOON) is None
