"""The timeline card, shipped inside the integration and loaded by every frontend.

The card's JavaScript is served from this integration's own folder and added to the frontend's
extra module URLs with the integration's version as a query, so users never add a dashboard
resource by hand, it works offline, and a browser can never keep a card older than the
integration (a new version is a new URL).
"""

from __future__ import annotations

from pathlib import Path

from homeassistant.components.frontend import add_extra_js_url
from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration

from .const import DOMAIN

URL_BASE = f"/{DOMAIN}/frontend"
CARD_FILE = "hsi-timeline-card.js"
FRONTEND_DIR = Path(__file__).parent / "frontend"


async def async_register_card(hass: HomeAssistant) -> str:
    """Serve the card and have the frontend load it; return the URL it loads."""
    integration = await async_get_integration(hass, DOMAIN)
    # No cache headers: the version query already changes the URL on every release, and a
    # card edited in place (development) is revalidated instead of served stale for a month.
    await hass.http.async_register_static_paths(
        [StaticPathConfig(URL_BASE, str(FRONTEND_DIR), cache_headers=False)]
    )
    url = f"{URL_BASE}/{CARD_FILE}?v={integration.version}"
    # frontend is an after-dependency: set up before us when it is loaded at all. Without it
    # (a headless instance, some tests) there is no browser to load the card into.
    if "frontend" in hass.config.components:
        add_extra_js_url(hass, url)
    return url
