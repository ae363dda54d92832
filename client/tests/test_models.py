"""Wire types: what goes to the server and what comes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hsi_client import (
    AnalysisResult,
    AnalyzedObject,
    AnalyzeOptions,
    BoundingBox,
    CameraInfo,
    Detection,
    DetectResult,
    DownloadProgress,
    EmbedResult,
    EventContext,
    EventMetadata,
    Health,
    KnownMatch,
    ModelStatus,
    RecentEvent,
    split_zones,
)
from hsi_client.models import frames_objects

BOX = BoundingBox(40, 30, 100, 150)


def test_bounding_box() -> None:
    """Lenient parsing; the contract shape to a tenth of a pixel."""
    box = BoundingBox.from_dict({"x": "1.26", "y": 2, "width": 3.04, "height": None})
    assert box == BoundingBox(1.26, 2.0, 3.04, 0.0)
    assert box.as_dict() == {"x": 1.3, "y": 2.0, "width": 3.0, "height": 0.0}


def test_detection() -> None:
    """A /detect entry parses; as_dict drops the embedding; in_frame places it on a frame."""
    found = Detection.from_dict(
        {
            "class": "person",
            "confidence": 0.912345,
            "bbox": {"x": 40, "y": 30, "width": 100, "height": 150},
            "embedding": [1, 0],
        }
    )
    assert found == Detection("person", 0.912345, BOX, (1.0, 0.0))
    assert found.as_dict() == {
        "class": "person",
        "confidence": 0.9123,
        "bbox": {"x": 40, "y": 30, "width": 100, "height": 150},
    }
    assert found.in_frame(3) == AnalyzedObject("person", 0.912345, 3, BOX)
    bare = Detection.from_dict({"class": "car"})
    assert (bare.confidence, bare.bbox, bare.embedding) == (0.0, BoundingBox(0, 0, 0, 0), None)
    with pytest.raises(KeyError):
        Detection.from_dict({"confidence": 1})


def test_frames_objects() -> None:
    """Detections per frame become the objects of an event, with their frame index."""
    person, car = Detection("person", 0.9, BOX), Detection("car", 0.5, BOX)
    assert frames_objects([[person], [], [car, person]]) == [
        AnalyzedObject("person", 0.9, 0, BOX),
        AnalyzedObject("car", 0.5, 2, BOX),
        AnalyzedObject("person", 0.9, 2, BOX),
    ]


def test_detect_result() -> None:
    """The /detect answer; missing sizes are 0."""
    result = DetectResult.from_dict({"detections": [{"class": "cat"}], "inference_time_ms": "3"})
    assert result.detections[0].label == "cat"
    assert (result.inference_time_ms, result.image_width, result.image_height) == (3.0, 0, 0)


def test_health_is_lenient() -> None:
    """Models that are no map, a missing VRAM figure and missing flags parse to defaults."""
    health = Health.from_dict({"status": "loading", "models": ["detector"]})
    assert health == Health("loading", False, None, False, None, {}, None)
    health = Health.from_dict(
        {"status": "ok", "vram_used_gb": "1.5", "models": {"clip": "loaded", "vlm": {"loaded": 1}}}
    )
    assert health.vram_used_gb == 1.5
    assert health.models["clip"] == ModelStatus("clip", False, None)
    assert health.models_loaded == ["vlm"]
    with pytest.raises(KeyError):
        Health.from_dict({})


def test_model_status_details() -> None:
    """Everything beyond name, loaded and device is kept as details."""
    model = ModelStatus.from_dict("clip", {"name": "x", "loaded": True, "device": "cuda", "b": 8})
    assert model == ModelStatus("clip", True, "cuda", {"b": 8}, state="ready")


# A server on its first start: the detector downloads, the LLM waits, CLIP failed.
PROVISIONING: dict[str, Any] = {
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
        "clip": {"loaded": False, "status": "error", "state": "error", "error": "HTTP 404"},
        "florence": {"loaded": True, "status": "loaded", "state": "ready"},
    },
    "downloading": ["detector"],
}


def test_health_while_provisioning() -> None:
    """The new fields of a server that downloads its models: state, progress, errors."""
    health = Health.from_dict(PROVISIONING)
    assert health.loading is True
    detector = health.models["detector"]
    assert detector.state == "downloading"
    assert detector.progress == DownloadProgress(
        40_000_000, 80_000_000, 50.0, 4_000_000, 10.0, "model.safetensors"
    )
    assert (health.models["llm"].state, health.models["llm"].progress) == ("pending", None)
    assert health.models["clip"].error == "HTTP 404"
    assert health.downloading == ["detector"]
    assert health.errors == {"clip": "HTTP 404"}
    assert health.download_percent == 50.0
    assert health.models["detector"].details["state"] == "downloading"  # still in the details


def test_download_percent_over_several_downloads() -> None:
    both = {
        "status": "loading",
        "models": {
            "a": {"state": "downloading", "progress": {"bytes": 30, "total": 100}},
            "b": {"state": "downloading", "progress": {"bytes": 500, "total": 300}},
            "c": {"state": "downloading", "progress": {"bytes": 5}},  # size not known yet
            "d": {"state": "downloading"},
        },
    }
    health = Health.from_dict(both)
    assert health.download_percent == round(100 * (30 + 300) / 400, 1)
    assert health.models["a"].progress == DownloadProgress(30, 100, 30.0)
    assert health.models["c"].progress == DownloadProgress(5)
    starting = {"status": "loading", "models": {"a": {"state": "downloading"}}}
    assert Health.from_dict(starting).download_percent is None
    assert Health.from_dict({"status": "healthy"}).download_percent is None


def test_progress_is_lenient() -> None:
    progress = DownloadProgress.from_dict(
        {"bytes": "12", "total": "nan", "percent": None, "rate_bps": "fast", "file": 3}
    )
    assert progress == DownloadProgress(12)


def test_state_of_an_older_server() -> None:
    """A server without `state`: derived from its residency status; errors without a message."""
    health = Health.from_dict(
        {
            "status": "degraded",
            "models": {
                "a": {"loaded": True, "status": "loaded"},
                "b": {"status": "loading"},
                "c": {"status": "error"},
                "d": {"status": "unloaded"},
                "e": {"state": 7},
                "f": {"loaded": True},
            },
        }
    )
    states = {name: model.state for name, model in health.models.items()}
    assert states == {
        "a": "ready",
        "b": "loading",
        "c": "error",
        "d": None,
        "e": None,
        "f": "ready",
    }
    assert health.errors == {"c": "failed"}
    assert (health.loading, health.downloading) == (False, [])


def test_analyzed_object() -> None:
    """An /analyze object parses leniently and writes the contract shape."""
    obj = AnalyzedObject.from_dict(
        {
            "class": "person",
            "confidence": "0.5",
            "frame": "2",
            "bbox": {"x": 1, "y": 2, "width": 3, "height": 4},
            "attributes": {"clothing": "red"},
            "embedding": [0.5],
        }
    )
    assert obj == AnalyzedObject(
        "person", 0.5, 2, BoundingBox(1, 2, 3, 4), {"clothing": "red"}, (0.5,)
    )
    assert obj.as_dict() == {
        "class": "person",
        "confidence": 0.5,
        "frame": 2,
        "bbox": {"x": 1, "y": 2, "width": 3, "height": 4},
        "attributes": {"clothing": "red"},
    }
    bare = AnalyzedObject.from_dict({"class": "dog", "attributes": ["x"], "frame": None})
    assert (bare.frame, bare.attributes, bare.embedding) == (0, {}, None)


def test_known_match() -> None:
    """Description, parsing and the contract shape; from_dict(as_dict()) round-trips."""
    member = KnownMatch("g1", "person", "Ana", True, 0.93456, 2)
    stranger = KnownMatch("g2", "person", None, False, 0.8, 3)
    household = KnownMatch("g3", "person", None, True, 0.9, 1)
    assert member.description == "enrolled person: Ana"
    assert household.description == "enrolled person: household member"
    assert stranger.description == "same unknown person seen 3 times today"
    assert member.as_dict() == {
        "gallery_id": "g1",
        "class": "person",
        "name": "Ana",
        "enrolled": True,
        "similarity": 0.9346,
        "times_seen_today": 2,
        "description": "enrolled person: Ana",
    }
    for known in (stranger, household, KnownMatch("g4", "car", "Van", True, 0.5, 7)):
        assert KnownMatch.from_dict(known.as_dict()) == known


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, KnownMatch("", "object", None, False, 0.0, 1)),
        (
            {"gallery_id": 5, "class": "person", "name": "", "enrolled": 1, "similarity": "0.7"},
            KnownMatch("5", "person", None, True, 0.7, 1),
        ),
        ({"times_seen_today": "4"}, KnownMatch("", "object", None, False, 0.0, 4)),
        ({"times_seen_today": 2.9}, KnownMatch("", "object", None, False, 0.0, 2)),
        ({"times_seen_today": "many"}, KnownMatch("", "object", None, False, 0.0, 1)),
        ({"times_seen_today": float("nan")}, KnownMatch("", "object", None, False, 0.0, 1)),
        ({"times_seen_today": float("inf")}, KnownMatch("", "object", None, False, 0.0, 1)),
    ],
)
def test_known_match_is_lenient(data: dict[str, Any], expected: KnownMatch) -> None:
    """Missing or odd fields parse to defaults, never to an exception."""
    assert KnownMatch.from_dict(data) == expected


def test_recent_event() -> None:
    """Defaults for missing fields; as_dict round-trips."""
    assert RecentEvent.from_dict({}) == RecentEvent("", "?", "")
    event = RecentEvent("2026-01-01T12:00:00+00:00", "high", "A person at the door")
    assert RecentEvent.from_dict(event.as_dict()) == event


@pytest.mark.parametrize(
    ("text", "zones"),
    [
        ("", ()),
        ("porch", ("porch",)),
        ("porch, driveway", ("porch", "driveway")),
        ("porch\ndriveway\n\n", ("porch", "driveway")),
        (" porch ,, \n garden gate ,", ("porch", "garden gate")),
    ],
)
def test_split_zones(text: str, zones: tuple[str, ...]) -> None:
    """Comma- or line-separated free text to zone names; blanks go."""
    assert split_zones(text) == zones


def test_camera_label() -> None:
    """Name, else id, else 'camera'."""
    assert CameraInfo("camera.door", "Door").label == "Door"
    assert CameraInfo("camera.door").label == "camera.door"
    assert CameraInfo().label == "camera"


def test_event_metadata_as_dict() -> None:
    """The `metadata` JSON: every key, detections per frame, context and options."""
    start = datetime(2026, 1, 1, 22, 15, tzinfo=UTC)
    person = AnalyzedObject("person", 0.91234, 0, BOX, {"clothing": "red"}, (1.0,))
    car = AnalyzedObject("car", 0.5, 1, BOX)
    metadata = EventMetadata(
        camera=CameraInfo("camera.door", "Door", "front door, facing the street"),
        started_at=start,
        ended_at=start + timedelta(seconds=75),
        detections=((person,), (car,), ()),
        context=EventContext(
            time_of_day="Night",
            home_mode="away",
            known_matches=(KnownMatch("g1", "person", None, False, 0.9, 3),),
            recent_events=(RecentEvent("2026-01-01T21:00:00+00:00", "low", "A cat"),),
            zones=("porch", "driveway"),
            usual_activity="deliveries in the afternoon",
        ),
        options=AnalyzeOptions(enrich=False, llm=False),
    )
    assert metadata.as_dict() == {
        "camera": {
            "id": "camera.door",
            "name": "Door",
            "description": "front door, facing the street",
        },
        "started_at": "2026-01-01T22:15:00+00:00",
        "ended_at": "2026-01-01T22:16:15+00:00",
        "detections": [
            [
                {
                    "class": "person",
                    "confidence": 0.9123,
                    "frame": 0,
                    "bbox": {"x": 40, "y": 30, "width": 100, "height": 150},
                    "attributes": {"clothing": "red"},
                }
            ],
            [
                {
                    "class": "car",
                    "confidence": 0.5,
                    "frame": 1,
                    "bbox": {"x": 40, "y": 30, "width": 100, "height": 150},
                    "attributes": {},
                }
            ],
            [],
        ],
        "context": {
            "time_of_day": "Night",
            "home_mode": "away",
            "known_matches": [
                {
                    "gallery_id": "g1",
                    "class": "person",
                    "name": None,
                    "enrolled": False,
                    "similarity": 0.9,
                    "times_seen_today": 3,
                    "description": "same unknown person seen 3 times today",
                }
            ],
            "recent_events": [
                {"started_at": "2026-01-01T21:00:00+00:00", "risk_level": "low", "summary": "A cat"}
            ],
            "zones": ["porch", "driveway"],
            "usual_activity": "deliveries in the afternoon",
        },
        "options": {"enrich": False, "describe": True, "llm": False},
    }
    assert metadata.dwell_seconds == 75.0
    assert metadata.time_of_day == "night"


def test_empty_event_metadata() -> None:
    """Nothing known: nulls, no detections (the server detects), every stage on."""
    metadata = EventMetadata()
    assert metadata.as_dict() == {
        "camera": {"id": None, "name": None, "description": None},
        "started_at": None,
        "ended_at": None,
        "detections": None,
        "context": {
            "time_of_day": None,
            "home_mode": None,
            "known_matches": [],
            "recent_events": [],
            "zones": None,
            "usual_activity": None,
        },
        "options": {"enrich": True, "describe": True, "llm": True},
    }
    assert metadata.dwell_seconds == 0.0
    assert metadata.time_of_day is None
    # No detections at all is not "the server detects": an empty list per frame.
    assert EventMetadata(detections=((), ())).as_dict()["detections"] == [[], []]


NAIVE = datetime(2026, 1, 1, 12, 0)
AWARE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("started_at", "ended_at", "seconds"),
    [
        (None, None, 0.0),
        (NAIVE, None, 0.0),
        (None, NAIVE, 0.0),
        (NAIVE, NAIVE + timedelta(seconds=90), 90.0),
        (AWARE, AWARE + timedelta(minutes=3), 180.0),
        (AWARE, AWARE.astimezone(UTC) + timedelta(milliseconds=500), 0.5),
        # Ended before it started: no negative dwell.
        (NAIVE, NAIVE - timedelta(seconds=30), 0.0),
        # One naive, one aware: unknown, not an exception.
        (NAIVE, AWARE + timedelta(seconds=90), 0.0),
        (AWARE, NAIVE + timedelta(seconds=90), 0.0),
    ],
)
def test_dwell_seconds(
    started_at: datetime | None, ended_at: datetime | None, seconds: float
) -> None:
    """How long the event lasted; 0 when unknown."""
    assert EventMetadata(started_at=started_at, ended_at=ended_at).dwell_seconds == seconds


@pytest.mark.parametrize(
    ("sent", "hour", "expected"),
    [
        ("Evening", 3, "evening"),
        (None, 3, "night"),
        ("", 9, "morning"),
        (None, 14, "afternoon"),
        (None, 20, "evening"),
        (None, 23, "night"),
    ],
)
def test_time_of_day_falls_back_to_started_at(sent: str | None, hour: int, expected: str) -> None:
    """The context's time of day (lower case) wins; else the hour of started_at decides."""
    metadata = EventMetadata(
        started_at=datetime(2026, 1, 1, hour, 0), context=EventContext(time_of_day=sent)
    )
    assert metadata.time_of_day == expected


