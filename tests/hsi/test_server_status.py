"""The server device while the server downloads and loads its models (first start), and when
a model fails: what the entities show, when a repair issue is raised and when it is not."""

from __future__ import annotations

import copy
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from hsi_client.testing import HEALTHY, Answer, FakeServer, detection
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hsi.const import DOMAIN, LOADING_SCAN_INTERVAL, SCAN_INTERVAL
from custom_components.hsi.coordinator import ISSUE_MODEL_ERROR, ISSUE_UNREACHABLE
from homeassistant.const import STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .conftest import advance, make_entry, motion, setup_integration

STATUS = "sensor.hsi_ai_server_127_0_0_1_status"
DOWNLOAD = "sensor.hsi_ai_server_127_0_0_1_model_download"
CONNECTIVITY = "binary_sensor.hsi_ai_server_127_0_0_1_connectivity"
RISK = "sensor.front_door_risk_score"
PERSON = "binary_sensor.front_door_person"
NOT_YET = "model 'detector' is unavailable: its weights are downloading"

LOADING: dict[str, Any] = {
    **copy.deepcopy(dict(HEALTHY)),
    "status": "loading",
    "model_loaded": False,
    "models": {
        "detector": {
            "loaded": False,
            "status": "loading",
            "state": "downloading",
            "progress": {
                "bytes": 40_000_000,
                "total": 80_000_000,
                "percent": 50.0,
                "rate_bps": 4_000_000,
                "eta_s": 10.0,
                "file": "model.safetensors",
            },
        },
        "llm": {"loaded": False, "status": "unloaded", "state": "pending"},
    },
    "downloading": ["detector"],
}

CLIP_ERROR = (
    "could not download clip (laion/CLIP) from https://huggingface.co: cannot connect "
    "(Name or service not known)"
)
DEGRADED: dict[str, Any] = {
    **copy.deepcopy(dict(HEALTHY)),
    "status": "degraded",
    "models": {
        "detector": {"loaded": True, "status": "loaded", "state": "ready"},
        "clip": {"loaded": False, "status": "error", "state": "error", "error": CLIP_ERROR},
    },
    "failed_models": ["clip"],
}


def issues(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, ir.IssueEntry | None]:
    registry = ir.async_get(hass)
    return {
        kind: registry.async_get_issue(DOMAIN, f"{kind}_{entry.entry_id}")
        for kind in (ISSUE_UNREACHABLE, ISSUE_MODEL_ERROR)
    }


async def test_loading_models_is_shown_and_is_no_failure(
    hass: HomeAssistant,
    demo_camera: str,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server downloads its models: the server device says "loading" with the progress,
    the cameras stay available, a /detect refused meanwhile is no failure, no repair issue."""
    caplog.set_level(logging.DEBUG, logger="custom_components.hsi")
    fake_server.health = copy.deepcopy(LOADING)
    fake_server.answer(
        "POST",
        "/detect",
        Answer(
            503,
            {"error": {"code": "model_unavailable", "message": NOT_YET}},
            headers={"Retry-After": "5"},
        ),
    )
    entry = await setup_integration(hass, make_entry(fake_server.url))
    coordinator = entry.runtime_data.coordinator

    status = hass.states.get(STATUS)
    assert status.state == "loading"
    assert status.attributes["models"] == {"detector": "downloading", "llm": "pending"}
    assert status.attributes["downloading"] == ["detector"]
    assert status.attributes["download_percent"] == 50.0
    assert status.attributes["errors"] == {}
    download = hass.states.get(DOWNLOAD)
    assert (download.state, download.attributes["unit_of_measurement"]) == ("50.0", "%")
    assert download.attributes["detector"] == {
        "bytes": 40_000_000,
        "total": 80_000_000,
        "rate_bps": 4_000_000,
        "eta_s": 10.0,
    }
    assert hass.states.get(CONNECTIVITY).state == STATE_ON
    assert hass.states.get(RISK).state == STATE_UNKNOWN  # available, nothing seen yet
    assert coordinator.update_interval == LOADING_SCAN_INTERVAL

    await motion(hass)
    assert fake_server.count("/detect") >= 1
    assert coordinator.down_since is None
    assert coordinator.update_interval == LOADING_SCAN_INTERVAL  # no back-off
    assert "still loading its models" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    for _ in range(3):  # longer than the grace period of the "unreachable" issue
        await advance(hass, freezer, 250)
    assert issues(hass, entry) == {ISSUE_UNREACHABLE: None, ISSUE_MODEL_ERROR: None}
    assert hass.states.get(RISK).state != STATE_UNAVAILABLE
    assert hass.states.get(PERSON).state != STATE_UNAVAILABLE

    # Done: healthy, nothing left to download (100 %), the normal polling is back.
    fake_server.health = copy.deepcopy(dict(HEALTHY))
    del fake_server.script[("POST", "/detect")]
    await advance(hass, freezer, LOADING_SCAN_INTERVAL.total_seconds())
    assert hass.states.get(STATUS).state == "healthy"
    assert hass.states.get(DOWNLOAD).state == "100.0"
    assert coordinator.update_interval == SCAN_INTERVAL
    fake_server.default_detections = [detection("person", 0.8)]
    await motion(hass)
    assert hass.states.get(PERSON).state == STATE_ON


async def test_a_failed_model_raises_a_repair_issue_until_it_is_ready(
    hass: HomeAssistant,
    demo_camera: str,
    fake_server: FakeServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    fake_server.health = copy.deepcopy(DEGRADED)
    entry = await setup_integration(hass, make_entry(fake_server.url))
    status = hass.states.get(STATUS)
    assert status.state == "degraded"
    assert status.attributes["errors"] == {"clip": CLIP_ERROR}
    issue = issues(hass, entry)[ISSUE_MODEL_ERROR]
    assert issue is not None and issue.severity == ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {
        "url": fake_server.url,
        "models": "clip",
        "errors": f"- clip: {CLIP_ERROR}",
    }
    assert issues(hass, entry)[ISSUE_UNREACHABLE] is None
    assert hass.states.get(RISK).state == STATE_UNKNOWN  # the cameras stay available

    fake_server.health = copy.deepcopy(dict(HEALTHY))
    await advance(hass, freezer, SCAN_INTERVAL.total_seconds())
    assert hass.states.get(STATUS).state == "healthy"
    assert issues(hass, entry) == {ISSUE_UNREACHABLE: None, ISSUE_MODEL_ERROR: None}


async def test_a_status_the_integration_does_not_know(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> None:
    """A newer server's status shows as unknown, not as an error."""
    fake_server.health = {**copy.deepcopy(dict(HEALTHY)), "status": "maintenance"}
    await setup_integration(hass, make_entry(fake_server.url))
    assert hass.states.get(STATUS).state == STATE_UNKNOWN
    assert hass.states.get(STATUS).attributes["models"] == {"detector": "ready", "llm": None}
    assert hass.states.get(DOWNLOAD).state == STATE_UNKNOWN
