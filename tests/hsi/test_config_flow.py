"""Config flow: user, Supervisor discovery, reauth, reconfigure, options and camera subentries."""

from __future__ import annotations

from datetime import time
import json
from pathlib import Path
from typing import Any

from hsi_client.testing import FakeServer
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
import voluptuous as vol

from custom_components.hsi.config_flow import normalise_url
from custom_components.hsi.const import (
    CONF_BATCH_WINDOW,
    CONF_BURST_FRAMES,
    CONF_CAMERA,
    CONF_CLASSES,
    CONF_CONFIDENCE,
    CONF_COOLDOWN,
    CONF_DESCRIBE,
    CONF_DESCRIPTION,
    CONF_ENRICH,
    CONF_FAST_PATH_THRESHOLD,
    CONF_IDLE_TIMEOUT,
    CONF_INTERVAL,
    CONF_LLM,
    CONF_MATCH_THRESHOLD,
    CONF_NOTIFY_SERVICE,
    CONF_QUIET_END,
    CONF_QUIET_START,
    CONF_ROUTE_HIGH,
    CONF_ROUTE_MEDIUM,
    CONF_THREAT_HOLD,
    CONF_THREAT_THRESHOLD,
    CONF_TRIGGER,
    CONF_VERIFY_SSL,
    CONF_ZONES,
    DOMAIN,
    SECTION_ALERTS,
    SECTION_HISTORY,
    SUBENTRY_CAMERA,
)
from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service_info.hassio import HassioServiceInfo

from .conftest import CAMERA, MOTION, make_entry, setup_integration, start_subentry_reconfigure


async def _user(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_VERIFY_SSL: True} | data
    )


