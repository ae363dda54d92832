"""Websocket API of the security timeline: list, get, subscribe, feedback, cameras, delete.

The card (and any other client) reads the event stores of every loaded entry through these
commands. Image paths in the event dicts are signed for the connection's refresh token, so an
`<img src>` loads without a bearer header while nothing is served unauthenticated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from functools import wraps
import heapq
import time
from typing import Any, Final

from hsi_client import GROUPS, RISK_LEVELS, group_of
import voluptuous as vol

from homeassistant.components.http.auth import async_sign_path
from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.const import (
    ERR_INVALID_FORMAT,
    ERR_NOT_FOUND,
    AsyncWebSocketCommandHandler,
)
from homeassistant.components.websocket_api.decorators import (
    async_response,
    require_admin,
    websocket_command,
)
from homeassistant.components.websocket_api.messages import event_message
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import CONF_CAMERA, DOMAIN, SUBENTRY_CAMERA
from .gallery import Gallery
from .models import HsiConfigEntry, SecurityEvent
from .store import EventFilter, EventStore, decode_cursor, encode_cursor

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
# Long enough for a card left open a while; the card asks again (hsi/events/get) after that.
SIGNED_URL_LIFETIME: Final = timedelta(hours=1)
# Signing costs ~35 µs a path (an HS256 JWT) and a page of 50 events has up to 200 paths, most
# of a list's time: a signature is reused while at least half its lifetime is left, so paging
# back and forth signs once. The bound only keeps memory small; clearing costs one re-sign.
SIGNED_PATHS: Final[HassKey[dict[tuple[str | None, str], tuple[str, float]]]] = HassKey(
    f"{DOMAIN}_signed_paths"
)
MAX_SIGNED_PATHS: Final = 20_000
SOURCES: Final = ("llm", "rules")

ERR_NO_EMBEDDING: Final = "no_embedding"

# Feedback actions and what each writes through EventStore.async_feedback. Saying "false alarm"
# or "this is Alice" answers the event, so both acknowledge it too.
ACTION_IDENTITY: Final = "identity"
FEEDBACK: Final[Mapping[str, Mapping[str, bool]]] = {
    "acknowledge": {"acknowledged": True},
    "unacknowledge": {"acknowledged": False},
    "false_alarm": {"false_alarm": True, "acknowledged": True},
    "keep": {"keep": True},
    "unkeep": {"keep": False},
    ACTION_IDENTITY: {"acknowledged": True},
}

type SortKey = tuple[datetime, str]


class CommandError(Exception):
    """A websocket error answer: a code and a message for the caller."""

    def __init__(self, code: str, message: str) -> None:
        """Remember the code and the message."""
        super().__init__(message)
        self.code = code
        self.message = message


# Schemas --------------------------------------------------------------------------------------


def _moment(value: Any) -> datetime:
    """An ISO date-time; one without an offset is local time, as the frontend shows it."""
    moment = cv.datetime(value)
    return dt_util.as_utc(moment)


def _cursor(value: Any) -> str:
    """A cursor from an earlier page; any entry's store understands it (a position)."""
    text = cv.string(value)
    try:
        decode_cursor(text)
    except ValueError as err:
        raise vol.Invalid("invalid cursor") from err
    return text


def _time_range(data: dict[str, Any]) -> dict[str, Any]:
    if "start" in data and "end" in data and data["start"] >= data["end"]:
        raise vol.Invalid("start must be before end")
    return data


def _identity_name(data: dict[str, Any]) -> dict[str, Any]:
    if (data["action"] == ACTION_IDENTITY) != ("name" in data):
        raise vol.Invalid("name is required with action identity, and only with it")
    return data


FILTER_FIELDS: Final[dict[vol.Marker, Any]] = {
    vol.Optional("entry_id"): cv.string,
    # An empty list filters nothing: a card with no camera chosen shows every camera.
    vol.Optional("cameras"): vol.All(cv.ensure_list, [cv.string]),
    vol.Optional("min_level"): vol.In(RISK_LEVELS),
    vol.Optional("start"): _moment,
    vol.Optional("end"): _moment,
    vol.Optional("source"): vol.In(SOURCES),
    vol.Optional("acknowledged"): bool,
}


