"""The event store: SQLite records, JPEG files, paging, retention, orphans, disk errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
import io
import logging
from pathlib import Path
import random

from hsi_client import AnalyzedObject, BoundingBox, RiskAssessment
from hsi_client.testing import FakeServer, detection
from PIL import Image
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
import voluptuous_serialize

from custom_components.hsi import store as store_module
from custom_components.hsi.models import SecurityEvent
from custom_components.hsi.store import (
    EventFilter,
    EventStore,
    RetentionPolicy,
    decode_cursor,
    encode_cursor,
    store_paths,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util

from .conftest import CAMERA, action, jpeg, make_entry, setup_integration

PERSON = AnalyzedObject("person", 0.8, 0, BoundingBox(40, 30, 100, 150))
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NO_LIMITS = RetentionPolicy(days=0, max_events=0, max_bytes=0)


def _event(
    event_id: str,
    *,
    camera: str = "cam",
    at: datetime = NOW,
    score: int = 40,
    source: str = "rules",
) -> SecurityEvent:
    return SecurityEvent(
        event_id=event_id,
        camera_id=camera,
        camera_name=camera.title(),
        camera_entity=None,
        trigger="test",
        started_at=at,
        ended_at=at + timedelta(seconds=30),
        objects=[PERSON],
        risk=RiskAssessment.build(score, f"summary {event_id}", "reasoning", source=source),
    )


@pytest.fixture
async def store(hass: HomeAssistant) -> AsyncIterator[EventStore]:
    """An open store without limits."""
    events = EventStore(hass, "entry", NO_LIMITS)
    await events.async_load()
    yield events
    await events.async_close()


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _block(folder: Path) -> None:
    """Put a file where a folder must be: writes fail, also for root (unlike chmod)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_bytes(b"not a folder")


def _move(source: Path, target: Path) -> None:
    source.rename(target)


def _folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def _day(moment: datetime) -> str:
    return dt_util.as_local(moment).date().isoformat()


def test_default_places(hass: HomeAssistant) -> None:
    """The database sits in the config's .storage, the images in HA's local media folder."""
    hass.config.media_dirs = {"local": "/media/local"}
    database, images = store_paths(hass, "abc")
    assert database == Path(hass.config.config_dir, ".storage", "hsi.abc.events.db")
    assert images == Path("/media/local/hsi")
    hass.config.media_dirs = {}
    assert store_paths(hass, "abc")[1] == Path(hass.config.config_dir, "media", "hsi")


def test_cursor_round_trip() -> None:
    """A cursor names a position; anything else is refused."""
    assert decode_cursor(encode_cursor(NOW, "01ABC")) == (
        int(NOW.timestamp()) * 1_000_000,
        "01ABC",
    )
    for junk in ("", "@@@", "bm90LWEtY3Vyc29y"):
        with pytest.raises(ValueError):
            decode_cursor(junk)


