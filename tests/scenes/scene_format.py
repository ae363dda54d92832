"""The scene format of the replay harness (issue #11): load and check scenes, evaluate, report.

A scene is one YAML file that says what each camera sees, and when, and what the integration should
make of it (tests/scenes/README.md has the format with every key explained). This module is pure
Python (PyYAML and the client library, no Home Assistant): the harness replays what `load_scene`
returns, counts what the integration did into an `Observed`, and `evaluate` / `write_report` /
`format_table` judge and report it.

Loading is strict. Every problem of a file is collected and raised at once as one `SceneError`
whose lines each name the file, the key path (`visible[1].objects[0].class`) and the problem,
with the allowed keys or values where that helps: unknown keys at every level, wrong types and
ranges, and a scene that contradicts itself (an interval that ends before it starts, a sighting on
a camera the scene does not have, one identity that is two different things, ...).

Option and camera-setting keys are the integration's own: `OPTION_KEYS` and `CAMERA_KEYS` mirror
its options flow and camera subentry (custom_components/hsi/const.py and config_flow.py; the tests
read those files and fail when a key, type or range here differs). When the integration renames a
key, its old name goes into `OPTION_ALIASES` / `CAMERA_ALIASES` (old name -> new name) so the
scenes written with it keep loading.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal

import yaml  # type: ignore[import-untyped,unused-ignore]
from hsi_client import GROUPS, RISK_LEVELS, group_of, level_rank

# The frame every camera of a scene delivers; boxes must lie inside it.
FRAME_WIDTH: Final = 640
FRAME_HEIGHT: Final = 480

SettingKind = Literal["seconds", "count", "number", "bool", "text", "classes", "level"]


@dataclass(frozen=True, slots=True)
class Setting:
    """How a scene may set one option or camera setting: its type and inclusive range."""

    kind: SettingKind  # seconds / count: whole numbers; number: int or float; level: a risk level
    low: float | None = None
    high: float | None = None
    default: float | bool | str | None = None  # the integration's default (options only)

    def describe(self) -> str:
        """`a whole number of seconds from 5 to 600`, for error messages."""
        what = {
            "seconds": "a whole number of seconds",
            "count": "a whole number",
            "number": "a number",
            "bool": "true or false",
            "text": "a string",
            "classes": "a non-empty list of object classes or groups",
            "level": f"one of {', '.join(RISK_LEVELS)}",
        }[self.kind]
        if self.low is not None and self.high is not None:
            return f"{what} from {_num(self.low)} to {_num(self.high)}"
        return what


# The options flow's keys (const.OPTION_DEFAULTS, config_flow.OPTION_FIELDS) with their ranges
# and defaults. Scenes set them under `options`; the harness applies them over the defaults.
OPTION_KEYS: Final[Mapping[str, Setting]] = {
    "batch_window": Setting("seconds", 5, 600, 90),
    "idle_timeout": Setting("seconds", 1, 300, 30),
    "fast_path_threshold": Setting("number", 0.5, 1.0, 0.9),
    "cooldown": Setting("seconds", 0, 3600, 300),
    "enrich": Setting("bool", default=True),
    "describe": Setting("bool", default=True),
    "llm": Setting("bool", default=True),
    "match_threshold": Setting("number", 0.5, 0.99, 0.85),
    "threat_threshold": Setting("number", 0, 100, 60),
    "threat_hold": Setting("seconds", 0, 3600, 120),
    "notify_min_level": Setting("level", default="medium"),
}
# Options of the integration that the harness sets itself: a scene may not.
HARNESS_OPTION_KEYS: Final[Mapping[str, str]] = {
    "home_mode_entity": "the harness creates the home-mode entity: set the scene's `home_mode`",
    "notify_service": "the harness configures its recording notify target",
}

# The camera subentry's keys (config_flow._camera_schema) with their ranges. Scenes set them per
# camera under `cameras`; what a scene leaves out keeps the integration's default.
CAMERA_KEYS: Final[Mapping[str, Setting]] = {
    "interval": Setting("seconds", 0, 3600),
    "location_description": Setting("text"),
    "classes": Setting("classes"),
    "confidence": Setting("number", 0.05, 0.95),
    "burst_frames": Setting("count", 1, 10),
    "zones": Setting("text"),
}
HARNESS_CAMERA_KEYS: Final[Mapping[str, str]] = {
    "camera_entity": "the camera id names the camera the harness creates",
    "trigger_entity": "the harness gives each camera a motion sensor that follows `visible`",
}

# Old name -> current name of a renamed option or camera setting: scenes that use the old name
# keep working (the loaded scene carries the current name). Empty: nothing has been renamed yet.
OPTION_ALIASES: Final[dict[str, str]] = {}
CAMERA_ALIASES: Final[dict[str, str]] = {}

SCENE_KEYS: Final = (
    "name",
    "start",
    "home_mode",
    "enrolled",
    "options",
    "cameras",
    "visible",
    "expect",
)
SCENE_REQUIRED: Final = ("name", "start", "cameras", "visible", "expect")
SIGHTING_KEYS: Final = ("camera", "from", "to", "objects")
OBJECT_KEYS: Final = ("class", "identity", "confidence", "box")
EXPECT_KEYS: Final = ("events", "notifications", "max_level", "min_level")
BOUND_KEYS: Final = ("min", "max")
# A camera id is a Home Assistant object id: camera.<id>.
_CAMERA_ID: Final = re.compile(r"(?!_)(?!.*__)[a-z0-9_]+(?<!_)")
_DATE_ONLY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


class SceneError(ValueError):
    """A scene file that cannot be replayed; `problems` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class Bound:
    """An expected count: `min` to `max` inclusive (`max` None: no upper bound)."""

    min: int = 0
    max: int | None = None

    def contains(self, value: int) -> bool:
        """Whether a count meets the bound."""
        return value >= self.min and (self.max is None or value <= self.max)

    def __str__(self) -> str:
        if self.max is None:
            return f">={self.min}"
        if self.min == self.max:
            return str(self.min)
        return f"{self.min}..{self.max}"


