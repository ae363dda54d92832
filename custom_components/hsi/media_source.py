"""Media source `hsi`: the stored security events in the media browser.

Cameras → days → events (newest first) → the event's images. A day with many events is split
into hour folders; a folder that still holds more than a page shows the newest and reports the
rest in `not_shown`, so nothing disappears silently. Images resolve to the authenticated image
view (`/api/hsi/events/<event_id>/<image>.jpg`); the media source API signs such relative paths
for the frontend, and the frontend fetches thumbnails with the user's credentials.

Identifiers: `<entry_id>/<camera_id>[/<YYYY-MM-DD>[/<HH>]][/e/<event_id>[/<image>]]`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from homeassistant.components.media_player.const import MediaClass, MediaType
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .const import DOMAIN, SUBENTRY_CAMERA
from .models import HsiConfigEntry, SecurityEvent
from .store import EventFilter, EventStore

# A day with more events than this is shown as hour folders.
DAY_LIMIT = 50
# Events one folder lists at most (the newest); the rest are counted in not_shown.
PAGE_LIMIT = 200
IMAGE_MIME = "image/jpeg"


async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
    """The `hsi` media source."""
    return HsiMediaSource()


@dataclass(frozen=True, slots=True)
class _Path:
    """A parsed identifier."""

    entry_id: str | None = None
    camera_id: str | None = None
    day: date | None = None
    hour: int | None = None
    event_id: str | None = None
    image: str | None = None


def _parse(identifier: str) -> _Path:
    """The parts of an identifier; BrowseError when it is not one of ours."""
    if not identifier:
        return _Path()
    head, _, tail = identifier.partition("/e/")
    parts = head.split("/")
    try:
        entry_id, camera_id, *rest = parts
        day = date.fromisoformat(rest[0]) if rest else None
        hour = int(rest[1]) if len(rest) > 1 else None
        if len(rest) > 2 or (hour is not None and not 0 <= hour < 24):
            raise ValueError(identifier)
    except ValueError as err:
        raise BrowseError(f"Unknown media item: {identifier}") from err
    event_id, _, image = tail.partition("/")
    return _Path(entry_id, camera_id, day, hour, event_id or None, image or None)


def _title(event: SecurityEvent) -> str:
    """`14:32 · High · One unknown person at the door` (local time)."""
    moment = dt_util.as_local(event.started_at).strftime("%H:%M")
    return f"{moment} · {event.risk.risk_level.capitalize()} · {event.risk.summary}"


def _image_title(image: str) -> str:
    """`Annotated snapshot`, `Key frame 1`, ... (frame0 is the first)."""
    if image == "snapshot":
        return "Annotated snapshot"
    return f"Key frame {int(image.removeprefix('frame')) + 1}"


def _day_bounds(day: date, hour: int | None) -> tuple[datetime, datetime]:
    """Start and end of a local day or of one of its hours."""
    zone = dt_util.get_default_time_zone()
    if hour is None:
        start = datetime.combine(day, time(), zone)
        return start, datetime.combine(day + timedelta(days=1), time(), zone)
    start = datetime.combine(day, time(hour), zone)
    return start, start + timedelta(hours=1)


class HsiMediaSource(MediaSource):
    """Security events of every loaded HSI entry."""

    name = "Home Security Intelligence"

    def __init__(self) -> None:
        """The source of domain `hsi`."""
        super().__init__(DOMAIN)

    # Lookup ----------------------------------------------------------------------------------

    @staticmethod
    def _entries(hass: HomeAssistant) -> list[HsiConfigEntry]:
        return hass.config_entries.async_loaded_entries(DOMAIN)

    def _store(
        self, hass: HomeAssistant, entry_id: str | None
    ) -> tuple[HsiConfigEntry, EventStore]:
        for entry in self._entries(hass):
            if entry.entry_id == entry_id:
                return entry, entry.runtime_data.store
        raise BrowseError(f"Unknown or unloaded HSI server: {entry_id}")

    async def _event(self, hass: HomeAssistant, path: _Path) -> SecurityEvent:
        _, store = self._store(hass, path.entry_id)
        event = await store.async_get(path.event_id or "")
        if event is None or event.camera_id != path.camera_id:
            raise BrowseError(f"Unknown security event: {path.event_id}")
        return event

    # Resolve ---------------------------------------------------------------------------------

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """An event (its snapshot, else its first image) or one image: the image view path."""
        try:
            path = _parse(item.identifier)
            if path.event_id is None:
                raise BrowseError("Only events and their images can be shown")
            event = await self._event(item.hass, path)
        except BrowseError as err:
            raise Unresolvable(str(err)) from err
        image = path.image or (event.images[0] if event.images else None)
        if image is None or image not in event.images:
            raise Unresolvable(f"Event {event.event_id} has no image {image or ''}".rstrip())
        return PlayMedia(event.image_url(image), IMAGE_MIME)

    # Browse ----------------------------------------------------------------------------------

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        """One level of cameras → days → (hours) → events → images."""
        path = _parse(item.identifier)
        hass = item.hass
        if path.entry_id is None:
            return await self._browse_root(hass)
        if path.event_id is not None:
            return self._browse_event(path, await self._event(hass, path))
        if path.day is None:
            return await self._browse_camera(hass, path)
        return await self._browse_day(hass, path)

    @staticmethod
    def _folder(
        identifier: str,
        title: str,
        children: list[BrowseMediaSource],
        *,
        not_shown: int = 0,
        thumbnail: str | None = None,
    ) -> BrowseMediaSource:
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=identifier or None,
            media_class=MediaClass.DIRECTORY,
            media_content_type=MediaType.IMAGE,
            title=title,
            can_play=False,
            can_expand=True,
            children=children,
            children_media_class=children[0].media_class if children else MediaClass.IMAGE,
            not_shown=not_shown,
            thumbnail=thumbnail,
        )

    async def _browse_root(self, hass: HomeAssistant) -> BrowseMediaSource:
        """Every camera of every loaded entry, with how many events it has."""
        children: list[BrowseMediaSource] = []
        for entry in self._entries(hass):
            counts = await entry.runtime_data.store.async_cameras()
            names = {
                sub.subentry_id: sub.title
                for sub in entry.subentries.values()
                if sub.subentry_type == SUBENTRY_CAMERA
            }
            for camera_id in sorted({*names, *counts}, key=lambda c: names.get(c, c)):
                name = names.get(camera_id)
                if name is None:  # removed camera, events remain: name it after its events
                    recent = entry.runtime_data.store.recent(camera_id, 1)
                    name = recent[0].camera_name if recent else camera_id
                count = counts.get(camera_id, 0)
                children.append(
                    self._folder(f"{entry.entry_id}/{camera_id}", f"{name} ({count} events)", [])
                )
        return self._folder("", self.name or DOMAIN, children)

    async def _browse_camera(self, hass: HomeAssistant, path: _Path) -> BrowseMediaSource:
        """The days with events, newest first."""
        entry, store = self._store(hass, path.entry_id)
        camera_id = path.camera_id or ""
        times = await store.async_event_times(camera_id)
        days = Counter(dt_util.as_local(moment).date() for moment in times)
        base = f"{entry.entry_id}/{camera_id}"
        children = [
            self._folder(
                f"{base}/{day.isoformat()}",
                f"{day.strftime('%A %d %B %Y')} ({count} events)",
                [],
            )
            for day, count in sorted(days.items(), reverse=True)
        ]
        subentry = entry.subentries.get(camera_id)
        title = subentry.title if subentry else camera_id
        return self._folder(base, title, children)

    async def _browse_day(self, hass: HomeAssistant, path: _Path) -> BrowseMediaSource:
        """A day's events, or its hours when there are many; never more than a page."""
        entry, store = self._store(hass, path.entry_id)
        assert path.day is not None
        assert path.camera_id is not None
        start, end = _day_bounds(path.day, path.hour)
        cameras = frozenset({path.camera_id})
        base = f"{entry.entry_id}/{path.camera_id}/{path.day.isoformat()}"
        identifier = base if path.hour is None else f"{base}/{path.hour:02d}"
        title = path.day.strftime("%A %d %B %Y")
        if path.hour is None:
            times = [
                moment
                for moment in await store.async_event_times(path.camera_id)
                if start <= moment < end
            ]
            if len(times) > DAY_LIMIT:
                hours = Counter(dt_util.as_local(moment).hour for moment in times)
                children = [
                    self._folder(
                        f"{base}/{hour:02d}", f"{hour:02d}:00-{hour:02d}:59 ({count} events)", []
                    )
                    for hour, count in sorted(hours.items(), reverse=True)
                ]
                return self._folder(identifier, title, children)
        else:
            title = f"{title}, {path.hour:02d}:00-{path.hour:02d}:59"
        flt = EventFilter(cameras=cameras, start=start, end=end)
        events, more = await store.async_list(flt, limit=PAGE_LIMIT)
        not_shown = 0
        if more is not None:
            times = await store.async_event_times(path.camera_id)
            not_shown = sum(1 for moment in times if start <= moment < end) - len(events)
        children = [self._event_item(entry.entry_id, event) for event in events]
        return self._folder(identifier, title, children, not_shown=not_shown)

    @staticmethod
    def _event_item(entry_id: str, event: SecurityEvent) -> BrowseMediaSource:
        day = dt_util.as_local(event.started_at).date().isoformat()
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=f"{entry_id}/{event.camera_id}/{day}/e/{event.event_id}",
            media_class=MediaClass.IMAGE,
            media_content_type=IMAGE_MIME,
            title=_title(event),
            can_play=bool(event.images),
            can_expand=bool(event.images),
            thumbnail=event.image_url(event.images[0]) if event.images else None,
        )

    def _browse_event(self, path: _Path, event: SecurityEvent) -> BrowseMediaSource:
        """The event's images: the annotated snapshot, then the key frames."""
        if path.image is not None:
            raise BrowseError("An image has nothing to browse")
        base = f"{path.entry_id}/{event.camera_id}/{path.day}/e/{event.event_id}"
        children = [
            BrowseMediaSource(
                domain=DOMAIN,
                identifier=f"{base}/{image}",
                media_class=MediaClass.IMAGE,
                media_content_type=IMAGE_MIME,
                title=_image_title(image),
                can_play=True,
                can_expand=False,
                thumbnail=event.image_url(image),
            )
            for image in event.images
        ]
        item = self._event_item(path.entry_id or "", event)
        return self._folder(base, item.title, children, thumbnail=item.thumbnail)
