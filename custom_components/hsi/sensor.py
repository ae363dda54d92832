"""Sensors: risk, last event and object counts per camera; status (with the progress of model
downloads), latency and models of the server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hsi_client import GROUPS, RISK_LEVELS, group_of

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import CameraState, ServerStatus
from .entity import HsiCameraEntity, HsiServerEntity, async_add_camera_entities, count_of
from .models import HsiConfigEntry, SecurityEvent

PARALLEL_UPDATES = 0
MAX_STATE_LENGTH = 255  # Home Assistant rejects longer states
# Irregular plurals in the last event's state ("2 people"); the rest get an "s" ("2 vehicles").
_PLURALS = {"person": "people", "knife": "knives", "scissors": "scissors"}
# The server's /health status: `loading` while it downloads or loads its models (first start).
SERVER_STATUSES = ["healthy", "loading", "degraded"]


@dataclass(frozen=True, kw_only=True)
class HsiCameraSensorDescription(SensorEntityDescription):
    """A camera sensor reading the camera's state."""

    value_fn: Callable[[CameraState], StateType]
    attrs_fn: Callable[[CameraState], dict[str, Any] | None] = lambda _: None


@dataclass(frozen=True, kw_only=True)
class HsiServerSensorDescription(SensorEntityDescription):
    """A server sensor reading the coordinator data."""

    value_fn: Callable[[ServerStatus], StateType]
    attrs_fn: Callable[[ServerStatus], dict[str, Any] | None] = lambda _: None


def _counted(label: str, count: int) -> str:
    noun = label if count == 1 else _PLURALS.get(label, f"{label}s")
    return f"{count} {noun}"


def event_headline(event: SecurityEvent) -> str:
    """The last event as a short state: level and what was seen ("High · 1 person, 1 car").

    Short, because the device page shows states beside the entity names and squeezes the names
    to fit a long one; the summary, reasoning and the rest are attributes.
    """
    groups: dict[str, int] = {}
    for label, count in event.counts.items():
        group = group_of(label)
        key = label if group == "other" else group
        groups[key] = groups.get(key, 0) + count
    order: dict[str, int] = {group: index for index, group in enumerate(GROUPS)}
    seen = sorted(groups.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    what = ", ".join(_counted(label, count) for label, count in seen) or "nothing relevant"
    return f"{event.risk.risk_level.capitalize()} · {what}"[:MAX_STATE_LENGTH]


def _last_event_attrs(state: CameraState) -> dict[str, Any] | None:
    event = state.last_event
    if event is None:
        return None
    return {
        "event_id": event.event_id,
        "summary": event.risk.summary,
        "reasoning": event.risk.reasoning,
        "description": event.description,
        "recommended_action": event.risk.recommended_action,
        "risk_factors": [f.as_dict() for f in event.risk.risk_factors],
        "source": event.risk.source,
        "preliminary": event.preliminary,
        "started_at": event.started_at.isoformat(),
        "ended_at": event.ended_at.isoformat(),
        "counts": event.counts,
        "known_matches": [m.description for m in event.known_matches],
        "snapshot_url": event.snapshot_url,
    }


def _server_status_attrs(status: ServerStatus) -> dict[str, Any]:
    """Each model's state, what downloads and how far, and the errors of failed models."""
    health = status.health
    return {
        "models": {name: model.state for name, model in sorted(health.models.items())},
        "downloading": health.downloading,
        "download_percent": health.download_percent,
        "errors": health.errors,
        "version": health.version,
    }


def _download_percent(status: ServerStatus) -> float | None:
    """How far the model downloads are; 100 once the server is healthy, nothing left to fetch
    (the device page would say "Unknown" otherwise); unknown while the sizes are not known yet,
    or while the server loads, failed a model or says what the integration does not know."""
    health = status.health
    if health.downloading:
        return health.download_percent
    return 100.0 if health.status == "healthy" else None


def _download_attrs(status: ServerStatus) -> dict[str, Any]:
    """The running downloads, one entry per model."""
    return {
        name: {
            "bytes": progress.bytes,
            "total": progress.total,
            "rate_bps": progress.rate_bps,
            "eta_s": progress.eta_s,
        }
        for name, model in sorted(status.health.models.items())
        if model.state == "downloading" and (progress := model.progress) is not None
    }


CAMERA_SENSORS: tuple[HsiCameraSensorDescription, ...] = (
    HsiCameraSensorDescription(
        key="risk_score",
        translation_key="risk_score",
        # 0-100 (hsi_client.clamp_score): a percentage reads as "out of 100" in the UI and
        # gives the history graph a labelled axis.
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.last_event.risk.risk_score if s.last_event else None,
    ),
    HsiCameraSensorDescription(
        key="risk_level",
        translation_key="risk_level",
        device_class=SensorDeviceClass.ENUM,
        options=list(RISK_LEVELS),
        value_fn=lambda s: s.last_event.risk.risk_level if s.last_event else None,
    ),
    HsiCameraSensorDescription(
        key="last_event",
        translation_key="last_event",
        value_fn=lambda s: event_headline(s.last_event) if s.last_event else None,
        attrs_fn=_last_event_attrs,
    ),
    *(
        HsiCameraSensorDescription(
            key=f"{group}_count",
            translation_key=f"{group}_count",
            state_class=SensorStateClass.MEASUREMENT,
            value_fn=count_of(group),
        )
        for group in GROUPS
    ),
)

SERVER_SENSORS: tuple[HsiServerSensorDescription, ...] = (
    HsiServerSensorDescription(
        key="server_status",
        translation_key="server_status",
        device_class=SensorDeviceClass.ENUM,
        options=SERVER_STATUSES,
        value_fn=lambda s: s.health.status if s.health.status in SERVER_STATUSES else None,
        attrs_fn=_server_status_attrs,
    ),
    HsiServerSensorDescription(
        key="download_progress",
        translation_key="download_progress",
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_download_percent,
        attrs_fn=_download_attrs,
    ),
    HsiServerSensorDescription(
        key="latency",
        translation_key="latency",
        entity_registry_enabled_default=False,  # changes every poll: a recorder row each time
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: round(s.latency_ms, 1) if s.latency_ms is not None else None,
    ),
    HsiServerSensorDescription(
        key="models_loaded",
        translation_key="models_loaded",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: len(s.health.models_loaded),
        attrs_fn=lambda s: {
            "models": s.health.models_loaded,
            "device": s.health.device,
            "status": s.health.status,
            "vram_used_gb": s.health.vram_used_gb,
        },
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Server sensors, then each camera's sensors under its subentry."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(HsiServerSensor(coordinator, d) for d in SERVER_SENSORS)
    async_add_camera_entities(
        entry, async_add_entities, lambda w: (HsiCameraSensor(w, d) for d in CAMERA_SENSORS)
    )


class HsiServerSensor(HsiServerEntity, SensorEntity):
    """A sensor of the AI server."""

    entity_description: HsiServerSensorDescription

    @property
    def native_value(self) -> StateType:
        """Read the coordinator data."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Extra detail."""
        return self.entity_description.attrs_fn(self.coordinator.data)


class HsiCameraSensor(HsiCameraEntity, SensorEntity):
    """A sensor of one camera."""

    entity_description: HsiCameraSensorDescription

    @property
    def native_value(self) -> StateType:
        """Read the camera's state."""
        return self.entity_description.value_fn(self.state_data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Extra detail."""
        return self.entity_description.attrs_fn(self.state_data)