async def test_ten_thousand_events_page_and_filter(
    hass: HomeAssistant, store: EventStore, event_files: Path
) -> None:
    """10 000 events: every filter agrees with EventFilter.matches, pages meet without gaps."""
    rng = random.Random(8)
    events: list[SecurityEvent] = []
    for index in range(10_000):
        event = _event(
            f"E{index:05d}",
            camera=rng.choice(["front", "back", "garage"]),
            # Some share a start: the event id orders them.
            at=NOW - timedelta(minutes=rng.randrange(0, 20_000)),
            score=rng.randrange(0, 101),
            source=rng.choice(["llm", "rules"]),
        )
        events.append(await store.async_add(event, None))
    for event_id in ("E00001", "E00002", "E00003"):
        await store.async_feedback(event_id, acknowledged=True)
    acknowledged = {"E00001", "E00002", "E00003"}
    events = [e.updated(acknowledged=e.event_id in acknowledged) for e in events]
    newest_first = sorted(events, key=lambda e: (e.started_at, e.event_id), reverse=True)

    page, cursor = await store.async_list(EventFilter(), limit=50)
    assert [e.event_id for e in page] == [e.event_id for e in newest_first[:50]]
    assert cursor is not None

    filters = [
        EventFilter(),
        EventFilter(cameras=frozenset({"front", "garage"})),
        EventFilter(min_level="high"),
        EventFilter(start=NOW - timedelta(days=3), end=NOW - timedelta(days=1)),
        EventFilter(source="llm", min_level="critical", cameras=frozenset({"back"})),
        EventFilter(acknowledged=True),
        EventFilter(acknowledged=False, cameras=frozenset()),
    ]
    for flt in filters:
        expected = [e.event_id for e in newest_first if flt.matches(e)]
        seen: list[str] = []
        cursor = None
        while True:
            page, cursor = await store.async_list(flt, cursor=cursor, limit=200)
            seen += [e.event_id for e in page]
            if cursor is None:
                break
        assert seen == expected, flt
    assert (await store.async_list(EventFilter(acknowledged=True)))[0][0].acknowledged
    assert not _files(event_files)  # no image given, no file written

    # The memory cache feeds the analyser without a query.
    front = [e for e in newest_first if e.camera_id == "front"]
    assert [e.event_id for e in store.recent("front", 5)] == [e.event_id for e in front[:5]]
    assert [e.event_id for e in store.recent(limit=3)] == [e.event_id for e in newest_first[:3]]


async def test_images_and_update_in_place(
    hass: HomeAssistant, store: EventStore, event_files: Path
) -> None:
    """Snapshot and key frames become files; an update replaces what it brings, keeps the rest."""
    seen: list[tuple[str, str]] = []
    unsub = store.async_listen(lambda kind, event: seen.append((kind, event.event_id)))
    png = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 0, 0)).save(png, format="PNG")

    first = await store.async_add(
        _event("E1"), jpeg(), [jpeg(colour=(1, 1, 1)), png.getvalue(), jpeg()]
    )
    assert first.images == ("snapshot", "frame0", "frame1", "frame2")
    day = f"cam/{_day(NOW)}"
    assert _files(event_files) == {
        f"{day}/E1-snapshot.jpg",
        f"{day}/E1-frame0.jpg",
        f"{day}/E1-frame1.jpg",
        f"{day}/E1-frame2.jpg",
    }
    frame1 = store.image_path("E1", "frame1")
    assert frame1 is not None
    assert frame1.read_bytes()[:3] == b"\xff\xd8\xff"  # the PNG was stored as JPEG
    assert first.as_dict()["image_urls"]["frame1"] == "/api/hsi/events/E1/frame1.jpg"

    await store.async_feedback("E1", acknowledged=True, identity="Alice")
    analysed = _event("E1", score=90, source="llm")
    updated = await store.async_add(analysed, None, [jpeg(colour=(9, 9, 9))])
    assert updated.images == ("snapshot", "frame0")
    assert (updated.acknowledged, updated.identity) == (True, "Alice")  # feedback stays
    assert updated.risk.risk_level == "critical"
    assert _files(event_files) == {f"{day}/E1-snapshot.jpg", f"{day}/E1-frame0.jpg"}
    assert store.image_path("E1", "frame2") is None
    assert store.image_path("E1", "../../etc/passwd") is None
    assert await store.async_list(EventFilter()) == ([updated], None)

    with pytest.raises(KeyError):
        await store.async_feedback("nope", keep=True)
    assert await store.async_delete("E1")
    assert not await store.async_delete("E1")
    assert _files(event_files) == set()
    assert not (event_files / "cam").exists()  # emptied folders go too
    unsub()
    await store.async_add(_event("E2"), None)
    assert seen == [("added", "E1"), ("updated", "E1"), ("updated", "E1"), ("removed", "E1")]


