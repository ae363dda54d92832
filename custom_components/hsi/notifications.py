"""Alerts through a notify action: one tag per event, so updates replace the first alert."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .const import LOGGER
from .models import SecurityEvent


async def async_notify(hass: HomeAssistant, service: str, event: SecurityEvent) -> None:
    """Send one alert via `notify.<service>` (the option holds e.g. `mobile_app_phone`)."""
    domain, _, name = service.partition(".")
    if not name:
        domain, name = "notify", service
    level = event.risk.risk_level
    prefix = "Preliminary: " if event.preliminary else ""
    try:
        await hass.services.async_call(
            domain,
            name,
            {
                "title": f"{event.camera_name}: {level} risk ({event.risk.risk_score})",
                "message": f"{prefix}{event.risk.summary}",
                "data": {
                    "tag": f"hsi-{event.event_id}",
                    "group": f"hsi-{event.camera_id}",
                    "image": event.snapshot_url,
                    "event_id": event.event_id,
                },
            },
            blocking=True,
        )
    except (HomeAssistantError, ValueError) as err:
        LOGGER.warning("Cannot send HSI alert through %s: %s", service, err)
