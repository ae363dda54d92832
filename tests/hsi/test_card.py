"""The timeline card is served from the integration and registered with the frontend by itself."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hsi.card import CARD_FILE, URL_BASE
from custom_components.hsi.const import DOMAIN
from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

MANIFEST = Path(__file__).parents[2] / "custom_components" / "hsi" / "manifest.json"


def _card_url() -> str:
    version = json.loads(MANIFEST.read_text())["version"]
    return f"{URL_BASE}/{CARD_FILE}?v={version}"


async def test_card_is_registered_with_the_integration_version(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, tmp_path: Path
) -> None:
    """With the frontend loaded, every browser loads the card: no resource to add by hand."""
    # development_repo: the frontend without its 200 MB package (not installed for HA 2026.2).
    assert await async_setup_component(
        hass, "frontend", {"frontend": {"development_repo": str(tmp_path)}}
    )
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()

    assert _card_url() in hass.data[DATA_EXTRA_MODULE_URL].urls
    # The browser fetches it like every frontend file: without credentials.
    response = await (await hass_client_no_auth()).get(_card_url())
    assert response.status == 200
    assert "javascript" in response.headers["Content-Type"]
    body = await response.text()
    assert "customElements.define(CARD_TYPE, HsiTimelineCard)" in body
    assert 'const CARD_TYPE = "hsi-timeline-card"' in body
    assert "window.customCards" in body


async def test_card_is_served_without_a_frontend(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    """A headless instance (no frontend) sets up all the same; nothing to load the card into."""
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()

    assert "frontend" not in hass.config.components
    assert DATA_EXTRA_MODULE_URL not in hass.data
    response = await (await hass_client_no_auth()).get(f"{URL_BASE}/{CARD_FILE}")
    assert response.status == 200
    # Only the frontend folder is public, not the integration's other files.
    missing = await (await hass_client_no_auth()).get(f"{URL_BASE}/manifest.json")
    assert missing.status == 404
