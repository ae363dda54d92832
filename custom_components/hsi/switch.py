"""Switch: analysis on/off per camera (restored across restarts)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import STATE_OFF, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .entity import HsiCameraEntity, async_add_camera_entities
from .models import HsiConfigEntry

PARALLEL_UPDATES = 0
ANALYSIS = SwitchEntityDescription(
    key="analysis", translation_key="analysis", entity_category=EntityCategory.CONFIG
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One switch per camera."""
    async_add_camera_entities(entry, async_add_entities, lambda w: [HsiAnalysisSwitch(w, ANALYSIS)])


class HsiAnalysisSwitch(HsiCameraEntity, SwitchEntity, RestoreEntity):
    """Turns the camera's watching on and off."""

    @property
    def available(self) -> bool:
        """Switching works while the server is down too."""
        return True

    async def async_added_to_hass(self) -> None:
        """Restore the last choice."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_state()) is not None:
            self.watcher.async_set_enabled(last.state != STATE_OFF)

    @property
    def is_on(self) -> bool:
        """Whether analysis runs."""
        return self.state_data.enabled

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Resume analysis."""
        self.watcher.async_set_enabled(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Pause analysis (triggers are ignored)."""
        self.watcher.async_set_enabled(False)
