"""Actions, gallery persistence, button, diagnostics, device triggers, snapshot view."""

from __future__ import annotations

from pathlib import Path

from hsi_client.testing import FakeServer, detection, unit
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_get_device_automations,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
import voluptuous as vol

from custom_components.hsi import async_remove_config_entry_device
from custom_components.hsi.const import DOMAIN
from custom_components.hsi.diagnostics import async_get_config_entry_diagnostics
from custom_components.hsi.gallery import Gallery
from custom_components.hsi.store import EventFilter
from homeassistant.components import automation
from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component

from .conftest import (
    CAMERA,
    action,
    jpeg,
    make_entry,
    setup_integration,
)


async def test_analyze_action(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    security_events: list[Event],
) -> None:
    """hsi.analyze returns the event and records it on the camera's entities."""
    fake_server.detections = [[detection("person", 0.7)]]
    response = await action(hass, "analyze", {"entity_id": CAMERA})
    assert response is not None
    assert response["risk_level"] == "high"
    assert response["trigger"] == "action"
    assert response["source"] == "llm"
    assert security_events[0].data["event_id"] == response["event_id"]
    assert hass.states.get("sensor.front_door_risk_score").state == "72"


async def test_analyze_unconfigured_camera(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """Any camera can be analysed on demand, configured or not."""
    hass.states.async_set("camera.garage", "idle", {"friendly_name": "Garage"})
    with pytest.raises(HomeAssistantError) as caught:
        await action(hass, "analyze", {"entity_id": "camera.garage"})
    assert caught.value.translation_key == "camera_unavailable"
    with pytest.raises(ServiceValidationError) as caught:
        await action(hass, "analyze", {"entity_id": "camera.nope"})
    assert caught.value.translation_key == "camera_not_found"
    with pytest.raises(ServiceValidationError) as caught:
        await action(hass, "analyze", {"entity_id": "light.x"})
    assert caught.value.translation_key == "not_a_camera"


async def test_analyze_unconfigured_camera_records_a_new_event(
    hass: HomeAssistant,
    demo_camera: str,
    fake_server: FakeServer,
    security_events: list[Event],
) -> None:
    """A camera no watcher watches is analysed once and recorded; no watcher is built for it."""
    entry = await setup_integration(hass, make_entry(fake_server.url, subentries=[]))
    fake_server.default_detections = [detection("person", 0.8)]
    result = await action(hass, "analyze", {"entity_id": demo_camera})
    assert result["camera_id"] == demo_camera
    assert result["camera_entity"] == demo_camera
    assert result["risk_score"] == 72  # the server's analysis
    (event,) = security_events
    assert event.data["event_id"] == result["event_id"]
    assert event.data["update"] is False
    assert entry.runtime_data.watchers == {}
    stored = await entry.runtime_data.store.async_get(result["event_id"])
    assert stored is not None
    assert result["images"] == ["snapshot", "frame0"] == list(stored.images)
    fake_server.down = True
    with pytest.raises(HomeAssistantError) as caught:
        await action(hass, "analyze", {"entity_id": demo_camera})
    assert caught.value.translation_key == "server_error"


async def test_analyze_server_down(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """A failing server is a translated error for the caller."""
    fake_server.down = True
    with pytest.raises(HomeAssistantError) as caught:
        await action(hass, "analyze", {"entity_id": CAMERA})
    assert caught.value.translation_key == "server_error"


async def test_analyze_image(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer, tmp_path: Path
) -> None:
    """hsi.analyze_image reads allowed files only."""
    picture = tmp_path / "door.jpg"
    picture.write_bytes(jpeg())
    with pytest.raises(ServiceValidationError) as caught:
        await action(hass, "analyze_image", {"file_path": str(picture)})
    assert caught.value.translation_key == "path_not_allowed"
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    with pytest.raises(ServiceValidationError) as caught:
        await action(hass, "analyze_image", {"file_path": str(tmp_path / "missing.jpg")})
    assert caught.value.translation_key == "file_unreadable"
    fake_server.detections = [[detection("car", 0.7)]]
    response = await action(hass, "analyze_image", {"file_path": str(picture), "camera": "Upload"})
    assert response is not None
    assert response["camera"] == "Upload"
    assert response["camera_entity"] is None
    assert fake_server.analyze_calls[-1].metadata["camera"]["name"] == "Upload"


async def test_analyze_media(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer, tmp_path: Path
) -> None:
    """hsi.analyze_image takes pictures from the media browser: local media and cameras."""
    media = tmp_path / "media"
    (media / "snaps").mkdir(parents=True)
    (media / "snaps" / "door.jpg").write_bytes(jpeg())
    (tmp_path / "secret.jpg").write_bytes(jpeg())
    hass.config.media_dirs = {"local": str(media)}
    fake_server.default_detections = [detection("person", 0.7)]

    local = "media-source://media_source/local/snaps/door.jpg"
    response = await action(
        hass,
        "analyze_image",
        {"media": {"media_content_id": local, "media_content_type": "image/jpeg"}},
    )
    assert response is not None
    assert response["camera"] == "image"
    response = await action(hass, "analyze_image", {"media": f"media-source://camera/{CAMERA}"})
    assert response is not None
    assert fake_server.count("/analyze") == 2

    for refused in (
        "media-source://media_source/local/../secret.jpg",  # leaves the media folder
        "media-source://media_source/other/door.jpg",  # no such media folder
        "media-source://radio_browser/station",  # not a picture we can read
        "https://example.com/door.jpg",
    ):
        with pytest.raises(ServiceValidationError) as caught:
            await action(hass, "analyze_image", {"media": refused})
        assert caught.value.translation_key == "media_not_supported", refused
    with pytest.raises(ServiceValidationError) as caught:
        await action(hass, "analyze_image", {"media": f"{local}.missing"})
    assert caught.value.translation_key == "file_unreadable"
    with pytest.raises(vol.Invalid):
        await action(hass, "analyze_image", {"camera": "nothing to analyse"})


async def test_enroll_match_forget_persist(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """Enrol from the camera, get recognised, survive a restart, forget."""
    fake_server.detections = [[detection("person", 0.9, unit(4)), detection("car", 0.9, unit(5))]]
    response = await action(hass, "enroll", {"name": "Alice", "entity_id": CAMERA})
    assert response is not None
    assert response["name"] == "Alice"

    fake_server.detections = [[detection("person", 0.8, unit(4))]]
    event = await action(hass, "analyze", {"entity_id": CAMERA})
    assert event is not None
    (match,) = event["known_matches"]
    assert match["name"] == "Alice"
    assert match["enrolled"] is True
    assert match["description"] == "enrolled person: Alice"
    context = fake_server.analyze_calls[-1].metadata["context"]
    assert context["known_matches"][0]["name"] == "Alice"

    # Reload: the gallery is written on unload and read back.
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    gallery = setup_entry.runtime_data.gallery
    assert [e.name for e in gallery.enrolled] == ["Alice"]
    assert gallery.match(unit(4), "person") is not None
    assert gallery.match(unit(4), "car") is None  # other group
    assert setup_entry.runtime_data.store.recent()  # the event store persisted too

    response = await action(hass, "forget", {"name": "alice"})
    assert response == {"removed": 1}
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(DOMAIN, "forget", {"name": "Alice"}, blocking=True)
    assert caught.value.translation_key == "unknown_name"


async def test_enroll_errors_and_fallback(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer, tmp_path: Path
) -> None:
    """Nothing to enrol is an error; a server without ?embed=1 falls back to /embed."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    picture = tmp_path / "bob.jpg"
    picture.write_bytes(jpeg())
    fake_server.detections = [[detection("car", 0.9, unit(1))]]
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "enroll", {"name": "Bob", "file_path": str(picture)}, blocking=True
        )
    assert caught.value.translation_key == "nothing_to_enroll"
    fake_server.detections = [[detection("person", 0.9)]]  # no embedding
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, "enroll", {"name": "Bob", "file_path": str(picture)}, blocking=True
        )
    assert caught.value.translation_key == "server_error"  # no /embed either
    fake_server.embed_supported = True
    fake_server.embed_vector = unit(6)
    fake_server.detections = [[detection("person", 0.9)]]
    await hass.services.async_call(
        DOMAIN, "enroll", {"name": "Bob", "file_path": str(picture)}, blocking=True
    )
    assert setup_entry.runtime_data.gallery.match(unit(6), "person") is not None
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, "enroll", {"name": "Carol", "entity_id": "camera.none"}, blocking=True
        )
    assert caught.value.translation_key == "camera_unavailable"


async def test_clear_history(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """Events of one camera or all are removed."""
    fake_server.default_detections = [detection("person", 0.7)]
    await action(hass, "analyze", {"entity_id": CAMERA})
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "clear_history", {"entity_id": "camera.other"}, blocking=True
        )
    response = await action(hass, "clear_history", {"entity_id": CAMERA})
    assert response == {"removed": 1}
    assert setup_entry.runtime_data.store.recent() == []
    assert await setup_entry.runtime_data.store.async_list(EventFilter()) == ([], None)


async def test_action_without_loaded_entry(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """Actions explain when no server is loaded, or which one to pick."""
    await setup_integration(hass, make_entry(fake_server.url, subentries=[]))
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "forget", {"name": "x", "config_entry_id": "nope"}, blocking=True
        )
    assert caught.value.translation_key == "not_loaded"
    second = make_entry(fake_server.url + "/", subentries=[])
    second.add_to_hass(hass)
    assert await hass.config_entries.async_setup(second.entry_id)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(DOMAIN, "forget", {"name": "x"}, blocking=True)
    assert caught.value.translation_key == "several_servers"


async def test_button(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """The button runs a one-shot analysis."""
    fake_server.default_detections = [detection("person", 0.7)]
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.front_door_analyze_now"}, blocking=True
    )
    await hass.async_block_till_done()
    assert setup_entry.runtime_data.store.recent()[0].trigger == "button"


async def test_snapshot_view(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    hass_client: ClientSessionGenerator,
) -> None:
    """The annotated snapshot is served to authenticated clients."""
    fake_server.default_detections = [detection("person", 0.7)]
    event = await action(hass, "analyze", {"entity_id": CAMERA})
    assert event is not None
    client = await hass_client()
    response = await client.get(event["snapshot_url"])
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert (await response.read())[:2] == b"\xff\xd8"
    assert (await client.get("/api/hsi/events/nope/snapshot.jpg")).status == 404
    image = await client.get(
        hass.states.get("image.front_door_snapshot").attributes["entity_picture"]
    )
    assert image.status == 200


async def test_diagnostics_redacts_key(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> None:
    """The API key never appears in diagnostics."""
    fake_server.api_key = "top-secret"
    entry = await setup_integration(hass, make_entry(fake_server.url, api_key="top-secret"))
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert "top-secret" not in str(diagnostics)
    assert diagnostics["entry"]["data"]["api_key"] == "**REDACTED**"
    assert diagnostics["server"]["health"]["status"] == "healthy"
    assert diagnostics["cameras"][0]["settings"]["camera_entity"] == CAMERA
    assert diagnostics["gallery"]["enrolled"] == 0


async def test_device_triggers(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """A camera device offers level triggers that fire on its security events."""
    registry = dr.async_get(hass)
    (subentry_id,) = setup_entry.runtime_data.watchers
    device = registry.async_get_device(identifiers={(DOMAIN, subentry_id)})
    server = registry.async_get_device(identifiers={(DOMAIN, setup_entry.entry_id)})
    assert device is not None
    assert server is not None
    assert device.via_device_id == server.id
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, device.id)
    types = {t["type"] for t in triggers if t["domain"] == DOMAIN}
    assert types == {
        "security_event",
        "security_event_low",
        "security_event_medium",
        "security_event_high",
        "security_event_critical",
    }
    assert [
        t
        for t in await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, server.id)
        if t["domain"] == DOMAIN
    ] == []
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: [
                {
                    "trigger": {
                        "platform": "device",
                        "domain": DOMAIN,
                        "device_id": device.id,
                        "type": f"security_event_{level}",
                    },
                    "action": {"event": f"fired_{level}"},
                }
                for level in ("high", "low")
            ]
        },
    )
    high = async_capture_events(hass, "fired_high")
    low = async_capture_events(hass, "fired_low")
    fake_server.default_detections = [detection("person", 0.7)]
    await action(hass, "analyze", {"entity_id": CAMERA})
    await hass.async_block_till_done()
    assert len(high) == 1
    assert low == []


async def test_setup_retries_when_server_down(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> None:
    """An unreachable server at startup means setup retry, not failure."""
    fake_server.down = True
    entry = make_entry(fake_server.url)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_unload_leaves_nothing(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """Unload removes entities' listeners and the watchers' triggers."""
    listeners_before = sum(hass.bus.async_listeners().values())
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert sum(hass.bus.async_listeners().values()) < listeners_before
    assert hass.states.get("sensor.front_door_risk_score").state == "unavailable"
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.front_door_risk_score").state == "unknown"


async def test_stale_devices_and_disabled_diagnostics(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer
) -> None:
    """A removed camera's device goes on reload; users may delete stale devices, not live ones.
    The latency sensor is diagnostic noise: registered, disabled by default."""
    registry = dr.async_get(hass)
    stale = registry.async_get_or_create(
        config_entry_id=setup_entry.entry_id, identifiers={(DOMAIN, "removed-camera")}
    )
    (camera_id,) = setup_entry.runtime_data.watchers
    live = registry.async_get_device(identifiers={(DOMAIN, camera_id)})
    assert live is not None
    assert await async_remove_config_entry_device(hass, setup_entry, stale)
    assert not await async_remove_config_entry_device(hass, setup_entry, live)
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert registry.async_get(stale.id) is None
    assert registry.async_get(live.id) is not None

    latency = er.async_get(hass).async_get("sensor.hsi_ai_server_127_0_0_1_latency")
    assert latency is not None
    assert latency.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_gallery_ttl_and_dimension(hass: HomeAssistant) -> None:
    """Recent entries expire; embeddings of another size never match."""
    gallery = Gallery(hass, "test", 0.9)
    gallery_id, match = gallery.observe(unit(0), "person", "cam", "e1")
    assert match is None
    same_id, match = gallery.observe(unit(0), "person", "cam", "e1")
    assert same_id == gallery_id
    assert match is None  # first seen in this very event: not a known match
    assert len(gallery.entries[gallery_id].sightings) == 1  # the same event counts once
    _, match = gallery.observe(unit(0), "person", "cam", "e2")
    assert match is not None
    assert match.times_seen_today == 2
    assert gallery.match(unit(0, dim=4), "person") is None
    gallery.entries[gallery_id].last_seen = "2000-01-01T00:00:00+00:00"
    gallery.observe(unit(3), "person", "cam", "e3")
    assert gallery_id not in gallery.entries
    assert gallery.stats()["recent"] == 1


async def test_gallery_matches_enrolled_kinds(hass: HomeAssistant) -> None:
    """An entry enrolled by kind ("vehicle", as hsi.enroll labels it) matches its classes."""
    gallery = Gallery(hass, "test", 0.9)
    gallery.enroll("Our car", "vehicle", unit(1))
    gallery.enroll("Rex", "animal", unit(2))
    car = gallery.match(unit(1), "car")
    assert car is not None
    assert car[0].name == "Our car"
    dog = gallery.match(unit(2), "dog")
    assert dog is not None
    assert dog[0].name == "Rex"
    assert gallery.match(unit(1), "person") is None  # another group never matches