@dataclass(frozen=True, slots=True)
class Expect:
    """What the integration should make of a scene."""

    events: Bound
    notifications: Bound
    max_level: str | None = None  # no event above this level
    min_level: str | None = None  # no event below this level


@dataclass(frozen=True, slots=True)
class SceneObject:
    """One object in view: its detector class, who or what it is, and optionally how it looks."""

    label: str
    identity: str
    confidence: float | None = None
    box: tuple[float, float, float, float] | None = None  # x, y, width, height in a 640x480 frame


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one camera sees from `start_s` up to (not including) `end_s` seconds after the start."""

    camera: str
    start_s: float
    end_s: float
    objects: tuple[SceneObject, ...]

    def covers(self, t: float) -> bool:
        """Whether the objects are in view at `t` seconds."""
        return self.start_s <= t < self.end_s


@dataclass(frozen=True, slots=True)
class Scene:
    """One loaded, checked scene."""

    name: str
    path: Path
    start: datetime  # naive: local wall-clock time
    home_mode: str | None
    enrolled: dict[str, str]  # name -> person / vehicle / animal
    options: dict[str, Any]  # the scene's options only (current key names)
    cameras: dict[str, dict[str, Any]]  # camera id -> the scene's settings only
    visible: tuple[Sighting, ...]
    expect: Expect

    @property
    def end_s(self) -> float:
        """When the last sighting ends (0 for a scene where nothing is seen)."""
        return max((s.end_s for s in self.visible), default=0.0)

    @property
    def identities(self) -> dict[str, str]:
        """Identity -> detector class, for every identity seen (in order of first sighting)."""
        return {obj.identity: obj.label for s in self.visible for obj in s.objects}

    def objects_at(self, camera: str, t: float) -> tuple[SceneObject, ...]:
        """What `camera` sees `t` seconds after the start."""
        return tuple(
            obj for s in self.visible if s.camera == camera and s.covers(t) for obj in s.objects
        )


# --- loading ---------------------------------------------------------------------------------


_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


class _DuplicateKeyError(yaml.MarkedYAMLError):  # type: ignore[misc,unused-ignore]
    """A key given twice in one mapping (PyYAML would keep the last silently)."""


class _UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
    """PyYAML's safe loader, except that a key given twice in one mapping is an error."""


