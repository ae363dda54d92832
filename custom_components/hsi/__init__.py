"""Home Security Intelligence: local AI threat assessment for Home Assistant cameras."""

from __future__ import annotations

import asyncio

from hsi_client import HsiAuthError, HsiClient, HsiError

from homeassistant.const import CONF_API_KEY, CONF_URL, EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .analyzer import Analyzer
from .card import async_register_card
from .const import CONF_VERIFY_SSL, DOMAIN, SECTION_HISTORY, SUBENTRY_CAMERA
from .coordinator import HsiServerCoordinator, ServerStatus
from .entity import server_device_info
from .gallery import Gallery
from .models import CameraSettings, HsiConfigEntry, HsiRuntimeData, PipelineOptions
from .notifications import Notifier, async_setup_actions
from .services import async_setup_services
from .store import EventStore, RetentionPolicy, async_remove_store
from .views import async_setup_views
from .watcher import CameraWatcher
from .websocket_api import async_setup_websocket_api

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.DATETIME,
    Platform.EVENT,
    Platform.IMAGE,
    Platform.SENSOR,
    Platform.SWITCH,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, the views, the websocket commands and the card once."""
    async_setup_services(hass)
    async_setup_views(hass)
    async_setup_actions(hass)
    async_setup_websocket_api(hass)
    await async_register_card(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: HsiConfigEntry) -> bool:
    """Connect to the server and start watching the configured cameras."""
    session = async_get_clientsession(hass, verify_ssl=entry.data.get(CONF_VERIFY_SSL, True))
    client = HsiClient(entry.data[CONF_URL], session, entry.data.get(CONF_API_KEY))
    coordinator = HsiServerCoordinator(hass, entry, client)
    try:
        health = await client.health()
        await client.models()
    except HsiAuthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except HsiError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="server_unreachable",
            translation_placeholders={"error": str(err)},
        ) from err
    coordinator.note_health(health)  # a server still loading its models is no failure
    coordinator.async_set_updated_data(ServerStatus(health, client.last_latency_ms))

    options = PipelineOptions.from_entry(entry)
    gallery = Gallery(hass, entry.entry_id, options.match_threshold)
    store = EventStore(
        hass,
        entry.entry_id,
        RetentionPolicy.from_options(entry.options.get(SECTION_HISTORY) or {}),
        cameras=lambda: entry.subentries.keys(),
    )
    entry.async_on_unload(store.async_close)  # also when setup fails after this point
    await gallery.async_load()
    await store.async_load()
    analyzer = Analyzer(hass, entry, client, coordinator, gallery, store, options)
    runtime = HsiRuntimeData(
        client=client,
        coordinator=coordinator,
        gallery=gallery,
        store=store,
        options=options,
        analyzer=analyzer,
        notifier=Notifier(hass, entry, options),
    )
    entry.runtime_data = runtime
    entry.async_on_unload(store.async_listen(runtime.notifier.async_on_store))
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_CAMERA:
            runtime.watchers[subentry.subentry_id] = CameraWatcher(
                hass, entry, analyzer, CameraSettings.from_subentry(subentry)
            )

    # The server device first: camera devices name it as via_device (an error from HA 2025.12).
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **server_device_info(coordinator)
    )
    _async_remove_stale_devices(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    for watcher in runtime.watchers.values():
        watcher.async_start()
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))

    async def _async_on_stop(_event: Event) -> None:
        # Home Assistant does not unload config entries when it stops (Restart, SIGTERM):
        # flush what unloading flushes, or an open batch would die with the process.
        await _async_stop_watchers(entry)
        await runtime.notifier.async_drain()

    # Not listen_once: removing a once-listener after it fired is an error, and the entry may
    # be unloaded after the stop event (tests do that).
    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _async_on_stop))
    return True


async def _async_stop_watchers(entry: HsiConfigEntry) -> None:
    """Stop every camera's watcher: open batches and running analyses are recorded, stored."""
    runtime = entry.runtime_data
    await asyncio.gather(*(w.async_stop() for w in runtime.watchers.values()))
    await runtime.gallery.async_save()


def _device_ids(entry: HsiConfigEntry) -> set[tuple[str, str]]:
    """The devices this entry owns now: the server and one per camera."""
    return {(DOMAIN, entry.entry_id)} | {(DOMAIN, c) for c in entry.runtime_data.watchers}


@callback
def _async_remove_stale_devices(hass: HomeAssistant, entry: HsiConfigEntry) -> None:
    """Detach devices of cameras that are no longer configured (removed subentries)."""
    registry = dr.async_get(hass)
    current = _device_ids(entry)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & current:
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: HsiConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let users delete a device that no configured camera (or the server) owns."""
    return not device.identifiers & _device_ids(entry)


async def _async_update_listener(hass: HomeAssistant, entry: HsiConfigEntry) -> None:
    """Options or cameras changed: reload."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_remove_entry(hass: HomeAssistant, entry: HsiConfigEntry) -> None:
    """The entry was deleted: its event database and its cameras' images go with it."""
    await async_remove_store(hass, entry.entry_id, entry.subentries)


async def async_unload_entry(hass: HomeAssistant, entry: HsiConfigEntry) -> bool:
    """Stop the watchers, save the stores, unload the platforms."""
    await _async_stop_watchers(entry)
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
