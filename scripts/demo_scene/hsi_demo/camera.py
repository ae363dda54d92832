"""The demo scene's camera."""

from __future__ import annotations

from homeassistant.components.camera import Camera
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType

from . import DOMAIN, Scene


async def async_setup_platform(
    hass: HomeAssistant,
    config: ConfigType,
    async_add_entities: AddEntitiesCallback,
    discovery_info: DiscoveryInfoType | None = None,
) -> None:
    """The camera."""
    async_add_entities(SceneCamera(scene) for scene in hass.data[DOMAIN])


class SceneCamera(Camera):
    """Snapshots are scene frames of the moment."""

    def __init__(self, scene: Scene) -> None:
        """A PNG camera."""
        super().__init__()
        self.content_type = "image/png"
        self._scene = scene
        self._attr_name = scene.name
        self._attr_unique_id = f"hsi_demo_{scene.name}"

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The frame of this moment."""
        return await self.hass.async_add_executor_job(self._scene.frame)
