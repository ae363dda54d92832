"""Event entity: one event per security event, typed by risk level."""

from __future__ import annotations

from hsi_client import RISK_LEVELS

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import SIGNAL_EVENT
from .entity import HsiCameraEntity, async_add_camera_entities
from .models import HsiConfigEntry, SecurityEvent

PARALLEL_UPDATES = 0
SECURITY_EVENT = EventEntityDescription(
    key="security_event", translation_key="security_event", event_types=list(RISK_LEVELS)
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One event entity per camera."""
    async_add_camera_entities(
        entry, async_add_entities, lambda w: [HsiSecurityEventEntity(w, SECURITY_EVENT)]
    )


class HsiSecurityEventEntity(HsiCameraEntity, EventEntity):
    """Fires low / medium / high / critical."""

    async def async_added_to_hass(self) -> None:
        """Listen for the camera's security events."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                SIGNAL_EVENT.format(self.watcher.settings.camera_id),
                self._handle_security_event,
            )
        )

    @callback
    def _handle_security_event(self, event: SecurityEvent) -> None:
        if event.notify or event.preliminary or event.occurrences == 1:
            self._trigger_event(
                event.risk.risk_level,
                {
                    "event_id": event.event_id,
                    "risk_score": event.risk.risk_score,
                    "summary": event.risk.summary,
                    "source": event.risk.source,
                    "preliminary": event.preliminary,
                    "snapshot_url": event.snapshot_url,
                },
            )
            self.async_write_ha_state()
