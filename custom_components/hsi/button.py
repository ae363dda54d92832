"""Button: analyze the camera now."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import HsiCameraEntity
from .models import HsiConfigEntry

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One button per camera."""
    for camera_id, pipeline in entry.runtime_data.pipelines.items():
        async_add_entities([HsiAnalyzeButton(pipeline, "analyze")], config_subentry_id=camera_id)


class HsiAnalyzeButton(HsiCameraEntity, ButtonEntity):
    """Take a snapshot and analyse it as one event."""

    _attr_translation_key = "analyze"

    async def async_press(self) -> None:
        """Run a one-shot analysis."""
        await self.pipeline.async_analyze_now("button")