async def test_repeat_images_fill_only_a_gap(
    hass: HomeAssistant, store: EventStore, event_files: Path
) -> None:
    """A repeat keeps the first visit's images, unless its record was cleared meanwhile."""
    first_snapshot = jpeg(colour=(10, 10, 10))
    await store.async_add(_event("E1"), first_snapshot, [jpeg()])
    repeat = await store.async_add(_event("E1"), jpeg(colour=(250, 0, 0)), [], keep_images=True)
    assert repeat.images == ("snapshot", "frame0")
    path = store.image_path("E1", "snapshot")
    assert path is not None
    assert path.read_bytes() == first_snapshot

    assert await store.async_clear() == 1
    later = jpeg(colour=(0, 250, 0))
    refilled = await store.async_add(_event("E1"), later, [jpeg()], keep_images=True)
    assert refilled.images == ("snapshot", "frame0")
    path = store.image_path("E1", "snapshot")
    assert path is not None
    assert path.read_bytes() == later


async def test_recent_refills_after_removals(hass: HomeAssistant, store: EventStore) -> None:
    """The analyser's newest events stay complete when newer ones are deleted."""
    for index in range(30):
        await store.async_add(_event(f"E{index:02d}", at=NOW + timedelta(minutes=index)), None)
    assert [e.event_id for e in store.recent("cam", 3)] == ["E29", "E28", "E27"]
    assert await store.async_delete("E29")
    assert await store.async_delete("E28")
    assert [e.event_id for e in store.recent("cam", 25)] == [f"E{i:02d}" for i in range(27, 7, -1)]
    assert await store.async_clear("cam") == 28
    assert store.recent() == []


async def test_retention_days_count_quota_and_keep(hass: HomeAssistant, event_files: Path) -> None:
    """Each limit removes the oldest events first; kept events are never removed."""
    store = EventStore(hass, "retention", NO_LIMITS)
    await store.async_load()
    now = dt_util.utcnow()
    for index in range(10):
        await store.async_add(
            _event(f"E{index}", at=now - timedelta(days=10 - index)), jpeg(), [jpeg()]
        )
    await store.async_feedback("E0", keep=True)
    removed: list[str] = []
    store.async_listen(lambda kind, event: removed.append(event.event_id))

    store.policy = RetentionPolicy(days=5, max_events=0, max_bytes=0)
    await store.async_upkeep()
    remaining = [e.event_id for e in (await store.async_list(EventFilter()))[0]]
    assert remaining == ["E9", "E8", "E7", "E6", "E0"]  # E5 started 5 days and a moment ago
    assert removed == ["E1", "E2", "E3", "E4", "E5"]
    assert {Path(f).name.split("-")[0] for f in _files(event_files)} == set(remaining)

    # The count limit applies after every add, too.
    store.policy = RetentionPolicy(days=0, max_events=4, max_bytes=0)
    await store.async_add(_event("E10", at=now), None)
    remaining = [e.event_id for e in (await store.async_list(EventFilter()))[0]]
    assert remaining == ["E10", "E9", "E8", "E0"]

    image = store.image_path("E9", "snapshot")
    assert image is not None
    # Room for two events of two images: the kept one counts, the oldest other one goes.
    store.policy = RetentionPolicy(days=0, max_events=0, max_bytes=4 * image.stat().st_size + 1)
    await store.async_upkeep()
    remaining = [e.event_id for e in (await store.async_list(EventFilter()))[0]]
    assert remaining == ["E10", "E9", "E0"]  # E10 has no image: it costs nothing
    stats = await store.async_stats()
    assert stats["events"] == 3
    assert stats["kept"] == 1
    await store.async_close()


