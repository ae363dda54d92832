"""Event history: the recent security events of one entry and their annotated snapshots."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import DOMAIN, HISTORY_SIZE, LOGGER
from .models import SecurityEvent

STORAGE_VERSION = 1
SAVE_DELAY = 5
MAX_SNAPSHOTS = 50


class EventHistory:
    """Recent events (persisted) and their snapshots (memory)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Create an empty history; call async_load to read the store."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.history"
        )
        self.events: OrderedDict[str, SecurityEvent] = OrderedDict()
        self.snapshots: OrderedDict[str, bytes] = OrderedDict()

    async def async_load(self) -> None:
        """Read the stored events."""
        data = await self._store.async_load()
        for raw in (data or {}).get("events", []):
            try:
                event = SecurityEvent.from_dict(raw)
            except (KeyError, TypeError, ValueError) as err:
                LOGGER.warning("Skipping unreadable stored event: %s", err)
                continue
            self.events[event.event_id] = event

    async def async_save(self) -> None:
        """Write now (unload)."""
        await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        return {"events": [e.as_dict() for e in self.events.values()]}

    def add(self, event: SecurityEvent, snapshot: bytes | None) -> None:
        """Add or replace an event (an update keeps its place and id)."""
        self.events[event.event_id] = event
        while len(self.events) > HISTORY_SIZE:
            self.events.popitem(last=False)
        if snapshot is not None:
            self.snapshots[event.event_id] = snapshot
            self.snapshots.move_to_end(event.event_id)
            while len(self.snapshots) > MAX_SNAPSHOTS:
                self.snapshots.popitem(last=False)
        self._store.async_delay_save(self._data, SAVE_DELAY)

    def recent(self, camera_id: str | None = None, limit: int = 5) -> list[SecurityEvent]:
        """Newest events first, optionally of one camera."""
        events = [e for e in reversed(self.events.values()) if camera_id in (None, e.camera_id)]
        return events[:limit]

    def clear(self, camera_id: str | None = None) -> int:
        """Remove all events, or those of one camera; return how many."""
        doomed = [k for k, e in self.events.items() if camera_id in (None, e.camera_id)]
        for key in doomed:
            del self.events[key]
            self.snapshots.pop(key, None)
        self._store.async_delay_save(self._data, SAVE_DELAY)
        return len(doomed)
