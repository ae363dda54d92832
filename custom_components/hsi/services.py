"""Actions: analyze, analyze_image, enroll, forget, clear_history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol

from homeassistant.components import camera
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

from .api import HsiError
from .const import DOMAIN
from .models import CameraSettings, HsiConfigEntry
from .pipeline import CameraPipeline
from .rules import group_of

SERVICE_ANALYZE = "analyze"
SERVICE_ANALYZE_IMAGE = "analyze_image"
SERVICE_ENROLL = "enroll"
SERVICE_FORGET = "forget"
SERVICE_CLEAR_HISTORY = "clear_history"

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_FILE_PATH = "file_path"
ATTR_NAME = "name"
ATTR_CAMERA = "camera"
ATTR_KIND = "kind"
ATTR_MEDIA = "media"
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


def _pipeline_for(hass: HomeAssistant, entry: HsiConfigEntry, entity_id: str) -> CameraPipeline:
    """The configured pipeline of a camera, or a transient one for an unconfigured camera."""
    if not entity_id.startswith("camera."):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_camera",
            translation_placeholders={"entity_id": entity_id},
        )
    for pipeline in entry.runtime_data.pipelines.values():
        if pipeline.settings.camera_entity == entity_id:
            return pipeline
    state = hass.states.get(entity_id)
    if state is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="camera_not_found",
            translation_placeholders={"entity_id": entity_id},
        )
    settings = CameraSettings(camera_id=entity_id, name=state.name, camera_entity=entity_id)
    return CameraPipeline(hass, entry, entry.runtime_data, settings)


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
        return await _snapshot(hass, identifier)
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


async def _snapshot(hass: HomeAssistant, entity_id: str) -> bytes:
    try:
        return (await camera.async_get_image(hass, entity_id)).content
    except HomeAssistantError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="camera_unavailable",
            translation_placeholders={"entity_id": entity_id},
        ) from err


async def _async_analyze(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry = _entry(hass, call)
    pipeline = _pipeline_for(hass, entry, call.data[ATTR_ENTITY_ID])
    event = await pipeline.async_analyze_now("action")
    return event.as_dict()


async def _async_analyze_image(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry = _entry(hass, call)
    if file_path := call.data.get(ATTR_FILE_PATH):
        image = await _read_file(hass, file_path)
    else:
        image = await _read_media(hass, call.data[ATTR_MEDIA])
    name = call.data[ATTR_CAMERA]
    settings = CameraSettings(camera_id=f"image:{name}", name=name, camera_entity=None)
    pipeline = CameraPipeline(hass, entry, entry.runtime_data, settings)
    event = await pipeline.async_analyze_now("action", image)
    return event.as_dict()


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
        image = await _snapshot(hass, entity_id)
        # A configured camera enrols with its own threshold, as its events detect with it.
        confidence = next(
            (
                p.settings.confidence
                for p in runtime.pipelines.values()
                if p.settings.camera_entity == entity_id
            ),
            None,
        )
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
        matching = [
            p.settings.camera_id
            for p in entry.runtime_data.pipelines.values()
            if p.settings.camera_entity == entity_id
        ]
        if not matching:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="camera_not_configured",
                translation_placeholders={"entity_id": entity_id},
            )
        camera_id = matching[0]
    return {"removed": entry.runtime_data.history.clear(camera_id)}


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
    ):
        hass.services.async_register(DOMAIN, name, handler, schema, supports_response=response)
