"""Scene replays: scripted camera activity through a real Home Assistant and the real server.

Each YAML scene (tests/scenes/README.md: the format) becomes, in Home Assistant's test harness:
one camera entity per scene camera whose snapshot shows what the scene makes visible at that
moment (a scene frame: `hsi_client.testing.scene_frame`), one motion sensor per camera that is on
while the camera sees anything, a home-mode entity, a notify action that records every alert, the
scene's enrolled identities, and the integration with the scene's options and camera settings,
talking to the real AI server in its scripted profile (objects read from the frames, one
embedding per identity, risk from the rules). Time travels in one-second steps, so an hour-long
scene replays in seconds. The outcome (events, notifications, levels) is checked against the
scene's `expect`, and every scene's result goes to `scenes-report.json` at the repository root.

`make scenes` replays tests/scenes; `make scenes SCENES=/abs/dir` replays another folder
(the environment variable `HSI_SCENES`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
import os
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from hsi_client.testing import scene_frame
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    setup_test_component_platform,
)

from custom_components.hsi.const import (
    CONF_BATCH_WINDOW,
    CONF_CAMERA,
    CONF_HOME_MODE_ENTITY,
    CONF_IDLE_TIMEOUT,
    CONF_NOTIFY_SERVICE,
    CONF_TRIGGER,
    CONF_VERIFY_SSL,
    DOMAIN,
    EVENT_SECURITY,
    OPTION_DEFAULTS,
    SUBENTRY_CAMERA,
)
from homeassistant.components.camera import Camera
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import CONF_API_KEY, CONF_URL, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from tests.scenes.scene_format import (
    Observed,
    Scene,
    SceneResult,
    evaluate,
    format_table,
    load_scenes,
    write_report,
)

from .conftest import REPO_ROOT, RealServer, action

SCENES_DIR = Path(os.environ.get("HSI_SCENES") or REPO_ROOT / "tests" / "scenes")
REPORT = REPO_ROOT / "scenes-report.json"
SCENES = load_scenes(SCENES_DIR)
RESULTS: list[SceneResult] = []

STEP = timedelta(seconds=1)
ENROL_LEAD = timedelta(minutes=5)  # identities are enrolled this long before the scene starts
NOTIFY = "scene_alerts"
HOME_MODE = "sensor.scene_home_mode"
ENROL_CAMERA = "enrol"
# A class to show an enrolled identity that never appears in the scene, per enrolled kind.
KIND_CLASS = {"person": "person", "vehicle": "car", "animal": "dog"}
# Detection confidence of an object whose scene gives none: clearly seen, below the fast path.
DEFAULT_CONFIDENCE = 0.8


@pytest.fixture(scope="module", autouse=True)
def scenes_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """Write the report and print the table (past pytest's capture) after the last scene."""
    yield
    if RESULTS:
        write_report(RESULTS, REPORT)
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\n{format_table(RESULTS)}\nreport: {REPORT}")


class SceneCamera(Camera):
    """A camera whose snapshot is a scene frame of what it sees now."""

    def __init__(self, camera_id: str, objects: Callable[[], list[dict[str, Any]]]) -> None:
        """Show `objects()` at each snapshot."""
        super().__init__()
        self.content_type = "image/png"
        self._attr_name = f"Scene {camera_id}"
        self.entity_id = f"camera.scene_{camera_id}"
        self._objects = objects

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The frame of this moment."""
        return scene_frame(self._objects())


class Replay:
    """What each camera of a scene sees at the current (frozen) time."""

    def __init__(self, scene: Scene, start: datetime) -> None:
        """`start`: the scene's start in UTC."""
        self.scene = scene
        self.start = start
        self.enrol_view: list[dict[str, Any]] = []
        self.identity_class = {
            obj.identity: obj.label for sighting in scene.visible for obj in sighting.objects
        }

    @property
    def elapsed(self) -> float:
        """Seconds since the scene started."""
        return (dt_util.utcnow() - self.start).total_seconds()

    def visible(self, camera: str) -> list[dict[str, Any]]:
        """The objects `camera` sees now, as scene-frame objects."""
        now = self.elapsed
        return [
            {
                "class": obj.label,
                "identity": obj.identity,
                "confidence": obj.confidence or DEFAULT_CONFIDENCE,
                "box": obj.box,
            }
            for sighting in self.scene.visible
            if sighting.camera == camera and sighting.start_s <= now < sighting.end_s
            for obj in sighting.objects
        ]

    @property
    def end(self) -> float:
        """When the last sighting ends (seconds from the start)."""
        return max((s.end_s for s in self.scene.visible), default=0.0)


def _subentry(camera_id: str, settings: dict[str, Any]) -> ConfigSubentryData:
    return ConfigSubentryData(
        data={
            CONF_CAMERA: f"camera.scene_{camera_id}",
            CONF_TRIGGER: f"binary_sensor.scene_{camera_id}_motion",
            **settings,
        },
        subentry_type=SUBENTRY_CAMERA,
        title=f"Scene {camera_id}",
        unique_id=f"camera.scene_{camera_id}",
    )


async def _step(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    freezer.tick(STEP)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.parametrize("scene", SCENES, ids=[scene.path.stem for scene in SCENES])
async def test_scene(
    hass: HomeAssistant,
    scene: Scene,
    scripted_server: RealServer,
    socket_enabled: None,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Replay one scene and check what it expects."""
    start = dt_util.as_utc(scene.start.replace(tzinfo=dt_util.get_default_time_zone()))
    freezer.move_to(start - ENROL_LEAD)
    replay = Replay(scene, start)

    assert await async_setup_component(hass, "homeassistant", {})
    cameras = [SceneCamera(c, lambda c=c: replay.visible(c)) for c in scene.cameras]
    cameras.append(SceneCamera(ENROL_CAMERA, lambda: replay.enrol_view))
    setup_test_component_platform(hass, "camera", cameras)
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    for camera_id in scene.cameras:
        hass.states.async_set(f"binary_sensor.scene_{camera_id}_motion", STATE_OFF)
    if scene.home_mode is not None:
        hass.states.async_set(HOME_MODE, scene.home_mode)
    alerts: list[dict[str, Any]] = []

    async def record_alert(call: ServiceCall) -> None:
        alerts.append(dict(call.data))

    hass.services.async_register("notify", NOTIFY, record_alert)

    options = OPTION_DEFAULTS | {CONF_NOTIFY_SERVICE: NOTIFY}
    if scene.home_mode is not None:
        options[CONF_HOME_MODE_ENTITY] = HOME_MODE
    options |= scene.options
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="HSI scenes",
        unique_id=scripted_server.url,
        data={CONF_URL: scripted_server.url, CONF_API_KEY: None, CONF_VERIFY_SSL: True},
        options=options,
        subentries_data=[_subentry(c, dict(s)) for c, s in scene.cameras.items()],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    for name, kind in scene.enrolled.items():
        label = replay.identity_class.get(name, KIND_CLASS[kind])
        replay.enrol_view = [{"class": label, "identity": name, "confidence": 0.95, "box": None}]
        await action(
            hass, "enroll", {"name": name, "kind": kind, "entity_id": "camera.scene_enrol"}
        )
    replay.enrol_view = []

    security = async_capture_events(hass, EVENT_SECURITY)
    freezer.move_to(start)
    tail = float(options[CONF_BATCH_WINDOW]) + float(options[CONF_IDLE_TIMEOUT]) + 10
    motion = dict.fromkeys(scene.cameras, False)
    while replay.elapsed <= replay.end + tail:
        for camera_id in scene.cameras:
            seen = bool(replay.visible(camera_id))
            if seen != motion[camera_id]:
                motion[camera_id] = seen
                hass.states.async_set(
                    f"binary_sensor.scene_{camera_id}_motion", STATE_ON if seen else STATE_OFF
                )
        await _step(hass, freezer)

    levels: dict[str, str] = {}
    for fired in security:
        levels[fired.data["event_id"]] = fired.data["risk_level"]
    observed = Observed(
        events=sum(1 for fired in security if not fired.data["update"]),
        notifications=len({alert["data"]["tag"] for alert in alerts}),
        updates=sum(1 for fired in security if fired.data["update"]),
        levels=list(levels.values()),
    )
    assert await hass.config_entries.async_unload(entry.entry_id)
    result = evaluate(scene, observed)
    RESULTS.append(result)
    assert result.passed, format_table([result])
