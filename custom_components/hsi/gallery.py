"""Re-identification gallery: embeddings of recent and enrolled people, vehicles and animals.

Recent objects expire after a TTL; enrolled ones stay until forgotten. Matching is cosine
similarity against entries of the same object group. Persisted with HA's Store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hsi_client import GROUPS, KnownMatch, group_of
import numpy as np
import numpy.typing as npt

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import ulid_now

from .const import DOMAIN, RECENT_TTL

STORAGE_VERSION = 1
SAVE_DELAY = 10
MAX_RECENT = 500


def _group(label: str) -> str:
    """The object group of a detector class, or of a group name itself: `hsi.enroll` labels
    entries by kind ("vehicle"), which `group_of` alone would call "other"."""
    return label if label in GROUPS else group_of(label)


@dataclass(slots=True)
class GalleryEntry:
    """One remembered object."""

    entry_id: str
    label: str
    embedding: list[float]
    name: str | None = None
    enrolled: bool = False
    camera_id: str | None = None
    first_seen: str = field(default_factory=lambda: dt_util.utcnow().isoformat())
    last_seen: str = field(default_factory=lambda: dt_util.utcnow().isoformat())
    sightings: list[str] = field(default_factory=list)
    last_event: str | None = None
    first_event: str | None = None

    def seen_since(self, since: datetime) -> int:
        """How many sightings since a moment.

        Sightings are UTC ISO strings, which sort like the moments they name: compare strings.
        """
        moment = dt_util.as_utc(since).isoformat()
        return sum(1 for s in self.sightings if s >= moment)


def _normalise(vector: Any) -> npt.NDArray[np.float32]:
    array = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


class Gallery:
    """The gallery of one config entry."""

    def __init__(self, hass: HomeAssistant, entry_id: str, threshold: float) -> None:
        """Create an empty gallery; call async_load to read the store."""
        self.hass = hass
        self.threshold = threshold
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.gallery"
        )
        self.entries: dict[str, GalleryEntry] = {}
        self._matrix: npt.NDArray[np.float32] | None = None
        self._ids: list[str] = []

    async def async_load(self) -> None:
        """Read the stored gallery."""
        data = await self._store.async_load()
        for raw in (data or {}).get("entries", []):
            entry = GalleryEntry(**raw)
            self.entries[entry.entry_id] = entry
        self._invalidate()

    async def async_save(self) -> None:
        """Write now (unload)."""
        await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        return {"entries": [asdict(e) for e in self.entries.values()]}

    def _schedule_save(self, *, changed_entries: bool = True) -> None:
        """Write a little later (one write for many sightings); new entries re-index."""
        if changed_entries:
            self._invalidate()
        self._store.async_delay_save(self._data, SAVE_DELAY)

    def _invalidate(self) -> None:
        self._matrix = None

    def _index(self) -> tuple[npt.NDArray[np.float32], list[str]]:
        if self._matrix is None:
            self._ids = list(self.entries)
            if self._ids:
                self._matrix = np.stack([_normalise(self.entries[i].embedding) for i in self._ids])
            else:
                self._matrix = np.zeros((0, 0), dtype=np.float32)
        return self._matrix, self._ids

    def match(self, embedding: Any, label: str) -> tuple[GalleryEntry, float] | None:
        """Best entry of the same group at or above the threshold; enrolled ones win ties."""
        matrix, ids = self._index()
        if not ids:
            return None
        query = _normalise(embedding)
        if matrix.shape[1] != query.shape[0]:
            return None
        similarities = matrix @ query
        group = _group(label)
        expired = (dt_util.utcnow() - RECENT_TTL).isoformat()  # pruned on the next insert
        best: tuple[GalleryEntry, float] | None = None
        for index in np.argsort(-similarities):
            similarity = float(similarities[index])
            if similarity < self.threshold:
                break
            candidate = self.entries[ids[index]]
            if _group(candidate.label) != group or (
                not candidate.enrolled and candidate.last_seen < expired
            ):
                continue
            if best is None or (candidate.enrolled and not best[0].enrolled):
                best = (candidate, similarity)
            if candidate.enrolled:
                break
        return best

    def observe(
        self, embedding: Any, label: str, camera_id: str, event_key: str | None = None
    ) -> tuple[str, KnownMatch | None]:
        """Record a sighting; return the gallery id and the match (None when never seen).

        Sightings with the same `event_key` (one security event) count once, and an object first
        seen in this very event (another frame or a duplicate box) is no known match.
        """
        now = dt_util.utcnow()
        found = self.match(embedding, label)
        if found is None:
            entry = GalleryEntry(
                entry_id=ulid_now(),
                label=label,
                embedding=[round(float(v), 6) for v in _normalise(embedding)],
                camera_id=camera_id,
                sightings=[now.isoformat()],
                last_event=event_key,
                first_event=event_key,
            )
            self.entries[entry.entry_id] = entry
            self._prune(now)
            self._schedule_save()
            return entry.entry_id, None
        entry, similarity = found
        entry.last_seen = now.isoformat()
        if event_key is None or entry.last_event != event_key:
            entry.sightings = [*entry.sightings[-49:], now.isoformat()]
            entry.last_event = event_key
        self._schedule_save(changed_entries=False)  # same entries: the index stays valid
        if not entry.enrolled and event_key is not None and entry.first_event == event_key:
            return entry.entry_id, None
        return entry.entry_id, KnownMatch(
            gallery_id=entry.entry_id,
            label=entry.label,
            name=entry.name,
            enrolled=entry.enrolled,
            similarity=similarity,
            times_seen_today=entry.seen_since(dt_util.start_of_local_day()),
        )

    def enroll(self, name: str, label: str, embedding: Any) -> GalleryEntry:
        """Add an enrolled person / vehicle under a name."""
        entry = GalleryEntry(
            entry_id=ulid_now(),
            label=label,
            embedding=[round(float(v), 6) for v in _normalise(embedding)],
            name=name,
            enrolled=True,
        )
        self.entries[entry.entry_id] = entry
        self._schedule_save()
        return entry

    def forget(self, name: str) -> int:
        """Remove enrolled entries with this name (or an entry with this id)."""
        doomed = [
            key
            for key, entry in self.entries.items()
            if key == name or (entry.name is not None and entry.name.casefold() == name.casefold())
        ]
        for key in doomed:
            del self.entries[key]
        if doomed:
            self._schedule_save()
        return len(doomed)

    def _prune(self, now: datetime) -> None:
        """Drop expired recent entries, then the oldest beyond MAX_RECENT (on each insert)."""
        cutoff = (now - RECENT_TTL).isoformat()
        recent = [e for e in self.entries.values() if not e.enrolled]
        for entry in recent:
            if entry.last_seen < cutoff:
                del self.entries[entry.entry_id]
        recent = [e for e in recent if e.last_seen >= cutoff]
        if len(recent) > MAX_RECENT:
            recent.sort(key=lambda e: e.last_seen)
            for entry in recent[: len(recent) - MAX_RECENT]:
                del self.entries[entry.entry_id]

    @property
    def enrolled(self) -> list[GalleryEntry]:
        """Enrolled entries."""
        return [e for e in self.entries.values() if e.enrolled]

    def stats(self) -> dict[str, Any]:
        """Counts for diagnostics."""
        return {
            "enrolled": len(self.enrolled),
            "recent": len(self.entries) - len(self.enrolled),
            "threshold": self.threshold,
            "ttl_hours": RECENT_TTL / timedelta(hours=1),
        }
