"""Coordinators: the server's status (polled), and each camera's state (pushed by its watcher)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hsi_client import GROUPS, Health, HsiAuthError, HsiClient, HsiError

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOADING_SCAN_INTERVAL, LOGGER, REPAIR_GRACE_PERIOD, SCAN_INTERVAL
from .models import SecurityEvent

ISSUE_UNREACHABLE = "server_unreachable"
ISSUE_MODEL_ERROR = "model_error"
MAX_BACKOFF = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """Everything the server entities read."""

    health: Health
    latency_ms: float | None


class HsiServerCoordinator(DataUpdateCoordinator[ServerStatus]):
    """Poll the server's health; own the repair issues "server unreachable" (after the grace
    period) and "model error" (a model the server could not download or load).

    A server that is still downloading or loading its models (status `loading`, its first
    start) answers: that is no failure. It is polled more often meanwhile, so the progress the
    entities show stays current.
    """

    config_entry: ConfigEntry

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, client: HsiClient) -> None:
        """Set up the coordinator for one server."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} server",
            update_interval=SCAN_INTERVAL,
        )
        self.client = client
        self.down_since: datetime | None = None

    @property
    def issue_id(self) -> str:
        """Repair issue id of this entry."""
        return f"{ISSUE_UNREACHABLE}_{self.config_entry.entry_id}"

    @property
    def model_issue_id(self) -> str:
        """Repair issue id of this entry's failed models."""
        return f"{ISSUE_MODEL_ERROR}_{self.config_entry.entry_id}"

    @property
    def loading(self) -> bool:
        """The server answered that it is still downloading or loading its models."""
        return self.data is not None and self.data.health.loading

    async def _async_update_data(self) -> ServerStatus:
        try:
            health = await self.client.health()
        except HsiAuthError as err:  # pragma: no cover - /health needs no key by contract
            raise UpdateFailed(str(err)) from err
        except HsiError as err:
            self._note_failure()
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="server_unreachable",
                translation_placeholders={"error": str(err)},
            ) from err
        self._note_success(health)
        return ServerStatus(health=health, latency_ms=self.client.last_latency_ms)

    def _note_failure(self) -> None:
        now = dt_util.utcnow()
        if self.down_since is None:
            self.down_since = now
        # Exponential back-off of the polling while the server is down.
        current = self.update_interval or SCAN_INTERVAL
        self.update_interval = min(current * 2, MAX_BACKOFF)
        if now - self.down_since >= REPAIR_GRACE_PERIOD:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self.issue_id,
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_UNREACHABLE,
                translation_placeholders={
                    "url": str(self.client.url),
                    "since": self.down_since.isoformat(timespec="seconds"),
                },
            )

    def _note_success(self, health: Health) -> None:
        if self.down_since is not None:
            LOGGER.info("HSI server %s is reachable again", self.client.url)
        self.down_since = None
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
        self.note_health(health)

    def note_health(self, health: Health) -> None:
        """Follow an answer of the server: poll faster while it loads its models; raise the
        "model error" issue while a model is in `error`, remove it otherwise."""
        self.update_interval = LOADING_SCAN_INTERVAL if health.loading else SCAN_INTERVAL
        errors = health.errors
        if not errors:
            ir.async_delete_issue(self.hass, DOMAIN, self.model_issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self.model_issue_id,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_MODEL_ERROR,
            translation_placeholders={
                "url": str(self.client.url),
                "models": ", ".join(errors),
                "errors": "\n".join(f"- {name}: {error}" for name, error in errors.items()),
            },
        )

    def note_pipeline_failure(self) -> None:
        """A pipeline call failed: poll soon instead of waiting for the next interval."""
        self._note_failure()
        self.config_entry.async_create_task(
            self.hass, self.async_request_refresh(), "hsi server refresh", eager_start=False
        )


@dataclass(frozen=True, slots=True)
class CameraState:
    """Everything a camera's entities display: published whole by its watcher."""

    enabled: bool = True
    counts: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(GROUPS, 0))
    batch_open: bool = False
    threat: bool = False
    last_event: SecurityEvent | None = None
    snapshot: bytes | None = None
    snapshot_at: datetime | None = None
    inference_ms: float | None = None


class HsiCameraCoordinator(DataUpdateCoordinator[CameraState]):
    """One camera's state: pushed by its watcher, never polled."""

    config_entry: ConfigEntry

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, camera_name: str) -> None:
        """Start with the empty state."""
        super().__init__(hass, LOGGER, config_entry=entry, name=f"{DOMAIN} camera {camera_name}")
        self.data = CameraState()

    async def _async_update_data(self) -> CameraState:
        """A refresh (e.g. homeassistant.update_entity) shows the current state again."""
        return self.data
