"""The scene format: loading, every kind of error, the key tables, evaluation and the report.

Runs on both Python environments (`.venv/ha` and `.venv/server`): pure Python, no Home Assistant.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from tests.scenes import scene_format as sf
from tests.scenes.scene_format import (
    Bound,
    Check,
    Expect,
    Observed,
    Scene,
    SceneError,
    SceneObject,
    SceneResult,
    Sighting,
    evaluate,
    format_table,
    load_scene,
    load_scenes,
    write_report,
)

ROOT = Path(__file__).resolve().parents[2]
CONST = ROOT / "custom_components" / "hsi" / "const.py"
CONFIG_FLOW = ROOT / "custom_components" / "hsi" / "config_flow.py"

# The example (#11), verbatim.
EXAMPLE = """\
name: one visitor lingers two minutes at the front door
start: "2026-11-27T14:00:00"       # local wall-clock time when the scene begins (day/night matters)
home_mode: disarmed                 # optional: state of the home-mode entity during the scene
enrolled: {alice: person}           # optional: identities enrolled (by name) before the scene
options: {cooldown: 300}            # optional: integration options (the options flow's keys)
cameras:                            # camera id -> optional camera settings (the camera subentry's keys)
  front_door: {location_description: "front door, faces the street", classes: [person, vehicle]}
  driveway: {}
visible:                            # what each camera sees, and when (seconds from `start`)
  - {camera: front_door, from: 0, to: 120, objects: [{class: person, identity: v1}]}
  - {camera: driveway, from: 200, to: 230, objects: [{class: car, identity: car1}, {class: person, identity: v1}]}
expect:
  events: 1            # security events recorded (an update in place does not count)
  notifications: {min: 0, max: 1}   # distinct notifications (a replaced or updated one counts once)
  max_level: medium    # optional: no event above this level
  min_level: low       # optional: no event below this level
