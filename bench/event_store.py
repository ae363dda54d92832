"""Event store: SQLite (what the integration uses) against one JSON document (what it replaced).

Runs on Home Assistant's Python, in one process, on a temporary folder:

    .venv/ha/bin/python bench/event_store.py [--events 10000] [--repeat 200]

- SQLite: the store's own worker code (`custom_components.hsi.store._Database`), called directly
  (the event loop adds one thread hop per call, a few tens of microseconds). An add is one
  transaction in WAL mode, without images (file writes cost the same either way).
- JSON (the design it replaced, `history.py`): every event in memory, the whole history one JSON
  document rewritten on each change the way `helpers.storage` keeps data (HA debounces the
  rewrite by a few seconds, so a burst rewrites less often, but each rewrite still serialises
  and writes everything); a list filters and sorts the events in memory.

Figures: one add at N events stored (median of the last `repeat` adds), and one page of 50 of
N events, newest first, unfiltered, with a camera + level filter, and deep (cursor at half).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hsi_client import AnalyzedObject, BoundingBox, RiskAssessment

from custom_components.hsi.models import SecurityEvent
from custom_components.hsi.store import (
    EventFilter,
    RetentionPolicy,
    _Database,
    decode_cursor,
    encode_cursor,
)

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
NO_LIMITS = RetentionPolicy(days=0, max_events=0, max_bytes=0)


def make_events(count: int) -> list[SecurityEvent]:
    """Events spread over ~two weeks, three cameras, every level, oldest first."""
    rng = random.Random(8)
    events = []
    for index in range(count):
        at = NOW - timedelta(seconds=(count - index) * 120)
        events.append(
            SecurityEvent(
                event_id=f"E{index:06d}",
                camera_id=rng.choice(["front", "back", "garage"]),
                camera_name="Camera",
                camera_entity="camera.x",
                trigger="motion",
                started_at=at,
                ended_at=at + timedelta(seconds=40),
                objects=[
                    AnalyzedObject("person", 0.8, 0, BoundingBox(40, 30, 100, 150)),
                    AnalyzedObject("car", 0.7, 1, BoundingBox(200, 80, 180, 90)),
                ],
                risk=RiskAssessment.build(
                    rng.randrange(0, 101),
                    "One unknown person at the front door in the evening",
                    "A person nobody knows stood at the door for 40 seconds; the home is empty.",
                    source=rng.choice(["llm", "rules"]),
                ),
                frames=4,
            )
        )
    return events


def timed(function, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median milliseconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def sqlite_figures(events: list[SecurityEvent], folder: Path, repeat: int) -> dict[str, float]:
    db = _Database(folder / "events.db", folder / "media")
    db.open()
    adds = []
    for event in events:
        start = time.perf_counter()
        db.add(event, "front/2026-11-27", None, (), NO_LIMITS)
        adds.append((time.perf_counter() - start) * 1000)
    filtered = EventFilter(cameras=frozenset({"front"}), min_level="high")
    middle = events[len(events) // 2]
    cursor = decode_cursor(encode_cursor(middle.started_at, middle.event_id))
    figures = {
        "add": statistics.median(adds[-repeat:]),
        "list": timed(lambda: db.select(EventFilter(), None, 51), repeat),
        "list_filtered": timed(lambda: db.select(filtered, None, 51), repeat),
        "list_deep": timed(lambda: db.select(EventFilter(), cursor, 51), repeat),
        "file_mb": (folder / "events.db").stat().st_size / 1e6,
    }
    db.close()
    return figures


def json_figures(events: list[SecurityEvent], folder: Path, repeat: int) -> dict[str, float]:
    """The replaced design: every event in memory, the whole list rewritten as JSON on save."""
    path = folder / "events.json"

    def save() -> None:
        data = {"version": 1, "data": {"events": [e.as_dict() for e in events]}}
        path.write_text(json.dumps(data))

    def page(flt: EventFilter, after: tuple[datetime, str] | None = None) -> list[SecurityEvent]:
        rows = [e for e in events if flt.matches(e)]
        rows.sort(key=lambda e: (e.started_at, e.event_id), reverse=True)
        if after is not None:
            rows = [e for e in rows if (e.started_at, e.event_id) < after]
        return rows[:51]

    filtered = EventFilter(cameras=frozenset({"front"}), min_level="high")
    middle = events[len(events) // 2]
    return {
        "add": timed(save, max(5, repeat // 20)),
        "list": timed(lambda: page(EventFilter()), repeat),
        "list_filtered": timed(lambda: page(filtered), repeat),
        "list_deep": timed(
            lambda: page(EventFilter(), (middle.started_at, middle.event_id)), repeat
        ),
        "file_mb": path.stat().st_size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    events = make_events(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = sqlite_figures(events, Path(tmp), args.repeat)
        plain = json_figures(events, Path(tmp), args.repeat)
    print(f"python {platform.python_version()}, {args.events} events stored")
    print(f"{'ms (median)':<34}{'SQLite':>10}{'JSON':>10}{'JSON/SQLite':>13}")
    rows = [
        ("add one event", "add"),
        ("list 50, newest", "list"),
        ("list 50, camera + min level", "list_filtered"),
        ("list 50, cursor at half", "list_deep"),
        ("file size (MB)", "file_mb"),
    ]
    for label, key in rows:
        ratio = plain[key] / sqlite[key] if sqlite[key] else float("nan")
        print(f"{label:<34}{sqlite[key]:>10.3f}{plain[key]:>10.3f}{ratio:>12.1f}x")


if __name__ == "__main__":
    main()
