"""The demo scene's motion sensor: on while the scene shows anything."""

from __future__ import annotations

from datetime import datetime, timedelta

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType

from . import DOMAIN, Scene


async def async_setup_platform(
    hass: HomeAssistant,
    config: ConfigType,
    async_add_entities: AddEntitiesCallback,
    discovery_info: DiscoveryInfoType | None = None,
) -> None:
    """The motion sensor."""
    async_add_entities(SceneMotion(scene) for scene in hass.data[DOMAIN])


class SceneMotion(BinarySensorEntity):
    """Motion while an act of the scene is on."""

    _attr_device_class = BinarySensorDeviceClass.MOTION
    _attr_should_poll = False

    def __init__(self, scene: Scene) -> None:
        """Follow the scene."""
        self._scene = scene
        # "Demo motion" for "Demo camera" (binary_sensor.demo_motion), "Demo garden motion".
        self._attr_name = f"{scene.name.removesuffix(' camera')} motion"
        self._attr_unique_id = f"hsi_demo_{scene.name}_motion"

    @property
    def is_on(self) -> bool:
        """Whether anything is in the scene now."""
        act, _ = self._scene.act()
        return self._scene.live and act is not None

    async def async_added_to_hass(self) -> None:
        """Check the scene every half second; write the state when it changes."""
        last = self.is_on

        @callback
        def _tick(_now: datetime) -> None:
            nonlocal last
            if self.is_on != last:
                last = self.is_on
                self.async_write_ha_state()

        self.async_on_remove(async_track_time_interval(self.hass, _tick, timedelta(seconds=0.5)))