"""  # noqa: E501


def base() -> dict[str, Any]:
    """The example as data, to be broken one key at a time."""
    data = yaml.safe_load(EXAMPLE)
    assert isinstance(data, dict)
    return data


def write(folder: Path, content: dict[str, Any] | str, name: str = "scene.yaml") -> Path:
    path = folder / name
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> str:
    with pytest.raises(SceneError) as err:
        load_scene(path)
    message = str(err.value)
    # Every line names the file.
    assert all(line.startswith(f"{path}: ") for line in message.splitlines()), message
    assert list(err.value.problems) == message.splitlines()
    return message


# --- the example -----------------------------------------------------------------------------


def test_example_loads_into_exactly_these_values(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    scene = load_scene(path)
    assert scene == Scene(
        name="one visitor lingers two minutes at the front door",
        path=path,
        start=datetime(2026, 11, 27, 14, 0, 0),
        home_mode="disarmed",
        enrolled={"alice": "person"},
        options={"cooldown": 300},
        cameras={
            "front_door": {
                "location_description": "front door, faces the street",
                "classes": ["person", "vehicle"],
            },
            "driveway": {},
        },
        visible=(
            Sighting("front_door", 0.0, 120.0, (SceneObject("person", "v1", None, None),)),
            Sighting(
                "driveway",
                200.0,
                230.0,
                (SceneObject("car", "car1", None, None), SceneObject("person", "v1", None, None)),
            ),
        ),
        expect=Expect(
            events=Bound(1, 1),
            notifications=Bound(0, 1),
            max_level="medium",
            min_level="low",
        ),
    )
    assert scene.start.tzinfo is None
    assert list(scene.cameras) == ["front_door", "driveway"]
    assert scene.end_s == 230.0
    assert scene.identities == {"v1": "person", "car1": "car"}
    assert scene.objects_at("front_door", 0) == (SceneObject("person", "v1"),)
    assert scene.objects_at("front_door", 120) == ()  # `to` is exclusive
    assert [o.identity for o in scene.objects_at("driveway", 229.5)] == ["car1", "v1"]
    assert scene.objects_at("driveway", 100) == ()


def test_optional_keys_and_details(tmp_path: Path) -> None:
    data = base()
    for key in ("home_mode", "enrolled", "options"):
        del data[key]
    del data["expect"]["max_level"], data["expect"]["min_level"]
    data["start"] = "2026-11-27 03:00:00"
    data["cameras"]["driveway"] = None  # `driveway:` with nothing after it
    data["cameras"]["front_door"] = {
        "interval": 0,
        "classes": [" Person ", "backpack"],
        "confidence": 0.35,
        "burst_frames": 10,
        "zones": "",
    }
    data["visible"][0]["objects"][0].update(confidence=0.42, box=[0, 0, 640, 480])
    data["visible"][1]["from"] = 0.5
    data["expect"]["events"] = {"max": 2}
    data["expect"]["notifications"] = {"min": 1}
    scene = load_scene(write(tmp_path, data))
    assert scene.home_mode is None and scene.enrolled == {} and scene.options == {}
    assert scene.start == datetime(2026, 11, 27, 3, 0)
    assert scene.cameras["driveway"] == {}
    assert scene.cameras["front_door"]["classes"] == ["person", "backpack"]  # as the flow cleans
    assert scene.visible[0].objects[0] == SceneObject("person", "v1", 0.42, (0, 0, 640, 480))
    assert scene.visible[1].start_s == 0.5
    assert scene.expect == Expect(Bound(0, 2), Bound(1, None), None, None)


def test_unquoted_yaml_timestamp_is_a_start(tmp_path: Path) -> None:
    text = EXAMPLE.replace('start: "2026-11-27T14:00:00"', "start: 2026-11-27T22:30:00")
    assert load_scene(write(tmp_path, text)).start == datetime(2026, 11, 27, 22, 30)


def test_every_option_and_camera_setting_loads(tmp_path: Path) -> None:
    data = base()
    data["options"] = {
        "batch_window": 600,
        "idle_timeout": 1,
        "fast_path_threshold": 1,
        "cooldown": 0,
        "enrich": False,
        "describe": True,
        "llm": False,
        "match_threshold": 0.99,
        "threat_threshold": 100,
        "threat_hold": 3600,
        "notify_min_level": "high",
    }
    assert set(data["options"]) == set(sf.OPTION_KEYS)
    assert load_scene(write(tmp_path, data)).options == data["options"]


# --- errors ----------------------------------------------------------------------------------

Edit = Callable[[dict[str, Any]], object]


def _set(*path: str | int, value: object) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _del(*path: str | int) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


def _obj(**fields: object) -> Edit:
    return _set("visible", 0, "objects", 0, value={"class": "person", "identity": "v1", **fields})


def _add_sighting(camera: str, start: float, end: float, *objects: tuple[str, str]) -> Edit:
    sighting = {
        "camera": camera,
        "from": start,
        "to": end,
        "objects": [{"class": c, "identity": i} for c, i in objects],
    }
    return lambda data: data["visible"].append(sighting)


ERRORS: dict[str, tuple[Edit, str]] = {
    # unknown keys, at every level, with the allowed keys
    "unknown top-level key": (
        _set("expected", value={}),
        "expected: unknown key (did you mean 'expect'?); allowed keys: name, start, home_mode, "
        "enrolled, options, cameras, visible, expect",
    ),
    "unknown option": (
        _set("options", "cooldwn", value=60),
        "options.cooldwn: unknown key (did you mean 'cooldown'?); allowed keys: batch_window, "
        "idle_timeout, fast_path_threshold, cooldown, enrich, describe, llm, match_threshold, "
        "threat_threshold, threat_hold, notify_min_level",
    ),
    "unknown camera setting": (
        _set("cameras", "driveway", "location", value="x"),
        "cameras.driveway.location: unknown key (did you mean 'location_description'?); allowed "
        "keys: interval, location_description, classes, confidence, burst_frames, zones",
    ),
    "unknown sighting key": (
        _set("visible", 0, "until", value=5),
        "visible[0].until: unknown key; allowed keys: camera, from, to, objects",
    ),
    "unknown object key": (
        _obj(bbox=[0, 0, 10, 10]),
        "visible[0].objects[0].bbox: unknown key (did you mean 'box'?); allowed keys: class, "
        "identity, confidence, box",
    ),
    "unknown expect key": (
        _set("expect", "alerts", value=1),
        "expect.alerts: unknown key; allowed keys: events, notifications, max_level, min_level",
    ),
    "unknown bound key": (
        _set("expect", "events", value={"min": 1, "most": 2}),
        "expect.events.most: unknown key; allowed keys: min, max",
    ),
    "non-string key": (
        _set("options", 5, value=1),
        "options: key 5 must be a string; allowed keys: batch_window",
    ),
    # missing keys
    "no name": (_del("name"), "top level: missing required key 'name'"),
    "no cameras": (_del("cameras"), "top level: missing required key 'cameras'"),
    "no expect.events": (_del("expect", "events"), "expect: missing required key 'events'"),
    "no sighting end": (_del("visible", 0, "to"), "visible[0]: missing required key 'to'"),
    "no identity": (
        _del("visible", 0, "objects", 0, "identity"),
        "visible[0].objects[0]: missing required key 'identity'",
    ),
    # types and ranges
    "name not text": (_set("name", value=5), "name: must be a string, got the number 5"),
    "empty name": (_set("name", value="  "), "name: must not be empty"),
    "start not a time": (
        _set("start", value="tomorrow"),
        "start: 'tomorrow' is not a date and time like '2026-11-27T14:00:00'",
    ),
    "start without time": (
        _set("start", value="2026-11-27"),
        "start: '2026-11-27' has no time of day; write e.g. '2026-11-27T14:00:00'",
    ),
    "start with offset": (
        _set("start", value="2026-11-27T14:00:00+01:00"),
        "start: must be local wall-clock time without a UTC offset or Z",
    ),
    "home_mode yes/no": (
        _set("home_mode", value=True),
        "home_mode: must be a string, got the boolean true (quote it if you meant text)",
    ),
    "enrolled kind": (
        _set("enrolled", "rex", value="dog"),
        "enrolled.rex: must be one of person, vehicle, animal, got the string 'dog'",
    ),
    "enrolled not a mapping": (
        _set("enrolled", value=["alice"]),
        "enrolled: must be a mapping of name to kind, got a list",
    ),
    "option type": (
        _set("options", "enrich", value="yes"),
        "options.enrich: must be true or false, got the string 'yes'",
    ),
    "option seconds not whole": (
        _set("options", "cooldown", value=2.5),
        "options.cooldown: must be a whole number of seconds from 0 to 3600, got the number 2.5",
    ),
    "option out of range": (
        _set("options", "match_threshold", value=1.2),
        "options.match_threshold: 1.2 is out of range: must be a number from 0.5 to 0.99",
    ),
    "option level": (
        _set("options", "notify_min_level", value="severe"),
        "options.notify_min_level: must be one of low, medium, high, critical, got the string "
        "'severe'",
    ),
    "option bool as number": (
        _set("options", "threat_threshold", value=True),
        "options.threat_threshold: must be a number from 0 to 100, got the boolean true",
    ),
    "idle longer than window": (
        _set("options", "idle_timeout", value=120),
        "options: idle_timeout 120 is longer than batch_window 90 (the options flow refuses it)",
    ),
    "harness option home_mode_entity": (
        _set("options", "home_mode_entity", value="select.mode"),
        "options.home_mode_entity: not settable in a scene: the harness creates the home-mode "
        "entity: set the scene's `home_mode`",
    ),
    "harness option notify_service": (
        _set("options", "notify_service", value="mobile_app"),
        "options.notify_service: not settable in a scene",
    ),
    "harness camera trigger": (
        _set("cameras", "driveway", "trigger_entity", value="binary_sensor.x"),
        "cameras.driveway.trigger_entity: not settable in a scene: the harness gives each camera "
        "a motion sensor",
    ),
    "harness camera entity": (
        _set("cameras", "driveway", "camera_entity", value="camera.x"),
        "cameras.driveway.camera_entity: not settable in a scene",
    ),
    "camera id": (
        _set("cameras", "Front Door", value={}),
        "cameras: camera id 'Front Door' must be lowercase letters, digits and single underscores",
    ),
    "no cameras at all": (
        _set("cameras", value={}),
        "cameras: a scene needs at least one camera",
    ),
    "camera settings not a mapping": (
        _set("cameras", "driveway", value=["person"]),
        "cameras.driveway: must be a mapping, got a list",
    ),
    "empty classes": (
        _set("cameras", "driveway", "classes", value=[]),
        "cameras.driveway.classes: must be a non-empty list of object classes or groups, "
        "got an empty list",
    ),
    "class not text": (
        _set("cameras", "driveway", "classes", value=["person", 3]),
        "cameras.driveway.classes[1]: must be a string, got the number 3",
    ),
    "camera confidence": (
        _set("cameras", "driveway", "confidence", value=0.99),
        "cameras.driveway.confidence: 0.99 is out of range: must be a number from 0.05 to 0.95",
    ),
    "burst frames": (
        _set("cameras", "driveway", "burst_frames", value=11),
        "cameras.driveway.burst_frames: 11 is out of range: must be a whole number from 1 to 10",
    ),
    "visible not a list": (
        _set("visible", value={"camera": "driveway"}),
        "visible: must be a list of sightings, got a mapping",
    ),
    "time not a number": (
        _set("visible", 0, "to", value="2 min"),
        "visible[0].to: must be a number, got the string '2 min'",
    ),
    "no objects": (
        _set("visible", 0, "objects", value=[]),
        "visible[0].objects: must be a non-empty list, got an empty list",
    ),
    "class not lowercase": (
        _obj(**{"class": "Person"}),
        "visible[0].objects[0].class: 'Person': detector classes are lowercase, e.g. 'person'",
    ),
    "identity not text": (
        _obj(identity=7),
        "visible[0].objects[0].identity: must be a string, got the number 7",
    ),
    # contradictions
    "to before from": (
        _set("visible", 0, "to", value=0),
        "visible[0]: to (0) must be after from (0)",
    ),
    "negative time": (
        _set("visible", 1, "from", value=-5),
        "visible[1].from: must not be negative (seconds from start), got -5",
    ),
    "camera not in cameras": (
        _set("visible", 1, "camera", value="garage"),
        "visible[1].camera: 'garage' is not one of the scene's cameras (front_door, driveway)",
    ),
    "identity with two classes": (
        _set("visible", 1, "objects", 1, "class", value="dog"),
        "visible[1].objects[1].class: identity 'v1' is a 'dog' here but a 'person' at "
        "visible[0].objects[0]",
    ),
    "enrolled person seen as a car": (
        _add_sighting("driveway", 300, 310, ("car", "alice")),
        "visible[2].objects[0].class: 'alice' is enrolled as a person, but 'car' is a vehicle",
    ),
    "enrolled animal seen as a person": (
        lambda data: (
            data["enrolled"].update(rex="animal"),
            data["visible"].append(
                {
                    "camera": "driveway",
                    "from": 300,
                    "to": 310,
                    "objects": [{"class": "person", "identity": "rex"}],
                }
            ),
        ),
        "visible[2].objects[0].class: 'rex' is enrolled as an animal, but 'person' is a person",
    ),
    "enrolled vehicle seen as a backpack": (
        lambda data: (
            data["enrolled"].update(van="vehicle"),
            data["visible"].append(
                {
                    "camera": "driveway",
                    "from": 300,
                    "to": 310,
                    "objects": [{"class": "backpack", "identity": "van"}],
                }
            ),
        ),
        "visible[2].objects[0].class: 'van' is enrolled as a vehicle, but 'backpack' is not a "
        "person, vehicle or animal",
    ),
    "same identity twice in a sighting": (
        _add_sighting("driveway", 300, 310, ("person", "v2"), ("person", "v2")),
        "visible[2].objects[1].identity: identity 'v2' appears twice in one sighting "
        "(also objects[0])",
    ),
    "same identity twice at once on one camera": (
        _add_sighting("front_door", 100, 150, ("person", "v1")),
        "visible[2]: identity 'v1' is already in view on 'front_door' at that time "
        "(visible[0], 0-120 s)",
    ),
    "bound min above max": (
        _set("expect", "notifications", value={"min": 2, "max": 1}),
        "expect.notifications: min 2 is above max 1",
    ),
    "bound negative": (
        _set("expect", "events", value=-1),
        "expect.events: must not be negative, got -1",
    ),
    "bound empty": (
        _set("expect", "events", value={}),
        "expect.events: give min, max or both",
    ),
    "bound not whole": (
        _set("expect", "events", value=1.5),
        "expect.events: must be a whole number or {min: A, max: B}, got the number 1.5",
    ),
    "bound part not whole": (
        _set("expect", "events", value={"max": "two"}),
        "expect.events.max: must be a whole number, got the string 'two'",
    ),
    "level unknown": (
        _set("expect", "max_level", value="severe"),
        "expect.max_level: must be one of low, medium, high, critical, got the string 'severe'",
    ),
    "min_level above max_level": (
        _set("expect", "min_level", value="high"),
        "expect: min_level high is above max_level medium",
    ),
    "box outside the frame": (
        _obj(box=[600, 400, 50, 50]),
        "visible[0].objects[0].box: [600, 400, 50, 50] reaches outside the 640x480 frame",
    ),
    "box negative corner": (
        _obj(box=[-1, 0, 50, 50]),
        "visible[0].objects[0].box: [-1, 0, 50, 50] reaches outside the 640x480 frame",
    ),
    "box without size": (
        _obj(box=[10, 10, 0, 20]),
        "visible[0].objects[0].box: width and height must be positive, got 0x20",
    ),
    "box shape": (
        _obj(box=[10, 10, 20]),
        "visible[0].objects[0].box: must be [x, y, width, height] in pixels of a 640x480 frame, "
        "got a list",
    ),
    "box not numbers": (
        _obj(box=[10, 10, "20", 20]),
        "visible[0].objects[0].box[2]: must be a number, got the string '20'",
    ),
    "confidence zero": (
        _obj(confidence=0),
        "visible[0].objects[0].confidence: must be above 0 and at most 1, got 0",
    ),
    "confidence above one": (
        _obj(confidence=1.5),
        "visible[0].objects[0].confidence: must be above 0 and at most 1, got 1.5",
    ),
    "confidence not a number": (
        _obj(confidence="high"),
        "visible[0].objects[0].confidence: must be a number, got the string 'high'",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_error_message(tmp_path: Path, case: str) -> None:
    edit, expected = ERRORS[case]
    data = base()
    edit(data)
    path = write(tmp_path, data)
    message = problems_of(path)
    assert f"{path}: {expected}" in message


def test_confidence_one_and_edges_are_fine(tmp_path: Path) -> None:
    data = base()
    _obj(confidence=1, box=[639, 479, 1, 1])(data)
    data["options"] = {"idle_timeout": 90}  # equal to the window: allowed
    scene = load_scene(write(tmp_path, data))
    assert scene.visible[0].objects[0].confidence == 1.0


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = base()
    data["hom_mode"] = "away"
    data["options"]["cooldown"] = -1
    data["visible"][0]["to"] = -3
    data["visible"][1]["objects"][0]["confidence"] = 2
    data["expect"]["min_level"] = "critical"
    message = problems_of(write(tmp_path, data))
    assert len(message.splitlines()) == 5, message
    for where in (
        "hom_mode:",
        "options.cooldown:",
        "visible[0].to:",
        "visible[1].objects[0].confidence:",
        "expect: min_level",
    ):
        assert where in message


def test_yaml_level_errors(tmp_path: Path) -> None:
    dup = write(tmp_path, EXAMPLE.replace("  driveway: {}", "  driveway: {}\n  driveway: {}"))
    assert problems_of(dup) == (
        f"{dup}: line 9, column 3: duplicate key 'driveway' (a key may appear once per mapping)"
    )
    bad = write(tmp_path, "name: [unclosed\nstart: x\n", "bad.yaml")
    assert problems_of(bad) == (
        f"{bad}: line 2, column 6: not valid YAML: while parsing a flow sequence expected ',' "
        "or ']', but got ':'"
    )
    empty = write(tmp_path, "# nothing\n", "empty.yaml")
    assert problems_of(empty) == f"{empty}: top level: the file is empty"
    listed = write(tmp_path, "- name: x\n", "list.yaml")
    assert problems_of(listed) == f"{listed}: top level: must be a mapping, got a list"
    missing = tmp_path / "missing.yaml"
    with pytest.raises(SceneError, match=r"missing\.yaml: cannot read the file"):
        load_scene(missing)


# --- the key tables against the integration --------------------------------------------------


def _const_values() -> dict[str, Any]:
    """Name -> value of every literal constant of const.py, and OPTION_DEFAULTS resolved."""
    tree = ast.parse(CONST.read_text(encoding="utf-8"))
    values: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            name = targets[0].id if isinstance(targets[0], ast.Name) else None
            if name is None:
                continue
            if isinstance(node.value, ast.Dict):
                resolved = {}
                for key, value in zip(node.value.keys, node.value.values, strict=True):
                    assert key is not None
                    resolved[_resolve(key, values)] = _resolve(value, values)
                values[name] = resolved
                continue
            try:
                values[name] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def _resolve(node: ast.expr, values: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return values[node.id]
    return ast.literal_eval(node)


def _selector_spec(call: ast.expr) -> tuple[str, float | None, float | None]:
    """(kind, low, high) of a config-flow selector, in the scene table's terms."""
    assert isinstance(call, ast.Call), ast.dump(call)
    func = call.func
    name = (
        func.id
        if isinstance(func, ast.Name)
        else func.attr
        if isinstance(func, ast.Attribute)
        else ""
    )
    if name == "_seconds":
        low, high = (ast.literal_eval(arg) for arg in call.args[:2])
        return ("seconds", low, high)
    if name == "_slider":
        low, high = (ast.literal_eval(arg) for arg in call.args[:2])
        return ("number", low, high)
    if name == "NumberSelector":
        config = call.args[0]
        assert isinstance(config, ast.Call)
        kw = {k.arg: k.value for k in config.keywords}
        step = ast.literal_eval(kw["step"]) if "step" in kw else None
        kind = "count" if step == 1 else "number"
        return (kind, ast.literal_eval(kw["min"]), ast.literal_eval(kw["max"]))
    if name == "SelectSelector":
        config = call.args[0]
        assert isinstance(config, ast.Call)
        kw = {k.arg: k.value for k in config.keywords}
        if "multiple" in kw and ast.literal_eval(kw["multiple"]) is True:
            return ("classes", None, None)  # the camera's objects of interest
        assert "RISK_LEVELS" in ast.dump(kw["options"]), "a choice the scene table does not know"
        return ("level", None, None)
    kinds = {"BooleanSelector": "bool", "TextSelector": "text", "EntitySelector": "entity"}
    assert name in kinds, f"a selector the scene table does not know: {name}"
    return (kinds[name], None, None)


