"""Alerts: routing by risk, one notification per incident, snooze, conditions, buttons.

What to send is `policy.plan_alert`'s call (pure); this module asks Home Assistant what the
decision needs (snooze, the condition entity, the local time), builds the payload of each
notify target's platform and handles the notification buttons.

- Targets: notify actions (`notify.<name>`); with none configured, or when every target fails,
  a persistent notification (the notification drawer) carries the alert.
- Companion apps (`mobile_app_*`) get the snapshot as a relative path, which the app fetches with
  its own credentials, the iOS interruption level / critical sound or the Android channel,
  priority and ttl of the route, and the buttons. iOS and Android are told apart through the
  mobile_app config entry of the device; an unknown one gets both platforms' keys (each app
  ignores the other's).
- Anything else (e-mail, chat bots, ...) is outside the app: it gets absolute links, the image
  signed for ALERT_LINK_TTL (`async_sign_path`), never an unauthenticated URL.
- Buttons travel as `mobile_app_notification_action` events: `HSI_SNOOZE_1H|<camera_id>`,
  `HSI_FALSE_ALARM|<event_id>`, `HSI_KNOWN|<event_id>` (text input: the name) and `URI` (opens
  the event in the timeline card: `<dashboard>?hsi_event=<event_id>`, handled by the app).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime
from enum import StrEnum
from typing import Any

from hsi_client import group_of
import voluptuous as vol

from homeassistant.components import persistent_notification
from homeassistant.components.http.auth import async_sign_path
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.util import dt as dt_util, slugify

from .const import (
    ACTION_FALSE_ALARM,
    ACTION_KNOWN,
    ACTION_SNOOZE_1H,
    ALERT_LINK_TTL,
    DOMAIN,
    LOGGER,
    MAX_SENT_REMEMBERED,
    SIGNAL_SNOOZE,
    SNOOZE_BUTTON,
)
from .gallery import Gallery
from .models import HsiConfigEntry, PipelineOptions, SecurityEvent
from .policy import AlertPlan, AlertRules, QuietMode, Route, Sent, plan_alert

MOBILE_APP_ACTION_EVENT = "mobile_app_notification_action"
# How long a stopping Home Assistant waits for alerts on their way (HA gives its stop 100 s).
DRAIN_TIMEOUT = 15


class TargetPlatform(StrEnum):
    """The kind of notify target, which decides the payload."""

    IOS = "ios"
    ANDROID = "android"
    MOBILE_APP = "mobile_app"  # a companion app of unknown OS
    PERSISTENT = "persistent_notification"
    OTHER = "other"


MOBILE_PLATFORMS = frozenset(
    {TargetPlatform.IOS, TargetPlatform.ANDROID, TargetPlatform.MOBILE_APP}
)
# iOS `push.interruption-level` per route.
IOS_LEVELS: dict[Route, str] = {
    Route.PASSIVE: "passive",
    Route.ACTIVE: "active",
    Route.TIME_SENSITIVE: "time-sensitive",
    Route.CRITICAL: "critical",
}
# Android: one notification channel per route, so people can tune each in Android's settings;
# `ttl: 0` + `priority: high` deliver at once (FCM), `alarm_stream` sounds in silent mode.
ANDROID_ROUTES: dict[Route, dict[str, Any]] = {
    Route.PASSIVE: {"channel": "hsi_passive", "importance": "low"},
    Route.ACTIVE: {"channel": "hsi_alert", "importance": "default", "priority": "high", "ttl": 0},
    Route.TIME_SENSITIVE: {
        "channel": "hsi_urgent",
        "importance": "high",
        "priority": "high",
        "ttl": 0,
    },
    Route.CRITICAL: {"channel": "alarm_stream", "priority": "high", "ttl": 0},
}


def target_platform(hass: HomeAssistant, service: str) -> TargetPlatform:
    """What kind of target `notify.<service>` is."""
    if service == "persistent_notification":
        return TargetPlatform.PERSISTENT
    if not service.startswith("mobile_app_"):
        return TargetPlatform.OTHER
    # mobile_app names its notify action after the device: mobile_app_<slug of device name>.
    for entry in hass.config_entries.async_entries("mobile_app"):
        if f"mobile_app_{slugify(entry.data.get('device_name', ''))}" == service:
            os_name = str(entry.data.get("os_name", "")).casefold()
            if os_name in ("ios", "ipados", "macos"):
                return TargetPlatform.IOS
            if os_name == "android":
                return TargetPlatform.ANDROID
    return TargetPlatform.MOBILE_APP


def deep_link(dashboard_path: str, event_id: str) -> str:
    """The dashboard path that opens one event in the timeline card."""
    path = "/" + dashboard_path.strip().strip("/")
    return f"{path}?hsi_event={event_id}"


def title_of(event: SecurityEvent) -> str:
    """`Front door: high risk (72)`."""
    return f"{event.camera_name}: {event.risk.risk_level} risk ({event.risk.risk_score})"


def message_of(event: SecurityEvent) -> str:
    """The summary, marked while only the fast path has seen the event."""
    prefix = "Preliminary: " if event.preliminary else ""
    return f"{prefix}{event.risk.summary}"


def mobile_actions(
    event: SecurityEvent, link: str, platform: TargetPlatform
) -> list[dict[str, Any]]:
    """The buttons; Android shows three, so its "open" is a tap on the notification."""
    actions: list[dict[str, Any]] = [
        {"action": f"{ACTION_SNOOZE_1H}|{event.camera_id}", "title": "Snooze camera 1 h"},
        {"action": f"{ACTION_FALSE_ALARM}|{event.event_id}", "title": "False alarm"},
        {
            "action": f"{ACTION_KNOWN}|{event.event_id}",
            "title": "Known person…",
            "behavior": "textInput",
            "textInputButtonTitle": "Save",
            "textInputPlaceholder": "Enrolled name",
        },
    ]
    if platform is not TargetPlatform.ANDROID:
        actions.append({"action": "URI", "title": "Open", "uri": link})
    return actions


def mobile_payload(
    event: SecurityEvent, plan: AlertPlan, platform: TargetPlatform, link: str
) -> dict[str, Any]:
    """The notify data of a companion app (iOS, Android, or both when the OS is unknown)."""
    data: dict[str, Any] = {
        "tag": plan.tag,
        "group": f"hsi-{event.camera_id}",
        # Relative: the app fetches it with its own credentials; nothing leaves it signed.
        "image": event.snapshot_url,
        "event_id": event.event_id,
        "actions": mobile_actions(event, link, platform),
    }
    if platform is not TargetPlatform.ANDROID:
        push: dict[str, Any] = {"interruption-level": IOS_LEVELS[plan.route]}
        if plan.route is Route.CRITICAL:
            push["sound"] = {"name": "default", "critical": 1, "volume": 1.0}
        data["push"] = push
        data["url"] = link
    if platform is not TargetPlatform.IOS:
        data |= ANDROID_ROUTES[plan.route]
        data["clickAction"] = link
        if plan.replaces and plan.route is Route.PASSIVE:
            data["alert_once"] = True  # the replacement does not ring again
    return {"title": title_of(event), "message": message_of(event), "data": data}


class Notifier:
    """Alerts of one config entry: the ledger of notifications out and the cameras' snoozes."""

    def __init__(
        self, hass: HomeAssistant, entry: HsiConfigEntry, options: PipelineOptions
    ) -> None:
        """Empty ledger; snoozes come back with the "Snoozed until" entities."""
        self.hass = hass
        self.entry = entry
        self.options = options
        settings = options.alerts
        self.rules = AlertRules(
            routes={level: Route(route) for level, route in settings.routes.items()},
            min_level=options.notify_min_level,
            cooldown=options.cooldown,
            quiet_start=settings.quiet_start,
            quiet_end=settings.quiet_end,
            quiet_mode=QuietMode(settings.quiet_mode),
        )
        self.ledger: OrderedDict[str, Sent] = OrderedDict()
        self.snoozes: dict[str, datetime] = {}
        self._lock = asyncio.Lock()  # sends go out in the order events were recorded
        self._cleared: set[str] = set()  # tags cleared after feedback
        self._sending: set[asyncio.Task[None]] = set()  # alerts on their way (async_drain)

    # Snooze ----------------------------------------------------------------------------------

    def snoozed_until(self, camera_id: str) -> datetime | None:
        """When the camera's snooze ends, if it is snoozed now."""
        until = self.snoozes.get(camera_id)
        return until if until is not None and until > dt_util.utcnow() else None

    @callback
    def async_snooze(self, camera_id: str, until: datetime | None) -> None:
        """Snooze a camera until a moment (None or a past moment: not snoozed)."""
        if until is None or until <= dt_util.utcnow():
            self.snoozes.pop(camera_id, None)
        else:
            # Whole seconds: what the entity's state shows is exactly the end.
            self.snoozes[camera_id] = dt_util.as_utc(until).replace(microsecond=0)
        async_dispatcher_send(self.hass, SIGNAL_SNOOZE.format(camera_id))

    # Conditions ------------------------------------------------------------------------------

    def condition_met(self) -> bool:
        """Whether the alert condition entity (if any) is in one of the given states."""
        settings = self.options.alerts
        if settings.condition_entity is None or not settings.condition_states:
            return True
        state = self.hass.states.get(settings.condition_entity)
        return state is not None and state.state in settings.condition_states

    # Alerts ----------------------------------------------------------------------------------

    @callback
    def async_event(self, event: SecurityEvent) -> AlertPlan | None:
        """A recorded event: plan its alert, note it in the ledger, send it in the background."""
        plan = plan_alert(
            event,
            self.ledger,
            self.rules,
            now=dt_util.now(),
            snoozed_until=self.snoozed_until(event.camera_id),
            condition_met=self.condition_met(),
        )
        if plan is None:
            return None
        self.ledger[event.event_id] = Sent.of(event, plan.tag)
        self.ledger.move_to_end(event.event_id)
        while len(self.ledger) > MAX_SENT_REMEMBERED:
            self.ledger.popitem(last=False)
        sending = self.entry.async_create_background_task(
            self.hass, self._async_send(event, plan), f"hsi notify {event.camera_name}"
        )
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)
        return plan

    async def async_drain(self) -> None:
        """Wait for the alerts on their way (Home Assistant stopping: an event recorded at the
        stop still alerts, before the process ends and takes the background task with it)."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=DRAIN_TIMEOUT)

    @callback
    def async_on_store(self, kind: str, event: SecurityEvent) -> None:
        """Store listener: an event marked a false alarm or acknowledged clears its notification.

        From the card, a button or another phone: the notification disappears everywhere.
        """
        if kind != "updated" or not (event.false_alarm or event.acknowledged):
            return
        if (sent := self.ledger.get(event.event_id)) is None or sent.tag in self._cleared:
            return
        self._cleared.add(sent.tag)
        self.entry.async_create_background_task(
            self.hass, self._async_clear(sent.tag), f"hsi clear {sent.tag}"
        )

    async def _async_clear(self, tag: str) -> None:
        async with self._lock:
            persistent_notification.async_dismiss(self.hass, tag)
            for service in self.options.notify_targets:
                if target_platform(self.hass, service) in MOBILE_PLATFORMS:
                    try:
                        await self._async_call(
                            service, {"message": "clear_notification", "data": {"tag": tag}}
                        )
                    except (HomeAssistantError, vol.Invalid) as err:
                        LOGGER.debug("Cannot clear %s through notify.%s: %s", tag, service, err)

    async def _async_send(self, event: SecurityEvent, plan: AlertPlan) -> None:
        async with self._lock:
            delivered = False
            for service in self.options.notify_targets:
                platform = target_platform(self.hass, service)
                try:
                    if platform is TargetPlatform.PERSISTENT:
                        self._persistent(event, plan)
                    elif platform is TargetPlatform.OTHER:
                        await self._async_other(service, event, plan)
                    else:
                        link = deep_link(self.options.alerts.dashboard_path, event.event_id)
                        await self._async_call(service, mobile_payload(event, plan, platform, link))
                except (HomeAssistantError, vol.Invalid, ValueError) as err:
                    LOGGER.warning("Cannot send HSI alert through notify.%s: %s", service, err)
                else:
                    delivered = True
            if not delivered:
                # No target, or none worked: the alert still reaches the notification drawer.
                self._persistent(event, plan)

    async def _async_call(self, service: str, payload: dict[str, Any]) -> None:
        await self.hass.services.async_call("notify", service, payload, blocking=True)

    def _signed(self, event: SecurityEvent) -> str | None:
        """A signed snapshot path that works without a login until ALERT_LINK_TTL."""
        try:
            return async_sign_path(
                self.hass, event.snapshot_url, ALERT_LINK_TTL, use_content_user=True
            )
        except KeyError:  # HTTP auth not set up (no web server): no link at all
            return None

    def _absolute(self, path: str) -> str:
        """An absolute URL; the external one first: these links are read away from home too."""
        try:
            return get_url(self.hass, prefer_external=True) + path
        except NoURLAvailableError:
            return path

    async def _async_other(self, service: str, event: SecurityEvent, plan: AlertPlan) -> None:
        """A platform outside the companion apps: absolute links, the image signed."""
        link = self._absolute(deep_link(self.options.alerts.dashboard_path, event.event_id))
        signed = self._signed(event)
        image = self._absolute(signed) if signed else None
        message = f"{message_of(event)}\n{link}"
        data: dict[str, Any] = {"tag": plan.tag, "group": f"hsi-{event.camera_id}", "url": link}
        if image is not None:
            data["image"] = image
        payload = {"title": title_of(event), "message": message, "data": data}
        try:
            await self._async_call(service, payload)
        except vol.Invalid:
            # Some platforms accept no (or only their own) data keys: the text carries the link.
            await self._async_call(service, {"title": payload["title"], "message": message})

    def _persistent(self, event: SecurityEvent, plan: AlertPlan) -> None:
        """The notification drawer; the tag is the notification id, so updates replace it."""
        link = deep_link(self.options.alerts.dashboard_path, event.event_id)
        lines = [message_of(event)]
        if (signed := self._signed(event)) is not None:
            lines.append(f"![Snapshot]({signed})")
        lines.append(f"[Open in the timeline]({link})")
        persistent_notification.async_create(
            self.hass, "\n\n".join(lines), title_of(event), notification_id=plan.tag
        )


# Buttons -----------------------------------------------------------------------------------


def known_name(gallery: Gallery, name: str) -> str:
    """An enrolled name as it was enrolled (typed in any case), or the new name as typed."""
    names = {e.name.casefold(): e.name for e in gallery.enrolled if e.name}
    return names.get(name.casefold(), name)


def enroll_from_event(gallery: Gallery, event: SecurityEvent, name: str) -> bool:
    """Enrol the event's person under `name`, so the next sighting is recognised.

    As the card's feedback does: the person re-identified in the event (the one seen most often
    when there are several). False when the event has no person to remember.
    """
    seen = [
        found
        for gallery_id in event.gallery_ids
        if (found := gallery.entries.get(gallery_id)) is not None
        and not found.enrolled
        and group_of(found.label) == "person"
    ]
    if not seen:
        return False
    subject = max(seen, key=lambda entry: len(entry.sightings))
    gallery.enroll(name, subject.label, subject.embedding)
    return True


async def async_handle_action(hass: HomeAssistant, event: Event) -> None:
    """A notification button was pressed in a companion app."""
    kind, _, target = str(event.data.get("action", "")).partition("|")
    if kind not in (ACTION_SNOOZE_1H, ACTION_FALSE_ALARM, ACTION_KNOWN) or not target:
        return  # another integration's button
    entries: list[HsiConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    for entry in entries:
        runtime = entry.runtime_data
        if kind == ACTION_SNOOZE_1H:
            if target in runtime.watchers:
                runtime.notifier.async_snooze(target, dt_util.utcnow() + SNOOZE_BUTTON)
                return
            continue
        try:
            if kind == ACTION_FALSE_ALARM:
                await runtime.store.async_feedback(target, false_alarm=True)
                return
            typed = str(event.data.get("reply_text") or "").strip()
            if not typed:
                LOGGER.warning("Known person button for event %s without a name", target)
                return
            name = known_name(runtime.gallery, typed)
            recorded = await runtime.store.async_feedback(target, identity=name)
        except KeyError:
            continue  # another entry's event
        if not enroll_from_event(runtime.gallery, recorded, name):
            LOGGER.info("Event %s has no re-identified person to enrol as %s", target, name)
        return
    LOGGER.warning("Notification button %s: %s is unknown (deleted?)", kind, target)


@callback
def async_setup_actions(hass: HomeAssistant) -> None:
    """Listen to notification buttons once, for every entry."""

    async def _on_action(event: Event) -> None:
        await async_handle_action(hass, event)

    hass.bus.async_listen(MOBILE_APP_ACTION_EVENT, _on_action)
