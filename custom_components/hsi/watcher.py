"""Per-camera watcher: triggers → bursts of snapshots → batch → event → published state.

The only part that talks to cameras and owns timers. What to batch is the batcher's call, how to
record an event the policy's, and the server calls are the analyser's; the watcher wires them to
Home Assistant and publishes one immutable CameraState per change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from hsi_client import GROUPS, HsiError, group_of

from homeassistant.components import camera
from homeassistant.const import STATE_ON
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HassJob,
    HomeAssistant,
    callback,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import (
    async_call_later,
    async_track_state_change_event,
    async_track_time_interval,
)
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import ulid_now

from . import const
from .analyzer import Analyzer, Outcome
from .batcher import Batch, EventBatcher, Frame
from .const import DOMAIN, EVENT_DETECTION, LOGGER
from .coordinator import CameraState, HsiCameraCoordinator
from .events import async_publish_event
from .models import CameraSettings, HsiConfigEntry, PipelineOptions, SecurityEvent
from .policy import Action, decide, is_threat


async def async_snapshot(hass: HomeAssistant, entity_id: str | None) -> bytes:
    """A camera's current picture; HomeAssistantError (translated) when there is none."""
    if entity_id is None:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="no_camera")
    try:
        return (await camera.async_get_image(hass, entity_id)).content
    except HomeAssistantError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="camera_unavailable",
            translation_placeholders={"entity_id": entity_id},
        ) from err