def _field_name(key: ast.expr) -> str | None:
    """CONF_X of `CONF_X` or of `vol.Required(CONF_X, ...)` / `vol.Optional(CONF_X, ...)`."""
    if isinstance(key, ast.Name) and key.id.startswith("CONF_"):
        return key.id
    if (
        isinstance(key, ast.Call)
        and isinstance(key.func, ast.Attribute)
        and key.func.attr in ("Required", "Optional")
        and key.args
    ):
        first = key.args[0]
        if isinstance(first, ast.Name) and first.id.startswith("CONF_"):
            return first.id
    return None


def _form_fields(node: ast.AST) -> dict[str, ast.expr]:
    """CONF name -> selector of every form field inside `node` (dict entries and fields[...] =)."""
    fields: dict[str, ast.expr] = {}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Dict):
            for key, value in zip(sub.keys, sub.values, strict=True):
                name = _field_name(key) if key is not None else None
                if name is not None:
                    fields[name] = value
        elif (
            isinstance(sub, ast.Assign)
            and isinstance(sub.targets[0], ast.Subscript)
            and isinstance(sub.targets[0].slice, ast.Call)  # fields[vol.Optional(...)], no errors[]
        ):
            name = _field_name(sub.targets[0].slice)
            if name is not None:
                fields[name] = sub.value
    return fields


