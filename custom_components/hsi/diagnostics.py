"""Diagnostics: configuration (key redacted), server status, pipelines, gallery, event store."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant

from .models import HsiConfigEntry

TO_REDACT = {CONF_API_KEY, "api_key"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HsiConfigEntry
) -> dict[str, Any]:
    """Everything useful for a bug report, nothing secret."""
    runtime = entry.runtime_data
    status = runtime.coordinator.data
    return {
        "entry": async_redact_data(
            {"data": dict(entry.data), "options": dict(entry.options)}, TO_REDACT
        ),
        "cameras": [
            {
                "settings": asdict(w.settings),
                "enabled": w.state.enabled,
                "batch_open": w.state.batch_open,
                "counts": dict(w.state.counts),
                "last_event": w.state.last_event.as_dict() if w.state.last_event else None,
            }
            for w in runtime.watchers.values()
        ],
        "server": {
            "url": str(runtime.client.url),
            "reachable": runtime.coordinator.last_update_success,
            "latency_ms": status.latency_ms if status else None,
            "health": asdict(status.health) if status else None,
        },
        "gallery": runtime.gallery.stats(),
        "history": await runtime.store.async_stats(),
    }
