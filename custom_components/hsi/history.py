"""Event history: the recent security events of one entry and their annotated snapshots."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
import io
from typing import Any

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .api import AnalyzedObject
from .const import DOMAIN, HISTORY_SIZE, LOGGER
from .models import SecurityEvent
from .rules import group_of

STORAGE_VERSION = 1
SAVE_DELAY = 5
MAX_SNAPSHOTS = 50
COLOURS = {"person": "#ff3b30", "vehicle": "#0a84ff", "animal": "#34c759", "other": "#ffcc00"}


@cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's default font, loaded once (loading it costs more than drawing a label)."""
    return ImageFont.load_default()


def _distinct(objects: Sequence[AnalyzedObject]) -> list[AnalyzedObject]:
    """One object per class and box (the most confident): a duplicate draws the same pixels."""
    best: dict[tuple[str, tuple[int, ...]], AnalyzedObject] = {}
    for obj in objects:
        box = obj.bbox
        key = (obj.label, (round(box.x), round(box.y), round(box.width), round(box.height)))
        if key not in best or obj.confidence > best[key].confidence:
            best[key] = obj
    return list(best.values())


def annotate(image: bytes, objects: Sequence[AnalyzedObject]) -> bytes:
    """Draw boxes and labels on a snapshot (runs in the executor)."""

    try:
        picture: Image.Image = Image.open(io.BytesIO(image))
        picture.load()  # decode once; a broken picture fails here
    except (UnidentifiedImageError, OSError) as err:
        LOGGER.debug("Cannot annotate snapshot: %s", err)
        return image
    if picture.mode != "RGB":  # camera JPEGs are RGB already: no copy for them
        picture = picture.convert("RGB")
    draw = ImageDraw.Draw(picture)
    draw.font = _font()
    width = max(2, picture.width // 320)
    for obj in _distinct(objects):
        box = obj.bbox
        colour = COLOURS[group_of(obj.label)]
        x0, y0 = box.x, box.y
        x1, y1 = box.x + box.width, box.y + box.height
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
        text = f"{obj.label} {obj.confidence:.0%}"
        left, top, right, bottom = draw.textbbox((x0, y0), text)
        lift = bottom - top + 2
        draw.rectangle((left, top - lift, right + 2, bottom - lift), fill=colour)
        draw.text((x0 + 1, y0 - lift), text, fill="black")
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=85)
    return out.getvalue()


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