def _construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
    seen: set[object] = set()
    for key_node, _value in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
            continue  # merge keys (<<) and complex keys: PyYAML handles them
        key = loader.construct_object(key_node)
        if key in seen:
            raise _DuplicateKeyError(
                problem=f"duplicate key {key!r} (a key may appear once per mapping)",
                problem_mark=key_node.start_mark,
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


class _Problems:
    """The problems found in one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, where: str, problem: str) -> None:
        self.lines.append(f"{self.path}: {where or 'top level'}: {problem}")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _kind_of(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()} (quote it if you meant text)"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime | date):
        return f"the date {value.isoformat()}"
    return type(value).__name__


def _at(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def _unknown_key(key: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    close = (
        difflib.get_close_matches(key, allowed, n=1)
        or [name for name in allowed if len(key) > 2 and (key in name or name in key)][:1]
    )
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; allowed keys: {', '.join(allowed) or 'none'}"


def _mapping(
    value: object,
    where: str,
    problems: _Problems,
    allowed: Sequence[str],
    required: Sequence[str] = (),
) -> dict[str, object] | None:
    """The known keys of a mapping; unknown, non-string and missing keys are problems."""
    if not isinstance(value, dict):
        problems.add(where, f"must be a mapping, got {_kind_of(value)}")
        return None
    known: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            problems.add(where, f"key {key!r} must be a string; allowed keys: {', '.join(allowed)}")
        elif key not in allowed:
            problems.add(_at(where, key), _unknown_key(key, allowed))
        else:
            known[key] = item
    for key in required:
        if key not in value:
            problems.add(where, f"missing required key {key!r}")
    return known


def _text(value: object, where: str, problems: _Problems) -> str | None:
    if not isinstance(value, str):
        problems.add(where, f"must be a string, got {_kind_of(value)}")
        return None
    if not value.strip():
        problems.add(where, "must not be empty")
        return None
    return value


def _number(value: object, where: str, problems: _Problems) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(where, f"must be a number, got {_kind_of(value)}")
        return None
    if not math.isfinite(value):
        problems.add(where, f"must be a finite number, got {value}")
        return None
    return value


def _start(value: object, where: str, problems: _Problems) -> datetime | None:
    """A naive local date and time: a quoted ISO string, or YAML's own unquoted timestamp."""
    if isinstance(value, str):
        if _DATE_ONLY.fullmatch(value.strip()):
            problems.add(where, f"{value!r} has no time of day; write e.g. '{value}T14:00:00'")
            return None
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            problems.add(where, f"{value!r} is not a date and time like '2026-11-27T14:00:00'")
            return None
    elif isinstance(value, date) and not isinstance(value, datetime):
        problems.add(
            where, f"{value.isoformat()} has no time of day; write e.g. '{value}T14:00:00'"
        )
        return None
    if not isinstance(value, datetime):
        problems.add(
            where, f"must be a date and time like '2026-11-27T14:00:00', got {_kind_of(value)}"
        )
        return None
    if value.tzinfo is not None:
        problems.add(
            where,
            "must be local wall-clock time without a UTC offset or Z, e.g. '2026-11-27T14:00:00'",
        )
        return None
    return value


def _setting(value: object, where: str, problems: _Problems, setting: Setting) -> object:
    """A checked option or camera setting; None after a problem."""
    wrong = f"must be {setting.describe()}, got {_kind_of(value)}"
    if setting.kind == "bool":
        if not isinstance(value, bool):
            problems.add(where, wrong)
            return None
        return value
    if setting.kind == "level":
        if not isinstance(value, str) or value not in RISK_LEVELS:
            problems.add(where, wrong)
            return None
        return value
    if setting.kind == "text":
        if not isinstance(value, str):
            problems.add(where, wrong)
            return None
        return value
    if setting.kind == "classes":
        if not isinstance(value, list) or not value:
            problems.add(where, wrong)
            return None
        classes: list[str] = []
        for i, item in enumerate(value):
            name = _text(item, _at(where, i), problems)
            if name is not None:
                classes.append(name.strip().lower())
        return classes if len(classes) == len(value) else None
    whole = setting.kind in ("seconds", "count")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (whole and not isinstance(value, int))
    ):
        problems.add(where, wrong)
        return None
    if not math.isfinite(value) or not (
        (setting.low is None or value >= setting.low)
        and (setting.high is None or value <= setting.high)
    ):
        problems.add(where, f"{value} is out of range: must be {setting.describe()}")
        return None
    return value


