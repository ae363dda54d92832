"""Publishing a decided security event: store, bus event, event entity, alert.

The event is stored first (record and image files), so whatever reacts to the bus event, the
event entity or the alert finds the event and its images through the store and the image view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import EVENT_SECURITY, SIGNAL_EVENT
from .models import HsiConfigEntry, SecurityEvent


@callback
def async_publish_event(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    event: SecurityEvent,
    snapshot: bytes | None,
    *,
    update: bool,
    frames: Sequence[bytes] = (),
    keep_images: bool = False,
) -> asyncio.Task[None]:
    """Store the event, then fire `hsi_security_event`, signal the event entity, alert.

    `snapshot` None and no `frames` keep the images an update's event already has; so does
    `keep_images`, which uses the given ones only where the record has none. Returns the task,
    which a stopping watcher awaits (Home Assistant's stop does not wait for older tasks).
    """
    return entry.async_create_task(
        hass,
        _async_publish(
            hass, entry, event, snapshot, tuple(frames), update=update, keep_images=keep_images
        ),
        f"hsi publish {event.camera_name}",
    )


async def _async_publish(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    event: SecurityEvent,
    snapshot: bytes | None,
    frames: tuple[bytes, ...],
    *,
    update: bool,
    keep_images: bool,
) -> None:
    runtime = entry.runtime_data
    event = await runtime.store.async_add(event, snapshot, frames, keep_images=keep_images)
    hass.bus.async_fire(EVENT_SECURITY, event.as_dict() | {"update": update})
    async_dispatcher_send(hass, SIGNAL_EVENT.format(event.camera_id), event)
    runtime.notifier.async_event(event)
