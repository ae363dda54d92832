"""The automation blueprint: valid for Home Assistant's blueprint schema, and it works.

It runs as users run it: copied into the config's blueprints folder, an automation made from it,
a real mobile_app phone whose push goes to a mocked push service.
"""

from __future__ import annotations

import importlib
from pathlib import Path
import shutil
import sys
import types
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from custom_components.hsi.const import EVENT_SECURITY
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint.models import Blueprint
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml

from .conftest import REPO_ROOT

BLUEPRINT = REPO_ROOT / "blueprints" / "automation" / "hsi" / "security_event_notification.yaml"
PUSH_URL = "https://mobile-push.home-assistant.dev/push"


def test_blueprint_is_valid() -> None:
    """HA's own schema accepts it; the inputs are the documented ones; HA 2025.4 suffices."""
    blueprint = Blueprint(
        load_yaml(BLUEPRINT),  # type: ignore[arg-type]
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )
    assert blueprint.domain == "automation"
    assert set(blueprint.inputs) == {
        "notify_device",
        "min_level",
        "cameras",
        "condition_entity",
        "condition_states",
        "dashboard_path",
    }
    assert blueprint.validate() is None  # None: no errors (e.g. a newer min_version)


def _event(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": "E1",
        "camera_id": "cam1",
        "camera": "Front door",
        "camera_entity": "camera.front_door",
        "risk_level": "high",
        "risk_score": 72,
        "summary": "Unknown person at the door",
        "preliminary": False,
        "snapshot_url": "/api/hsi/events/E1/snapshot.jpg",
        "update": False,
    } | changes


async def _phone(hass: HomeAssistant) -> str:
    """A companion-app phone (mobile_app set up for real); its device id."""
    entry = MockConfigEntry(
        domain="mobile_app",
        data={
            "webhook_id": "phone-hook",
            "device_id": "phone-1",
            "device_name": "Phone",
            "manufacturer": "Apple",
            "model": "iPhone",
            "os_name": "iOS",
            "os_version": "18.1",
            "app_id": "io.robbie.HomeAssistant",
            "app_name": "Home Assistant",
            "app_version": "2025.1",
            "supports_encryption": False,
            "secret": None,
            "user_id": "user",
            "app_data": {"push_token": "token", "push_url": PUSH_URL},
        },
    )
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "mobile_app", {})
    await hass.async_block_till_done()
    device = dr.async_get(hass).async_get_device(identifiers={("mobile_app", "phone-1")})
    assert device is not None
    return device.id


class _StandIn(types.ModuleType):
    """A module of which every name is a placeholder class (never called in these tests)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = type(name, (Exception,), {})
        setattr(self, name, value)
        return value


@pytest.fixture
def mobile_app_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for the libraries mobile_app imports that the test venvs do not install.

    PyNaCl (encrypted registrations only: this phone registers without encryption) and, on
    HA 2026, what mobile_app pulls in through cloud → assist_pipeline → tts (mutagen, ...).
    None of them is used by a push notification. (Modules imported meanwhile keep the
    stand-ins for the rest of the session; no other test of this suite uses them.)
    """
    for _ in range(20):
        try:
            importlib.import_module("homeassistant.components.mobile_app")
        except ModuleNotFoundError as err:
            parts = (err.name or "").split(".")
            for depth in range(1, len(parts) + 1):
                name = ".".join(parts[:depth])
                if name not in sys.modules:
                    module = _StandIn(name)
                    module.__path__ = []  # a package: submodules import too
                    monkeypatch.setitem(sys.modules, name, module)
            continue
        return
    pytest.fail("mobile_app does not import")


@pytest.mark.usefixtures("mobile_app_importable")
async def test_blueprint_notifies_the_phone(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    """From the chosen level up, of the chosen cameras, while the condition holds."""
    aioclient_mock.post(PUSH_URL, json={})
    assert await async_setup_component(hass, "homeassistant", {})
    device_id = await _phone(hass)
    target = Path(hass.config.path("blueprints/automation/hsi"))
    await hass.async_add_executor_job(lambda: target.mkdir(parents=True, exist_ok=True))
    await hass.async_add_executor_job(shutil.copy, BLUEPRINT, target / BLUEPRINT.name)
    hass.states.async_set("alarm_control_panel.home", "armed_away")
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "id": "hsi_alert",
                "use_blueprint": {
                    "path": f"hsi/{BLUEPRINT.name}",
                    "input": {
                        "notify_device": device_id,
                        "min_level": "high",
                        "cameras": ["camera.front_door"],
                        "condition_entity": "alarm_control_panel.home",
                        "condition_states": ["armed_away"],
                    },
                },
            }
        },
    )
    await hass.async_block_till_done()
    assert len(hass.states.async_entity_ids("automation")) == 1

    async def fire(**changes: Any) -> list[dict[str, Any]]:
        before = len(aioclient_mock.mock_calls)
        hass.bus.async_fire(EVENT_SECURITY, _event(**changes))
        await hass.async_block_till_done()
        return [call[2] for call in aioclient_mock.mock_calls[before:]]

    (push,) = await fire()
    assert push["title"] == "Front door: high risk (72)"
    assert push["message"] == "Unknown person at the door"
    data = push["data"]
    assert data["tag"] == "hsi-E1"
    assert data["image"] == "/api/hsi/events/E1/snapshot.jpg"
    assert data["url"] == "/lovelace/0?hsi_event=E1"
    assert data["push"]["interruption-level"] == "time-sensitive"
    assert [a["action"] for a in data["actions"]] == [
        "HSI_SNOOZE_1H|cam1",
        "HSI_FALSE_ALARM|E1",
        "HSI_KNOWN|E1",
        "URI",
    ]
    (critical,) = await fire(risk_level="critical", risk_score=90)
    assert critical["data"]["push"]["interruption-level"] == "critical"
    assert await fire(risk_level="medium", risk_score=40) == []  # below the level
    assert await fire(camera_entity="camera.garden") == []  # another camera
    hass.states.async_set("alarm_control_panel.home", "disarmed")
    assert await fire() == []  # the condition does not hold
