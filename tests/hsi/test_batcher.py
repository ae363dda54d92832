"""The event batcher, without Home Assistant: frames in, one closed batch out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hsi_client import BoundingBox, Detection, DetectResult, KnownMatch

from custom_components.hsi.batcher import Batch, EventBatcher, Frame

START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
BOX = BoundingBox(10, 10, 50, 100)


def frame(second: float, *found: tuple[str, float], detected: bool = True) -> Frame:
    """A frame `second` seconds into the scene with detections (label, confidence)."""
    detections = [Detection(label, confidence, BOX) for label, confidence in found]
    result = DetectResult(detections, 10.0, 640, 480) if detected else None
    return Frame(b"jpeg", START + timedelta(seconds=second), result, list(detections))


def match(gallery_id: str) -> KnownMatch:
    """A gallery match."""
    return KnownMatch(gallery_id, "person", None, False, 0.9, 2)


def test_the_first_frame_opens_a_batch_and_the_rest_join_it() -> None:
    batcher = EventBatcher(max_frames=32)
    assert batcher.event_id is None
    added = batcher.add(frame(0, ("person", 0.6)), "motion", "e1", fast_path_threshold=0.9)
    assert added.opened and not added.fast_path
    assert batcher.event_id == "e1"
    added = batcher.add(frame(2, ("car", 0.7)), "interval", "ignored", fast_path_threshold=0.9)
    assert not added.opened
    batch = batcher.close()
    assert batch is not None
    assert (batch.event_id, batch.trigger, batch.started_at) == ("e1", "motion", START)
    assert batch.ended_at == START + timedelta(seconds=2)
    assert len(batch.frames) == 2
    assert batcher.close() is None
    assert batcher.event_id is None


def test_the_fast_path_fires_once_per_batch_for_a_confident_person() -> None:
    batcher = EventBatcher(max_frames=32)
    assert not batcher.add(frame(0, ("car", 0.99)), "motion", "e1", 0.9).fast_path
    assert batcher.add(frame(1, ("person", 0.95)), "motion", "e1", 0.9).fast_path
    assert not batcher.add(frame(2, ("person", 0.97)), "motion", "e1", 0.9).fast_path
    batch = batcher.close()
    assert batch is not None and batch.preliminary


def test_long_events_keep_the_newest_frames() -> None:
    batcher = EventBatcher(max_frames=3)
    for second in range(5):
        batcher.add(frame(second, ("person", 0.5)), "motion", "e1", 0.9)
    batch = batcher.close()
    assert batch is not None
    assert [f.captured_at.second for f in batch.frames] == [2, 3, 4]
    assert batch.started_at == START  # the event still began with the first frame


def test_frames_the_server_could_not_detect_only_join_an_open_batch() -> None:
    batcher = EventBatcher(max_frames=32)
    batcher.add_unanalysed(frame(0, detected=False))
    assert batcher.close() is None
    batcher.add(frame(0, ("person", 0.5)), "motion", "e1", 0.9)
    batcher.add_unanalysed(frame(1, detected=False))
    batch = batcher.close()
    assert batch is not None and len(batch.frames) == 2
    best, objects = batch.best_frame()
    assert best is batch.frames[0]  # the detected frame, not the one the server missed
    assert [o.label for o in objects] == ["person"]


def test_frames_to_analyze_matches_and_gallery_ids() -> None:
    frames = [
        frame(0, ("person", 0.5)),
        frame(1, ("person", 0.9), ("dog", 0.4)),
        frame(2),
        frame(3, ("person", 0.8), ("person", 0.7)),
    ]
    frames[0].matches = [match("a")]
    frames[1].matches = [match("a"), match("b")]
    frames[0].gallery_ids = {"a"}
    frames[3].gallery_ids = {"b", "c"}
    batch = Batch("e1", "motion", START, frames)
    # Most objects first (ties to the most confident), returned in time order.
    assert batch.frames_to_analyze(2) == [frames[1], frames[3]]
    assert batch.frames_to_analyze(10) == frames
    assert [m.gallery_id for m in batch.matches] == ["a", "b"]
    assert batch.gallery_ids == {"a", "b", "c"}
    assert Batch("e2", "motion", START).gallery_ids == set()