async def test_orphan_sweep(hass: HomeAssistant, event_files: Path) -> None:
    """Files without a record go; records whose files were deleted go, unless kept."""
    store = EventStore(hass, "sweep", NO_LIMITS)
    await store.async_load()
    for event_id in ("gone", "partly", "kept", "intact"):
        await store.async_add(_event(event_id), jpeg(), [jpeg()])
    await store.async_add(_event("never"), None)  # a record that never had a file
    await store.async_feedback("kept", keep=True)
    day = event_files / "cam" / _day(NOW)
    for path in (day / "gone-snapshot.jpg", day / "gone-frame0.jpg", day / "partly-frame0.jpg"):
        path.unlink()
    for path in (day / "kept-snapshot.jpg", day / "kept-frame0.jpg"):
        path.unlink()
    (day / "stray-snapshot.jpg").write_bytes(jpeg())
    (day / "intact-frame7.jpg").write_bytes(jpeg())  # not one of the event's images
    (day / "intact-frame0.jpg.tmp").write_bytes(b"half")
    (day / "notes.txt").write_text("the user's own file")
    other = event_files / "other-entry-camera" / "2026-01-01"
    other.mkdir(parents=True)
    (other / "x-snapshot.jpg").write_bytes(jpeg())  # another entry's: not ours to judge

    # The media folder away (a share not mounted yet): nothing is judged, nothing removed.
    aside = event_files.with_name("away")
    _move(event_files, aside)
    await store.async_upkeep(sweep=True)
    assert len((await store.async_list(EventFilter()))[0]) == 5
    _move(aside, event_files)

    await store.async_upkeep(sweep=True)
    events = {e.event_id: e for e in (await store.async_list(EventFilter()))[0]}
    assert set(events) == {"partly", "kept", "intact", "never"}
    assert events["partly"].images == ("snapshot",)
    assert events["kept"].images == ()
    assert _files(event_files) == {
        f"cam/{day.name}/partly-snapshot.jpg",
        f"cam/{day.name}/intact-snapshot.jpg",
        f"cam/{day.name}/intact-frame0.jpg",
        f"cam/{day.name}/notes.txt",
        "other-entry-camera/2026-01-01/x-snapshot.jpg",
    }
    await store.async_close()


