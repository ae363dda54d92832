"""Binary sensors: occupancy and threat per camera; connectivity of the server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hsi_client import GROUPS

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CameraState
from .entity import HsiCameraEntity, HsiServerEntity, async_add_camera_entities, count_of
from .models import HsiConfigEntry

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HsiCameraBinarySensorDescription(BinarySensorEntityDescription):
    """A camera binary sensor reading the camera's state."""

    is_on_fn: Callable[[CameraState], bool]


def _present(group: str) -> Callable[[CameraState], bool]:
    count = count_of(group)
    return lambda state: count(state) > 0


CAMERA_BINARY_SENSORS: tuple[HsiCameraBinarySensorDescription, ...] = (
    *(
        HsiCameraBinarySensorDescription(
            key=f"{group}_occupancy",
            translation_key=f"{group}_occupancy",
            device_class=BinarySensorDeviceClass.OCCUPANCY,
            is_on_fn=_present(group),
        )
        for group in GROUPS
    ),
    HsiCameraBinarySensorDescription(
        key="threat",
        translation_key="threat",
        device_class=BinarySensorDeviceClass.SAFETY,
        is_on_fn=lambda s: s.threat,
    ),
)

CONNECTIVITY = BinarySensorEntityDescription(
    key="connectivity",
    translation_key="connectivity",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Server connectivity, then each camera's binary sensors."""
    async_add_entities([HsiConnectivitySensor(entry.runtime_data.coordinator, CONNECTIVITY)])
    async_add_camera_entities(
        entry,
        async_add_entities,
        lambda w: (HsiCameraBinarySensor(w, d) for d in CAMERA_BINARY_SENSORS),
    )


class HsiConnectivitySensor(HsiServerEntity, BinarySensorEntity):
    """Whether the server answers and is healthy; never unavailable itself."""

    @property
    def available(self) -> bool:
        """Always report; off means unreachable."""
        return True

    @property
    def is_on(self) -> bool:
        """Reachable and not failing."""
        return self.coordinator.last_update_success and self.coordinator.data is not None

    @property
    def extra_state_attributes(self) -> dict[str, str | None]:
        """Server status and version."""
        data = self.coordinator.data
        return {
            "status": data.health.status if data else None,
            "version": data.health.version if data else None,
        }


class HsiCameraBinarySensor(HsiCameraEntity, BinarySensorEntity):
    """A binary sensor of one camera."""

    entity_description: HsiCameraBinarySensorDescription

    @property
    def is_on(self) -> bool:
        """Read the camera's state."""
        return self.entity_description.is_on_fn(self.state_data)
