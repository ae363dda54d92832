"""Event batching, pure: analysed frames in, one closed batch (one security event) out.

No Home Assistant inside: the watcher owns the clock and the timers and asks this module what to
do. A batch opens with the first frame that shows something the camera watches for, keeps the
newest frames of long events, and closes when the watcher's window or idle timer fires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hsi_client import AnalyzedObject, Detection, DetectResult, KnownMatch, key_frames


@dataclass(slots=True)
class Frame:
    """One snapshot, what /detect found on it and who the gallery recognised."""

    image: bytes
    captured_at: datetime
    result: DetectResult | None  # None: the server failed for this frame
    relevant: list[Detection] = field(default_factory=list)
    matches: list[KnownMatch] = field(default_factory=list)
    gallery_ids: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Batch:
    """Frames that become one security event."""

    event_id: str
    trigger: str
    started_at: datetime
    frames: list[Frame] = field(default_factory=list)
    preliminary: bool = False  # the fast path raised an early event for it

    @property
    def ended_at(self) -> datetime:
        """When the last frame was taken."""
        return self.frames[-1].captured_at if self.frames else self.started_at

    @property
    def matches(self) -> list[KnownMatch]:
        """Distinct gallery matches over all frames."""
        seen: dict[str, KnownMatch] = {}
        for frame in self.frames:
            for match in frame.matches:
                seen.setdefault(match.gallery_id, match)
        return list(seen.values())

    @property
    def gallery_ids(self) -> set[str]:
        """Gallery entries of every object of the batch (matched or new)."""
        return set().union(*(f.gallery_ids for f in self.frames))

    def frames_to_analyze(self, limit: int) -> list[Frame]:
        """The frames that show most, in time order."""
        objects = [d.in_frame(i) for i, f in enumerate(self.frames) for d in f.relevant]
        return [self.frames[i] for i in key_frames(objects, len(self.frames), limit)]

    def best_frame(self) -> tuple[Frame, list[AnalyzedObject]]:
        """The detected frame with most relevant objects, and those objects."""
        frames = [f for f in self.frames if f.result is not None] or self.frames
        best = max(frames, key=lambda f: len(f.relevant))
        return best, [d.in_frame(0) for d in best.relevant]


@dataclass(frozen=True, slots=True)
class Added:
    """What adding a frame did."""

    opened: bool  # a new batch: start the window timer
    fast_path: bool  # raise the preliminary event now


class EventBatcher:
    """The open batch of one camera."""

    def __init__(self, max_frames: int) -> None:
        """Keep at most `max_frames` frames per batch (the newest)."""
        self.max_frames = max_frames
        self.batch: Batch | None = None

    @property
    def event_id(self) -> str | None:
        """The id of the open batch's event (frames join it), if one is open."""
        return self.batch.event_id if self.batch else None

    def add(self, frame: Frame, trigger: str, event_id: str, fast_path_threshold: float) -> Added:
        """Add a frame with relevant objects; open a batch under `event_id` when none is open."""
        opened = self.batch is None
        if self.batch is None:
            self.batch = Batch(event_id, trigger, frame.captured_at)
        batch = self.batch
        if len(batch.frames) < self.max_frames:
            batch.frames.append(frame)
        else:  # keep the newest frames of long events
            batch.frames = [*batch.frames[1:], frame]
        fast = not batch.preliminary and any(
            d.label == "person" and d.confidence >= fast_path_threshold for d in frame.relevant
        )
        batch.preliminary = batch.preliminary or fast
        return Added(opened=opened, fast_path=fast)

    def add_unanalysed(self, frame: Frame) -> None:
        """Keep a frame the server could not detect on, if a batch is open (/analyze detects)."""
        if self.batch is not None:
            self.batch.frames.append(frame)

    def close(self) -> Batch | None:
        """Close the open batch and return it."""
        batch, self.batch = self.batch, None
        return batch
