"""One security event as /analyze receives it: metadata validated into the contract's types.

The types are the client library's (`hsi_client.EventMetadata` and its parts), the ones the
integration sends. Unknown keys are ignored (clients may send more than this server reads);
known keys with the wrong shape are refused with a 422 that names the field, so a client bug never
turns into a silently wrong risk score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from hsi_client import (
    AnalyzedObject,
    AnalyzeOptions,
    BoundingBox,
    CameraInfo,
    EventContext,
    EventMetadata,
    KnownMatch,
    RecentEvent,
    split_zones,
)

from ..errors import unprocessable


def parse_metadata(data: Any, frames: int) -> EventMetadata:
    """Validate `metadata` for an event of `frames` images (422 naming the field otherwise)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise unprocessable("metadata must be a JSON object")
    camera = _object(data, "camera", "metadata.camera")
    context = _object(data, "context", "metadata.context")
    options = _object(data, "options", "metadata.options")
    started = _time(data.get("started_at"), "metadata.started_at")
    ended = _time(data.get("ended_at"), "metadata.ended_at")
    if started is not None and ended is not None:
        try:
            backwards = ended < started
        except TypeError:
            raise unprocessable(
                "metadata.started_at and ended_at must both carry a UTC offset, or neither"
            ) from None
        if backwards:
            raise unprocessable("metadata.ended_at is before metadata.started_at")
    return EventMetadata(
        camera=CameraInfo(
            id=_opt_text(camera.get("id"), "metadata.camera.id"),
            name=_opt_text(camera.get("name"), "metadata.camera.name"),
            description=_opt_text(camera.get("description"), "metadata.camera.description"),
        ),
        started_at=started,
        ended_at=ended,
        detections=_detections(data.get("detections"), frames),
        context=EventContext(
            time_of_day=_opt_text(context.get("time_of_day"), "metadata.context.time_of_day"),
            home_mode=_opt_text(context.get("home_mode"), "metadata.context.home_mode"),
            known_matches=tuple(
                KnownMatch.from_dict(m)
                for m in _dicts(
                    context.get("known_matches"), "metadata.context.known_matches", _MATCH_FIELDS
                )
            ),
            recent_events=tuple(
                RecentEvent.from_dict(e)
                for e in _dicts(
                    context.get("recent_events"), "metadata.context.recent_events", _EVENT_FIELDS
                )
            ),
            zones=_zones(context.get("zones")),
            usual_activity=_opt_text(
                context.get("usual_activity"), "metadata.context.usual_activity"
            ),
        ),
        options=AnalyzeOptions(
            enrich=_flag(options.get("enrich"), "metadata.options.enrich"),
            describe=_flag(options.get("describe"), "metadata.options.describe"),
            llm=_flag(options.get("llm"), "metadata.options.llm"),
        ),
    )