def _filter(msg: dict[str, Any]) -> EventFilter:
    return EventFilter(
        cameras=frozenset(msg["cameras"]) if msg.get("cameras") else None,
        min_level=msg.get("min_level"),
        start=msg.get("start"),
        end=msg.get("end"),
        source=msg.get("source"),
        acknowledged=msg.get("acknowledged"),
    )


# Helpers --------------------------------------------------------------------------------------


def _entries(hass: HomeAssistant, entry_id: str | None = None) -> list[HsiConfigEntry]:
    """The loaded entries, or the one named (not_found when it is not loaded)."""
    entries: list[HsiConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    if entry_id is None:
        return entries
    entries = [e for e in entries if e.entry_id == entry_id]
    if not entries:
        raise CommandError(ERR_NOT_FOUND, f"No loaded HSI entry {entry_id}")
    return entries


async def _find(hass: HomeAssistant, event_id: str) -> tuple[HsiConfigEntry, SecurityEvent]:
    for entry in _entries(hass):
        if (event := await entry.runtime_data.store.async_get(event_id)) is not None:
            return entry, event
    raise CommandError(ERR_NOT_FOUND, f"No event {event_id}")


def event_dict(
    hass: HomeAssistant, event: SecurityEvent, refresh_token_id: str | None
) -> dict[str, Any]:
    """The event as the API shows it: image paths signed for this connection."""
    data = event.as_dict()
    urls = {
        name: _signed(hass, path, refresh_token_id)
        for name, path in data.get("image_urls", {}).items()
    }
    data["image_urls"] = urls
    if "snapshot" in urls:
        data["snapshot_url"] = urls["snapshot"]
    return data


def _signed(hass: HomeAssistant, path: str, refresh_token_id: str | None) -> str:
    """The path signed for a refresh token, valid for at least half of SIGNED_URL_LIFETIME."""
    cache = hass.data.setdefault(SIGNED_PATHS, {})
    now = time.time()  # the signature's own clock
    if (hit := cache.get((refresh_token_id, path))) is not None and hit[1] > now:
        return hit[0]
    if len(cache) >= MAX_SIGNED_PATHS:
        cache.clear()
    signed = async_sign_path(hass, path, SIGNED_URL_LIFETIME, refresh_token_id=refresh_token_id)
    cache[(refresh_token_id, path)] = (signed, now + SIGNED_URL_LIFETIME.total_seconds() / 2)
    return signed


def _sort_key(event: SecurityEvent) -> SortKey:
    return event.started_at, event.event_id


def _embedding_of(event: SecurityEvent, gallery: Gallery, group: str) -> tuple[str, Any] | None:
    """(label, embedding) of the event's object of a group, from the gallery entries its
    sightings made (stored events keep no embeddings)."""
    seen = [
        entry
        for gallery_id in event.gallery_ids
        if (entry := gallery.entries.get(gallery_id)) is not None
        and not entry.enrolled
        and group_of(entry.label) == group
    ]
    if not seen:
        return None
    # Several people in one event: the one seen most often is the likeliest subject.
    entry = max(seen, key=lambda e: len(e.sightings))
    return entry.label, entry.embedding


def _group(label: str) -> str:
    """An enrolled entry's group: enrolment stores the group itself ("person", "vehicle")."""
    return label if label in GROUPS else group_of(label)


# Commands -------------------------------------------------------------------------------------


def _handler(
    func: AsyncWebSocketCommandHandler,
) -> AsyncWebSocketCommandHandler:
    """Answer a CommandError with its code and message."""

    @wraps(func)
    async def run(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
        try:
            await func(hass, connection, msg)
        except CommandError as err:
            connection.send_error(msg["id"], err.code, err.message)

    return run


@websocket_command(
    vol.All(
        vol.Schema(
            {
                vol.Required("type"): "hsi/events/list",
                **FILTER_FIELDS,
                vol.Optional("cursor"): _cursor,
                vol.Optional("limit", default=DEFAULT_LIMIT): vol.All(
                    int, vol.Range(min=1, max=MAX_LIMIT)
                ),
            }
        ),
        _time_range,
    )
)
@async_response
@_handler
async def ws_list(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """Events of every loaded entry (or one), newest first, merged, one page at a time."""
    entries = _entries(hass, msg.get("entry_id"))
    flt = _filter(msg)
    limit: int = msg["limit"]
    # A cursor is a position in the (started_at, event_id) order that every store pages from,
    # so each entry's page starts after it and the pages merge in that same order.
    pages = await asyncio.gather(
        *(
            e.runtime_data.store.async_list(flt, cursor=msg.get("cursor"), limit=limit)
            for e in entries
        )
    )
    merged = list(heapq.merge(*(events for events, _ in pages), key=_sort_key, reverse=True))
    events = merged[:limit]
    more = len(merged) > limit or any(cursor is not None for _, cursor in pages)
    token = connection.refresh_token_id
    connection.send_result(
        msg["id"],
        {
            "events": [event_dict(hass, e, token) for e in events],
            "next_cursor": encode_cursor(*_sort_key(events[-1])) if more else None,
        },
    )


@websocket_command({vol.Required("type"): "hsi/events/get", vol.Required("event_id"): cv.string})
@async_response
@_handler
async def ws_get(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """One event (its image paths signed anew)."""
    _, event = await _find(hass, msg["event_id"])
    connection.send_result(
        msg["id"], {"event": event_dict(hass, event, connection.refresh_token_id)}
    )


class _Subscription:
    """One hsi/events/subscribe: listens to the store of every loaded entry it covers.

    A reload (options changed, a camera added) replaces an entry's store: the subscription
    follows the entries' state, so a card stays live across reloads.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        connection: ActiveConnection,
        msg_id: int,
        flt: EventFilter,
        entry_id: str | None,
    ) -> None:
        self._hass = hass
        self._connection = connection
        self._msg_id = msg_id
        self._filter = flt
        # What an update can change (level, source, acknowledged) left out: an updated event
        # that matches this but not the filter has just left the subscriber's view.
        self._unchanging = replace(flt, min_level=None, source=None, acknowledged=None)
        self._entry_id = entry_id
        self._stores: dict[str, tuple[EventStore, CALLBACK_TYPE]] = {}
        self._unsub_entries = async_dispatcher_connect(
            hass, SIGNAL_CONFIG_ENTRY_CHANGED, self._entry_changed
        )

    @callback
    def attach(self, entry: HsiConfigEntry) -> None:
        """Listen to the entry's current store."""
        store = entry.runtime_data.store
        if (current := self._stores.get(entry.entry_id)) is not None:
            if current[0] is store:
                return
            current[1]()
        self._stores[entry.entry_id] = (store, store.async_listen(self._event))

    @callback
    def _entry_changed(self, change: ConfigEntryChange, entry: ConfigEntry) -> None:
        if entry.domain != DOMAIN or self._entry_id not in (None, entry.entry_id):
            return
        if entry.state is ConfigEntryState.LOADED and change is not ConfigEntryChange.REMOVED:
            self.attach(entry)
        elif (current := self._stores.pop(entry.entry_id, None)) is not None:
            current[1]()

    @callback
    def _event(self, kind: str, event: SecurityEvent) -> None:
        if not self._filter.matches(event):
            if kind != "updated" or not self._unchanging.matches(event):
                return
            kind = "removed"
        self._connection.send_message(
            event_message(
                self._msg_id,
                {
                    "kind": kind,
                    "event": event_dict(self._hass, event, self._connection.refresh_token_id),
                },
            )
        )

    @callback
    def close(self) -> None:
        """The connection closed or the client unsubscribed."""
        self._unsub_entries()
        for _, unsub in self._stores.values():
            unsub()
        self._stores.clear()


@websocket_command(
    vol.All(
        vol.Schema({vol.Required("type"): "hsi/events/subscribe", **FILTER_FIELDS}),
        _time_range,
    )
)
@callback
def ws_subscribe(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """Live events: {kind: added|updated|removed, event} for the events the filters match.

    `updated` can be the first message about an event (an update brought it into the filters,
    e.g. a preliminary event rescored higher); `removed` also names an event that an update
    took out of them (acknowledged while the filter asks for unacknowledged ones).
    """
    try:
        entries = _entries(hass, msg.get("entry_id"))
    except CommandError as err:
        connection.send_error(msg["id"], err.code, err.message)
        return
    subscription = _Subscription(hass, connection, msg["id"], _filter(msg), msg.get("entry_id"))
    for entry in entries:
        subscription.attach(entry)
    connection.subscriptions[msg["id"]] = subscription.close
    connection.send_result(msg["id"])


@websocket_command(
    vol.All(
        vol.Schema(
            {
                vol.Required("type"): "hsi/events/feedback",
                vol.Required("event_id"): cv.string,
                vol.Required("action"): vol.In(list(FEEDBACK)),
                vol.Optional("name"): vol.All(cv.string, vol.Length(min=1, max=100)),
            }
        ),
        _identity_name,
    )
)
@async_response
@_handler
async def ws_feedback(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """Acknowledge, false alarm, keep, or "this is NAME" (an enrolled name) for one event.

    "this is NAME" also enrols the event's person (or vehicle, animal: the group of the name)
    in the entry's gallery under that name, so the next sighting is recognised.
    """
    entry, event = await _find(hass, msg["event_id"])
    changes: dict[str, Any] = dict(FEEDBACK[msg["action"]])
    if msg["action"] == ACTION_IDENTITY:
        gallery = entry.runtime_data.gallery
        names = {e.name.casefold(): e for e in gallery.enrolled if e.name}
        if (enrolled := names.get(msg["name"].casefold())) is None:
            known = ", ".join(sorted({e.name for e in names.values() if e.name})) or "none"
            raise CommandError(
                ERR_INVALID_FORMAT,
                f"{msg['name']} is not enrolled (enrolled: {known})",
            )
        group = _group(enrolled.label)
        if (found := _embedding_of(event, gallery, group)) is None:
            raise CommandError(
                ERR_NO_EMBEDDING, f"Event {event.event_id} has no {group} to remember"
            )
        label, embedding = found
        assert enrolled.name is not None  # names holds named entries only
        gallery.enroll(enrolled.name, label, embedding)
        changes["identity"] = enrolled.name
    try:
        event = await entry.runtime_data.store.async_feedback(event.event_id, **changes)
    except KeyError as err:  # removed meanwhile
        raise CommandError(ERR_NOT_FOUND, f"No event {event.event_id}") from err
    connection.send_result(
        msg["id"], {"event": event_dict(hass, event, connection.refresh_token_id)}
    )


@websocket_command({vol.Required("type"): "hsi/cameras"})
@callback
def ws_cameras(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """The configured cameras of every loaded entry (the card's editor and filters)."""
    cameras = [
        {
            "camera_id": subentry.subentry_id,
            "name": subentry.title,
            "entry_id": entry.entry_id,
            "camera_entity": subentry.data.get(CONF_CAMERA),
        }
        for entry in _entries(hass)
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_CAMERA
    ]
    # The names "this is …" feedback accepts (the card offers them).
    enrolled = sorted(
        {e.name for entry in _entries(hass) for e in entry.runtime_data.gallery.enrolled if e.name}
    )
    connection.send_result(msg["id"], {"cameras": cameras, "enrolled": enrolled})


@websocket_command({vol.Required("type"): "hsi/events/delete", vol.Required("event_id"): cv.string})
@require_admin
@async_response
@_handler
async def ws_delete(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """Delete one event, its record and its images (administrators only)."""
    for entry in _entries(hass):
        if await entry.runtime_data.store.async_delete(msg["event_id"]):
            connection.send_result(msg["id"], {"event_id": msg["event_id"]})
            return
    raise CommandError(ERR_NOT_FOUND, f"No event {msg['event_id']}")


@callback
def async_setup_websocket_api(hass: HomeAssistant) -> None:
    """Register the commands (once, from async_setup)."""
    for command in (ws_list, ws_get, ws_subscribe, ws_feedback, ws_cameras, ws_delete):
        async_register_command(hass, command)
