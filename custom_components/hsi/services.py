"""Actions: analyze, analyze_image, enroll, forget, clear_history, snooze."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from hsi_client import HsiError, group_of
import voluptuous as vol

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util

from .const import DOMAIN, SNOOZE_BUTTON
from .events import async_publish_event
from .models import CameraSettings, HsiConfigEntry, SecurityEvent
from .watcher import CameraWatcher, async_snapshot, server_error

SERVICE_ANALYZE = "analyze"
SERVICE_ANALYZE_IMAGE = "analyze_image"
SERVICE_ENROLL = "enroll"
SERVICE_FORGET = "forget"
SERVICE_CLEAR_HISTORY = "clear_history"
SERVICE_SNOOZE = "snooze"

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_FILE_PATH = "file_path"
ATTR_NAME = "name"
ATTR_CAMERA = "camera"
ATTR_KIND = "kind"
ATTR_MEDIA = "media"
ATTR_DURATION = "duration"
MEDIA_PREFIX = "media-source://"

ENTRY_FIELD: dict[vol.Marker, Any] = {vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string}

ANALYZE_SCHEMA = vol.Schema({vol.Required(ATTR_ENTITY_ID): cv.entity_id, **ENTRY_FIELD})
ANALYZE_IMAGE_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional(ATTR_FILE_PATH): cv.string,
            # The media selector's {media_content_id, ...} or the media-source:// id itself.
            vol.Optional(ATTR_MEDIA): vol.Any(
                cv.string, vol.Schema({vol.Required("media_content_id"): cv.string}, extra=True)
            ),
            vol.Optional(ATTR_CAMERA, default="image"): cv.string,
            **ENTRY_FIELD,
        }
    ),
    cv.has_at_least_one_key(ATTR_FILE_PATH, ATTR_MEDIA),
)
ENROLL_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Required(ATTR_NAME): vol.All(cv.string, vol.Length(min=1, max=100)),
            vol.Optional(ATTR_ENTITY_ID): cv.entity_id,
            vol.Optional(ATTR_FILE_PATH): cv.string,
            vol.Optional(ATTR_KIND, default="person"): vol.In(["person", "vehicle", "animal"]),
            **ENTRY_FIELD,
        }
    ),
    cv.has_at_least_one_key(ATTR_ENTITY_ID, ATTR_FILE_PATH),
)
FORGET_SCHEMA = vol.Schema({vol.Required(ATTR_NAME): cv.string, **ENTRY_FIELD})
CLEAR_SCHEMA = vol.Schema({vol.Optional(ATTR_ENTITY_ID): cv.entity_id, **ENTRY_FIELD})
SNOOZE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_ENTITY_ID): cv.entity_id,
        vol.Optional(ATTR_DURATION, default=SNOOZE_BUTTON): cv.positive_time_period,
        **ENTRY_FIELD,
    }
)


def _entry(hass: HomeAssistant, call: ServiceCall) -> HsiConfigEntry:
    """The loaded entry the call is for (the only one, or the one named)."""
    entries: list[HsiConfigEntry] = [
        e for e in hass.config_entries.async_entries(DOMAIN) if e.state is ConfigEntryState.LOADED
    ]
    if entry_id := call.data.get(ATTR_CONFIG_ENTRY_ID):
        entries = [e for e in entries if e.entry_id == entry_id]
    if not entries:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="not_loaded")
    if len(entries) > 1:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="several_servers")
    return entries[0]


def _watcher_of(entry: HsiConfigEntry, entity_id: str) -> CameraWatcher | None:
    """The watcher of a configured camera entity."""
    return next(
        (w for w in entry.runtime_data.watchers.values() if w.settings.camera_entity == entity_id),
        None,
    )


async def _analyze_once(
    hass: HomeAssistant, entry: HsiConfigEntry, image: bytes, settings: CameraSettings
) -> SecurityEvent:
    """Analyse one picture of something no watcher watches, and publish it as a new event."""
    try:
        outcome = await entry.runtime_data.analyzer.analyze_picture(image, settings, "action")
    except HsiError as err:
        raise server_error(err) from err
    async_publish_event(
        hass, entry, outcome.event, outcome.snapshot, update=False, frames=outcome.frames
    )
    return await _stored(entry, outcome.event)


async def _stored(entry: HsiConfigEntry, event: SecurityEvent) -> SecurityEvent:
    """The event as the store saved it (with its images).

    Publishing hands the event to the store's worker at once and the worker keeps the order of
    calls, so this read answers after the event is saved and its bus event fired.
    """
    return await entry.runtime_data.store.async_get(event.event_id) or event


async def _read_file(hass: HomeAssistant, file_path: str) -> bytes:
    if not hass.config.is_allowed_path(file_path):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="path_not_allowed",
            translation_placeholders={"path": file_path},
        )
    try:
        return await hass.async_add_executor_job(Path(file_path).read_bytes)
    except OSError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="file_unreadable",
            translation_placeholders={"path": file_path, "error": str(err)},
        ) from err


async def _read_media(hass: HomeAssistant, media: str | dict[str, Any]) -> bytes:
    """A picture from the media browser: a local media file, or a camera's snapshot."""
    content_id = media if isinstance(media, str) else media["media_content_id"]
    source, _, identifier = content_id.removeprefix(MEDIA_PREFIX).partition("/")
    if content_id.startswith(MEDIA_PREFIX) and source == "camera" and identifier:
        return await async_snapshot(hass, identifier)
    if content_id.startswith(MEDIA_PREFIX) and source == "media_source":
        folder, _, relative = identifier.partition("/")
        if (root := hass.config.media_dirs.get(folder)) is not None and relative:
            try:
                image = await hass.async_add_executor_job(_read_media_file, root, relative)
            except OSError as err:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="file_unreadable",
                    translation_placeholders={"path": content_id, "error": str(err)},
                ) from err
            if image is not None:
                return image
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="media_not_supported",
        translation_placeholders={"media": content_id},
    )


