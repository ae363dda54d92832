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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
