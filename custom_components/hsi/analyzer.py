"""Turning frames into security events through the server: detect, re-identify, analyse.

One analyser per server (config entry), shared by every camera's watcher and by the actions:
it owns the server calls and their retries, the `/analyze` metadata, the rules fallback when the
server cannot analyse, and the annotated snapshot. It keeps no per-camera state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from hsi_client import (
    AnalysisResult,
    AnalyzedObject,
    AnalyzeOptions,
    CameraInfo,
    DetectResult,
    EventContext,
    EventMetadata,
    HsiAuthError,
    HsiClient,
    HsiError,
    HsiNotSupportedError,
    HsiResponseError,
    RecentEvent,
    RiskAssessment,
    is_wanted,
    rules,
    split_zones,
    time_of_day,
)

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import ulid_now

from . import const
from .annotate import annotate
from .batcher import Batch, Frame
from .const import LOGGER
from .coordinator import HsiServerCoordinator
from .gallery import Gallery
from .models import CameraSettings, HsiConfigEntry, PipelineOptions, SecurityEvent
from .store import EventStore


@dataclass(frozen=True, slots=True)
class Outcome:
    """A security event, its annotated snapshot (None: keep the previous one) and key frames.

    The key frames are the pictures /analyze saw: the store keeps them beside the snapshot.
    """

    event: SecurityEvent
    snapshot: bytes | None
    frames: tuple[bytes, ...] = ()


class Analyzer:
    """Server calls and event building for one config entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HsiConfigEntry,
        client: HsiClient,
        coordinator: HsiServerCoordinator,
        gallery: Gallery,
        store: EventStore,
        options: PipelineOptions,
    ) -> None:
        """Wire the analyser to the entry's client and stores."""
        self.hass = hass
        self.entry = entry
        self.client = client
        self.coordinator = coordinator
        self.gallery = gallery
        self.store = store
        self.options = options
        # Separate budgets: a slow /analyze never delays the next frame's /detect.
        self._detects = asyncio.Semaphore(const.MAX_CONCURRENT_DETECTS)
        self._analyses = asyncio.Semaphore(const.MAX_CONCURRENT_ANALYSES)
        self._failing = False  # log a failing server once, and once when it answers again

    # Server health -------------------------------------------------------------------------

    def server_failed(self, err: HsiError) -> None:
        """A call failed: reauth on a refused key, poll the server soon, log once.

        A server still downloading or loading its models answers 503 on purpose: that is
        logged at debug level only and counts as no failure.
        """
        if isinstance(err, HsiResponseError) and err.transient and self.coordinator.loading:
            LOGGER.debug("HSI server %s is still loading its models: %s", self.client.url, err)
            return
        if isinstance(err, HsiAuthError):
            self.entry.async_start_reauth(self.hass)
        if not self._failing:
            LOGGER.warning("HSI server %s failed: %s", self.client.url, err)
            self._failing = True
        self.coordinator.note_pipeline_failure()

    def _server_ok(self) -> None:
        if self._failing:
            LOGGER.info("HSI server %s answers again", self.client.url)
        self._failing = False

    # Frames --------------------------------------------------------------------------------

    async def detect(self, image: bytes, confidence: float) -> DetectResult:
        """/detect with embeddings; a busy server is asked again after its Retry-After."""
        for attempt in range(const.DETECT_ATTEMPTS):
            try:
                async with self._detects:
                    result = await self.client.detect(image, confidence=confidence, embed=True)
            except HsiError as err:
                last = attempt + 1 == const.DETECT_ATTEMPTS
                if isinstance(err, HsiResponseError) and err.transient and not last:
                    await asyncio.sleep(min(err.retry_after or 1.0, const.MAX_RETRY_AFTER))
                    continue
                self.server_failed(err)
                raise
            self._server_ok()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def frame(
        image: bytes, captured_at: datetime, result: DetectResult, settings: CameraSettings
    ) -> Frame:
        """A detected frame with the objects this camera watches for."""
        relevant = [d for d in result.detections if is_wanted(d.label, settings.classes)]
        return Frame(image, captured_at, result, relevant)

    def observe(self, frame: Frame, camera_id: str, event_id: str) -> None:
        """Re-identify the frame's relevant objects against the gallery."""
        for detection in frame.relevant:
            if detection.embedding is None:
                continue
            gallery_id, match = self.gallery.observe(
                detection.embedding, detection.label, camera_id, event_id
            )
            frame.gallery_ids.add(gallery_id)
            if match is not None:
                frame.matches.append(match)

    # Events --------------------------------------------------------------------------------

    def _home_mode(self) -> str | None:
        if self.options.home_mode_entity is None:
            return None
        state = self.hass.states.get(self.options.home_mode_entity)
        return state.state if state is not None else None

    def metadata(
        self, batch: Batch, frames: list[Frame], settings: CameraSettings
    ) -> EventMetadata:
        """What /analyze (and the rules) know about the event."""
        detected = all(f.result is not None for f in frames)
        return EventMetadata(
            camera=CameraInfo(settings.camera_id, settings.name, settings.description),
            started_at=batch.started_at,
            ended_at=batch.ended_at,  # the whole event, not its key frames: dwell counts
            detections=tuple(
                tuple(d.in_frame(i) for d in f.result.detections)
                for i, f in enumerate(frames)
                if f.result is not None
            )
            if detected
            else None,
            context=EventContext(
                time_of_day=time_of_day(dt_util.as_local(batch.started_at)),
                home_mode=self._home_mode(),
                known_matches=tuple(batch.matches),
                recent_events=tuple(
                    RecentEvent(e.started_at.isoformat(), e.risk.risk_level, e.risk.summary)
                    for e in self.store.recent(settings.camera_id, 5)
                    if e.event_id != batch.event_id
                ),
                zones=split_zones(settings.zones),
            ),
            options=AnalyzeOptions(
                enrich=self.options.enrich, describe=self.options.describe, llm=self.options.llm
            ),
        )

    def _event(
        self,
        batch: Batch,
        settings: CameraSettings,
        objects: list[AnalyzedObject],
        risk: RiskAssessment,
        *,
        description: str | None = None,
        preliminary: bool = False,
        timings: dict[str, float] | None = None,
    ) -> SecurityEvent:
        return SecurityEvent(
            event_id=batch.event_id,
            entry_id=self.entry.entry_id,
            camera_id=settings.camera_id,
            camera_name=settings.name,
            camera_entity=settings.camera_entity,
            trigger=batch.trigger,
            started_at=batch.started_at,
            ended_at=batch.ended_at,
            objects=objects,
            risk=risk,
            description=description,
            known_matches=batch.matches,
            preliminary=preliminary,
            frames=len(batch.frames),
            gallery_ids=batch.gallery_ids,
            server_timings_ms=timings or {},
        )

    def rules_event(
        self,
        batch: Batch,
        settings: CameraSettings,
        *,
        reason: str | None,
        preliminary: bool = False,
    ) -> tuple[SecurityEvent, Frame]:
        """A rule-based event from the detections of the batch, and its snapshot frame."""
        best, objects = batch.best_frame()
        risk = rules.score(objects, self.metadata(batch, batch.frames, settings))
        if reason:
            risk = RiskAssessment.build(
                risk.risk_score,
                risk.summary,
                f"{risk.reasoning} Server analysis unavailable: {reason}.",
                source="rules",
                risk_factors=risk.risk_factors,
                flags=risk.flags,
                entities=risk.entities,
                recommended_action=risk.recommended_action,
            )
        return self._event(batch, settings, objects, risk, preliminary=preliminary), best

    async def snapshot(self, frame: Frame, objects: list[AnalyzedObject]) -> bytes:
        """The frame with the objects' boxes drawn on it (in the executor)."""
        return await self.hass.async_add_executor_job(annotate, frame.image, objects)

    async def _call_analyze(
        self, frames: list[Frame], metadata: EventMetadata, camera: str
    ) -> tuple[AnalysisResult | None, str | None]:
        """Call /analyze with bounded retries; (result, None) or (None, why it failed)."""
        delay = const.ANALYZE_RETRY_DELAY
        reason = "unknown"
        for attempt in range(const.ANALYZE_ATTEMPTS):
            try:
                async with self._analyses:
                    result = await self.client.analyze([f.image for f in frames], metadata)
            except HsiNotSupportedError:
                return None, "server has no /analyze"
            except HsiError as err:
                reason = str(err)
                if isinstance(err, HsiAuthError):
                    self.server_failed(err)
                    return None, reason
                if isinstance(err, HsiResponseError) and err.status < 500 and not err.transient:
                    # The server refused this event (422): the same request would fail again.
                    LOGGER.warning("HSI server refused the event of %s: %s", camera, err)
                    return None, reason
                LOGGER.debug("Analyze attempt %s for %s failed: %s", attempt + 1, camera, err)
                if attempt + 1 < const.ANALYZE_ATTEMPTS:
                    await asyncio.sleep(delay)
                    delay *= 2
                else:
                    self.server_failed(err)
            else:
                self._server_ok()
                return result, None
        return None, reason

    async def analyze(self, batch: Batch, settings: CameraSettings) -> Outcome:
        """A closed batch as one event: the server's analysis, or the rules when it fails."""
        frames = batch.frames_to_analyze(const.MAX_KEY_FRAMES)
        result, failure = await self._call_analyze(
            frames, self.metadata(batch, frames, settings), settings.name
        )
        key_frames = tuple(f.image for f in frames)
        if result is None:
            event, frame = self.rules_event(batch, settings, reason=failure)
            return Outcome(event, await self.snapshot(frame, event.objects), key_frames)
        event = self._event(
            batch,
            settings,
            result.objects,
            result.risk,
            description=result.description,
            timings=result.timings_ms,
        )
        counts = [sum(1 for o in result.objects if o.frame == i) for i in range(len(frames))]
        best = max(range(len(frames)), key=lambda i: counts[i])
        objects = [o for o in result.objects if o.frame == best]
        return Outcome(event, await self.snapshot(frames[best], objects), key_frames)

    async def analyze_picture(
        self, image: bytes, settings: CameraSettings, trigger: str
    ) -> Outcome:
        """One picture as one event (actions, button): detect, re-identify, analyse.

        Raises HsiError when the server cannot detect.
        """
        captured_at = dt_util.utcnow()
        result = await self.detect(image, settings.confidence)
        frame = self.frame(image, captured_at, result, settings)
        batch = Batch(ulid_now(), trigger, frame.captured_at, [frame])
        self.observe(frame, settings.camera_id, batch.event_id)
        return await self.analyze(batch, settings)
