"""Per-camera watcher: triggers → burst of snapshots → /detect → batch → /analyze → event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import (
    async_call_later,
    async_track_state_change_event,
    async_track_time_interval,
)
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import ulid_now

from . import const
from .api import (
    AnalysisResult,
    AnalyzedObject,
    Detection,
    DetectResult,
    HsiAuthError,
    HsiError,
    HsiNotSupportedError,
    HsiResponseError,
    RiskAssessment,
)
from .const import DOMAIN, EVENT_DETECTION, EVENT_SECURITY, LOGGER, OBJECT_GROUPS, RISK_LEVELS
from .history import annotate
from .models import (
    CameraSettings,
    HsiConfigEntry,
    HsiRuntimeData,
    KnownMatch,
    PipelineOptions,
    SecurityEvent,
)
from .notifications import async_notify
from .rules import RuleContext, group_of, score_event

SIGNAL_UPDATE = f"{DOMAIN}_camera_update_{{}}"
SIGNAL_EVENT = f"{DOMAIN}_camera_event_{{}}"


def time_of_day(moment: datetime) -> str:
    """Night / morning / afternoon / evening in local time."""
    hour = dt_util.as_local(moment).hour
    if hour >= 22 or hour < 6:
        return "night"
    if hour < 12:
        return "morning"
    if hour < 18:
        return "afternoon"
    return "evening"


@dataclass(slots=True)
class Frame:
    """One analysed snapshot."""

    image: bytes
    captured_at: datetime
    result: DetectResult | None
    relevant: list[Detection] = field(default_factory=list)
    matches: list[KnownMatch] = field(default_factory=list)
    gallery_ids: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Batch:
    """Frames that will become one security event."""

    event_id: str
    trigger: str
    started_at: datetime
    frames: list[Frame] = field(default_factory=list)
    preliminary: SecurityEvent | None = None

    @property
    def matches(self) -> list[KnownMatch]:
        """Distinct gallery matches over all frames."""
        seen: dict[str, KnownMatch] = {}
        for frame in self.frames:
            for match in frame.matches:
                seen.setdefault(match.entry_id, match)
        return list(seen.values())

    @property
    def gallery_ids(self) -> set[str]:
        """Gallery entries of every object of the batch (matched or new)."""
        return set().union(*(f.gallery_ids for f in self.frames)) if self.frames else set()


def _is_relevant(detection: Detection, classes: tuple[str, ...]) -> bool:
    group = group_of(detection.label)
    return detection.label in classes or (group in classes and group in OBJECT_GROUPS)


class CameraPipeline:
    """Watch one camera and turn what it sees into security events."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HsiConfigEntry,
        runtime: HsiRuntimeData,
        settings: CameraSettings,
    ) -> None:
        """Wire the pipeline; async_start attaches the triggers."""
        self.hass = hass
        self.entry = entry
        self.runtime = runtime
        self.settings = settings
        self.enabled = True
        self.counts: dict[str, int] = dict.fromkeys(OBJECT_GROUPS, 0)
        self.last_event: SecurityEvent | None = None
        self.last_snapshot: bytes | None = None
        self.last_snapshot_at: datetime | None = None
        self.last_inference_ms: float | None = None
        self._batch: Batch | None = None
        self._last_notified: SecurityEvent | None = None
        self._unsubs: list[CALLBACK_TYPE] = []
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._burst_task: asyncio.Task[None] | None = None
        self._analyze_lock = asyncio.Lock()
        self._server_error_logged = False

    @property
    def options(self) -> PipelineOptions:
        """Global behaviour."""
        return self.runtime.options

    @property
    def threat(self) -> bool:
        """Risk at or above the threshold, held for a while after the event."""
        event = self.last_event
        if event is None or event.risk.risk_score < self.options.threat_threshold:
            return False
        return dt_util.utcnow() - event.ended_at <= timedelta(seconds=self.options.threat_hold)

    @property
    def batch_open(self) -> bool:
        """Whether an event is being collected."""
        return self._batch is not None

    # Lifecycle -----------------------------------------------------------------------------

    @callback
    def async_start(self) -> None:
        """Attach the triggers."""
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
        """Detach everything; an open batch becomes a rule-based event (nothing is dropped)."""
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
        batch, self._batch = self._batch, None
        if batch is not None and batch.frames:
            event, frame = self._rules_event(batch, reason="integration unloaded")
            self._async_record(event, frame.image)  # no executor work while unloading

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = self.entry.async_create_task(self.hass, coro, name, eager_start=False)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @callback
    def _notify_entities(self) -> None:
        async_dispatcher_send(self.hass, SIGNAL_UPDATE.format(self.settings.camera_id))

    # Triggers ------------------------------------------------------------------------------

    @callback
    def _on_trigger_state(self, event: Event[EventStateChangedData]) -> None:
        new, old = event.data["new_state"], event.data["old_state"]
        if new is not None and new.state == STATE_ON and (old is None or old.state != STATE_ON):
            self.async_trigger("motion")

    @callback
    def _on_interval(self, _now: datetime) -> None:
        self.async_trigger("interval")

    @callback
    def async_trigger(self, source: str) -> bool:
        """Start a burst unless one is running or analysis is off; True when started."""
        if not self.enabled or (self._burst_task is not None and not self._burst_task.done()):
            return False
        self._burst_task = self._spawn(self._async_burst(source), f"hsi burst {self.settings.name}")
        return True

    # Burst and frames ----------------------------------------------------------------------

    async def _async_snapshot(self) -> bytes:
        if self.settings.camera_entity is None:
            raise HomeAssistantError(translation_domain=DOMAIN, translation_key="no_camera")
        try:
            image = await camera.async_get_image(self.hass, self.settings.camera_entity)
        except HomeAssistantError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="camera_unavailable",
                translation_placeholders={"entity_id": self.settings.camera_entity},
            ) from err
        return image.content

    async def _async_detect(self, image: bytes) -> DetectResult:
        """/detect with embeddings; a busy server is asked again after its Retry-After."""
        for attempt in range(const.DETECT_ATTEMPTS):
            try:
                async with self.runtime.semaphore:
                    return await self.runtime.client.detect(
                        image, confidence=self.settings.confidence, embed=True
                    )
            except HsiResponseError as err:
                if not err.transient or attempt + 1 == const.DETECT_ATTEMPTS:
                    raise
                await asyncio.sleep(min(err.retry_after or 1.0, const.MAX_RETRY_AFTER))
        raise AssertionError("unreachable")  # pragma: no cover

    def _server_failed(self, err: HsiError) -> None:
        if isinstance(err, HsiAuthError):
            self.entry.async_start_reauth(self.hass)
        if not self._server_error_logged:
            LOGGER.warning("HSI server failed for %s: %s", self.settings.name, err)
            self._server_error_logged = True
        self.runtime.coordinator.note_pipeline_failure()

    def _server_ok(self) -> None:
        if self._server_error_logged:
            LOGGER.info("HSI server answers again for %s", self.settings.name)
        self._server_error_logged = False

    async def _async_burst(self, trigger: str) -> None:
        for index in range(self.settings.burst_frames):
            if index:
                await asyncio.sleep(const.DEFAULT_BURST_SPACING)
            if not self.enabled:
                return
            try:
                image = await self._async_snapshot()
            except HomeAssistantError as err:
                LOGGER.debug("No snapshot from %s: %s", self.settings.camera_entity, err)
                return
            captured_at = dt_util.utcnow()
            try:
                result = await self._async_detect(image)
            except HsiError as err:
                self._server_failed(err)
                if self._batch is not None:
                    # Keep the frame: /analyze detects by itself when detections are absent.
                    self._batch.frames.append(Frame(image, captured_at, None))
                return
            self._server_ok()
            self._process_frame(Frame(image, captured_at, result), trigger)

    @callback
    def _process_frame(self, frame: Frame, trigger: str) -> None:
        assert frame.result is not None
        self.last_inference_ms = frame.result.inference_time_ms
        frame.relevant = [
            d for d in frame.result.detections if _is_relevant(d, self.settings.classes)
        ]
        # The id of the event this frame joins (or opens): sightings count once per event.
        event_id = self._batch.event_id if self._batch else ulid_now()
        self._observe(frame, event_id)
        self.counts = dict.fromkeys(OBJECT_GROUPS, 0)
        for detection in frame.relevant:
            group = group_of(detection.label)
            if group in self.counts:
                self.counts[group] += 1
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
                    "counts": dict(self.counts),
                    "known_matches": [m.as_dict() for m in frame.matches],
                    "inference_time_ms": frame.result.inference_time_ms,
                    "captured_at": frame.captured_at.isoformat(),
                },
            )
            self._add_to_batch(frame, trigger, event_id)
        self._notify_entities()

    def _observe(self, frame: Frame, event_id: str) -> None:
        """Re-identify the frame's relevant objects against the gallery."""
        for detection in frame.relevant:
            if detection.embedding is None:
                continue
            gallery_id, match = self.runtime.gallery.observe(
                detection.embedding, detection.label, self.settings.camera_id, event_id
            )
            frame.gallery_ids.add(gallery_id)
            if match is not None:
                frame.matches.append(match)

    # Batching ------------------------------------------------------------------------------

    def _set_timer(self, name: str, delay: float, action: Callable[[datetime], Any]) -> None:
        if (cancel := self._timers.pop(name, None)) is not None:
            cancel()
        self._timers[name] = async_call_later(
            self.hass, delay, HassJob(action, cancel_on_shutdown=True)
        )

    @callback
    def _add_to_batch(self, frame: Frame, trigger: str, event_id: str) -> None:
        if self._batch is None:
            self._batch = Batch(event_id, trigger, frame.captured_at)
            self._set_timer("window", self.options.batch_window, self._on_window)
        batch = self._batch
        if len(batch.frames) < const.MAX_BATCH_FRAMES:
            batch.frames.append(frame)
        else:  # keep the newest frames of long events
            batch.frames = [*batch.frames[1:], frame]
        self._set_timer("idle", self.options.idle_timeout, self._on_idle)
        if batch.preliminary is None and any(
            d.label == "person" and d.confidence >= self.options.fast_path_threshold
            for d in frame.relevant
        ):
            event, snapshot_frame = self._rules_event(batch, reason=None, preliminary=True)
            batch.preliminary = event
            self._spawn(
                self._async_annotate_and_record(event, snapshot_frame),
                f"hsi fast path {self.settings.name}",
            )

    @callback
    def _on_window(self, _now: datetime) -> None:
        self._close_batch()

    @callback
    def _on_idle(self, _now: datetime) -> None:
        self._close_batch()

    @callback
    def _close_batch(self) -> None:
        for name in ("window", "idle"):
            if (cancel := self._timers.pop(name, None)) is not None:
                cancel()
        batch, self._batch = self._batch, None
        # Nothing relevant for the idle timeout (or the window is over): clear occupancy.
        self.counts = dict.fromkeys(OBJECT_GROUPS, 0)
        self._notify_entities()
        if batch is not None:
            self._spawn(self._async_finish_batch(batch), f"hsi analyze {self.settings.name}")

    # Analysis ------------------------------------------------------------------------------

    def _key_frames(self, batch: Batch) -> list[Frame]:
        ranked = sorted(
            range(len(batch.frames)),
            key=lambda i: (
                len(batch.frames[i].relevant),
                max((d.confidence for d in batch.frames[i].relevant), default=0.0),
            ),
            reverse=True,
        )[: const.MAX_KEY_FRAMES]
        return [batch.frames[i] for i in sorted(ranked)]

    def _home_mode(self) -> str | None:
        if self.options.home_mode_entity is None:
            return None
        state = self.hass.states.get(self.options.home_mode_entity)
        return state.state if state is not None else None

    def _metadata(self, batch: Batch, frames: list[Frame]) -> dict[str, Any]:
        ended_at = frames[-1].captured_at
        return {
            "camera": {
                "id": self.settings.camera_id,
                "name": self.settings.name,
                "description": self.settings.description,
            },
            "started_at": batch.started_at.isoformat(),
            "ended_at": ended_at.isoformat(),
            "detections": [
                [d.as_dict() for d in frame.result.detections] if frame.result else None
                for frame in frames
            ]
            if all(f.result is not None for f in frames)
            else None,
            "context": {
                "time_of_day": time_of_day(batch.started_at),
                "home_mode": self._home_mode(),
                "known_matches": [m.as_dict() for m in batch.matches],
                "recent_events": [
                    {
                        "started_at": e.started_at.isoformat(),
                        "risk_level": e.risk.risk_level,
                        "summary": e.risk.summary,
                    }
                    for e in self.runtime.history.recent(self.settings.camera_id, 5)
                    if e.event_id != batch.event_id
                ],
                "zones": self.settings.zones or None,
            },
            "options": {
                "enrich": self.options.enrich,
                "describe": self.options.describe,
                "llm": self.options.llm,
            },
        }

    async def _async_call_analyze(
        self, frames: list[Frame], metadata: dict[str, Any]
    ) -> tuple[AnalysisResult | None, str | None]:
        """Call /analyze with bounded retries; (result, None) or (None, why it failed)."""
        delay = const.ANALYZE_RETRY_DELAY
        reason = "unknown"
        for attempt in range(const.ANALYZE_ATTEMPTS):
            try:
                async with self.runtime.semaphore:
                    result = await self.runtime.client.analyze([f.image for f in frames], metadata)
            except HsiNotSupportedError:
                return None, "server has no /analyze"
            except HsiError as err:
                reason = str(err)
                if isinstance(err, HsiAuthError):
                    self._server_failed(err)
                    return None, reason
                if isinstance(err, HsiResponseError) and err.status < 500 and not err.transient:
                    # The server refused this event (422): the same request would fail again.
                    LOGGER.warning(
                        "HSI server refused the event of %s: %s", self.settings.name, err
                    )
                    return None, reason
                LOGGER.debug(
                    "Analyze attempt %s for %s failed: %s", attempt + 1, self.settings.name, err
                )
                if attempt + 1 < const.ANALYZE_ATTEMPTS:
                    await asyncio.sleep(delay)
                    delay *= 2
                else:
                    self._server_failed(err)
            else:
                self._server_ok()
                return result, None
        return None, reason

    def _rules_event(
        self, batch: Batch, *, reason: str | None, preliminary: bool = False
    ) -> tuple[SecurityEvent, Frame]:
        """A rule-based event from the detections of the batch."""
        frames = [f for f in batch.frames if f.result is not None] or batch.frames
        best = max(frames, key=lambda f: len(f.relevant))
        objects = [AnalyzedObject(d.label, d.confidence, 0, d.bbox) for d in best.relevant]
        ended_at = batch.frames[-1].captured_at
        context = RuleContext(
            camera_name=self.settings.name,
            time_of_day=time_of_day(batch.started_at),
            home_mode=self._home_mode(),
            dwell_seconds=(ended_at - batch.started_at).total_seconds(),
            known_matches=batch.matches,
        )
        risk = score_event([o.label for o in objects], context)
        if reason:
            risk = RiskAssessment.build(
                risk.risk_score,
                risk.summary,
                f"{risk.reasoning} Server analysis unavailable: {reason}.",
                risk_factors=risk.risk_factors,
                recommended_action=risk.recommended_action,
                source="rules",
            )
        event = self._new_event(batch, objects, risk, None, preliminary=preliminary)
        return event, best

    def _new_event(
        self,
        batch: Batch,
        objects: list[AnalyzedObject],
        risk: RiskAssessment,
        description: str | None,
        *,
        preliminary: bool = False,
        timings: dict[str, float] | None = None,
    ) -> SecurityEvent:
        return SecurityEvent(
            event_id=batch.event_id,
            entry_id=self.entry.entry_id,
            camera_id=self.settings.camera_id,
            camera_name=self.settings.name,
            camera_entity=self.settings.camera_entity,
            trigger=batch.trigger,
            started_at=batch.started_at,
            ended_at=batch.frames[-1].captured_at if batch.frames else batch.started_at,
            objects=objects,
            risk=risk,
            description=description,
            known_matches=batch.matches,
            preliminary=preliminary,
            frames=len(batch.frames),
            gallery_ids=batch.gallery_ids,
            server_timings_ms=timings or {},
        )

    async def _async_finish_batch(self, batch: Batch) -> SecurityEvent:
        """Turn a closed batch into one recorded event (server analysis or rules)."""
        async with self._analyze_lock:
            frames = self._key_frames(batch)
            result, failure = await self._async_call_analyze(frames, self._metadata(batch, frames))
            if result is None:
                event, snapshot_frame = self._rules_event(batch, reason=failure)
            else:
                event = self._new_event(
                    batch,
                    result.objects,
                    result.risk,
                    result.description,
                    timings=result.timings_ms,
                )
                counts = [
                    sum(1 for o in result.objects if o.frame == i) for i in range(len(frames))
                ]
                best_index = max(range(len(frames)), key=lambda i: counts[i])
                snapshot_frame = frames[best_index]
                event.objects = result.objects
                return await self._async_annotate_and_record(
                    event, snapshot_frame, [o for o in result.objects if o.frame == best_index]
                )
            return await self._async_annotate_and_record(event, snapshot_frame)

    async def _async_annotate_and_record(
        self,
        event: SecurityEvent,
        frame: Frame,
        objects: list[AnalyzedObject] | None = None,
    ) -> SecurityEvent:
        snapshot = await self.hass.async_add_executor_job(
            annotate, frame.image, event.objects if objects is None else objects
        )
        return self._async_record(event, snapshot)

    async def async_analyze_now(self, trigger: str, image: bytes | None = None) -> SecurityEvent:
        """One-shot analysis (action, button): snapshot, detect, analyze, record.

        Raises HomeAssistantError when no snapshot or no detection can be had.
        """
        if image is None:
            image = await self._async_snapshot()
        captured_at = dt_util.utcnow()
        try:
            result = await self._async_detect(image)
        except HsiError as err:
            self._server_failed(err)
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="server_error",
                translation_placeholders={"error": str(err)},
            ) from err
        self._server_ok()
        frame = Frame(image, captured_at, result)
        frame.relevant = [d for d in result.detections if _is_relevant(d, self.settings.classes)]
        batch = Batch(ulid_now(), trigger, captured_at, [frame])
        self._observe(frame, batch.event_id)
        return await self._async_finish_batch(batch)

    # Recording -----------------------------------------------------------------------------

    @callback
    def _async_record(self, event: SecurityEvent, snapshot: bytes | None) -> SecurityEvent:
        """Store the event, update entities, fire the bus event, notify."""
        previous = self.last_event
        update = previous is not None and previous.event_id == event.event_id
        if update:
            assert previous is not None
            event.notify = previous.risk.risk_level != event.risk.risk_level or (
                previous.preliminary and not previous.notify
            )
        elif (
            previous is not None
            and not previous.preliminary
            and event.gallery_ids
            and event.gallery_ids <= previous.gallery_ids
            and (event.started_at - previous.ended_at).total_seconds() <= self.options.cooldown
            and RISK_LEVELS.index(event.risk.risk_level)
            <= RISK_LEVELS.index(previous.risk.risk_level)
        ):
            # Same visitor again within the cooldown: one event, updated in place.
            event = previous.updated(
                ended_at=event.ended_at,
                occurrences=previous.occurrences + 1,
                frames=previous.frames + event.frames,
                known_matches=event.known_matches or previous.known_matches,
                notify=False,
            )
            update = True
            snapshot = None
        else:
            last = self._last_notified
            event.notify = not (
                last is not None
                and (event.started_at - last.ended_at).total_seconds() <= self.options.cooldown
                and RISK_LEVELS.index(event.risk.risk_level)
                <= RISK_LEVELS.index(last.risk.risk_level)
            )
        if event.notify:
            self._last_notified = event
        self.last_event = event
        if snapshot is not None:
            self.last_snapshot = snapshot
            self.last_snapshot_at = dt_util.utcnow()
        self.runtime.history.add(event, snapshot)
        data = event.as_dict() | {"update": update}
        self.hass.bus.async_fire(EVENT_SECURITY, data)
        async_dispatcher_send(self.hass, SIGNAL_EVENT.format(self.settings.camera_id), event)
        self._notify_entities()
        if event.risk.risk_score >= self.options.threat_threshold:
            self._set_timer("threat", self.options.threat_hold + 0.1, self._on_threat_hold)
        if event.notify and self.options.notify_service:
            self._spawn(
                async_notify(self.hass, self.options.notify_service, event),
                f"hsi notify {self.settings.name}",
            )
        return event

    @callback
    def _on_threat_hold(self, _now: datetime) -> None:
        self._timers.pop("threat", None)
        self._notify_entities()
