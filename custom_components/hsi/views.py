"""Authenticated HTTP view serving the stored images of security events.

`requires_auth`: a bearer token, or a path signed by `auth/sign_path` (the websocket API and the
media source hand out signed paths, so `<img src>` works in the frontend). No image of an event
is reachable without Home Assistant's authentication.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .const import DOMAIN
from .models import HsiConfigEntry

# Browsers may keep an image for a day: a stored image of an event changes only when its
# preliminary event is analysed, within minutes, and the card asks again with a new signature.
CACHE_CONTROL = "private, max-age=86400"


class HsiEventImageView(HomeAssistantView):
    """GET /api/hsi/events/{event_id}/{image}.jpg: snapshot, frame0, frame1, ..."""

    url = "/api/hsi/events/{event_id}/{image}.jpg"
    name = "api:hsi:event_image"
    requires_auth = True

    async def get(self, request: web.Request, event_id: str, image: str) -> web.StreamResponse:
        """Find the image in any loaded entry's store; 404 when none has it."""
        hass = request.app[KEY_HASS]
        entries: list[HsiConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
        for entry in entries:
            path = entry.runtime_data.store.image_path(event_id, image)
            if path is not None and await hass.async_add_executor_job(Path.is_file, path):
                return web.FileResponse(
                    path, headers={"Cache-Control": CACHE_CONTROL, "Content-Type": "image/jpeg"}
                )
        raise web.HTTPNotFound


@callback
def async_setup_views(hass: HomeAssistant) -> None:
    """Register the views."""
    hass.http.register_view(HsiEventImageView())
