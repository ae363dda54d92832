"""Key frames: the frames that show most."""

from __future__ import annotations

import pytest
from hsi_client import AnalyzedObject, BoundingBox, key_frame, key_frames


def obj(frame: int, confidence: float = 0.8, label: str = "person") -> AnalyzedObject:
    """One object on one frame."""
    return AnalyzedObject(label, confidence, frame, BoundingBox(0, 0, 10, 10))


def test_most_objects_first() -> None:
    """Frames rank by object count, then by best confidence; the result is in frame order."""
    objects = [obj(3), obj(3, label="car"), obj(1, 0.99), obj(4, 0.6), obj(0, 0.5)]
    assert key_frames(objects, 5, 1) == [3]
    assert key_frames(objects, 5, 2) == [1, 3]
    assert key_frames(objects, 5, 3) == [1, 3, 4]
    assert key_frame(objects, 5) == 3


def test_confidence_breaks_count_ties() -> None:
    """Equal counts: the most confident object wins."""
    assert key_frame([obj(0, 0.5), obj(2, 0.9), obj(1, 0.7)], 3) == 2


def test_ties_go_to_the_earlier_frame() -> None:
    """Equal count and confidence: the earlier frame."""
    objects = [obj(4, 0.8), obj(2, 0.8), obj(3, 0.8)]
    assert key_frame(objects, 5) == 2
    assert key_frames(objects, 5, 2) == [2, 3]
    # Frames without objects tie too: the earliest of them fill up.
    assert key_frames([obj(3)], 5, 3) == [0, 1, 3]


@pytest.mark.parametrize(
    ("frames", "limit", "expected"),
    [
        (1, 1, [0]),
        (3, 1, [1]),
        (4, 1, [2]),
        (5, 1, [2]),
        (4, 2, [1, 2]),
        (5, 2, [2, 3]),
        (5, 3, [1, 2, 3]),
        (6, 2, [2, 3]),
        (6, 4, [1, 2, 3, 4]),
        (3, 5, [0, 1, 2]),
    ],
)
def test_nothing_detected_gives_the_middle(frames: int, limit: int, expected: list[int]) -> None:
    """No objects: the frames around the middle (key_frame: frames // 2)."""
    assert key_frames([], frames, limit) == expected
    assert key_frame([], frames) == frames // 2


def test_limits() -> None:
    """No frames or no limit: nothing; a limit above the frames: every frame."""
    assert key_frames([obj(0)], 0, 3) == []
    assert key_frames([obj(0)], 3, 0) == []
    assert key_frames([], 0, 1) == []
    assert key_frames([obj(1)], 3, 10) == [0, 1, 2]


def test_objects_outside_the_frames_are_ignored() -> None:
    """An object on a frame the event does not have does not make it a key frame."""
    assert key_frames([obj(7), obj(7), obj(1)], 3, 1) == [1]
    assert key_frames([obj(-1)], 3, 3) == [0, 1, 2]
