"""Time of day from the hour a moment shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hsi_client import time_of_day


@pytest.mark.parametrize(
    ("hour", "expected"),
    [
        (0, "night"),
        (2, "night"),
        (5, "night"),
        (6, "morning"),
        (8, "morning"),
        (11, "morning"),
        (12, "afternoon"),
        (14, "afternoon"),
        (17, "afternoon"),
        (18, "evening"),
        (20, "evening"),
        (21, "evening"),
        (22, "night"),
        (23, "night"),
    ],
)
def test_hours(hour: int, expected: str) -> None:
    """Night 22-06, morning to 12, afternoon to 18, evening to 22."""
    assert time_of_day(datetime(2026, 1, 1, hour, 30)) == expected


def test_local_hour_counts() -> None:
    """The hour the moment shows in its own zone: pass the camera's local time."""
    moment = datetime(2026, 1, 1, 20, 0, tzinfo=UTC)
    assert time_of_day(moment) == "evening"
    assert time_of_day(moment.astimezone(timezone(timedelta(hours=3)))) == "night"
