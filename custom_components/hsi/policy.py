"""Record and alert policy, pure: what a new security event does to the record, and who is told.

Recording, per camera:
- the same event again (the full analysis after the fast path): update it in place
- the same visitor again within the cooldown (every gallery id already in the camera's previous
  event), not at a higher level: fold it into the previous event (one more occurrence)
- anything else is a new event

Alerting (the same rules on every camera of one server):
- only from the alert level up (`notify_min_level`, medium by default)
- not when an alert of at least the event's level went out within the cooldown for everyone in
  it: every re-identified object (gallery id) of the event was in such an alert, on any camera.
  An event nobody could re-identify falls back to the camera: any such alert of that camera.
- an update alerts again only when its level changed (the alert is replaced, same tag), or when
  the event was not alerted before and now is due
- a repeat never alerts

Delivering (`plan_alert`, one notification per incident):
- a new alert goes out under its own tag, routed by its level (timeline only, passive, active,
  time-sensitive, critical); not while the camera is snoozed, the alert condition is unmet, or
  (quiet mode "timeline") during quiet hours. Quiet hours in mode "silent" deliver it without
  sound or interruption (passive). A critical alert ignores quiet hours, never snooze.
- an event whose notification is out already (the analysis after the fast path, an update)
  replaces it under the same tag: loud again only when its level rose, silent otherwise, and
  not at all when nothing it shows changed (a repeat of the same visitor)
- an event that alerts no one because the same visitor was alerted within the cooldown on
  another camera updates that notification (same tag, silent) instead of sending nothing
- an event marked a false alarm or acknowledged sends nothing more
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from hsi_client import level_rank

from .models import SecurityEvent


class Action(StrEnum):
    """How an event enters the record."""

    NEW = "new"
    UPDATE = "update"  # the same event, analysed again
    REPEAT = "repeat"  # the same visitor again, folded into the previous event


@dataclass(frozen=True, slots=True)
class Decision:
    """The event to record (with its `notify`), and how."""

    action: Action
    event: SecurityEvent

    @property
    def update(self) -> bool:
        """Whether an existing record changes (no new event)."""
        return self.action is not Action.NEW


def _within(later: datetime, earlier: datetime, cooldown: float) -> bool:
    return (later - earlier).total_seconds() <= cooldown


def _not_higher(event: SecurityEvent, than: SecurityEvent) -> bool:
    return level_rank(event.risk.risk_level) <= level_rank(than.risk.risk_level)


def alert_due(
    event: SecurityEvent, alerted: Sequence[SecurityEvent], cooldown: float, min_level: str
) -> bool:
    """Whether `event` is worth an alert, given the recent alerts of every camera."""
    if level_rank(event.risk.risk_level) < level_rank(min_level):
        return False
    covering = [
        a
        for a in alerted
        if a.event_id != event.event_id
        and _within(event.started_at, a.ended_at, cooldown)
        and _not_higher(event, a)
    ]
    if event.gallery_ids:
        told: set[str] = set().union(*(a.gallery_ids for a in covering))
        return not event.gallery_ids <= told
    return not any(a.camera_id == event.camera_id for a in covering)


def decide(
    event: SecurityEvent,
    previous: SecurityEvent | None,
    alerted: Sequence[SecurityEvent],
    cooldown: float,
    min_level: str,
) -> Decision:
    """Decide for `event`, given the camera's previous event and the recent alerts.

    Returns a copy of the event to record; nothing passed in is changed.
    """
    due = alert_due(event, alerted, cooldown, min_level)
    if previous is not None and previous.event_id == event.event_id:
        changed = previous.risk.risk_level != event.risk.risk_level
        notify = due and (changed or not previous.notify)
        return Decision(Action.UPDATE, event.updated(notify=notify))
    if (
        previous is not None
        and not previous.preliminary
        and event.gallery_ids
        and event.gallery_ids <= previous.gallery_ids
        and _within(event.started_at, previous.ended_at, cooldown)
        and _not_higher(event, previous)
    ):
        repeat = previous.updated(
            ended_at=event.ended_at,
            occurrences=previous.occurrences + 1,
            frames=previous.frames + event.frames,
            known_matches=event.known_matches or previous.known_matches,
            notify=False,
        )
        return Decision(Action.REPEAT, repeat)
    return Decision(Action.NEW, event.updated(notify=due))


def is_threat(event: SecurityEvent | None, now: datetime, threshold: int, hold: float) -> bool:
    """Risk at or above the threshold, held for `hold` seconds after the event ended."""
    if event is None or event.risk.risk_score < threshold:
        return False
    return now - event.ended_at <= timedelta(seconds=hold)


# Delivering ------------------------------------------------------------------------------------


class Route(StrEnum):
    """How an alert of one level reaches people, quietest first."""

    TIMELINE = "timeline"  # recorded and shown, no notification
    PASSIVE = "passive"  # shown without sound or waking the screen
    ACTIVE = "active"  # an ordinary notification
    TIME_SENSITIVE = "time_sensitive"  # breaks through focus modes
    CRITICAL = "critical"  # sounds even when the phone is muted

    @property
    def rank(self) -> int:
        """Position from quietest (0) to loudest."""
        return list(Route).index(self)


class QuietMode(StrEnum):
    """What quiet hours do to alerts below critical."""

    SILENT = "silent"  # delivered as passive notifications
    TIMELINE = "timeline"  # not delivered (recorded only)


@dataclass(frozen=True, slots=True)
class AlertRules:
    """The alert options that delivery depends on."""

    routes: Mapping[str, Route]
    min_level: str
    cooldown: float
    quiet_start: time | None = None
    quiet_end: time | None = None
    quiet_mode: QuietMode = QuietMode.SILENT


@dataclass(frozen=True, slots=True)
class Sent:
    """One event shown in a notification that is out (the notifier's ledger)."""

    event_id: str
    tag: str
    camera_id: str
    identities: frozenset[str]
    level: str
    preliminary: bool
    summary: str
    ended_at: datetime

    @classmethod
    def of(cls, event: SecurityEvent, tag: str) -> Sent:
        """The ledger line of `event` shown under `tag`."""
        return cls(
            event.event_id,
            tag,
            event.camera_id,
            frozenset(event.gallery_ids),
            event.risk.risk_level,
            event.preliminary,
            event.risk.summary,
            event.ended_at,
        )


@dataclass(frozen=True, slots=True)
class AlertPlan:
    """What to send for one event: under which tag, how loud, and whether it replaces one."""

    tag: str
    route: Route
    replaces: bool = False


def in_quiet_hours(now: time, start: time | None, end: time | None) -> bool:
    """Whether a local time of day lies in [start, end); a window may span midnight."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end


def _incident(event: SecurityEvent, ledger: Iterable[Sent], cooldown: float) -> Sent | None:
    """The latest notification out within the cooldown that showed someone of this event.

    Without re-identified objects, the camera's own latest notification stands in.
    """
    found = [
        sent
        for sent in ledger
        if _within(event.started_at, sent.ended_at, cooldown)
        and (
            event.gallery_ids & sent.identities
            if event.gallery_ids
            else sent.camera_id == event.camera_id
        )
    ]
    return max(found, key=lambda sent: sent.ended_at, default=None)


def plan_alert(
    event: SecurityEvent,
    ledger: Mapping[str, Sent],
    rules: AlertRules,
    *,
    now: datetime,
    snoozed_until: datetime | None = None,
    condition_met: bool = True,
) -> AlertPlan | None:
    """Decide what the notifier sends for a recorded event (None: nothing).

    `ledger`: what is out, by event id. `now` is local time (quiet hours are local).
    """
    if event.false_alarm or event.acknowledged:
        return None  # someone dealt with it already (its notification was cleared)
    level = event.risk.risk_level
    critical = rules.routes.get(level, Route.TIMELINE) is Route.CRITICAL
    quiet = not critical and in_quiet_hours(now.time(), rules.quiet_start, rules.quiet_end)
    held = (
        (snoozed_until is not None and now < snoozed_until)
        or not condition_met
        or (quiet and rules.quiet_mode is QuietMode.TIMELINE)
    )
    if (shown := ledger.get(event.event_id)) is not None:
        # Its notification is out: replace it, when what it shows changed.
        if (shown.level, shown.preliminary, shown.summary) == (
            level,
            event.preliminary,
            event.risk.summary,
        ):
            return None
        route = Route.PASSIVE
        if event.notify and level_rank(level) > level_rank(shown.level) and not held:
            route = _loudness(rules.routes.get(level, Route.TIMELINE), quiet)
            if route is Route.TIMELINE:
                route = Route.PASSIVE  # it exists already: it changes, silently
        return AlertPlan(shown.tag, route, replaces=True)
    if level_rank(level) < level_rank(rules.min_level):
        return None
    if not event.notify:
        # Nobody new to tell about: the same visitor's notification follows them.
        if held:
            return None
        incident = _incident(event, ledger.values(), rules.cooldown)
        return None if incident is None else AlertPlan(incident.tag, Route.PASSIVE, replaces=True)
    route = _loudness(rules.routes.get(level, Route.TIMELINE), quiet)
    if held or route is Route.TIMELINE:
        return None
    return AlertPlan(f"hsi-{event.event_id}", route)


def _loudness(route: Route, quiet: bool) -> Route:
    if quiet and route.rank > Route.PASSIVE.rank:
        return Route.PASSIVE
    return route