async def test_user_creates_entry(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """A reachable server becomes an entry, unique by URL."""
    result = await _user(hass, **{CONF_URL: fake_server.url + "/"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_URL: fake_server.url,
        CONF_API_KEY: None,
        CONF_VERIFY_SSL: True,
    }
    assert result["result"].unique_id == fake_server.url
    assert result["title"].startswith("HSI AI server (127.0.0.1:")
    await hass.async_block_till_done()
    device = dr.async_get(hass).async_get_device({(DOMAIN, result["result"].entry_id)})
    assert device is not None
    assert device.configuration_url == fake_server.url  # "/": the status page (ai_server)
    again = await _user(hass, **{CONF_URL: fake_server.url})
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"


def test_adding_a_camera_is_the_obvious_next_step() -> None:
    """The integration page reads as a hub with cameras, and the dialog that closes the server
    setup names the button that adds one, exactly as the menu shows it."""
    folder = Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["integration_type"] == "hub"  # "service" headed the page "Services"
    strings = json.loads((folder / "strings.json").read_text())
    button = strings["config_subentries"][SUBENTRY_CAMERA]["initiate_flow"]["user"]
    assert button == "Add camera"
    assert f"**{button}**" in strings["config"]["create_entry"]["default"]


async def test_user_with_key(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """A wrong key is explained; the right one passes."""
    fake_server.api_key = "good"
    result = await _user(hass, **{CONF_URL: fake_server.url, CONF_API_KEY: "bad"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: fake_server.url, CONF_API_KEY: "good", CONF_VERIFY_SSL: True}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_API_KEY] == "good"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"exc": TimeoutError()}, "cannot_connect"),
        ({"text": "<html>not hsi</html>"}, "not_hsi_server"),
        ({"status": 404, "text": "nope"}, "not_hsi_server"),
        ({"status": 500, "text": "boom"}, "unknown"),
    ],
)
async def test_user_errors(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, kwargs: dict[str, Any], error: str
) -> None:
    """Each failure shows its own error."""
    aioclient_mock.get("http://hsi.local:8090/health", **kwargs)
    result = await _user(hass, **{CONF_URL: "http://hsi.local:8090"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}


async def test_user_invalid_url(hass: HomeAssistant) -> None:
    """A URL that is not http(s) is refused before connecting."""
    result = await _user(hass, **{CONF_URL: "ftp://server"})
    assert result["errors"] == {CONF_URL: "invalid_url"}


def test_normalise_url() -> None:
    """Bare hosts get http://, trailing slashes go."""
    assert normalise_url("hsi.local:8090/") == "http://hsi.local:8090"
    assert normalise_url("https://hsi.local/api/") == "https://hsi.local/api"
    with pytest.raises(ValueError):
        normalise_url("mqtt://x")


async def test_hassio_discovery(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """The add-on is configured after one confirmation."""
    host, port = fake_server.url.removeprefix("http://").split(":")
    info = HassioServiceInfo(
        config={"host": host, "port": int(port), "api_key": None},
        name="HSI AI server",
        slug="hsi_ai_server",
        uuid="1234",
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    fake_server.down = True
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "cannot_connect"}
    fake_server.down = False
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == fake_server.url
    await hass.async_block_till_done()
    # The server device's Visit link opens the add-on's page (its URL is inside Supervisor's
    # network); a server entered by hand links to the server's own status page.
    device = dr.async_get(hass).async_get_device({(DOMAIN, result["result"].entry_id)})
    assert device is not None
    assert device.configuration_url == "homeassistant://hassio/addon/hsi_ai_server/info"
    # Discovered again: already configured, and the entry follows the add-on's data.
    again = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"


async def test_reauth(hass: HomeAssistant, demo_camera: str, fake_server: FakeServer) -> None:
    """A rejected key starts reauth; the new key is stored and the entry reloads."""
    fake_server.api_key = "new"
    entry = make_entry(fake_server.url, api_key="old")
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    assert flows[0]["context"]["source"] == "reauth"
    flow_id = flows[0]["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_API_KEY: "wrong"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_API_KEY: "new"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_API_KEY] == "new"
    await hass.async_block_till_done()
    assert entry.state.name == "LOADED"


async def test_reconfigure(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """URL and key can change; errors are shown; the entry reloads on the new server."""
    entry = make_entry("http://old.local:8090", subentries=[])
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: "http://127.0.0.1:1", CONF_VERIFY_SSL: True}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: fake_server.url, CONF_VERIFY_SSL: False}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == fake_server.url
    assert entry.data[CONF_VERIFY_SSL] is False
    await hass.async_block_till_done()  # the reload the flow started ends inside the test
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_to_existing_url(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """Pointing an entry at a server another entry has is refused."""
    entry = make_entry("http://old.local:8090", subentries=[])
    entry.add_to_hass(hass)
    make_entry(fake_server.url, subentries=[]).add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: fake_server.url, CONF_VERIFY_SSL: True}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


OPTIONS = {
    CONF_BATCH_WINDOW: 120,
    CONF_IDLE_TIMEOUT: 20,
    CONF_FAST_PATH_THRESHOLD: 0.95,
    CONF_COOLDOWN: 60,
    CONF_ENRICH: False,
    CONF_DESCRIBE: True,
    CONF_LLM: False,
    CONF_MATCH_THRESHOLD: 0.8,
    CONF_THREAT_THRESHOLD: 70,
    CONF_THREAT_HOLD: 30,
}


async def test_options(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    """Options are validated, stored and applied by a reload."""
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], OPTIONS | {CONF_IDLE_TIMEOUT: 200}
    )
    assert result["errors"] == {CONF_IDLE_TIMEOUT: "idle_longer_than_window"}
    result = await hass.config_entries.options.async_configure(result["flow_id"], OPTIONS)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_entry.options[CONF_THREAT_THRESHOLD] == 70
    assert setup_entry.runtime_data.options.threat_threshold == 70
    assert setup_entry.runtime_data.options.llm is False


async def test_options_alerts(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    """Notify targets are picked from the notify actions there are; the alerts section."""
    async_mock_service(hass, "notify", "mobile_app_pixel")
    async_mock_service(hass, "notify", "send_message")
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    schema = result["data_schema"].schema
    (targets,) = (v for k, v in schema.items() if k == CONF_NOTIFY_SERVICE)
    assert targets.config["multiple"] is True
    assert targets.config["options"] == ["mobile_app_pixel"]  # send_message needs an entity
    # The frontend sends every section's fields, the history section's too.
    alerts = {CONF_QUIET_START: "22:00:00", CONF_ROUTE_HIGH: "critical"}
    sections = {SECTION_HISTORY: {}}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        OPTIONS | sections | {CONF_NOTIFY_SERVICE: ["mobile_app_pixel"], SECTION_ALERTS: alerts},
    )
    assert result["errors"] == {"base": "quiet_hours_incomplete"}
    alerts |= {CONF_QUIET_END: "06:30:00"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        OPTIONS | sections | {CONF_NOTIFY_SERVICE: ["mobile_app_pixel"], SECTION_ALERTS: alerts},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    stored = setup_entry.options[SECTION_ALERTS]
    assert stored[CONF_ROUTE_HIGH] == "critical"
    assert stored[CONF_ROUTE_MEDIUM] == "active"  # the section's defaults fill the rest
    applied = setup_entry.runtime_data.options
    assert applied.notify_targets == ("mobile_app_pixel",)
    assert applied.alerts.routes["high"] == "critical"
    assert applied.alerts.quiet_start == time(22, 0)
    assert applied.alerts.quiet_end == time(6, 30)


async def test_options_keep_an_old_notify_text(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> None:
    """An entry from before the picker held one name as text: it is read and offered."""
    entry = await setup_integration(
        hass, make_entry(fake_server.url, options={CONF_NOTIFY_SERVICE: "notify.phone"})
    )
    assert entry.runtime_data.options.notify_targets == ("phone",)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    (targets,) = (v for k, v in result["data_schema"].schema.items() if k == CONF_NOTIFY_SERVICE)
    assert "phone" in targets.config["options"]


CAMERA_INPUT = {
    CONF_CAMERA: CAMERA,
    CONF_TRIGGER: MOTION,
    CONF_INTERVAL: 30.0,
    CONF_DESCRIPTION: "Front door, faces the street",
    CONF_CLASSES: ["person", " Car "],
    CONF_CONFIDENCE: 0.4,
    CONF_BURST_FRAMES: 2.0,
    CONF_ZONES: "porch",
}


async def test_camera_subentry(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> None:
    """Add a camera: validated, unique per camera, entities appear after the reload."""
    entry = make_entry(fake_server.url, subentries=[])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CAMERA), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    # A second flow, opened before the first adds the camera (two browser tabs).
    other = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CAMERA), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        CAMERA_INPUT | {CONF_CAMERA: "camera.nope", CONF_TRIGGER: "binary_sensor.nope"},
    )
    assert result["errors"] == {
        CONF_CAMERA: "camera_not_found",
        CONF_TRIGGER: "entity_not_found",
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], CAMERA_INPUT | {CONF_CLASSES: []}
    )
    assert result["errors"] == {CONF_CLASSES: "no_classes"}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], CAMERA_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Demo camera"
    await hass.async_block_till_done()

    (subentry,) = entry.subentries.values()
    assert subentry.unique_id == CAMERA
    assert subentry.data[CONF_CLASSES] == ["person", "car"]
    assert subentry.data[CONF_INTERVAL] == 30
    assert subentry.data[CONF_BURST_FRAMES] == 2
    watcher = entry.runtime_data.watchers[subentry.subentry_id]
    assert watcher.settings.interval == 30
    assert hass.states.get("sensor.demo_camera_risk_score") is not None

    # A watched camera is not offered again (the picker leaves it out, the schema refuses it).
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CAMERA), context={"source": SOURCE_USER}
    )
    assert _camera_selector(result)["exclude_entities"] == [CAMERA]
    with pytest.raises(InvalidData):
        await hass.config_entries.subentries.async_configure(result["flow_id"], CAMERA_INPUT)
    # The flow opened earlier offered it still: picked there, the form stays, with an error
    # (no abort: what the user typed is not lost).
    result = await hass.config_entries.subentries.async_configure(other["flow_id"], CAMERA_INPUT)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_CAMERA: "already_watched"}
    assert len(entry.subentries) == 1