def test_analysis_result() -> None:
    """The /analyze answer parses leniently and round-trips through as_dict."""
    data: dict[str, Any] = {
        "objects": [
            {
                "class": "person",
                "confidence": 0.93,
                "frame": 0,
                "bbox": {"x": 40, "y": 30, "width": 100, "height": 150},
                "attributes": {"clothing": "dark jacket"},
            }
        ],
        "description": "A person.",
        "risk": {"risk_score": 72, "risk_level": "high", "summary": "s", "reasoning": "r"},
        "timings_ms": {"total": "321", "detect": 12},
        "models": {"llm": "tiny"},
    }
    result = AnalysisResult.from_dict(data)
    assert result.timings_ms == {"total": 321.0, "detect": 12.0}
    assert result.risk.risk_level == "high"
    again = AnalysisResult.from_dict(result.as_dict())
    assert again == result
    assert result.as_dict()["risk"]["risk_level"] == "high"
    bare = AnalysisResult.from_dict(
        {"risk": {"risk_score": 5}, "objects": None, "timings_ms": [1], "models": "x"}
    )
    assert (bare.objects, bare.description, bare.timings_ms, bare.models) == ([], None, {}, {})
    with pytest.raises(KeyError):
        AnalysisResult.from_dict({"objects": []})


def test_embed_result() -> None:
    """The /embed answer; missing lists are empty."""
    result = EmbedResult.from_dict(
        {"image_embeddings": [[1, 0]], "text_embeddings": None, "dim": "2", "model": "clip"}
    )
    assert result == EmbedResult([(1.0, 0.0)], [], 2, "clip")
    assert EmbedResult.from_dict({}) == EmbedResult([], [], 0, None)
