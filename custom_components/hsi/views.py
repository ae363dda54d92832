"""Authenticated HTTP view serving the annotated snapshot of an event."""

from __future__ import annotations

from aiohttp import web

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .const import DOMAIN


class HsiSnapshotView(HomeAssistantView):
    """GET /api/hsi/events/{event_id}/snapshot.jpg."""

    url = "/api/hsi/events/{event_id}/snapshot.jpg"
    name = "api:hsi:snapshot"
    requires_auth = True

    async def get(self, request: web.Request, event_id: str) -> web.Response:
        """Find the snapshot in any loaded entry's history."""
        hass = request.app[KEY_HASS]
        for entry in hass.config_entries.async_loaded_entries(DOMAIN):
            snapshot = entry.runtime_data.history.snapshots.get(event_id)
            if snapshot is not None:
                return web.Response(
                    body=snapshot,
                    content_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"},
                )
        return web.Response(status=404)


@callback
def async_setup_views(hass: HomeAssistant) -> None:
    """Register the views."""
    hass.http.register_view(HsiSnapshotView())
