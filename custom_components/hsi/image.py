"""Image: the annotated snapshot of the last security event."""

from __future__ import annotations

from homeassistant.components.image import ImageEntity, ImageEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import HsiCameraEntity, async_add_camera_entities
from .models import HsiConfigEntry
from .watcher import CameraWatcher

PARALLEL_UPDATES = 0
SNAPSHOT = ImageEntityDescription(key="snapshot", translation_key="snapshot")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One image per camera."""
    async_add_camera_entities(entry, async_add_entities, lambda w: [HsiSnapshotImage(hass, w)])


class HsiSnapshotImage(HsiCameraEntity, ImageEntity):
    """Boxes and labels drawn on the key frame of the last event."""

    _attr_content_type = "image/jpeg"

    def __init__(self, hass: HomeAssistant, watcher: CameraWatcher) -> None:
        """Bind to a camera."""
        HsiCameraEntity.__init__(self, watcher, SNAPSHOT)
        ImageEntity.__init__(self, hass)
        self._attr_image_last_updated = watcher.state.snapshot_at

    @property
    def available(self) -> bool:
        """The last snapshot stays viewable while the server is down."""
        return True

    async def async_image(self) -> bytes | None:
        """The annotated snapshot."""
        return self.state_data.snapshot

    @callback
    def _handle_coordinator_update(self) -> None:
        if self.state_data.snapshot_at != self._attr_image_last_updated:
            self._attr_image_last_updated = self.state_data.snapshot_at
            self._cached_image = None
        super()._handle_coordinator_update()
