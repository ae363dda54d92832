"""Button: analyze the camera now."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import HsiCameraEntity, async_add_camera_entities
from .models import HsiConfigEntry

PARALLEL_UPDATES = 1
ANALYZE = ButtonEntityDescription(key="analyze", translation_key="analyze")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One button per camera."""
    async_add_camera_entities(entry, async_add_entities, lambda w: [HsiAnalyzeButton(w, ANALYZE)])


class HsiAnalyzeButton(HsiCameraEntity, ButtonEntity):
    """Take a snapshot and analyse it as one event."""

    async def async_press(self) -> None:
        """Run a one-shot analysis."""
        await self.watcher.async_analyze_now("button")