def _flow_fields() -> tuple[dict[str, ast.expr], dict[str, ast.expr]]:
    """(options-flow fields, camera-subentry fields) of config_flow.py, by CONF name."""
    tree = ast.parse(CONFIG_FLOW.read_text(encoding="utf-8"))
    options: dict[str, ast.expr] = {}
    camera: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name) and target.id == "OPTION_FIELDS":
                options.update(_form_fields(node))
        elif isinstance(node, ast.ClassDef) and node.name == "HsiOptionsFlow":
            options.update(_form_fields(node))
        elif isinstance(node, ast.FunctionDef) and node.name == "_camera_schema":
            camera.update(_form_fields(node))
    assert options and camera, "config_flow.py changed shape: update this test"
    return options, camera


def _table_spec(setting: sf.Setting) -> tuple[str, float | None, float | None]:
    return (setting.kind, setting.low, setting.high)


def test_option_table_matches_the_options_flow() -> None:
    consts = _const_values()
    options, _camera = _flow_fields()
    flow = {consts[name]: _selector_spec(selector) for name, selector in options.items()}
    harness = {key for key, spec in flow.items() if spec[0] == "entity"}
    harness |= {key for key, spec in flow.items() if key == consts["CONF_NOTIFY_SERVICE"]}
    assert set(sf.HARNESS_OPTION_KEYS) == harness
    assert {k: _table_spec(v) for k, v in sf.OPTION_KEYS.items()} == {
        key: spec for key, spec in flow.items() if key not in harness
    }
    # Every option with a default is in the flow, and the defaults agree.
    defaults = consts["OPTION_DEFAULTS"]
    assert set(defaults) == set(sf.OPTION_KEYS) | set(sf.HARNESS_OPTION_KEYS)
    assert {k: v.default for k, v in sf.OPTION_KEYS.items()} == {
        k: v for k, v in defaults.items() if k in sf.OPTION_KEYS
    }


