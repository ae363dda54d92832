"""Date/time: "Snoozed until" per camera: alerts pause until then (restored across restarts).

A snoozed camera still records its events (timeline, history, bus events); it only sends no
alert. The state is the end of the snooze, or unknown when the camera is not snoozed; setting a
moment in the past ends the snooze. The notification's "Snooze camera 1 h" button sets it too.
"""

from __future__ import annotations

from datetime import datetime

from homeassistant.components.datetime import DateTimeEntity, DateTimeEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.restore_state import RestoreEntity
from homeassistant.util import dt as dt_util

from .const import SIGNAL_SNOOZE
from .entity import HsiCameraEntity, async_add_camera_entities
from .models import HsiConfigEntry
from .watcher import CameraWatcher

PARALLEL_UPDATES = 0
SNOOZE = DateTimeEntityDescription(
    key="snoozed_until", translation_key="snoozed_until", entity_category=EntityCategory.CONFIG
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One snooze per camera."""
    async_add_camera_entities(entry, async_add_entities, lambda w: [HsiSnoozeEntity(w, SNOOZE)])


class HsiSnoozeEntity(HsiCameraEntity, DateTimeEntity, RestoreEntity):
    """When the camera's alert snooze ends; the notifier holds the value, this shows it."""

    def __init__(self, watcher: CameraWatcher, description: DateTimeEntityDescription) -> None:
        """Attach to the camera and its entry's notifier."""
        super().__init__(watcher, description)
        self._camera_id = watcher.settings.camera_id
        self._notifier = watcher.entry.runtime_data.notifier
        self._expiry: CALLBACK_TYPE | None = None

    @property
    def available(self) -> bool:
        """Snoozing works while the server is down too."""
        return True

    @property
    def native_value(self) -> datetime | None:
        """The end of the snooze, None when not snoozed."""
        return self._notifier.snoozed_until(self._camera_id)

    async def async_added_to_hass(self) -> None:
        """Restore a snooze that has not ended yet, and follow changes from the buttons."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_state()) is not None and (
            until := dt_util.parse_datetime(last.state)
        ) is not None:
            self._notifier.async_snooze(self._camera_id, until)  # a past end is dropped
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, SIGNAL_SNOOZE.format(self._camera_id), self._on_snooze
            )
        )
        self.async_on_remove(self._cancel_expiry)
        self._schedule_expiry()

    async def async_set_value(self, value: datetime) -> None:
        """Snooze until `value` (a past moment ends the snooze)."""
        self._notifier.async_snooze(self._camera_id, value)

    @callback
    def _on_snooze(self) -> None:
        self._schedule_expiry()
        self.async_write_ha_state()

    @callback
    def _schedule_expiry(self) -> None:
        """Show "unknown" again once the snooze is over."""
        self._cancel_expiry()
        if (until := self.native_value) is not None:
            self._expiry = async_track_point_in_utc_time(self.hass, self._on_expired, until)

    @callback
    def _on_expired(self, _now: datetime) -> None:
        self._expiry = None
        self._notifier.async_snooze(self._camera_id, None)

    @callback
    def _cancel_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry()
            self._expiry = None
