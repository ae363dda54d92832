"""End to end against the REAL ai_server subprocess (tiny profile, random weights).

The tiny detector's boxes mean nothing, so these tests assert the contract and the flow: the
config flow reaches the real server, a trigger on the demo camera goes through /detect with CLIP
embeddings, re-identification runs on them, the batch closes, the real /analyze scores the event,
and entities, bus events and the history follow.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
import math
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from hsi_client import AnalysisResult, EventMetadata, HsiAuthError, HsiClient, level_for
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.hsi.const import (
    CONF_CONFIDENCE,
    CONF_DESCRIBE,
    CONF_LLM,
    DOMAIN,
    EVENT_DETECTION,
    EVENT_SECURITY,
)
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_API_KEY, CONF_URL, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .conftest import (
    CAMERA,
    RealServer,
    action,
    advance,
    camera_subentry,
    jpeg,
    make_entry,
    motion,
    setup_integration,
)


async def test_real_client_contract(
    hass: HomeAssistant, socket_enabled: None, real_server: RealServer
) -> None:
    """/health, /models, /detect?embed=1 and /embed of the real server parse into dataclasses."""
    client = HsiClient(real_server.url, async_get_clientsession(hass))
    health = await client.validate()
    assert health.status == "healthy"
    assert "detector" in health.models
    result = await client.detect(jpeg(), confidence=0.01, embed=True)
    assert result.image_width == 320
    assert result.image_height == 240
    assert result.inference_time_ms > 0
    assert result.detections  # random weights, but the tiny detector does report boxes at 0.01
    dims = set()
    for found in result.detections:
        assert 0 <= found.confidence <= 1
        assert found.bbox.width >= 0
        assert found.embedding is not None  # one CLIP embedding per detection
        assert math.isclose(math.hypot(*found.embedding), 1.0, abs_tol=1e-3)
        dims.add(len(found.embedding))
    plain = await client.detect(jpeg(), confidence=0.01)
    assert all(d.embedding is None for d in plain.detections)
    embedded = await client.embed(images=[jpeg()], texts=["a person at the door"])
    assert dims == {embedded.dim}  # crops and whole pictures live in one space
    assert [len(e) for e in embedded.image_embeddings] == [embedded.dim]
    assert [len(e) for e in embedded.text_embeddings] == [embedded.dim]
    assert embedded.model


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


@pytest.fixture
async def real_entry(
    hass: HomeAssistant, socket_enabled: None, real_server: RealServer, demo_camera: str
) -> AsyncGenerator[MockConfigEntry]:
    """The integration on the real server, watching the demo camera at a threshold the tiny
    detector's random weights reach."""
    entry = await setup_integration(
        hass,
        make_entry(
            real_server.url,
            subentries=[camera_subentry(**{CONF_CONFIDENCE: 0.01})],
        ),
    )
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)


def record_analyze(entry: MockConfigEntry) -> list[dict[str, Any]]:
    """Spy on the real /analyze calls: the metadata (LLM context) each one sent."""
    client = entry.runtime_data.client
    original = client.analyze
    sent: list[dict[str, Any]] = []

    async def analyze(frames: Any, metadata: EventMetadata) -> AnalysisResult:
        sent.append(metadata.as_dict())
        return await original(frames, metadata)

    client.analyze = analyze  # type: ignore[method-assign]
    return sent


def assert_risk_contract(event: dict[str, Any]) -> None:
    """Score 0-100, the level derived from it, the required texts present."""
    assert 0 <= event["risk_score"] <= 100
    assert event["risk_level"] == level_for(event["risk_score"])
    assert isinstance(event["summary"], str)
    assert event["summary"]
    assert isinstance(event["reasoning"], str)