def test_camera_table_matches_the_camera_subentry() -> None:
    consts = _const_values()
    _options, camera = _flow_fields()
    flow = {consts[name]: _selector_spec(selector) for name, selector in camera.items()}
    harness = {key for key, spec in flow.items() if spec[0] == "entity"}
    assert set(sf.HARNESS_CAMERA_KEYS) == harness
    assert {k: _table_spec(v) for k, v in sf.CAMERA_KEYS.items()} == {
        key: spec for key, spec in flow.items() if key not in harness
    }
    # The keys are const.py's CONF_* values (a renamed constant value is caught here).
    conf_values = {v for k, v in consts.items() if k.startswith("CONF_")}
    assert set(sf.CAMERA_KEYS) | set(sf.HARNESS_CAMERA_KEYS) <= conf_values
    assert set(sf.OPTION_KEYS) | set(sf.HARNESS_OPTION_KEYS) <= conf_values


def test_alias_tables_point_at_current_keys() -> None:
    for aliases, table, harness in (
        (sf.OPTION_ALIASES, sf.OPTION_KEYS, sf.HARNESS_OPTION_KEYS),
        (sf.CAMERA_ALIASES, sf.CAMERA_KEYS, sf.HARNESS_CAMERA_KEYS),
    ):
        for old, new in aliases.items():
            assert new in table or new in harness, f"alias {old} -> {new}: {new} is no key"
            assert old not in table and old not in harness, f"{old} is a current key"


