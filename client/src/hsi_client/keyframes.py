"""Key frames: which frames of an event show most (sent to /analyze, captioned, annotated)."""

from __future__ import annotations

from collections.abc import Sequence

from .models import AnalyzedObject


def key_frames(objects: Sequence[AnalyzedObject], frames: int, limit: int) -> list[int]:
    """Up to `limit` frame indexes, in frame order: most objects first, then most confident.

    Ties go to the earlier frame. When nothing was detected, the frames around the middle.
    """
    if frames <= 0 or limit <= 0:
        return []
    if not objects:
        # Centred on the middle; key_frame is frames // 2, an even split leans to the later half.
        start = max(0, (frames - limit + 1) // 2)
        return list(range(start, min(frames, start + limit)))
    score: dict[int, tuple[int, float]] = dict.fromkeys(range(frames), (0, 0.0))
    for obj in objects:
        count, best = score.get(obj.frame, (0, 0.0))
        score[obj.frame] = (count + 1, max(best, obj.confidence))
    ranked = sorted(range(frames), key=lambda frame: score[frame], reverse=True)
    return sorted(ranked[:limit])


def key_frame(objects: Sequence[AnalyzedObject], frames: int) -> int:
    """The one frame that shows most (the middle one when nothing was detected)."""
    return key_frames(objects, frames, 1)[0]