def _object(data: Mapping[str, Any], key: str, name: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise unprocessable(f"{name} must be an object")
    return value


def _opt_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise unprocessable(f"{name} must be a string")
    text = " ".join(str(value).split())[:200]
    return text or None


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        raise unprocessable(f"{name} must be true or false")
    return value


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise unprocessable(f"{name} must be an ISO 8601 date-time string")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise unprocessable(f"{name} is not an ISO 8601 date-time: {value[:40]!r}") from None


# The fields of known_matches and recent_events items, and the JSON types each may have.
_TEXT = (str,)
_MATCH_FIELDS: dict[str, tuple[type, ...]] = {
    "gallery_id": _TEXT,
    "class": _TEXT,
    "name": _TEXT,
    "enrolled": (bool,),
    "similarity": (int, float),
    "times_seen_today": (int,),
    "description": _TEXT,
}
_EVENT_FIELDS: dict[str, tuple[type, ...]] = {
    "started_at": _TEXT,
    "risk_level": _TEXT,
    "summary": _TEXT,
}


def _dicts(
    value: Any, name: str, fields: Mapping[str, tuple[type, ...]]
) -> tuple[dict[str, Any], ...]:
    """The first 50 objects of a list, each known field of its declared type (or null)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise unprocessable(f"{name} must be a list of objects")
    items = value[:50]
    for index, item in enumerate(items):
        for key, types in fields.items():
            field = item.get(key)
            if field is None:
                continue
            wrong = isinstance(field, bool) and bool not in types
            if wrong or not isinstance(field, types) or not _finite_or_other(field):
                kind = (
                    "a number"
                    if float in types
                    else {str: "a string", bool: "true or false"}.get(types[0], "an integer")
                )
                raise unprocessable(f"{name}[{index}].{key} must be {kind}")
    return tuple(dict(item) for item in items)


def _finite_or_other(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _zones(value: Any) -> tuple[str, ...]:
    """Zones as free text (the integration's setting), a list of names, or of {name, ...}."""
    if value is None:
        return ()
    if isinstance(value, str):
        return split_zones(value)
    if isinstance(value, list):
        names = []
        for item in value:
            if isinstance(item, Mapping):
                item = item.get("name") or item.get("description")
            if isinstance(item, str) and item.strip():
                names.append(item.strip())
            else:
                raise unprocessable("metadata.context.zones must be text or a list of names")
        return tuple(names[:20])
    raise unprocessable("metadata.context.zones must be text or a list of names")


def _detections(value: Any, frames: int) -> tuple[tuple[AnalyzedObject, ...], ...] | None:
    """One list of detections per frame (the /detect shape), or null for "detect them here".

    A frame's entry may itself be null when only some frames were detected by the client; the
    server then detects every frame, so boxes stay consistent within one event.
    """
    if value is None:
        return None
    if not isinstance(value, list):
        raise unprocessable("metadata.detections must be a list with one list per frame")
    if len(value) != frames:
        raise unprocessable(
            f"metadata.detections has {len(value)} entries for {frames} frame(s): "
            "send one list per frame, in frame order"
        )
    if any(entry is None for entry in value):
        return None
    return tuple(
        tuple(_detection(item, index, j) for j, item in enumerate(_frame_list(entry, index)))
        for index, entry in enumerate(value)
    )


def _frame_list(entry: Any, index: int) -> Sequence[Any]:
    if isinstance(entry, Mapping) and isinstance(entry.get("detections"), list):
        return list(entry["detections"])  # a whole /detect answer is accepted too
    if not isinstance(entry, list):
        raise unprocessable(f"metadata.detections[{index}] must be a list of detections")
    return entry


def _detection(item: Any, frame: int, j: int) -> AnalyzedObject:
    name = f"metadata.detections[{frame}][{j}]"
    if not isinstance(item, Mapping):
        raise unprocessable(f"{name} must be an object")
    label = item.get("class", item.get("label"))
    if not isinstance(label, str) or not label.strip():
        raise unprocessable(f"{name}.class must be a non-empty string")
    confidence = _finite(item.get("confidence", 1.0), f"{name}.confidence")
    if not 0 <= confidence <= 1:
        raise unprocessable(f"{name}.confidence must be between 0 and 1")
    box = item.get("bbox")
    if not isinstance(box, Mapping):
        raise unprocessable(f"{name}.bbox must be an object {{x, y, width, height}}")
    x, y, width, height = (
        _finite(box.get(k), f"{name}.bbox.{k}") for k in ("x", "y", "width", "height")
    )
    if width < 0 or height < 0:
        raise unprocessable(f"{name}.bbox width and height must not be negative")
    attributes = item.get("attributes")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise unprocessable(f"{name}.attributes must be an object")
    return AnalyzedObject(
        label=label.strip().lower(),
        confidence=confidence,
        frame=frame,
        bbox=BoundingBox(x, y, width, height),
        attributes=dict(attributes) if isinstance(attributes, Mapping) else {},
    )


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise unprocessable(f"{name} must be a number")
    return float(value)