def test_an_old_key_name_keeps_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sf.OPTION_ALIASES, "cool_down", "cooldown")
    monkeypatch.setitem(sf.CAMERA_ALIASES, "description", "location_description")
    data = base()
    data["options"] = {"cool_down": 60}
    data["cameras"]["driveway"] = {"description": "the drive"}
    scene = load_scene(write(tmp_path, data))
    assert scene.options == {"cooldown": 60}
    assert scene.cameras["driveway"] == {"location_description": "the drive"}

    data["options"] = {"cool_down": 60, "cooldown": 30}
    assert "options.cooldown: 'cool_down' and 'cooldown' are the same setting" in problems_of(
        write(tmp_path, data)
    )
    data["options"] = {"cool_down": -1}
    assert "options.cool_down: -1 is out of range" in problems_of(write(tmp_path, data))


# --- folders ---------------------------------------------------------------------------------


def test_load_scenes_sorted_by_file_name(tmp_path: Path) -> None:
    for file, name in (("b.yml", "second"), ("a.yaml", "first"), ("c.yaml", "third")):
        data = base()
        data["name"] = name
        write(tmp_path, data, file)
    (tmp_path / "notes.txt").write_text("not a scene", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", base(), "nested.yaml")  # not searched
    scenes = load_scenes(tmp_path)
    assert [s.name for s in scenes] == ["first", "second", "third"]
    assert [s.path.name for s in scenes] == ["a.yaml", "b.yml", "c.yaml"]
    assert load_scenes(tmp_path / "sub")[0].name == base()["name"]


def test_load_scenes_reports_every_bad_file(tmp_path: Path) -> None:
    good = base()
    write(tmp_path, good, "a.yaml")
    bad = base()
    bad["expect"]["events"] = -1
    write(tmp_path, bad, "b.yaml")
    worse = base()
    worse["name"] = 3
    write(tmp_path, worse, "c.yaml")
    with pytest.raises(SceneError) as err:
        load_scenes(tmp_path)
    assert [line.split(": ")[0] for line in err.value.problems] == [
        str(tmp_path / "b.yaml"),
        str(tmp_path / "c.yaml"),
    ]


def test_load_scenes_refuses_two_scenes_of_one_name(tmp_path: Path) -> None:
    write(tmp_path, base(), "a.yaml")
    write(tmp_path, base(), "b.yaml")
    with pytest.raises(SceneError, match=r"b\.yaml: name: .* is also the name of .*a\.yaml"):
        load_scenes(tmp_path)


def test_load_scenes_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match="not a folder"):
        load_scenes(tmp_path / "nowhere")
    assert load_scenes(tmp_path) == []


