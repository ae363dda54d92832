"""Event store: the security events of one entry in SQLite, their images as JPEG files.

Records live in `<config>/.storage/hsi.<entry_id>.events.db` (one row per event: the columns the
list filters and the cursor need, indexed, plus the event as JSON), so adding an event writes one
row instead of rewriting the whole history. Images live in HA's local media folder,
`<media>/hsi/<camera_id>/<YYYY-MM-DD>/<event_id>-<image>.jpg`, where users and the media browser
find them. SQLite and the files are touched only by one worker thread: calls are serialised in
the order they were made, and the event loop never blocks on the disk.

A disk that refuses a file (read-only, full, a file where a folder must be) costs the event its
image files, never its record: the error is logged and the record is stored without them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
import contextlib
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
import io
import json
from pathlib import Path
import re
import shutil
import sqlite3
from typing import Any, Final, Self

from hsi_client import level_rank
from PIL import Image, UnidentifiedImageError

from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from .const import (
    CONF_RETENTION_DAYS,
    CONF_RETENTION_EVENTS,
    CONF_RETENTION_GB,
    DOMAIN,
    HISTORY_DEFAULTS,
    LOGGER,
)
from .models import SecurityEvent

SCHEMA_VERSION: Final = 1
# Newest events kept in memory per camera: the analyser's context reads them synchronously.
RECENT_PER_CAMERA: Final = 20
RETENTION_INTERVAL: Final = timedelta(hours=1)
SWEEP_EVERY: Final = 24  # retention runs; the orphan sweep (a walk over every file) runs daily
IMAGE_NAME: Final = re.compile(r"^(snapshot|frame\d{1,2})$")
_FILE_NAME: Final = re.compile(r"^(?P<event_id>[^-]+)-(?P<image>snapshot|frame\d{1,2})\.jpg$")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)

type StoreListener = Callable[[str, SecurityEvent], None]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    camera_id TEXT NOT NULL,
    started_us INTEGER NOT NULL,
    level_rank INTEGER NOT NULL,
    source TEXT NOT NULL,
    acknowledged INTEGER NOT NULL DEFAULT 0,
    keep INTEGER NOT NULL DEFAULT 0,
    image_dir TEXT NOT NULL,
    images TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events (started_us, event_id);
CREATE INDEX IF NOT EXISTS events_camera_time ON events (camera_id, started_us, event_id);
CREATE INDEX IF NOT EXISTS events_keep_time ON events (keep, started_us, event_id);
"""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How much history to keep; 0 switches a limit off. Events marked `keep` always stay."""

    days: int = 30
    max_events: int = 10_000
    max_bytes: int = 2 * 1024**3

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Read the options flow's history section, with defaults."""
        opts = HISTORY_DEFAULTS | dict(options)
        return cls(
            days=int(opts[CONF_RETENTION_DAYS]),
            max_events=int(opts[CONF_RETENTION_EVENTS]),
            max_bytes=int(float(opts[CONF_RETENTION_GB]) * 1024**3),
        )


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a list or a subscription wants; None lets everything through."""

    cameras: frozenset[str] | None = None
    min_level: str | None = None
    start: datetime | None = None  # started_at >= start
    end: datetime | None = None  # started_at < end
    source: str | None = None  # "llm" | "rules"
    acknowledged: bool | None = None

    def matches(self, event: SecurityEvent) -> bool:
        """Whether an event passes the filter (the same test the SQL query makes)."""
        return (
            (self.cameras is None or event.camera_id in self.cameras)
            and (
                self.min_level is None
                or level_rank(event.risk.risk_level) >= level_rank(self.min_level)
            )
            and (self.start is None or event.started_at >= self.start)
            and (self.end is None or event.started_at < self.end)
            and (self.source is None or event.risk.source == self.source)
            and (self.acknowledged is None or event.acknowledged == self.acknowledged)
        )


def store_paths(hass: HomeAssistant, entry_id: str) -> tuple[Path, Path]:
    """The database file of an entry and the folder of every entry's images."""
    media = hass.config.media_dirs.get("local") or hass.config.path("media")
    return Path(hass.config.path(".storage", f"{DOMAIN}.{entry_id}.events.db")), Path(media, DOMAIN)