@pytest.mark.parametrize("blocker", ["media", "media/hsi", "media/hsi/cam"])
async def test_unwritable_media_folder_keeps_the_record(
    hass: HomeAssistant, event_files: Path, blocker: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A file where a folder must be (root ignores permissions): logged, record kept."""
    base = event_files.parent.parent  # the folder holding .storage and media
    _block(base / blocker)
    store = EventStore(hass, "readonly", NO_LIMITS)
    await store.async_load()
    with caplog.at_level(logging.ERROR):
        stored = await store.async_add(_event("E1"), jpeg(), [jpeg()])
        await store.async_add(_event("E2"), jpeg())
    assert stored.images == ()
    assert [e.event_id for e in (await store.async_list(EventFilter()))[0]] == ["E2", "E1"]
    errors = [r for r in caplog.records if "Cannot store the images" in r.getMessage()]
    assert len(errors) == 1  # once, not per image
    assert (await store.async_stats())["image_write_failing"] is True

    (base / blocker).unlink()
    with caplog.at_level(logging.INFO):
        again = await store.async_add(_event("E3"), jpeg())
    assert again.images == ("snapshot",)
    assert "are stored in" in caplog.text
    await store.async_close()


async def test_reopen_and_corrupt_database(hass: HomeAssistant, event_files: Path) -> None:
    """Records and files come back after a restart; a damaged database is set aside."""
    store = EventStore(hass, "reopen", NO_LIMITS)
    await store.async_load()
    await store.async_add(_event("E1"), jpeg())
    await store.async_feedback("E1", keep=True)
    await store.async_close()
    assert await store.async_add(_event("late"), None) is not None  # closed: logged, no crash

    again = EventStore(hass, "reopen", NO_LIMITS)
    await again.async_load()
    event = await again.async_get("E1")
    assert event is not None
    assert event.keep
    assert event.images == ("snapshot",)
    assert again.recent()[0].event_id == "E1"
    assert again.image_path("E1", "snapshot") is not None
    await again.async_close()

    database, _ = store_module.store_paths(hass, "reopen")  # the test's folder (conftest)
    database.write_bytes(b"this is not a database" * 100)
    broken = EventStore(hass, "reopen", NO_LIMITS)
    await broken.async_load()
    assert await broken.async_list(EventFilter()) == ([], None)
    assert database.with_name(f"{database.name}.corrupt").exists()
    await broken.async_close()


# Through the integration ---------------------------------------------------------------------


async def test_restart_clear_history_and_image_view(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    event_files: Path,
) -> None:
    """Events survive unload and setup; images need auth; clear_history removes the files."""
    fake_server.default_detections = [detection("person", 0.7)]
    event = await action(hass, "analyze", {"entity_id": CAMERA})
    assert event["images"] == ["snapshot", "frame0"]
    assert len(_files(event_files)) == 2

    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done()
    store = setup_entry.runtime_data.store
    restored = await store.async_get(event["event_id"])
    assert restored is not None
    assert restored.as_dict()["image_urls"] == event["image_urls"]

    client = await hass_client()
    for url in event["image_urls"].values():
        response = await client.get(url)
        assert response.status == 200
        assert response.content_type == "image/jpeg"
        assert (await response.read())[:2] == b"\xff\xd8"
    assert (await client.get(f"/api/hsi/events/{event['event_id']}/frame5.jpg")).status == 404
    assert (await client.get("/api/hsi/events/nope/snapshot.jpg")).status == 404
    anonymous = await hass_client_no_auth()
    assert (await anonymous.get(event["snapshot_url"])).status == 401

    assert await action(hass, "clear_history", {}) == {"removed": 1}
    assert _files(event_files) == set()
    assert (await client.get(event["snapshot_url"])).status == 404


async def test_retention_options_apply_at_load(
    hass: HomeAssistant, demo_camera: str, fake_server: FakeServer, event_files: Path
) -> None:
    """The options' history section sets the limits; they apply when the entry loads."""
    entry = make_entry(fake_server.url, options={"history": {"retention_events": 1}})
    await setup_integration(hass, entry)
    store = entry.runtime_data.store
    assert store.policy == RetentionPolicy(days=30, max_events=1, max_bytes=2 * 1024**3)
    fake_server.default_detections = [detection("person", 0.7)]
    await action(hass, "analyze", {"entity_id": CAMERA})
    last = await action(hass, "analyze", {"entity_id": CAMERA})
    assert [e.event_id for e in (await store.async_list(EventFilter()))[0]] == [last["event_id"]]


async def test_history_options(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    """The options flow's history section sets the retention of the reloaded store."""
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    form = voluptuous_serialize.convert(
        result["data_schema"], custom_serializer=cv.custom_serializer
    )
    (section,) = (field for field in form if field["name"] == "history")
    assert section["type"] == "expandable"
    assert {f["name"]: f["default"] for f in section["schema"]} == {
        "retention_days": 30,
        "retention_events": 10_000,
        "retention_gb": 2.0,
    }
    history = {"retention_days": 7, "retention_events": 500, "retention_gb": 0.5}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"alerts": {}, "history": history}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_entry.options["history"] == history
    assert setup_entry.runtime_data.store.policy == RetentionPolicy(7, 500, 512 * 1024**2)


async def test_removing_the_entry_removes_its_files(
    hass: HomeAssistant, setup_entry: MockConfigEntry, fake_server: FakeServer, event_files: Path
) -> None:
    """Deleting the entry deletes its database and its cameras' images, nobody else's."""
    fake_server.default_detections = [detection("person", 0.7)]
    await action(hass, "analyze", {"entity_id": CAMERA})
    gone = event_files / "removed-camera" / "2026-01-01"
    gone.mkdir(parents=True)
    await setup_entry.runtime_data.store.async_add(_event("old", camera="removed-camera"), jpeg())
    other = event_files / "another-entry-camera"
    other.mkdir()
    database, _ = store_module.store_paths(hass, setup_entry.entry_id)
    assert database.exists()
    assert await hass.config_entries.async_remove(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert not database.exists()
    assert _folders(event_files) == ["another-entry-camera"]


async def test_pipeline_with_unwritable_media_folder(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    fake_server: FakeServer,
    event_files: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The pipeline goes on: the event is recorded and announced without image files."""
    _block(event_files)
    fake_server.default_detections = [detection("person", 0.7)]
    event = await action(hass, "analyze", {"entity_id": CAMERA})
    assert event["images"] == []
    assert event["image_urls"] == {}
    stored = await setup_entry.runtime_data.store.async_get(event["event_id"])
    assert stored is not None
    assert stored.risk.risk_score == event["risk_score"]
    assert "Cannot store the images of security events" in caplog.text
