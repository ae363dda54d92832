"""Base entities: the server device and one device per camera."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import HsiServerCoordinator
from .models import HsiConfigEntry
from .pipeline import SIGNAL_UPDATE, CameraPipeline


def count_of(group: str) -> Callable[[CameraPipeline], int]:
    """Reader of how many objects of one group (person, vehicle, animal) a camera sees now."""

    def count(pipeline: CameraPipeline) -> int:
        return pipeline.counts.get(group, 0)

    return count


@callback
def async_add_camera_entities(
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities: Callable[[CameraPipeline], Iterable[Entity]],
) -> None:
    """Add each camera's entities under its config subentry (and so its device)."""
    for camera_id, pipeline in entry.runtime_data.pipelines.items():
        async_add_entities(entities(pipeline), config_subentry_id=camera_id)


def server_device_info(coordinator: HsiServerCoordinator) -> DeviceInfo:
    """The AI server's device: the parent of every camera device of the entry."""
    entry = coordinator.config_entry
    health = coordinator.data.health if coordinator.data else None
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer="Home Security Intelligence",
        model="AI server",
        sw_version=health.version if health else None,
        configuration_url=str(coordinator.client.url),
        entry_type=DeviceEntryType.SERVICE,
    )


class HsiServerEntity(CoordinatorEntity[HsiServerCoordinator]):
    """An entity of the AI server device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: HsiServerCoordinator, description: EntityDescription) -> None:
        """Attach to the server device."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.config_entry.entry_id}_{description.key}"
        self._attr_device_info = server_device_info(coordinator)


class HsiCameraEntity(CoordinatorEntity[HsiServerCoordinator]):
    """An entity of one watched camera; unavailable while the server is down."""

    _attr_has_entity_name = True

    def __init__(self, pipeline: CameraPipeline, description: EntityDescription) -> None:
        """Attach to the camera's device."""
        super().__init__(pipeline.runtime.coordinator)
        self.entity_description = description
        self.pipeline = pipeline
        settings = pipeline.settings
        self._attr_unique_id = f"{settings.camera_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, settings.camera_id)},
            name=settings.name,
            manufacturer="Home Security Intelligence",
            model="Watched camera",
            via_device=(DOMAIN, pipeline.entry.entry_id),
        )

    async def async_added_to_hass(self) -> None:
        """Follow the pipeline's updates."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                SIGNAL_UPDATE.format(self.pipeline.settings.camera_id),
                self._handle_pipeline_update,
            )
        )

    @callback
    def _handle_pipeline_update(self) -> None:
        self.async_write_ha_state()
