"""Helpers for the browser tests only (tests/browser); never shipped with the integration.

`hsi_testing.seed_events` fills the HSI event store with `count` events quickly: each is a copy
of the newest real event (its objects, reasoning and annotated snapshot, as the AI server made
them), with its own id, an earlier start time and a spread of risk scores. The copies go through
the integration's own store (`EventStore.async_add`), so the card, the websocket API and the media
browser read them exactly as they read analysed events; only the analysis is not repeated 500
times (about a second each on these cores).
"""

from __future__ import annotations

from datetime import timedelta

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.typing import ConfigType
from hsi_client import level_for

DOMAIN = "hsi_testing"


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the helper actions."""
    # Imported here: the hsi integration is loaded by then (it is a dependency).
    from custom_components.hsi.models import SecurityEvent
    from custom_components.hsi.store import EventFilter

    async def seed_events(call: ServiceCall) -> ServiceResponse:
        entries = [
            entry
            for entry in hass.config_entries.async_entries("hsi")
            if entry.state is ConfigEntryState.LOADED
        ]
        if not entries:
            raise ServiceValidationError("no loaded hsi entry")
        store = entries[0].runtime_data.store
        newest, _ = await store.async_list(EventFilter(), limit=1)
        if not newest:
            raise ServiceValidationError("no event to copy: run hsi.analyze first")
        template = newest[0]
        snapshot = None
        if (path := store.image_path(template.event_id, "snapshot")) is not None:
            snapshot = await hass.async_add_executor_job(path.read_bytes)
        base = template.as_dict()
        count = int(call.data["count"])
        for index in range(count):
            score = (index * 37) % 101  # every level, in no particular order
            started = template.started_at - timedelta(minutes=index + 1)
            data = base | {
                "event_id": f"{template.event_id}-seed{index:05d}",
                "started_at": started.isoformat(),
                "ended_at": (started + timedelta(seconds=20)).isoformat(),
                "risk_score": score,
                "risk_level": level_for(score),
                "summary": f"Seeded copy {index + 1} of {count}: {template.risk.summary}",
                # Copies start unread, whatever feedback the original got.
                "acknowledged": False,
                "false_alarm": False,
                "keep": False,
                "identity": None,
            }
            await store.async_add(SecurityEvent.from_dict(data), snapshot)
        return {"added": count}

    hass.services.async_register(
        DOMAIN, "seed_events", seed_events, supports_response=SupportsResponse.OPTIONAL
    )
    return True