async def async_remove_store(hass: HomeAssistant, entry_id: str, camera_ids: Iterable[str]) -> None:
    """Delete an entry's database and its cameras' images (the entry was deleted)."""
    db_path, image_root = store_paths(hass, entry_id)
    cameras = list(camera_ids)

    def remove() -> None:
        # Cameras removed earlier still have folders: the database knows them.
        with (
            contextlib.suppress(sqlite3.Error),
            contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db,
        ):
            cameras.extend(row[0] for row in db.execute("SELECT DISTINCT camera_id FROM events"))
        for suffix in ("", "-wal", "-shm"):
            db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
        for camera_id in cameras:
            shutil.rmtree(image_root / camera_id, ignore_errors=True)

    await hass.async_add_executor_job(remove)


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch: exact, and ordered like the datetimes."""
    return (dt_util.as_utc(moment) - _EPOCH) // _MICROSECOND


def encode_cursor(started_at: datetime, event_id: str) -> str:
    """An opaque position in the (started_at desc, event_id desc) order, valid in any store."""
    raw = f"{_micros(started_at)}:{event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The position a cursor names; ValueError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        micros, event_id = raw.split(":", 1)
        return int(micros), event_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"invalid cursor: {cursor!r}") from err


def _as_jpeg(image: bytes) -> bytes | None:
    """The image as JPEG: cameras may hand out PNG or WebP (in the worker thread)."""
    if image[:3] == b"\xff\xd8\xff":
        return image
    try:
        with Image.open(io.BytesIO(image)) as picture:
            out = io.BytesIO()
            picture.convert("RGB").save(out, format="JPEG", quality=85)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError) as err:
        LOGGER.debug("Not storing an unreadable image: %s", err)
        return None


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the worker did for an add."""

    event: SecurityEvent
    image_dir: str
    created: bool
    removed: list[SecurityEvent]