def _settings(
    value: object,
    where: str,
    problems: _Problems,
    table: Mapping[str, Setting],
    aliases: Mapping[str, str],
    harness: Mapping[str, str],
) -> dict[str, Any] | None:
    """Options or camera settings: current key names, each value checked against the table."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(where, f"must be a mapping, got {_kind_of(value)}")
        return None
    out: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    ok = True
    for key, item in value.items():
        if not isinstance(key, str):
            problems.add(where, f"key {key!r} must be a string; allowed keys: {', '.join(table)}")
            ok = False
            continue
        name = aliases.get(key, key)
        here = _at(where, key)
        if name in harness:
            problems.add(here, f"not settable in a scene: {harness[name]}")
            ok = False
        elif name not in table:
            problems.add(here, _unknown_key(key, table))
            ok = False
        elif name in given_as:
            problems.add(
                here, f"{given_as[name]!r} and {key!r} are the same setting (old and new name)"
            )
            ok = False
        else:
            given_as[name] = key
            checked = _setting(item, here, problems, table[name])
            if checked is None:
                ok = False
            else:
                out[name] = checked
    return out if ok else None


def _bound(value: object, where: str, problems: _Problems) -> Bound | None:
    """An exact count, or `{min: A, max: B}` with either bound optional."""

    def count(item: object, here: str) -> int | None:
        if isinstance(item, bool) or not isinstance(item, int):
            problems.add(here, f"must be a whole number, got {_kind_of(item)}")
            return None
        if item < 0:
            problems.add(here, f"must not be negative, got {item}")
            return None
        return item

    if not isinstance(value, dict):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.add(
                where, f"must be a whole number or {{min: A, max: B}}, got {_kind_of(value)}"
            )
            return None
        exact = count(value, where)
        return None if exact is None else Bound(exact, exact)
    given = _mapping(value, where, problems, BOUND_KEYS)
    if given is None:
        return None
    if not given:
        if not value:
            problems.add(where, "give min, max or both")
        return None
    low = count(given["min"], _at(where, "min")) if "min" in given else 0
    high = count(given["max"], _at(where, "max")) if "max" in given else None
    if low is None or ("max" in given and high is None):
        return None
    if high is not None and low > high:
        problems.add(where, f"min {low} is above max {high}")
        return None
    return Bound(low, high)


def _level(value: object, where: str, problems: _Problems) -> str | None:
    if not isinstance(value, str) or value not in RISK_LEVELS:
        problems.add(where, f"must be one of {', '.join(RISK_LEVELS)}, got {_kind_of(value)}")
        return None
    return value


def _expect(value: object, problems: _Problems) -> Expect | None:
    given = _mapping(value, "expect", problems, EXPECT_KEYS, required=("events", "notifications"))
    if given is None:
        return None
    events = _bound(given["events"], "expect.events", problems) if "events" in given else None
    notifications = (
        _bound(given["notifications"], "expect.notifications", problems)
        if "notifications" in given
        else None
    )
    levels: dict[str, str | None] = {}
    ok = True
    for key in ("max_level", "min_level"):
        if key in given:
            levels[key] = _level(given[key], f"expect.{key}", problems)
            ok = ok and levels[key] is not None
    high, low = levels.get("max_level"), levels.get("min_level")
    if high is not None and low is not None and level_rank(low) > level_rank(high):
        problems.add("expect", f"min_level {low} is above max_level {high}")
        return None
    if events is None or notifications is None or not ok:
        return None
    return Expect(events, notifications, high, low)


def _enrolled(value: object, problems: _Problems) -> tuple[dict[str, str], bool]:
    """Name -> kind of the well-formed entries, and whether every entry was."""
    if value is None:
        return {}, True
    if not isinstance(value, dict):
        problems.add("enrolled", f"must be a mapping of name to kind, got {_kind_of(value)}")
        return {}, False
    out: dict[str, str] = {}
    ok = True
    for name, kind in value.items():
        if not isinstance(name, str) or not name.strip():
            problems.add("enrolled", f"name {name!r} must be a non-empty string")
            ok = False
        elif not isinstance(kind, str) or kind not in GROUPS:
            problems.add(
                _at("enrolled", name), f"must be one of {', '.join(GROUPS)}, got {_kind_of(kind)}"
            )
            ok = False
        else:
            out[name] = kind
    return out, ok


def _cameras(value: object, problems: _Problems) -> dict[str, dict[str, Any]] | None:
    if not isinstance(value, dict):
        problems.add(
            "cameras", f"must be a mapping of camera id to settings, got {_kind_of(value)}"
        )
        return None
    if not value:
        problems.add("cameras", "a scene needs at least one camera")
        return None
    out: dict[str, dict[str, Any]] = {}
    ok = True
    for camera, settings in value.items():
        if not isinstance(camera, str) or not _CAMERA_ID.fullmatch(camera):
            problems.add(
                "cameras",
                f"camera id {camera!r} must be lowercase letters, digits and single underscores "
                "(it becomes camera.<id>)",
            )
            ok = False
            continue
        checked = _settings(
            settings,
            _at("cameras", camera),
            problems,
            CAMERA_KEYS,
            CAMERA_ALIASES,
            HARNESS_CAMERA_KEYS,
        )
        if checked is None:
            ok = False
        else:
            out[camera] = checked
    return out if ok else None


def _options(value: object, problems: _Problems) -> dict[str, Any] | None:
    options = _settings(
        value, "options", problems, OPTION_KEYS, OPTION_ALIASES, HARNESS_OPTION_KEYS
    )
    if options is None:
        return None
    # The options flow refuses an idle timeout longer than the event window.
    window = options.get("batch_window", OPTION_KEYS["batch_window"].default)
    idle = options.get("idle_timeout", OPTION_KEYS["idle_timeout"].default)
    assert isinstance(window, int | float) and isinstance(idle, int | float)
    if idle > window:
        problems.add(
            "options",
            f"idle_timeout {_num(idle)} is longer than batch_window {_num(window)} "
            "(the options flow refuses it)",
        )
        return None
    return options


def _box(
    value: object, where: str, problems: _Problems
) -> tuple[float, float, float, float] | None:
    shape = f"must be [x, y, width, height] in pixels of a {FRAME_WIDTH}x{FRAME_HEIGHT} frame"
    if not isinstance(value, list) or len(value) != 4:
        problems.add(where, f"{shape}, got {_kind_of(value)}")
        return None
    numbers = [_number(item, _at(where, i), problems) for i, item in enumerate(value)]
    if any(n is None for n in numbers):
        return None
    x, y, width, height = (float(n) for n in numbers if n is not None)
    if width <= 0 or height <= 0:
        problems.add(where, f"width and height must be positive, got {_num(width)}x{_num(height)}")
        return None
    if x < 0 or y < 0 or x + width > FRAME_WIDTH or y + height > FRAME_HEIGHT:
        problems.add(
            where,
            f"[{_num(x)}, {_num(y)}, {_num(width)}, {_num(height)}] reaches outside the "
            f"{FRAME_WIDTH}x{FRAME_HEIGHT} frame",
        )
        return None
    return (x, y, width, height)


def _object(value: object, where: str, problems: _Problems) -> SceneObject | None:
    given = _mapping(value, where, problems, OBJECT_KEYS, required=("class", "identity"))
    if given is None:
        return None
    ok = True
    label = _text(given["class"], _at(where, "class"), problems) if "class" in given else None
    if label is not None and label != label.strip().lower():
        problems.add(
            _at(where, "class"), f"{label!r}: detector classes are lowercase, e.g. 'person'"
        )
        label = None
    identity = (
        _text(given["identity"], _at(where, "identity"), problems) if "identity" in given else None
    )
    confidence: float | None = None
    if "confidence" in given:
        confidence = _number(given["confidence"], _at(where, "confidence"), problems)
        if confidence is not None and not 0 < confidence <= 1:
            problems.add(
                _at(where, "confidence"), f"must be above 0 and at most 1, got {confidence}"
            )
            confidence = None
        ok = confidence is not None
    box = None
    if "box" in given:
        box = _box(given["box"], _at(where, "box"), problems)
        ok = ok and box is not None
    if label is None or identity is None or not ok:
        return None
    return SceneObject(label, identity, None if confidence is None else float(confidence), box)


@dataclass(slots=True)
class _Parsed:
    """What could be read of one sighting: the parts that are fine, for the consistency checks."""

    index: int
    camera: str | None
    start: float | None
    end: float | None
    objects: list[tuple[int, SceneObject]]  # (index in the sighting, object)
    ok: bool

    def sighting(self) -> Sighting | None:
        if not self.ok or self.camera is None or self.start is None or self.end is None:
            return None
        return Sighting(self.camera, self.start, self.end, tuple(obj for _, obj in self.objects))


def _sighting(
    value: object, index: int, problems: _Problems, cameras: Mapping[str, object] | None
) -> _Parsed:
    where = _at("visible", index)
    parsed = _Parsed(index, None, None, None, [], ok=False)
    given = _mapping(value, where, problems, SIGHTING_KEYS, required=SIGHTING_KEYS)
    if given is None:
        return parsed
    ok = len(given) == len(SIGHTING_KEYS)
    camera = _text(given["camera"], _at(where, "camera"), problems) if "camera" in given else None
    if camera is not None and cameras is not None and camera not in cameras:
        problems.add(
            _at(where, "camera"),
            f"{camera!r} is not one of the scene's cameras ({', '.join(map(str, cameras))})",
        )
        camera = None
    times: dict[str, float | None] = {}
    for key in ("from", "to"):
        if key in given:
            number = _number(given[key], _at(where, key), problems)
            if number is not None and number < 0:
                problems.add(
                    _at(where, key),
                    f"must not be negative (seconds from start), got {_num(number)}",
                )
                number = None
            times[key] = None if number is None else float(number)
    start, end = times.get("from"), times.get("to")
    if start is not None and end is not None and end <= start:
        problems.add(where, f"to ({_num(end)}) must be after from ({_num(start)})")
        start = end = None
    if "objects" in given:
        raw = given["objects"]
        if not isinstance(raw, list) or not raw:
            problems.add(_at(where, "objects"), f"must be a non-empty list, got {_kind_of(raw)}")
            ok = False
        else:
            for i, item in enumerate(raw):
                obj = _object(item, _at(_at(where, "objects"), i), problems)
                if obj is None:
                    ok = False
                else:
                    parsed.objects.append((i, obj))
    parsed.camera, parsed.start, parsed.end = camera, start, end
    parsed.ok = ok and None not in (camera, start, end)
    return parsed


def _consistency(
    parsed: Sequence[_Parsed], enrolled: Mapping[str, str], problems: _Problems
) -> None:
    """An identity is one physical thing: one class, its enrolled kind, in one place at a time."""
    first_seen: dict[str, tuple[str, str]] = {}  # identity -> (class, where)
    for n, sighting in enumerate(parsed):
        here = _at("visible", sighting.index)
        in_sighting: dict[str, int] = {}
        for j, obj in sighting.objects:
            where = _at(_at(here, "objects"), j)
            if obj.identity in in_sighting:
                problems.add(
                    _at(where, "identity"),
                    f"identity {obj.identity!r} appears twice in one sighting "
                    f"(also objects[{in_sighting[obj.identity]}])",
                )
            in_sighting.setdefault(obj.identity, j)
            if obj.identity not in first_seen:
                first_seen[obj.identity] = (obj.label, where)
            elif first_seen[obj.identity][0] != obj.label:
                label, other = first_seen[obj.identity]
                problems.add(
                    _at(where, "class"),
                    f"identity {obj.identity!r} is a {obj.label!r} here but a {label!r} at {other}",
                )
            kind = enrolled.get(obj.identity)
            group = group_of(obj.label)
            if kind is not None and group != kind:
                what = _a(group) if group != "other" else "not a person, vehicle or animal"
                problems.add(
                    _at(where, "class"),
                    f"{obj.identity!r} is enrolled as {_a(kind)}, but {obj.label!r} is {what}",
                )
        for earlier in parsed[:n]:
            if (
                sighting.camera is None
                or earlier.camera != sighting.camera
                or None in (sighting.start, sighting.end, earlier.start, earlier.end)
            ):
                continue
            assert sighting.start is not None and sighting.end is not None
            assert earlier.start is not None and earlier.end is not None
            if earlier.start < sighting.end and sighting.start < earlier.end:
                both = {o.identity for _, o in earlier.objects} & {
                    o.identity for _, o in sighting.objects
                }
                for identity in sorted(both):
                    problems.add(
                        here,
                        f"identity {identity!r} is already in view on {sighting.camera!r} at "
                        f"that time (visible[{earlier.index}], "
                        f"{_num(earlier.start)}-{_num(earlier.end)} s)",
                    )


def _scene(data: object, path: Path, problems: _Problems) -> Scene | None:
    if data is None:
        problems.add("", "the file is empty")
        return None
    given = _mapping(data, "", problems, SCENE_KEYS, required=SCENE_REQUIRED)
    if given is None:
        return None
    name = _text(given["name"], "name", problems) if "name" in given else None
    start = _start(given["start"], "start", problems) if "start" in given else None
    home_mode = None
    if given.get("home_mode") is not None:
        home_mode = _text(given["home_mode"], "home_mode", problems)
    enrolled, enrolled_ok = _enrolled(given.get("enrolled"), problems)
    options = _options(given.get("options"), problems)
    cameras = _cameras(given["cameras"], problems) if "cameras" in given else None
    raw_cameras = given.get("cameras")
    known = (
        cameras if cameras is not None else (raw_cameras if isinstance(raw_cameras, dict) else None)
    )
    visible: tuple[Sighting, ...] | None = None
    if "visible" not in given:
        pass
    elif not isinstance(given["visible"], list):
        problems.add("visible", f"must be a list of sightings, got {_kind_of(given['visible'])}")
    else:
        parsed = [_sighting(item, i, problems, known) for i, item in enumerate(given["visible"])]
        _consistency(parsed, enrolled, problems)
        sightings = [p.sighting() for p in parsed]
        visible = tuple(s for s in sightings if s is not None)
    expect = _expect(given["expect"], problems) if "expect" in given else None
    if (
        problems.lines
        or name is None
        or start is None
        or not enrolled_ok
        or options is None
        or cameras is None
        or visible is None
        or expect is None
    ):
        return None
    return Scene(name, path, start, home_mode, enrolled, options, cameras, visible, expect)


def _yaml_problem(path: Path, err: Exception) -> str:
    """One line for a YAML error: where it is, and what."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "YAML"
    if isinstance(err, _DuplicateKeyError):
        return f"{path}: {where}: {err.problem}"
    what = " ".join(
        str(part) for part in (getattr(err, "context", None), getattr(err, "problem", None)) if part
    )
    return f"{path}: {where}: not valid YAML: {what or str(err).replace(chr(10), ' ')}"