def server_error(err: HsiError) -> HomeAssistantError:
    """The error an action or button raises when the server fails."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="server_error",
        translation_placeholders={"error": str(err)},
    )


class CameraWatcher:
    """Watch one camera and turn what it sees into security events."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HsiConfigEntry,
        analyzer: Analyzer,
        settings: CameraSettings,
    ) -> None:
        """Wire the watcher; async_start attaches the triggers."""
        self.hass = hass
        self.entry = entry
        self.analyzer = analyzer
        self.settings = settings
        self.coordinator = HsiCameraCoordinator(hass, entry, settings.name)
        self._batcher = EventBatcher(const.MAX_BATCH_FRAMES)
        # The last stored event again after a restart: its sensors, the threat hold and
        # the repeat/update decisions carry on where they were (the store is loaded by now).
        last = analyzer.store.recent(settings.camera_id, limit=1)
        self._state = CameraState(last_event=last[0] if last else None)
        self._state = replace(self._state, threat=self._threat_now(self._state))
        self.coordinator.data = self._state
        self._unsubs: list[CALLBACK_TYPE] = []
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._burst_task: asyncio.Task[None] | None = None
        self._analyze_lock = asyncio.Lock()  # one camera's events are recorded in order
        # Closed batches whose analysis has not been recorded yet: flushed by the rules when
        # the integration stops before their /analyze answers (nothing is dropped).
        self._analysing: dict[str, Batch] = {}
        # Events being stored: a stop waits for them before the store closes.
        self._publishing: set[asyncio.Task[None]] = set()

    @property
    def options(self) -> PipelineOptions:
        """Global behaviour."""
        return self.analyzer.options

    @property
    def state(self) -> CameraState:
        """What the entities show now."""
        return self._state

    # Lifecycle -----------------------------------------------------------------------------

    @callback
    def async_start(self) -> None:
        """Attach the triggers (and end a restored threat when its hold runs out)."""
        if self._state.threat and (last := self._state.last_event) is not None:
            left = self.options.threat_hold - (dt_util.utcnow() - last.ended_at).total_seconds()
            self._set_timer("threat", max(left, 0) + 0.1, self._on_threat_hold)
        if self.settings.trigger_entity:
            self._unsubs.append(
                async_track_state_change_event(
                    self.hass, [self.settings.trigger_entity], self._on_trigger_state
                )
            )
        if self.settings.interval > 0:
            self._unsubs.append(
                async_track_time_interval(
                    self.hass,
                    self._on_interval,
                    timedelta(seconds=self.settings.interval),
                    name=f"hsi interval {self.settings.name}",
                )
            )

    async def async_stop(self) -> None:
        """Detach everything; an open batch, and a closed one whose analysis is still running,
        becomes a rule-based event (nothing is dropped)."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        unfinished = list(self._analysing.values())
        self._analysing.clear()
        batch = self._batcher.close()
        if batch is not None and batch.frames:
            unfinished.append(batch)
        for batch in unfinished:
            event, frame = self.analyzer.rules_event(
                batch, self.settings, reason="integration unloaded"
            )
            self._record(Outcome(event, frame.image))  # no executor work while unloading
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = self.entry.async_create_task(self.hass, coro, name, eager_start=False)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @callback
    def _publish(self, **changes: Any) -> None:
        """Publish a new state: the changes, with the threat recomputed for now."""
        state = replace(self._state, **changes)
        self._state = replace(state, threat=self._threat_now(state))
        self.coordinator.async_set_updated_data(self._state)

    def _threat_now(self, state: CameraState) -> bool:
        return is_threat(
            state.last_event,
            dt_util.utcnow(),
            self.options.threat_threshold,
            self.options.threat_hold,
        )

    @callback
    def async_set_enabled(self, enabled: bool) -> None:
        """Turn analysis on or off (the switch)."""
        self._publish(enabled=enabled)

    # Triggers ------------------------------------------------------------------------------

    @callback
    def _on_trigger_state(self, event: Event[EventStateChangedData]) -> None:
        new, old = event.data["new_state"], event.data["old_state"]
        on = new is not None and new.state == STATE_ON
        if on and (old is None or old.state != STATE_ON):
            self.async_trigger("motion")
            self._set_repeat(const.MOTION_REPEAT)
        elif not on:
            self._set_repeat(None)

    def _set_repeat(self, every: timedelta | None) -> None:
        """Look again every `every` while the trigger stays on (None: stop)."""
        if (cancel := self._timers.pop("repeat", None)) is not None:
            cancel()
        if every is not None:
            self._timers["repeat"] = async_track_time_interval(
                self.hass, self._on_repeat, every, name=f"hsi motion {self.settings.name}"
            )

    @callback
    def _on_repeat(self, _now: datetime) -> None:
        self.async_trigger("motion", frames=1)

    @callback
    def _on_interval(self, _now: datetime) -> None:
        self.async_trigger("interval")

    @callback
    def async_trigger(self, source: str, frames: int | None = None) -> bool:
        """Start a burst (of the camera's burst size, or `frames`) unless one is running or
        analysis is off; True when started."""
        if not self._state.enabled or (
            self._burst_task is not None and not self._burst_task.done()
        ):
            return False
        count = self.settings.burst_frames if frames is None else frames
        self._burst_task = self._spawn(
            self._async_burst(source, count), f"hsi burst {self.settings.name}"
        )
        return True

    # Burst and frames ----------------------------------------------------------------------

    async def _async_burst(self, trigger: str, frames: int) -> None:
        for index in range(frames):
            if index:
                await asyncio.sleep(const.DEFAULT_BURST_SPACING)
            if not self._state.enabled:
                return
            try:
                image = await async_snapshot(self.hass, self.settings.camera_entity)
            except HomeAssistantError as err:
                LOGGER.debug("No snapshot from %s: %s", self.settings.camera_entity, err)
                return
            captured_at = dt_util.utcnow()
            try:
                result = await self.analyzer.detect(image, self.settings.confidence)
            except HsiError:
                # Keep the frame: /analyze detects by itself when detections are absent.
                self._batcher.add_unanalysed(Frame(image, captured_at, None))
                return
            frame = self.analyzer.frame(image, captured_at, result, self.settings)
            self._process_frame(frame, trigger)

    @callback
    def _process_frame(self, frame: Frame, trigger: str) -> None:
        assert frame.result is not None
        # The id of the event this frame joins (or opens): sightings count once per event.
        event_id = self._batcher.event_id or ulid_now()
        self.analyzer.observe(frame, self.settings.camera_id, event_id)
        counts = dict.fromkeys(GROUPS, 0)
        for detection in frame.relevant:
            if (group := group_of(detection.label)) in counts:
                counts[group] += 1
        if frame.relevant:
            self.hass.bus.async_fire(
                EVENT_DETECTION,
                {
                    "entry_id": self.entry.entry_id,
                    "camera_id": self.settings.camera_id,
                    "camera": self.settings.name,
                    "camera_entity": self.settings.camera_entity,
                    "trigger": trigger,
                    "objects": [d.as_dict() for d in frame.relevant],
                    "counts": counts,
                    "known_matches": [m.as_dict() for m in frame.matches],
                    "inference_time_ms": frame.result.inference_time_ms,
                    "captured_at": frame.captured_at.isoformat(),
                },
            )
            added = self._batcher.add(frame, trigger, event_id, self.options.fast_path_threshold)
            if added.opened:
                self._set_timer("window", self.options.batch_window, self._on_batch_timer)
            self._set_timer("idle", self.options.idle_timeout, self._on_batch_timer)
            if added.fast_path and self._batcher.batch is not None:
                # The preliminary event: rules on what the batch holds now.
                event, best = self.analyzer.rules_event(
                    self._batcher.batch, self.settings, reason=None, preliminary=True
                )
                self._spawn(
                    self._async_record_drawn(event, best), f"hsi fast path {self.settings.name}"
                )
        self._publish(
            counts=counts,
            batch_open=self._batcher.batch is not None,
            inference_ms=frame.result.inference_time_ms,
        )

    # Batching ------------------------------------------------------------------------------

    def _set_timer(self, name: str, delay: float, action: Callable[[datetime], Any]) -> None:
        if (cancel := self._timers.pop(name, None)) is not None:
            cancel()
        self._timers[name] = async_call_later(
            self.hass, delay, HassJob(action, cancel_on_shutdown=True)
        )

    @callback
    def _on_batch_timer(self, _now: datetime) -> None:
        """The window is over or nothing relevant came for the idle timeout: close the batch."""
        for name in ("window", "idle"):
            if (cancel := self._timers.pop(name, None)) is not None:
                cancel()
        batch = self._batcher.close()
        self._publish(counts=dict.fromkeys(GROUPS, 0), batch_open=False)  # occupancy clears
        if batch is not None:
            self._spawn(self._async_finish(batch), f"hsi analyze {self.settings.name}")

    # Events --------------------------------------------------------------------------------

    async def _async_record_drawn(self, event: SecurityEvent, frame: Frame) -> None:
        self._record(Outcome(event, await self.analyzer.snapshot(frame, event.objects)))

    async def _async_finish(self, batch: Batch) -> SecurityEvent:
        self._analysing[batch.event_id] = batch
        async with self._analyze_lock:
            outcome = await self.analyzer.analyze(batch, self.settings)
            del self._analysing[batch.event_id]
            return self._record(outcome)

    async def async_analyze_now(self, trigger: str) -> SecurityEvent:
        """One-shot analysis (action, button): snapshot, detect, analyze, record.

        Raises HomeAssistantError when no snapshot or no detection can be had.
        """
        image = await async_snapshot(self.hass, self.settings.camera_entity)
        try:
            outcome = await self.analyzer.analyze_picture(image, self.settings, trigger)
        except HsiError as err:
            raise server_error(err) from err
        async with self._analyze_lock:
            return self._record(outcome)

    @callback
    def _record(self, outcome: Outcome) -> SecurityEvent:
        """Decide how the event enters the record, publish it and the camera's new state."""
        alerts = self.entry.runtime_data.alerts
        decision = decide(
            outcome.event,
            self._state.last_event,
            alerts,
            self.options.cooldown,
            self.options.notify_min_level,
        )
        event = decision.event
        # A repeat keeps the first visit's snapshot (its record's, unless that was cleared).
        repeat = decision.action is Action.REPEAT
        snapshot = None if repeat else outcome.snapshot
        if event.notify:
            alerts.append(event)
        changes: dict[str, Any] = {"last_event": event}
        if snapshot is not None:
            changes |= {"snapshot": snapshot, "snapshot_at": dt_util.utcnow()}
        publishing = async_publish_event(
            self.hass,
            self.entry,
            event,
            outcome.snapshot,
            update=decision.update,
            frames=outcome.frames,
            keep_images=repeat,
        )
        self._publishing.add(publishing)
        publishing.add_done_callback(self._publishing.discard)
        self._publish(**changes)
        if event.risk.risk_score >= self.options.threat_threshold:
            self._set_timer("threat", self.options.threat_hold + 0.1, self._on_threat_hold)
        return event

    @callback
    def _on_threat_hold(self, _now: datetime) -> None:
        self._timers.pop("threat", None)
        self._publish()