def _read_media_file(root: str, relative: str) -> bytes | None:
    """A file below a media folder; None for a path that leaves it (`..`, links)."""
    base = Path(root).resolve()
    path = (base / relative).resolve()
    return path.read_bytes() if path.is_relative_to(base) else None


async def _async_analyze(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry = _entry(hass, call)
    entity_id: str = call.data[ATTR_ENTITY_ID]
    if not entity_id.startswith("camera."):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_camera",
            translation_placeholders={"entity_id": entity_id},
        )
    if (watcher := _watcher_of(entry, entity_id)) is not None:
        return (await _stored(entry, await watcher.async_analyze_now("action"))).as_dict()
    if (state := hass.states.get(entity_id)) is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="camera_not_found",
            translation_placeholders={"entity_id": entity_id},
        )
    image = await async_snapshot(hass, entity_id)
    settings = CameraSettings(camera_id=entity_id, name=state.name, camera_entity=entity_id)
    return (await _analyze_once(hass, entry, image, settings)).as_dict()


async def _async_analyze_image(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry = _entry(hass, call)
    if file_path := call.data.get(ATTR_FILE_PATH):
        image = await _read_file(hass, file_path)
    else:
        image = await _read_media(hass, call.data[ATTR_MEDIA])
    name = call.data[ATTR_CAMERA]
    settings = CameraSettings(camera_id=f"image:{name}", name=name, camera_entity=None)
    return (await _analyze_once(hass, entry, image, settings)).as_dict()


async def _async_enroll(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry = _entry(hass, call)
    runtime = entry.runtime_data
    kind: str = call.data[ATTR_KIND]
    confidence: float | None = None  # the server's default threshold
    if file_path := call.data.get(ATTR_FILE_PATH):
        image = await _read_file(hass, file_path)
    else:
        entity_id = call.data[ATTR_ENTITY_ID]
        image = await async_snapshot(hass, entity_id)
        # A configured camera enrols with its own threshold, as its events detect with it.
        if (watcher := _watcher_of(entry, entity_id)) is not None:
            confidence = watcher.settings.confidence
    try:
        result = await runtime.client.detect(image, confidence=confidence, embed=True)
        candidates = [
            d for d in result.detections if group_of(d.label) == kind and d.embedding is not None
        ]
        if candidates:
            best = max(candidates, key=lambda d: d.bbox.width * d.bbox.height * d.confidence)
            embedding: Any = best.embedding
        elif result.detections and all(d.embedding is None for d in result.detections):
            # A server without ?embed=1: embed the whole picture instead.
            embedding = (await runtime.client.embed(images=[image])).image_embeddings[0]
        else:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="nothing_to_enroll",
                translation_placeholders={"kind": kind},
            )
    except HsiError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="server_error",
            translation_placeholders={"error": str(err)},
        ) from err
    except IndexError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="server_error",
            translation_placeholders={"error": "no embedding returned"},
        ) from err
    entry_ = runtime.gallery.enroll(call.data[ATTR_NAME], kind, embedding)
    return {"gallery_id": entry_.entry_id, "name": entry_.name, "kind": kind}


async def _async_forget(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call)
    removed = entry.runtime_data.gallery.forget(call.data[ATTR_NAME])
    if not removed:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_name",
            translation_placeholders={"name": call.data[ATTR_NAME]},
        )
    return {"removed": removed}


async def _async_clear_history(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call)
    camera_id: str | None = None
    if entity_id := call.data.get(ATTR_ENTITY_ID):
        if (watcher := _watcher_of(entry, entity_id)) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="camera_not_configured",
                translation_placeholders={"entity_id": entity_id},
            )
        camera_id = watcher.settings.camera_id
    return {"removed": await entry.runtime_data.store.async_clear(camera_id)}


async def _async_snooze(call: ServiceCall) -> ServiceResponse:
    """Snooze a camera's alerts for a while (0: end the snooze); its events are still recorded."""
    entry = _entry(call.hass, call)
    entity_id = call.data[ATTR_ENTITY_ID]
    if (watcher := _watcher_of(entry, entity_id)) is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="camera_not_configured",
            translation_placeholders={"entity_id": entity_id},
        )
    duration: timedelta = call.data[ATTR_DURATION]
    notifier = entry.runtime_data.notifier
    camera_id = watcher.settings.camera_id
    notifier.async_snooze(camera_id, dt_util.utcnow() + duration if duration else None)
    until = notifier.snoozed_until(camera_id)
    return {"snoozed_until": until.isoformat() if until else None}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    for name, handler, schema, response in (
        (SERVICE_ANALYZE, _async_analyze, ANALYZE_SCHEMA, SupportsResponse.OPTIONAL),
        (
            SERVICE_ANALYZE_IMAGE,
            _async_analyze_image,
            ANALYZE_IMAGE_SCHEMA,
            SupportsResponse.OPTIONAL,
        ),
        (SERVICE_ENROLL, _async_enroll, ENROLL_SCHEMA, SupportsResponse.OPTIONAL),
        (SERVICE_FORGET, _async_forget, FORGET_SCHEMA, SupportsResponse.OPTIONAL),
        (SERVICE_CLEAR_HISTORY, _async_clear_history, CLEAR_SCHEMA, SupportsResponse.OPTIONAL),
        (SERVICE_SNOOZE, _async_snooze, SNOOZE_SCHEMA, SupportsResponse.OPTIONAL),
    ):
        hass.services.async_register(DOMAIN, name, handler, schema, supports_response=response)