class _Database:
    """SQLite and the image files; every method runs in the store's worker thread."""

    def __init__(self, db_path: Path, image_root: Path) -> None:
        self.db_path = db_path
        self.image_root = image_root
        self._db: sqlite3.Connection | None = None
        self.count = 0
        self.bytes = 0
        self.write_failing = False  # log a failing media folder once, and once when it recovers

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("event store is closed")
        return self._db

    # Opening and closing -------------------------------------------------------------------

    def open(self) -> None:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connect()
        except sqlite3.DatabaseError as err:
            # A damaged file must not keep the integration from starting: set it aside.
            aside = self.db_path.with_name(f"{self.db_path.name}.corrupt")
            LOGGER.error(
                "Event database %s is unreadable (%s); moved to %s", self.db_path, err, aside
            )
            if self._db is not None:
                self._db.close()
            self.db_path.replace(aside)
            self._connect()
        self.count, self.bytes = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events"
        ).fetchone()

    def _connect(self) -> None:
        # Python's default transactions: `with self.db` makes each change one transaction.
        self._db = sqlite3.connect(self.db_path)
        # WAL: one append per event instead of rewriting pages; NORMAL is durable in WAL mode
        # except for the last transactions before a power cut.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        self._db.executescript(_SCHEMA)
        if version != SCHEMA_VERSION:
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # Rows ----------------------------------------------------------------------------------

    @staticmethod
    def _event(data: str) -> SecurityEvent:
        return SecurityEvent.from_dict(json.loads(data))

    def get(self, event_id: str) -> SecurityEvent | None:
        row = self.db.execute("SELECT data FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return self._event(row[0]) if row else None

    def _row(self, event_id: str) -> tuple[str, str, int] | None:
        row = self.db.execute(
            "SELECT image_dir, images, size FROM events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def _save(self, event: SecurityEvent, image_dir: str, size: int, *, replace: bool) -> None:
        data = event.as_dict()
        del data["image_urls"]  # derived from images on reading
        values = (
            event.event_id,
            event.camera_id,
            _micros(event.started_at),
            level_rank(event.risk.risk_level),
            event.risk.source,
            int(event.acknowledged),
            int(event.keep),
            image_dir,
            ",".join(event.images),
            size,
            json.dumps(data, separators=(",", ":")),
        )
        verb = "REPLACE" if replace else "INSERT"
        self.db.execute(f"{verb} INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)", values)

    def recent(self, per_camera: int) -> list[SecurityEvent]:
        cameras = [r[0] for r in self.db.execute("SELECT DISTINCT camera_id FROM events")]
        events: list[SecurityEvent] = []
        for camera_id in cameras:
            events += (
                self._event(row[0])
                for row in self.db.execute(
                    "SELECT data FROM events WHERE camera_id = ? "
                    "ORDER BY started_us DESC, event_id DESC LIMIT ?",
                    (camera_id, per_camera),
                )
            )
        return events

    def select(
        self, flt: EventFilter, cursor: tuple[int, str] | None, limit: int
    ) -> list[SecurityEvent]:
        where, args = _where(flt)
        if cursor is not None:
            where.append("(started_us < ? OR (started_us = ? AND event_id < ?))")
            args += [cursor[0], cursor[0], cursor[1]]
        sql = "SELECT data FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_us DESC, event_id DESC LIMIT ?"
        return [self._event(row[0]) for row in self.db.execute(sql, [*args, limit])]

    def times(self, camera_id: str) -> list[int]:
        """started_us of each event of a camera, newest first: the media browser groups them."""
        return [
            row[0]
            for row in self.db.execute(
                "SELECT started_us FROM events WHERE camera_id = ? ORDER BY started_us DESC",
                (camera_id,),
            )
        ]

    def index(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Each event's image folder and images: image_path answers from memory."""
        return {
            event_id: (image_dir, tuple(filter(None, images.split(","))))
            for event_id, image_dir, images in self.db.execute(
                "SELECT event_id, image_dir, images FROM events"
            )
        }

    def cameras(self) -> list[tuple[str, int]]:
        return list(self.db.execute("SELECT camera_id, COUNT(*) FROM events GROUP BY camera_id"))

    # Files ---------------------------------------------------------------------------------

    def path(self, image_dir: str, event_id: str, image: str) -> Path:
        return self.image_root / image_dir / f"{event_id}-{image}.jpg"

    def _write(self, image_dir: str, event_id: str, image: str, data: bytes) -> int | None:
        """Write one image (atomically: a reader never sees half a file); its size or None."""
        jpeg = _as_jpeg(data)
        if jpeg is None:
            return None
        path = self.path(image_dir, event_id, image)
        temporary = path.with_name(f"{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(jpeg)
            temporary.replace(path)
        except OSError as err:
            if not self.write_failing:
                LOGGER.error(
                    "Cannot store the images of security events in %s: %s; events are kept "
                    "without them until the folder is writable",
                    self.image_root,
                    err,
                )
            self.write_failing = True
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            return None
        if self.write_failing:
            LOGGER.info("Images of security events are stored in %s again", self.image_root)
            self.write_failing = False
        return len(jpeg)

    def _unlink(self, image_dir: str, event_id: str, images: Iterable[str]) -> None:
        for image in images:
            try:
                self.path(image_dir, event_id, image).unlink(missing_ok=True)
            except OSError as err:
                LOGGER.debug("Cannot remove image %s of %s: %s", image, event_id, err)
        self._prune(self.image_root / image_dir)

    def _prune(self, folder: Path) -> None:
        """Remove an emptied day folder and its emptied camera folder."""
        for directory in (folder, folder.parent):
            if directory == self.image_root or self.image_root not in directory.parents:
                return
            try:
                directory.rmdir()
            except OSError:
                return  # not empty, or gone

    def _size(self, image_dir: str, event_id: str, images: Iterable[str]) -> int:
        size = 0
        for image in images:
            try:
                size += self.path(image_dir, event_id, image).stat().st_size
            except OSError:
                continue
        return size

    # Changes -------------------------------------------------------------------------------

    def add(
        self,
        event: SecurityEvent,
        image_dir: str,
        snapshot: bytes | None,
        frames: Sequence[bytes],
        policy: RetentionPolicy,
        keep_images: bool = False,
    ) -> _Stored:
        """Insert, or update in place: feedback and unreplaced images stay (all of them with
        `keep_images` when the record has a snapshot: the given images only fill a gap)."""
        row = self.db.execute(
            "SELECT image_dir, size, data FROM events WHERE event_id = ?", (event.event_id,)
        ).fetchone()
        old = self._event(row[2]) if row else None
        images: set[str] = set()
        if old is not None:
            image_dir = row[0]  # an update keeps its folder, whatever the day is now
            images = set(old.images)
            event = event.updated(
                acknowledged=old.acknowledged,
                false_alarm=old.false_alarm,
                keep=old.keep,
                identity=old.identity,
            )
            if keep_images and "snapshot" in images:
                snapshot, frames = None, ()
        if snapshot is not None:
            images.discard("snapshot")
            if self._write(image_dir, event.event_id, "snapshot", snapshot) is not None:
                images.add("snapshot")
        if frames:  # new key frames replace all the old ones
            images = {name for name in images if not name.startswith("frame")}
            for index, frame in enumerate(frames):
                if self._write(image_dir, event.event_id, f"frame{index}", frame) is not None:
                    images.add(f"frame{index}")
        if old is not None and (stale := set(old.images) - images):
            self._unlink(image_dir, event.event_id, stale)  # replaced by nothing (disk error)
        names = tuple(sorted(images, key=_image_order))
        event = event.updated(images=names)
        size = self._size(image_dir, event.event_id, names)
        with self.db:
            self._save(event, image_dir, size, replace=old is not None)
        self.count += old is None
        self.bytes += size - (row[1] if row else 0)
        removed: list[SecurityEvent] = []
        if (policy.max_events and self.count > policy.max_events) or (
            policy.max_bytes and self.bytes > policy.max_bytes
        ):
            removed = self.retain(replace(policy, days=0), dt_util.utcnow())
        return _Stored(event, image_dir, old is None, removed)

    def feedback(self, event_id: str, changes: dict[str, Any]) -> SecurityEvent:
        old = self.get(event_id)
        row = self._row(event_id)
        if old is None or row is None:
            raise KeyError(event_id)
        event = old.updated(**changes)
        with self.db:
            self._save(event, row[0], row[2], replace=True)
        return event

    def delete(self, rows: Sequence[tuple[str, str, str, int, str]]) -> list[SecurityEvent]:
        """Remove records and their files; rows are (event_id, image_dir, images, size, data)."""
        removed: list[SecurityEvent] = []
        with self.db:
            self.db.executemany("DELETE FROM events WHERE event_id = ?", [(r[0],) for r in rows])
        for event_id, image_dir, images, size, data in rows:
            self._unlink(image_dir, event_id, filter(None, images.split(",")))
            self.count -= 1
            self.bytes -= size
            removed.append(self._event(data))
        return removed

    def _rows(self, where: str, args: Sequence[Any] = ()) -> list[tuple[str, str, str, int, str]]:
        return list(
            self.db.execute(
                # `where` is one of this module's constant clauses; values are parameters.
                f"SELECT event_id, image_dir, images, size, data FROM events {where}",  # noqa: S608
                args,
            )
        )

    def delete_one(self, event_id: str) -> SecurityEvent | None:
        removed = self.delete(self._rows("WHERE event_id = ?", (event_id,)))
        return removed[0] if removed else None

    def clear(self, camera_id: str | None) -> list[SecurityEvent]:
        if camera_id is None:
            return self.delete(self._rows(""))
        return self.delete(self._rows("WHERE camera_id = ?", (camera_id,)))

    def retain(self, policy: RetentionPolicy, now: datetime) -> list[SecurityEvent]:
        """Remove the oldest events that break a limit; `keep` events stay."""
        removed: list[SecurityEvent] = []
        oldest_first = "ORDER BY started_us, event_id"
        if policy.days:
            cutoff = _micros(now - timedelta(days=policy.days))
            removed += self.delete(
                self._rows(f"WHERE keep = 0 AND started_us < ? {oldest_first}", (cutoff,))
            )
        if policy.max_events and self.count > policy.max_events:
            excess = self.count - policy.max_events
            removed += self.delete(self._rows(f"WHERE keep = 0 {oldest_first} LIMIT ?", (excess,)))
        if policy.max_bytes and self.bytes > policy.max_bytes:
            doomed: list[tuple[str, str, str, int, str]] = []
            excess = self.bytes - policy.max_bytes
            for row in self.db.execute(
                "SELECT event_id, image_dir, images, size, data FROM events "
                "WHERE keep = 0 AND size > 0 ORDER BY started_us, event_id"
            ):
                if excess <= 0:
                    break
                doomed.append(row)
                excess -= row[3]
            removed += self.delete(doomed)
        return removed

    def sweep(self, cameras: set[str]) -> tuple[int, list[SecurityEvent], list[SecurityEvent]]:
        """Remove files without a record, and records whose files were removed.

        Only the folders of this store's cameras are looked at: other entries share the media
        folder. A record that never had a file (the disk refused it) stays; one whose files are
        all gone is removed unless kept; one that lost some keeps the rest. Records of a camera
        whose whole folder is missing stay as they are.
        Returns (files removed, records removed, records changed).
        """
        known: dict[str, tuple[str, set[str]]] = {
            event_id: (image_dir, set(filter(None, images.split(","))))
            for event_id, image_dir, images in self.db.execute(
                "SELECT event_id, image_dir, images FROM events"
            )
        }
        cameras |= {r[0] for r in self.db.execute("SELECT DISTINCT camera_id FROM events")}
        files_removed = 0
        present: dict[str, set[str]] = {}
        walked: set[str] = set()
        for camera_id in cameras:
            folder = self.image_root / camera_id
            if not folder.is_dir():
                continue
            walked.add(camera_id)
            for day in list(folder.iterdir()):
                if not day.is_dir():
                    continue
                for path in list(day.iterdir()):
                    match = _FILE_NAME.match(path.name)
                    record = known.get(match["event_id"]) if match else None
                    relative = f"{camera_id}/{day.name}"
                    if (
                        match is not None
                        and record is not None
                        and record[0] == relative
                        and match["image"] in record[1]
                    ):
                        present.setdefault(match["event_id"], set()).add(match["image"])
                        continue
                    if path.is_file() and (match is not None or path.name.endswith(".jpg.tmp")):
                        path.unlink(missing_ok=True)
                        files_removed += 1
                self._prune(day)
        # A camera folder that is missing as a whole (the media folder not mounted yet, a
        # share offline) proves nothing: only records of walked folders can have lost files.
        lost = [
            (event_id, image_dir, images - present.get(event_id, set()))
            for event_id, (image_dir, images) in known.items()
            if images
            and images - present.get(event_id, set())
            and image_dir.partition("/")[0] in walked
        ]
        removed: list[SecurityEvent] = []
        changed: list[SecurityEvent] = []
        for event_id, image_dir, missing in lost:
            event = self.get(event_id)
            if event is None:
                continue
            kept = tuple(i for i in event.images if i not in missing)
            if not kept and not event.keep:
                removed += self.delete(self._rows("WHERE event_id = ?", (event_id,)))
                continue
            event = event.updated(images=kept)
            size = self._size(image_dir, event_id, kept)
            previous = self._row(event_id)
            with self.db:
                self._save(event, image_dir, size, replace=True)
            self.bytes += size - (previous[2] if previous else 0)
            changed.append(event)
        return files_removed, removed, changed

    def stats(self) -> dict[str, Any]:
        oldest, newest, kept = self.db.execute(
            "SELECT MIN(started_us), MAX(started_us), COALESCE(SUM(keep), 0) FROM events"
        ).fetchone()
        return {
            "events": self.count,
            "kept": kept,
            "image_bytes": self.bytes,
            "oldest": _from_micros(oldest),
            "newest": _from_micros(newest),
            "database": str(self.db_path),
            "images": str(self.image_root),
            "image_write_failing": self.write_failing,
        }


def _from_micros(micros: int | None) -> str | None:
    return None if micros is None else (_EPOCH + micros * _MICROSECOND).isoformat()


def _image_order(name: str) -> tuple[int, int]:
    return (0, 0) if name == "snapshot" else (1, int(name.removeprefix("frame") or 0))


def _where(flt: EventFilter) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if flt.cameras is not None:
        where.append(f"camera_id IN ({','.join('?' * len(flt.cameras))})")
        args += sorted(flt.cameras)
    if flt.min_level is not None:
        where.append("level_rank >= ?")
        args.append(level_rank(flt.min_level))
    if flt.start is not None:
        where.append("started_us >= ?")
        args.append(_micros(flt.start))
    if flt.end is not None:
        where.append("started_us < ?")
        args.append(_micros(flt.end))
    if flt.source is not None:
        where.append("source = ?")
        args.append(flt.source)
    if flt.acknowledged is not None:
        where.append("acknowledged = ?")
        args.append(int(flt.acknowledged))
    return where, args


class EventStore:
    """The security events of one config entry, in entry.runtime_data.store."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        policy: RetentionPolicy | None = None,
        cameras: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        """Create a closed store; async_load opens it. `cameras`: the configured camera ids."""
        self.hass = hass
        self.entry_id = entry_id
        self.policy = policy or RetentionPolicy()
        self._cameras = cameras
        db_path, image_root = store_paths(hass, entry_id)
        self._database = _Database(db_path, image_root)
        self._executor: ThreadPoolExecutor | None = None
        self._recent: dict[str, list[SecurityEvent]] = {}
        self._index: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._unsub_stop: CALLBACK_TYPE | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._listeners: list[StoreListener] = []
        self._unsubs: list[CALLBACK_TYPE] = []
        self._runs = 0

    @property
    def image_root(self) -> Path:
        """The folder every entry's images live under (`<media>/hsi`)."""
        return self._database.image_root

    @property
    def loaded(self) -> bool:
        """Whether the store is open."""
        return self._executor is not None

    async def _run[T](self, function: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("event store is closed")
        return await self.hass.loop.run_in_executor(self._executor, partial(function, *args))

    async def async_load(self) -> None:
        """Open the database, fill the memory cache, apply retention, schedule upkeep."""
        # One thread: SQLite connections belong to their thread, and calls keep their order.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"{DOMAIN}_store")
        try:
            await self._run(self._database.open)
            for event in await self._run(self._database.recent, RECENT_PER_CAMERA):
                self._remember(event)
            self._index = await self._run(self._database.index)
        except BaseException:
            await self.async_close()
            raise
        self._unsubs.append(
            async_track_time_interval(
                self.hass,
                self._async_upkeep,
                RETENTION_INTERVAL,
                name=f"{DOMAIN} event retention",
                cancel_on_shutdown=True,
            )
        )
        self._unsub_stop = self.hass.bus.async_listen_once(
            EVENT_HOMEASSISTANT_FINAL_WRITE, self._async_on_stop
        )
        await self.async_upkeep()
        # The orphan sweep walks every image file: in the background, not in the setup's time.
        # Calls made meanwhile queue behind it in the worker.
        self._sweep_task = self.hass.async_create_background_task(
            self.async_upkeep(sweep=True), f"{DOMAIN} orphan sweep"
        )

    async def _async_on_stop(self, _event: Event) -> None:
        self._unsub_stop = None  # it fired: removing it now would be an error
        await self.async_close()

    async def async_close(self) -> None:
        """Close the database and stop the worker (unload, shutdown)."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        if self._unsub_stop is not None:
            self._unsub_stop()
            self._unsub_stop = None
        if self._sweep_task is not None:
            self._sweep_task.cancel()  # its worker call still finishes before the close
            self._sweep_task = None
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await self.hass.loop.run_in_executor(executor, self._database.close)
        executor.shutdown(wait=True)  # the thread is idle: this returns at once

    # Upkeep --------------------------------------------------------------------------------

    async def _async_upkeep(self, _now: datetime) -> None:
        self._runs += 1
        await self.async_upkeep(sweep=self._runs % SWEEP_EVERY == 0)

    async def async_upkeep(self, *, sweep: bool = False) -> None:
        """Apply retention, then optionally remove orphans (files or records)."""
        if not self.loaded:
            return
        removed = await self._run(self._database.retain, self.policy, dt_util.utcnow())
        changed: list[SecurityEvent] = []
        if sweep:
            files, orphans, changed = await self._run(self._database.sweep, set(self._cameras()))
            removed += orphans
            if files or orphans or changed:
                LOGGER.info(
                    "Orphan sweep: %s files without an event removed, %s events whose images "
                    "were deleted removed, %s events lost some images",
                    files,
                    len(orphans),
                    len(changed),
                )
        if removed:
            LOGGER.debug("Retention removed %s events", len(removed))
        await self._async_removed(removed)
        for event in changed:
            self._remember(event)
            self._notify("updated", event)

    # Reading -------------------------------------------------------------------------------

    async def async_get(self, event_id: str) -> SecurityEvent | None:
        """One event, or None."""
        return await self._run(self._database.get, event_id)

    async def async_list(
        self, flt: EventFilter, *, cursor: str | None = None, limit: int = 50
    ) -> tuple[list[SecurityEvent], str | None]:
        """Newest first; the cursor of the next page, or None after the last one.

        A cursor is a position (started_at, event_id), so the same cursor pages the lists of
        several entries merged in that order. ValueError for a cursor that is not one.
        """
        position = decode_cursor(cursor) if cursor else None
        events = await self._run(self._database.select, flt, position, limit + 1)
        if len(events) <= limit:
            return events, None
        events = events[:limit]
        return events, encode_cursor(events[-1].started_at, events[-1].event_id)

    def image_path(self, event_id: str, image: str) -> Path | None:
        """Where a stored image lives, or None when the store has no such image (memory only).

        The orphan sweep keeps records and files in step; a file removed since then makes the
        caller's read fail, which it must handle anyway.
        """
        if not IMAGE_NAME.match(image) or (entry := self._index.get(event_id)) is None:
            return None
        image_dir, images = entry
        return self._database.path(image_dir, event_id, image) if image in images else None

    @staticmethod
    def _image_dir(event: SecurityEvent) -> str:
        return f"{event.camera_id}/{dt_util.as_local(event.started_at).date().isoformat()}"

    def recent(self, camera_id: str | None = None, limit: int = 5) -> list[SecurityEvent]:
        """Newest events first, from memory (the analyser's context)."""
        if camera_id is not None:
            return self._recent.get(camera_id, [])[:limit]
        events = [e for per_camera in self._recent.values() for e in per_camera]
        events.sort(key=lambda e: (e.started_at, e.event_id), reverse=True)
        return events[:limit]

    async def async_cameras(self) -> dict[str, int]:
        """Camera ids with stored events, and how many each."""
        return dict(await self._run(self._database.cameras))

    async def async_event_times(self, camera_id: str) -> list[datetime]:
        """When each stored event of a camera started, newest first (media browser)."""
        rows = await self._run(self._database.times, camera_id)
        return [_EPOCH + micros * _MICROSECOND for micros in rows]

    async def async_stats(self) -> dict[str, Any]:
        """Counts, sizes and places (diagnostics)."""
        if not self.loaded:
            return {"loaded": False}
        return await self._run(self._database.stats) | {"retention": asdict(self.policy)}

    # Changing ------------------------------------------------------------------------------

    async def async_add(
        self,
        event: SecurityEvent,
        snapshot: bytes | None,
        frames: Sequence[bytes] = (),
        *,
        keep_images: bool = False,
    ) -> SecurityEvent:
        """Store a new event, or update the one with the same id in place; the stored event.

        Images that are not given (snapshot None, no frames) stay as they were; with
        `keep_images` the given ones are only used where the record has no snapshot (a repeat
        whose record was cleared meanwhile). A disk error is logged and the record is stored
        without the image that failed.
        """
        if not self.loaded:
            LOGGER.warning("Event %s not stored: the event store is closed", event.event_id)
            return event
        stored = await self._run(
            self._database.add,
            event,
            self._image_dir(event),
            snapshot,
            tuple(frames),
            self.policy,
            keep_images,
        )
        self._index[event.event_id] = (stored.image_dir, stored.event.images)
        self._remember(stored.event)
        self._notify("added" if stored.created else "updated", stored.event)
        await self._async_removed(stored.removed)
        return stored.event

    async def async_feedback(
        self,
        event_id: str,
        *,
        acknowledged: bool | None = None,
        false_alarm: bool | None = None,
        keep: bool | None = None,
        identity: str | None = None,
    ) -> SecurityEvent:
        """Record what a user said about an event; KeyError if there is no such event."""
        changes: dict[str, Any] = {
            key: value
            for key, value in (
                ("acknowledged", acknowledged),
                ("false_alarm", false_alarm),
                ("keep", keep),
                ("identity", identity),
            )
            if value is not None
        }
        if not self.loaded:
            raise KeyError(event_id)
        event = await self._run(self._database.feedback, event_id, changes)
        self._remember(event)
        self._notify("updated", event)
        return event

    async def async_delete(self, event_id: str) -> bool:
        """Remove one event and its images; False if there was none."""
        removed = await self._run(self._database.delete_one, event_id)
        if removed is None:
            return False
        await self._async_removed([removed])
        return True

    async def async_clear(self, camera_id: str | None = None) -> int:
        """Remove every event (kept ones too: this is explicit), or those of one camera."""
        removed = await self._run(self._database.clear, camera_id)
        await self._async_removed(removed)
        return len(removed)

    # Listeners and memory ------------------------------------------------------------------

    @callback
    def async_listen(self, listener: StoreListener) -> CALLBACK_TYPE:
        """Call `listener(kind, event)` after each change is saved: added, updated, removed."""
        self._listeners.append(listener)

        @callback
        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _notify(self, kind: str, event: SecurityEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, event)
            except Exception:
                LOGGER.exception("Error in an event store listener")

    def _remember(self, event: SecurityEvent) -> None:
        image_dir = self._index.get(event.event_id, (self._image_dir(event), ()))[0]
        self._index[event.event_id] = (image_dir, event.images)
        events = [e for e in self._recent.get(event.camera_id, []) if e.event_id != event.event_id]
        events.append(event)
        events.sort(key=lambda e: (e.started_at, e.event_id), reverse=True)
        self._recent[event.camera_id] = events[:RECENT_PER_CAMERA]

    async def _async_removed(self, removed: Sequence[SecurityEvent]) -> None:
        """Forget removed events and tell the listeners; refill the memory cache if it thinned."""
        thinned = False
        for event in removed:
            self._index.pop(event.event_id, None)
            cached = self._recent.get(event.camera_id, [])
            if any(e.event_id == event.event_id for e in cached):
                self._recent[event.camera_id] = [e for e in cached if e.event_id != event.event_id]
                thinned = True
            self._notify("removed", event)
        if thinned and self.loaded:
            # Older events of the camera move up into the newest few the analyser reads.
            self._recent = {}
            for event in await self._run(self._database.recent, RECENT_PER_CAMERA):
                self._remember(event)