def _camera_selector(result: Any) -> dict[str, Any]:
    """The config of the form's camera picker, as the frontend receives it."""
    for key, value in result["data_schema"].schema.items():
        if key == CONF_CAMERA:
            config: dict[str, Any] = value.config
            return config
    raise AssertionError("no camera field")


async def test_camera_subentry_needs_a_trigger_or_an_interval(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> None:
    """The form's defaults (no trigger, interval 0) would watch nothing: an error says so."""
    entry = make_entry(fake_server.url, subentries=[])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CAMERA), context={"source": SOURCE_USER}
    )
    assert _camera_selector(result)["exclude_entities"] == []
    # Only the camera picked: everything else as the form's defaults fill it in.
    defaults = {
        key.schema: key.default()
        for key in result["data_schema"].schema
        if key.default is not vol.UNDEFINED
    }
    assert defaults[CONF_INTERVAL] == 0
    assert CONF_TRIGGER not in defaults
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], defaults | {CONF_CAMERA: CAMERA}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "no_trigger"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], defaults | {CONF_CAMERA: CAMERA, CONF_INTERVAL: 60}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    (subentry,) = entry.subentries.values()
    assert entry.runtime_data.watchers[subentry.subentry_id].settings.interval == 60

    # Reconfiguring it to watch nothing is refused the same way.
    result = await start_subentry_reconfigure(hass, entry, subentry.subentry_id)
    changes = {k: v for k, v in defaults.items() if k != CONF_CAMERA}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], changes)
    assert result["errors"] == {"base": "no_trigger"}


async def test_camera_subentry_reconfigure(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """Change a camera's settings; the camera itself stays."""
    (subentry,) = setup_entry.subentries.values()
    result = await start_subentry_reconfigure(hass, setup_entry, subentry.subentry_id)
    assert result["step_id"] == "reconfigure"
    changes = {k: v for k, v in CAMERA_INPUT.items() if k != CONF_CAMERA}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], changes | {CONF_TRIGGER: "binary_sensor.gone"}
    )
    assert result["errors"] == {CONF_TRIGGER: "entity_not_found"}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], changes)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    subentry = setup_entry.subentries[subentry.subentry_id]
    assert subentry.data[CONF_CAMERA] == CAMERA
    assert subentry.data[CONF_DESCRIPTION] == "Front door, faces the street"
    assert setup_entry.runtime_data.watchers[subentry.subentry_id].settings.confidence == 0.4


async def test_entry_without_subentries_setup(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """A server entry with no camera loads with only the server device."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=fake_server.url,
        data={CONF_URL: fake_server.url, CONF_API_KEY: None, CONF_VERIFY_SSL: True},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.watchers == {}
    assert entry.runtime_data.options.batch_window == 90
