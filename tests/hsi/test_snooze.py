"""The per-camera "Snoozed until" entity: set, shown, expiring, restored after a restart."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from hsi_client.testing import FakeServer, detection
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_mock_service,
    mock_restore_cache,
)

from custom_components.hsi.const import CONF_NOTIFY_SERVICE, DOMAIN
from custom_components.hsi.store import EventFilter
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util

from .conftest import advance, make_entry, motion, setup_integration

SNOOZE = "datetime.front_door_snoozed_until"


async def _snooze(hass: HomeAssistant, until: str) -> None:
    await hass.services.async_call(
        "datetime", "set_value", {"entity_id": SNOOZE, "datetime": until}, blocking=True
    )


async def test_snooze_is_state_that_alerts_respect(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer, freezer: FrozenDateTimeFactory
) -> None:
    """Snoozed: events are recorded, no alert; the state shows the end, then unknown."""
    calls = async_mock_service(hass, "notify", "phone")
    entry = await setup_integration(
        hass, make_entry(fake_server.url, options={CONF_NOTIFY_SERVICE: ["phone"]})
    )
    assert hass.states.get(SNOOZE).state == STATE_UNKNOWN
    until = dt_util.utcnow().replace(microsecond=0) + timedelta(minutes=30)
    await _snooze(hass, until.isoformat())
    assert dt_util.parse_datetime(hass.states.get(SNOOZE).state) == until

    fake_server.default_detections = [detection("person", 0.8)]
    await motion(hass)
    await advance(hass, freezer, 6)
    assert not calls
    events, _cursor = await entry.runtime_data.store.async_list(EventFilter())
    assert len(events) == 1  # recorded all the same

    await advance(hass, freezer, 30 * 60)  # the snooze ends by itself
    assert hass.states.get(SNOOZE).state == STATE_UNKNOWN
    await motion(hass)
    await advance(hass, freezer, 6)
    assert len(calls) == 1

    # A moment in the past ends a snooze at once.
    await _snooze(hass, (dt_util.utcnow() + timedelta(hours=2)).isoformat())
    assert hass.states.get(SNOOZE).state != STATE_UNKNOWN
    await _snooze(hass, (dt_util.utcnow() - timedelta(minutes=1)).isoformat())
    assert hass.states.get(SNOOZE).state == STATE_UNKNOWN


async def test_snooze_survives_a_restart(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> None:
    """The end time comes back from the restored state; an end already past does not."""
    until = dt_util.utcnow().replace(microsecond=0) + timedelta(hours=3)
    mock_restore_cache(hass, [State(SNOOZE, until.isoformat())])
    entry = await setup_integration(hass, make_entry(fake_server.url))
    assert dt_util.parse_datetime(hass.states.get(SNOOZE).state) == until
    (camera_id,) = entry.runtime_data.watchers
    assert entry.runtime_data.notifier.snoozed_until(camera_id) == until

    # Reloading (options changed, an update) keeps it too.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.notifier.snoozed_until(camera_id) == until
    assert dt_util.parse_datetime(hass.states.get(SNOOZE).state) == until


async def test_a_past_snooze_is_not_restored(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer
) -> None:
    """Home Assistant was down past the snooze's end: not snoozed."""
    past = dt_util.utcnow() - timedelta(minutes=5)
    mock_restore_cache(hass, [State(SNOOZE, past.isoformat())])
    entry: MockConfigEntry = await setup_integration(hass, make_entry(fake_server.url))
    assert hass.states.get(SNOOZE).state == STATE_UNKNOWN
    (camera_id,) = entry.runtime_data.watchers
    assert entry.runtime_data.notifier.snoozed_until(camera_id) is None


async def test_snooze_action(
    hass: HomeAssistant, setup_entry: MockConfigEntry, demo_camera: str
) -> None:
    """hsi.snooze: for a duration (1 h by default), 0 ends it; only a watched camera."""
    response = await hass.services.async_call(
        DOMAIN, "snooze", {"entity_id": demo_camera}, blocking=True, return_response=True
    )
    until = dt_util.parse_datetime(hass.states.get(SNOOZE).state)
    assert until is not None
    assert response == {"snoozed_until": until.isoformat()}
    assert timedelta(minutes=59) < until - dt_util.utcnow() <= timedelta(hours=1)
    await hass.services.async_call(
        DOMAIN, "snooze", {"entity_id": demo_camera, "duration": {"hours": 8}}, blocking=True
    )
    until = dt_util.parse_datetime(hass.states.get(SNOOZE).state)
    assert until is not None and until - dt_util.utcnow() > timedelta(hours=7)
    await hass.services.async_call(
        DOMAIN, "snooze", {"entity_id": demo_camera, "duration": 0}, blocking=True
    )
    assert hass.states.get(SNOOZE).state == STATE_UNKNOWN
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "snooze", {"entity_id": "camera.demo_camera_png"}, blocking=True
        )
    assert err.value.translation_key == "camera_not_configured"
