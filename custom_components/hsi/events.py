"""Publishing a decided security event: history, bus event, event entity, alert."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import EVENT_SECURITY, SIGNAL_EVENT
from .models import HsiConfigEntry, SecurityEvent
from .notifications import async_notify


@callback
def async_publish_event(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    event: SecurityEvent,
    snapshot: bytes | None,
    *,
    update: bool,
) -> None:
    """Store the event, fire `hsi_security_event`, signal the event entity, send the alert."""
    runtime = entry.runtime_data
    runtime.history.add(event, snapshot)
    hass.bus.async_fire(EVENT_SECURITY, event.as_dict() | {"update": update})
    async_dispatcher_send(hass, SIGNAL_EVENT.format(event.camera_id), event)
    if event.notify and (service := runtime.options.notify_service):
        entry.async_create_background_task(
            hass, async_notify(hass, service, event), f"hsi notify {event.camera_name}"
        )
