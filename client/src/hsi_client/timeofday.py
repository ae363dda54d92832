"""Time of day, as the rules and the prompt use it."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

TimeOfDay = Literal["night", "morning", "afternoon", "evening"]
NIGHT_HOURS: Final = frozenset({22, 23, 0, 1, 2, 3, 4, 5})


def time_of_day(moment: datetime) -> TimeOfDay:
    """Night 22-06, morning to 12, afternoon to 18, evening: by the hour `moment` shows.

    Pass the camera's local time (Home Assistant: `dt_util.as_local(moment)`).
    """
    hour = moment.hour
    if hour in NIGHT_HOURS:
        return "night"
    if hour < 12:
        return "morning"
    return "afternoon" if hour < 18 else "evening"