def test_the_projects_own_scenes_load() -> None:
    scenes = load_scenes(Path(__file__).parent)
    assert len({scene.name for scene in scenes}) == len(scenes)


# --- evaluation ------------------------------------------------------------------------------


def scene_with(events: Bound, notifications: Bound, **levels: str) -> Scene:
    return Scene(
        name="s",
        path=Path("tests/scenes/s.yaml"),
        start=datetime(2026, 11, 27, 14, 0),
        home_mode=None,
        enrolled={},
        options={},
        cameras={"cam": {}},
        visible=(Sighting("cam", 0, 10, (SceneObject("person", "p"),)),),
        expect=Expect(events, notifications, levels.get("max_level"), levels.get("min_level")),
    )


@pytest.mark.parametrize(
    ("bound", "count", "passed"),
    [
        (Bound(1, 1), 1, True),
        (Bound(1, 1), 0, False),
        (Bound(1, 1), 2, False),
        (Bound(0, 1), 0, True),
        (Bound(0, 1), 2, False),
        (Bound(2, None), 7, True),
        (Bound(2, None), 1, False),
        (Bound(0, 3), 3, True),
    ],
)
def test_bounds(bound: Bound, count: int, passed: bool) -> None:
    result = evaluate(scene_with(bound, Bound(0, 0)), Observed(count, 0, 0, ["low"] * count))
    assert result.checks[0] == Check("events", str(bound), count, passed)
    assert result.checks[1] == Check("notifications", "0", 0, True)
    assert result.passed is passed


def test_bound_text() -> None:
    assert [str(b) for b in (Bound(1, 1), Bound(0, 1), Bound(2, None), Bound(0, None))] == [
        "1",
        "0..1",
        ">=2",
        ">=0",
    ]


def test_level_checks() -> None:
    scene = scene_with(Bound(0, None), Bound(0, None), max_level="medium", min_level="low")
    ok = evaluate(scene, Observed(2, 1, 0, ["medium", "low"]))
    assert [c.name for c in ok.checks] == ["events", "notifications", "max_level", "min_level"]
    assert ok.checks[2:] == (
        Check("max_level", "medium", "medium", True),
        Check("min_level", "low", "low", True),
    )
    too_high = evaluate(scene, Observed(2, 1, 0, ["low", "critical"]))
    assert too_high.checks[2] == Check("max_level", "medium", "critical", False)
    assert not too_high.passed

    floor = scene_with(Bound(0, None), Bound(0, None), min_level="high")
    too_low = evaluate(floor, Observed(2, 1, 0, ["high", "medium"]))
    assert [c.name for c in too_low.checks] == ["events", "notifications", "min_level"]
    assert too_low.checks[2] == Check("min_level", "high", "medium", False)
    # No event: nothing above or below any level.
    none = evaluate(scene, Observed(0, 0, 0, []))
    assert none.checks[2:] == (
        Check("max_level", "medium", None, True),
        Check("min_level", "low", None, True),
    )
    assert none.passed


