"""End to end against the REAL ai_server subprocess (tiny profile, random weights).

The tiny detector's boxes mean nothing, so these tests assert the contract and the flow: the
config flow reaches the real server, a trigger on the demo camera goes through /detect, the batch
closes, /analyze runs (or its absence falls back to the rules), and entities, bus events and the
history follow.
"""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.hsi.api import HsiAuthError, HsiClient
from custom_components.hsi.const import (
    CONF_CLASSES,
    CONF_CONFIDENCE,
    DOMAIN,
    EVENT_DETECTION,
    EVENT_SECURITY,
)
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_API_KEY, CONF_URL, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .conftest import CAMERA, MOTION, RealServer, camera_subentry, jpeg, make_entry


async def test_real_client_contract(
    hass: HomeAssistant, socket_enabled: None, real_server: RealServer
) -> None:
    """/health, /models and /detect of the real server parse into our dataclasses."""
    client = HsiClient(real_server.url, async_get_clientsession(hass))
    health = await client.validate()
    assert health.status == "healthy"
    assert "detector" in health.models
    result = await client.detect(jpeg(), confidence=0.01, embed=True)
    assert result.image_width == 320
    assert result.image_height == 240
    assert result.inference_time_ms > 0
    for found in result.detections:
        assert 0 <= found.confidence <= 1
        assert found.bbox.width >= 0


async def test_real_config_flow_with_key(
    hass: HomeAssistant, socket_enabled: None, real_server_with_key: RealServer
) -> None:
    """The user step proves the key against the real server."""
    url = real_server_with_key.url
    client = HsiClient(url, async_get_clientsession(hass), "wrong")
    await client.health()  # /health needs no key
    try:
        await client.models()
    except HsiAuthError:
        pass
    else:  # pragma: no cover - the assertion below explains the failure
        raise AssertionError("the real server accepted a wrong key")
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url, CONF_API_KEY: "wrong", "verify_ssl": True}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url, CONF_API_KEY: "s3cret", "verify_ssl": True}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_real_pipeline_end_to_end(
    hass: HomeAssistant,
    socket_enabled: None,
    real_server: RealServer,
    demo_camera: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Motion on the demo camera → real /detect → batch → /analyze or rules → event."""
    entry = make_entry(
        real_server.url,
        subentries=[
            camera_subentry(
                **{CONF_CONFIDENCE: 0.01, CONF_CLASSES: ["person", "vehicle", "animal", "chair"]}
            )
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.hsi_ai_server_127_0_0_1_connectivity").state == STATE_ON
    assert int(hass.states.get("sensor.hsi_ai_server_127_0_0_1_models_loaded").state) >= 1

    detections = async_capture_events(hass, EVENT_DETECTION)
    security = async_capture_events(hass, EVENT_SECURITY)
    (pipeline,) = entry.runtime_data.pipelines.values()
    hass.states.async_set(MOTION, STATE_ON)
    await hass.async_block_till_done()
    hass.states.async_set(MOTION, STATE_OFF)
    await hass.async_block_till_done()
    assert pipeline.last_inference_ms is not None  # the real server answered /detect

    if not detections:
        # Random weights found nothing relevant in the demo picture: analyse on demand instead.
        event = await hass.services.async_call(
            DOMAIN, "analyze", {"entity_id": CAMERA}, blocking=True, return_response=True
        )
    else:
        freezer.tick(timedelta(seconds=6))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert len(security) == 1
        event = security[0].data
    assert event is not None
    assert event["source"] in ("llm", "rules")
    assert 0 <= event["risk_score"] <= 100
    assert event["risk_level"] in ("low", "medium", "high", "critical")
    assert event["camera"] == "Front door"
    assert hass.states.get("sensor.front_door_risk_level").state == event["risk_level"]
    assert entry.runtime_data.history.events[event["event_id"]].risk.source == event["source"]
    assert entry.runtime_data.history.snapshots[event["event_id"]][:2] == b"\xff\xd8"
    assert await hass.config_entries.async_unload(entry.entry_id)
