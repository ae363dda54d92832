"""Event entity: one event per security event, typed by risk level."""

from __future__ import annotations

from homeassistant.components.event import EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import RISK_LEVELS
from .entity import HsiCameraEntity
from .models import HsiConfigEntry, SecurityEvent
from .pipeline import SIGNAL_EVENT

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One event entity per camera."""
    for camera_id, pipeline in entry.runtime_data.pipelines.items():
        async_add_entities(
            [HsiSecurityEventEntity(pipeline, "security_event")], config_subentry_id=camera_id
        )


class HsiSecurityEventEntity(HsiCameraEntity, EventEntity):
    """Fires low / medium / high / critical."""

    _attr_translation_key = "security_event"
    _attr_event_types = RISK_LEVELS

    async def async_added_to_hass(self) -> None:
        """Listen for the camera's security events."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                SIGNAL_EVENT.format(self.pipeline.settings.camera_id),
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

    @callback
    def _handle_pipeline_update(self) -> None:
        """Only security events change this entity (and availability via the coordinator)."""