async def test_real_pipeline_end_to_end(
    hass: HomeAssistant, real_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Motion on the demo camera → real /detect with embeddings → batch → real /analyze (LLM)."""
    assert hass.states.get("binary_sensor.hsi_ai_server_127_0_0_1_connectivity").state == STATE_ON
    assert int(hass.states.get("sensor.hsi_ai_server_127_0_0_1_models_loaded").state) >= 1
    detections = async_capture_events(hass, EVENT_DETECTION)
    security = async_capture_events(hass, EVENT_SECURITY)
    sent = record_analyze(real_entry)
    (watcher,) = real_entry.runtime_data.watchers.values()

    await motion(hass)
    assert watcher.state.inference_ms is not None  # the real server answered /detect
    assert detections
    assert real_entry.runtime_data.gallery.stats()["recent"] >= 1  # real embeddings remembered
    await advance(hass, freezer, 6)

    assert len(security) == 1
    event = security[0].data
    assert_risk_contract(event)
    assert event["camera"] == "Front door"
    assert event["objects"]  # the server returns the objects we sent, per frame
    (metadata,) = sent
    assert metadata["camera"]["name"] == "Front door"
    assert len(metadata["detections"]) == event["frames"]
    stored = await real_entry.runtime_data.store.async_get(event["event_id"])
    assert stored is not None
    # The server's own analysis, not our fallback: it reports its stages.
    assert stored.server_timings_ms["total"] > 0
    assert event["source"] in ("llm", "rules")
    assert "Server analysis unavailable" not in event["reasoning"]
    assert all(set(flag) == {"type", "description", "severity"} for flag in event["flags"])
    assert hass.states.get("sensor.front_door_risk_level").state == event["risk_level"]
    assert hass.states.get("sensor.front_door_risk_score").state == str(event["risk_score"])
    snapshot = real_entry.runtime_data.store.image_path(event["event_id"], "snapshot")
    assert snapshot is not None
    assert snapshot.read_bytes()[:2] == b"\xff\xd8"


async def test_real_reidentification_and_deduplication(
    hass: HomeAssistant,
    socket_enabled: None,
    real_server: RealServer,
    demo_camera: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Enrol from the camera with real embeddings; the next event names the enrolled person (in
    the event and in /analyze's context); a second event of the same scene updates the first."""
    entry = await setup_integration(
        hass,
        make_entry(
            real_server.url,
            subentries=[camera_subentry(**{CONF_CONFIDENCE: 0.01})],
            options={CONF_LLM: False, CONF_DESCRIBE: False},  # the server's rules: deterministic
        ),
    )
    security = async_capture_events(hass, EVENT_SECURITY)
    sent = record_analyze(entry)

    enrolled = await action(hass, "enroll", {"name": "Alice", "entity_id": CAMERA})
    assert enrolled is not None
    gallery = entry.runtime_data.gallery
    (alice,) = gallery.enrolled
    assert alice.name == "Alice"
    assert enrolled["gallery_id"] == alice.entry_id

    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(security) == 1
    first = security[0].data
    assert_risk_contract(first)
    assert first["source"] == "rules"  # from the server: the LLM was turned off per request
    assert "Server analysis unavailable" not in first["reasoning"]
    (match,) = first["known_matches"]
    assert match["name"] == "Alice"
    assert match["enrolled"] is True
    assert match["similarity"] >= gallery.threshold
    assert first["gallery_ids"] == [alice.entry_id]
    context = sent[0]["context"]
    assert [m["description"] for m in context["known_matches"]] == ["enrolled person: Alice"]
    assert sent[0]["options"] == {"enrich": True, "describe": False, "llm": False}

    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(security) == 2
    second = security[1].data
    assert second["event_id"] == first["event_id"]
    assert second["update"] is True
    assert second["occurrences"] == 2
    assert second["notify"] is False
    assert len(sent) == 2  # both events were analysed by the server
    assert sent[1]["context"]["recent_events"][0]["summary"] == first["summary"]
    assert [e.event_id for e in entry.runtime_data.store.recent()] == [first["event_id"]]
    assert await hass.config_entries.async_unload(entry.entry_id)
