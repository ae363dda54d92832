"""Record and alert policy, pure: what a new security event does to a camera's record.

- the same event again (the full analysis after the fast path): update it in place; alert again
  only when its level changed, or the preliminary one was not alerted
- the same visitor again within the cooldown (every gallery id already in the previous event),
  not at a higher level: fold it into the previous event (one more occurrence), no alert
- anything else is a new event, alerted unless an alert of at least its level went out within
  the cooldown
"""

from __future__ import annotations

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


def decide(
    event: SecurityEvent,
    previous: SecurityEvent | None,
    last_alerted: SecurityEvent | None,
    cooldown: float,
) -> Decision:
    """Decide for `event`, given the camera's previous event and its last alerted one.

    Returns a copy of the event to record; nothing passed in is changed.
    """
    if previous is not None and previous.event_id == event.event_id:
        notify = previous.risk.risk_level != event.risk.risk_level or (
            previous.preliminary and not previous.notify
        )
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
    quiet = (
        last_alerted is not None
        and _within(event.started_at, last_alerted.ended_at, cooldown)
        and _not_higher(event, last_alerted)
    )
    return Decision(Action.NEW, event.updated(notify=not quiet))


def is_threat(event: SecurityEvent | None, now: datetime, threshold: int, hold: float) -> bool:
    """Risk at or above the threshold, held for `hold` seconds after the event ended."""
    if event is None or event.risk.risk_score < threshold:
        return False
    return now - event.ended_at <= timedelta(seconds=hold)