def test_without_level_expectations_there_are_no_level_checks() -> None:
    result = evaluate(scene_with(Bound(1, 1), Bound(1, 1)), Observed(1, 1, 3, ["critical"]))
    assert [c.name for c in result.checks] == ["events", "notifications"]
    assert result.passed


def test_unknown_observed_level_is_a_harness_bug() -> None:
    with pytest.raises(ValueError, match="unknown risk level"):
        evaluate(scene_with(Bound(1, 1), Bound(1, 1)), Observed(1, 1, 0, ["severe"]))


# --- report ----------------------------------------------------------------------------------


def _results(tmp_path: Path) -> list[SceneResult]:
    example = load_scene(write(tmp_path / "scenes", EXAMPLE))
    failing = Scene(**_fields(example, name="cat at night"))
    return [
        evaluate(example, Observed(1, 1, 2, ["medium"])),
        evaluate(failing, Observed(2, 1, 0, ["low", "high"])),
        SceneResult(example, Observed(0, 0, 0, []), (), error="server did not start"),
    ]


def _fields(scene: Scene, **changes: object) -> dict[str, Any]:
    values = {name: getattr(scene, name) for name in Scene.__dataclass_fields__}
    values.update(changes)
    return values


def test_report_json(tmp_path: Path) -> None:
    (tmp_path / "scenes").mkdir()
    results = _results(tmp_path)
    report = tmp_path / "scenes-report.json"
    write_report(results, report)
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["passed"] is False
    assert data["total"] == 3
    assert data["failed"] == 2
    first, second, third = data["scenes"]
    assert first == {
        "name": "one visitor lingers two minutes at the front door",
        "file": "scenes/scene.yaml",
        "events": 1,
        "notifications": 1,
        "updates": 2,
        "levels": ["medium"],
        "checks": [
            {"name": "events", "expected": "1", "actual": 1, "pass": True},
            {"name": "notifications", "expected": "0..1", "actual": 1, "pass": True},
            {"name": "max_level", "expected": "medium", "actual": "medium", "pass": True},
            {"name": "min_level", "expected": "low", "actual": "medium", "pass": True},
        ],
        "error": None,
        "passed": True,
    }
    assert second["name"] == "cat at night"
    assert second["passed"] is False
    assert [c["pass"] for c in second["checks"]] == [False, True, False, True]
    assert second["checks"][2] == {
        "name": "max_level",
        "expected": "medium",
        "actual": "high",
        "pass": False,
    }
    assert third["error"] == "server did not start"
    assert third["checks"] == []
    assert third["passed"] is False

    # A scene outside the report's folder is named by its absolute path.
    elsewhere = tmp_path / "elsewhere" / "report.json"
    elsewhere.parent.mkdir()
    write_report(results[:1], elsewhere)
    file = json.loads(elsewhere.read_text(encoding="utf-8"))["scenes"][0]["file"]
    assert file == (tmp_path / "scenes" / "scene.yaml").resolve().as_posix()


def test_table(tmp_path: Path) -> None:
    (tmp_path / "scenes").mkdir()
    table = format_table(_results(tmp_path))
    lines = table.splitlines()
    header = lines[0].split()
    assert header == [
        "scene",
        "events",
        "exp",
        "act",
        "notifications",
        "exp",
        "act",
        "levels",
        "result",
    ]
    assert set(lines[1]) <= {"-", " "}
    row = lines[2]
    assert row.startswith("one visitor lingers two minutes at the front door")
    assert row.split()[-8:] == ["1", "1", "0..1", "1", "medium", "(<=medium", ">=low)", "PASS"]
    cat = lines[3]
    assert cat.startswith("cat at night")
    assert "low, high (<=medium >=low)" in cat
    assert cat.endswith("FAIL (events, max_level)")
    assert lines[4].endswith("FAIL (error)")
    assert lines[5] == "3 scenes: 1 passed, 2 failed"
    assert lines[6].startswith("error in 'one visitor lingers two minutes at the front door'")
    assert lines[6].endswith("server did not start")
    # Columns line up.
    assert len({line.index("PASS") if "PASS" in line else None for line in lines[2:3]}) == 1
    assert lines[2].index("medium") == lines[3].index("low, high")


def test_table_counts_repeated_levels(tmp_path: Path) -> None:
    scene = scene_with(Bound(3, 3), Bound(1, 1))
    table = format_table([evaluate(scene, Observed(3, 1, 0, ["low", "high", "low"]))])
    assert "2x low, high" in table.splitlines()[2]
    assert table.splitlines()[2].endswith("PASS")