def load_scene(path: str | Path) -> Scene:
    """Load and check one scene file; `SceneError` lists every problem in it."""
    path = Path(path)
    problems = _Problems(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SceneError([f"{path}: cannot read the file: {err.strerror or err}"]) from err
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as err:
        raise SceneError([_yaml_problem(path, err)]) from err
    scene = _scene(data, path, problems)
    if problems.lines or scene is None:
        raise SceneError(problems.lines or [f"{path}: not a scene"])
    return scene


def load_scenes(folder: str | Path) -> list[Scene]:
    """Every `*.yaml` / `*.yml` scene directly in `folder`, sorted by file name.

    Raises `SceneError` with the problems of every bad file at once, and when two files give the
    same scene name (the report tells scenes apart by name).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SceneError([f"{folder}: not a folder"])
    files = sorted(
        (p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()),
        key=lambda p: p.name,
    )
    scenes: list[Scene] = []
    lines: list[str] = []
    for file in files:
        try:
            scenes.append(load_scene(file))
        except SceneError as err:
            lines.extend(err.problems)
    names: dict[str, Path] = {}
    for scene in scenes:
        if scene.name in names:
            lines.append(
                f"{scene.path}: name: {scene.name!r} is also the name of {names[scene.name]}"
            )
        names.setdefault(scene.name, scene.path)
    if lines:
        raise SceneError(lines)
    return scenes


# --- evaluation and report -------------------------------------------------------------------


@dataclass(slots=True)
class Observed:
    """What the integration did during a replay."""

    events: int  # security events recorded (in-place updates not counted)
    notifications: int  # distinct notifications (a replaced or updated one counts once)
    updates: int  # in-place updates of an event
    levels: list[str]  # the risk level of each recorded event


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation of a scene against what happened."""

    name: str  # events / notifications / max_level / min_level
    expected: str  # `1`, `0..1`, `>=2`, or a level
    actual: int | str | None  # a count, or the highest / lowest level seen (None: no event)
    passed: bool


@dataclass(frozen=True, slots=True)
class SceneResult:
    """A scene, what happened and the checks; `error` when the replay itself failed."""

    scene: Scene
    observed: Observed
    checks: tuple[Check, ...]
    error: str | None = None

    @property
    def passed(self) -> bool:
        """Every check passed and the replay ran."""
        return self.error is None and all(check.passed for check in self.checks)


def evaluate(scene: Scene, observed: Observed) -> SceneResult:
    """One check per expectation of the scene (levels only where the scene gives them)."""
    unknown = sorted(set(observed.levels) - set(RISK_LEVELS))
    if unknown:
        raise ValueError(f"unknown risk level(s) observed: {', '.join(unknown)}")
    expect = scene.expect
    checks = [
        Check(
            "events", str(expect.events), observed.events, expect.events.contains(observed.events)
        ),
        Check(
            "notifications",
            str(expect.notifications),
            observed.notifications,
            expect.notifications.contains(observed.notifications),
        ),
    ]
    ranks = sorted(level_rank(level) for level in observed.levels)
    if expect.max_level is not None:
        highest = RISK_LEVELS[ranks[-1]] if ranks else None
        checks.append(
            Check(
                "max_level",
                expect.max_level,
                highest,
                highest is None or level_rank(highest) <= level_rank(expect.max_level),
            )
        )
    if expect.min_level is not None:
        lowest = RISK_LEVELS[ranks[0]] if ranks else None
        checks.append(
            Check(
                "min_level",
                expect.min_level,
                lowest,
                lowest is None or level_rank(lowest) >= level_rank(expect.min_level),
            )
        )
    return SceneResult(scene, observed, tuple(checks))


def _file_name(path: Path, base: Path) -> str:
    """The scene's file relative to `base` where it lies below it, else absolute."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(base.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def report_data(results: Sequence[SceneResult], base: str | Path = ".") -> dict[str, Any]:
    """The report as JSON-able data; scene files relative to `base` where below it."""
    scenes = [
        {
            "name": result.scene.name,
            "file": _file_name(result.scene.path, Path(base)),
            "events": result.observed.events,
            "notifications": result.observed.notifications,
            "updates": result.observed.updates,
            "levels": list(result.observed.levels),
            "checks": [
                {
                    "name": check.name,
                    "expected": check.expected,
                    "actual": check.actual,
                    "pass": check.passed,
                }
                for check in result.checks
            ],
            "error": result.error,
            "passed": result.passed,
        }
        for result in results
    ]
    failed = sum(not result.passed for result in results)
    return {
        "passed": failed == 0,
        "total": len(results),
        "failed": failed,
        "scenes": scenes,
    }


def write_report(results: Sequence[SceneResult], path: str | Path) -> None:
    """Write the JSON report; scene files are given relative to the report's folder."""
    path = Path(path)
    data = report_data(results, path.parent)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _levels_cell(result: SceneResult) -> str:
    counts = {level: result.observed.levels.count(level) for level in RISK_LEVELS}
    seen = ", ".join(
        level if count == 1 else f"{count}x {level}" for level, count in counts.items() if count
    )
    bounds = [
        f"{'<=' if check.name == 'max_level' else '>='}{check.expected}"
        for check in result.checks
        if check.name in ("max_level", "min_level")
    ]
    cell = seen or "-"
    return f"{cell} ({' '.join(bounds)})" if bounds else cell


def _result_cell(result: SceneResult) -> str:
    if result.error is not None:
        return "FAIL (error)"
    failed = [check.name for check in result.checks if not check.passed]
    return "PASS" if not failed else f"FAIL ({', '.join(failed)})"


def format_table(results: Sequence[SceneResult]) -> str:
    """A readable table: scene, events and notifications expected/actual, levels, PASS/FAIL."""
    header = ("scene", "events exp", "act", "notifications exp", "act", "levels", "result")
    rows: list[tuple[str, ...]] = []
    for result in results:
        by_name = {check.name: check for check in result.checks}
        expect = result.scene.expect
        rows.append(
            (
                result.scene.name,
                by_name["events"].expected if "events" in by_name else str(expect.events),
                str(result.observed.events),
                by_name["notifications"].expected
                if "notifications" in by_name
                else str(expect.notifications),
                str(result.observed.notifications),
                _levels_cell(result),
                _result_cell(result),
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    numeric = {1, 2, 3, 4}

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)
    failed = sum(not result.passed for result in results)
    out.append(f"{len(results)} scenes: {len(results) - failed} passed, {failed} failed")
    out.extend(
        f"error in {result.scene.name!r} ({result.scene.path}): {result.error}"
        for result in results
        if result.error is not None
    )
    return "\n".join(out)
