"""Base entities: the server device and one device per camera."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_ADDON, DOMAIN
from .coordinator import CameraState, HsiCameraCoordinator, HsiServerCoordinator
from .models import HsiConfigEntry
from .watcher import CameraWatcher


def count_of(group: str) -> Callable[[CameraState], int]:
    """Reader of how many objects of one group (person, vehicle, animal) a camera sees now."""

    def count(state: CameraState) -> int:
        return state.counts.get(group, 0)

    return count


@callback
def async_add_camera_entities(
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities: Callable[[CameraWatcher], Iterable[Entity]],
) -> None:
    """Add each camera's entities under its config subentry (and so its device)."""
    for camera_id, watcher in entry.runtime_data.watchers.items():
        async_add_entities(entities(watcher), config_subentry_id=camera_id)


def server_device_info(coordinator: HsiServerCoordinator) -> DeviceInfo:
    """The AI server's device: the parent of every camera device of the entry."""
    entry = coordinator.config_entry
    health = coordinator.data.health if coordinator.data else None
    # Visit: the add-on's page in Home Assistant (its URL is a host name inside Supervisor's
    # network, which a browser cannot reach), else the server's status page at its root.
    addon = entry.data.get(CONF_ADDON)
    url = f"homeassistant://hassio/addon/{addon}/info" if addon else str(coordinator.client.url)
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer="Home Security Intelligence",
        model="AI server",
        sw_version=health.version if health else None,
        configuration_url=url,
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


class HsiCameraEntity(CoordinatorEntity[HsiCameraCoordinator]):
    """An entity of one watched camera: displays its published state.

    Unavailable while the server is down (unless an entity says otherwise).
    """

    _attr_has_entity_name = True

    def __init__(self, watcher: CameraWatcher, description: EntityDescription) -> None:
        """Attach to the camera's device."""
        super().__init__(watcher.coordinator)
        self.entity_description = description
        self.watcher = watcher
        settings = watcher.settings
        self._server = watcher.analyzer.coordinator
        self._attr_unique_id = f"{settings.camera_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, settings.camera_id)},
            name=settings.name,
            manufacturer="Home Security Intelligence",
            model="Watched camera",
            via_device=(DOMAIN, watcher.entry.entry_id),
        )

    @property
    def state_data(self) -> CameraState:
        """The camera's current state."""
        return self.coordinator.data

    @property
    def available(self) -> bool:
        """Available while the server answers."""
        return self._server.last_update_success

    async def async_added_to_hass(self) -> None:
        """Follow the server's availability too."""
        await super().async_added_to_hass()
        self.async_on_remove(self._server.async_add_listener(self._handle_coordinator_update))
