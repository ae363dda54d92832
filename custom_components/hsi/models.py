"""Data shared by the pipeline, the stores and the entities."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, Self

from hsi_client import (
    CAMERA_DEFAULT_CLASSES,
    AnalyzedObject,
    Flag,
    HsiClient,
    KnownMatch,
    RiskAssessment,
    RiskFactor,
)

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.util import dt as dt_util

from .const import (
    ALERT_DEFAULTS,
    CONF_BATCH_WINDOW,
    CONF_BURST_FRAMES,
    CONF_CAMERA,
    CONF_CLASSES,
    CONF_CONDITION_ENTITY,
    CONF_CONDITION_STATES,
    CONF_CONFIDENCE,
    CONF_COOLDOWN,
    CONF_DASHBOARD_PATH,
    CONF_DESCRIBE,
    CONF_DESCRIPTION,
    CONF_ENRICH,
    CONF_FAST_PATH_THRESHOLD,
    CONF_HOME_MODE_ENTITY,
    CONF_IDLE_TIMEOUT,
    CONF_INTERVAL,
    CONF_LLM,
    CONF_MATCH_THRESHOLD,
    CONF_NOTIFY_MIN_LEVEL,
    CONF_NOTIFY_SERVICE,
    CONF_QUIET_END,
    CONF_QUIET_MODE,
    CONF_QUIET_START,
    CONF_THREAT_HOLD,
    CONF_THREAT_THRESHOLD,
    CONF_TRIGGER,
    CONF_ZONES,
    DEFAULT_BURST_FRAMES,
    DEFAULT_CONFIDENCE,
    DEFAULT_INTERVAL,
    MAX_ALERTS_REMEMBERED,
    OPTION_DEFAULTS,
    ROUTE_KEYS,
    SECTION_ALERTS,
)

if TYPE_CHECKING:
    from .analyzer import Analyzer
    from .coordinator import HsiServerCoordinator
    from .gallery import Gallery
    from .notifications import Notifier
    from .store import EventStore
    from .watcher import CameraWatcher


@dataclass(frozen=True, slots=True)
class CameraSettings:
    """Settings of one camera (a config subentry)."""

    camera_id: str
    name: str
    camera_entity: str | None
    trigger_entity: str | None = None
    interval: int = DEFAULT_INTERVAL
    description: str = ""
    classes: tuple[str, ...] = CAMERA_DEFAULT_CLASSES
    confidence: float = DEFAULT_CONFIDENCE
    zones: str = ""
    burst_frames: int = DEFAULT_BURST_FRAMES

    @classmethod
    def from_subentry(cls, subentry: ConfigSubentry) -> Self:
        """Read a camera subentry."""
        data = subentry.data
        return cls(
            camera_id=subentry.subentry_id,
            name=subentry.title,
            camera_entity=data[CONF_CAMERA],
            trigger_entity=data.get(CONF_TRIGGER) or None,
            interval=int(data.get(CONF_INTERVAL, DEFAULT_INTERVAL)),
            description=data.get(CONF_DESCRIPTION, ""),
            classes=tuple(data.get(CONF_CLASSES) or CAMERA_DEFAULT_CLASSES),
            confidence=float(data.get(CONF_CONFIDENCE, DEFAULT_CONFIDENCE)),
            zones=data.get(CONF_ZONES, ""),
            burst_frames=int(data.get(CONF_BURST_FRAMES, DEFAULT_BURST_FRAMES)),
        )


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """Global behaviour (the entry's options; defaults in const.OPTION_DEFAULTS)."""

    batch_window: float
    idle_timeout: float
    fast_path_threshold: float
    cooldown: float
    enrich: bool
    describe: bool
    llm: bool
    home_mode_entity: str | None
    match_threshold: float
    threat_threshold: int
    threat_hold: float
    notify_targets: tuple[str, ...]  # notify action names; none: persistent notifications
    notify_min_level: str
    alerts: AlertSettings

    @classmethod
    def from_entry(cls, entry: ConfigEntry) -> Self:
        """Read the entry's options, with defaults."""
        opts: dict[str, Any] = OPTION_DEFAULTS | dict(entry.options)
        return cls(
            batch_window=float(opts[CONF_BATCH_WINDOW]),
            idle_timeout=float(opts[CONF_IDLE_TIMEOUT]),
            fast_path_threshold=float(opts[CONF_FAST_PATH_THRESHOLD]),
            cooldown=float(opts[CONF_COOLDOWN]),
            enrich=bool(opts[CONF_ENRICH]),
            describe=bool(opts[CONF_DESCRIBE]),
            llm=bool(opts[CONF_LLM]),
            home_mode_entity=opts[CONF_HOME_MODE_ENTITY] or None,
            match_threshold=float(opts[CONF_MATCH_THRESHOLD]),
            threat_threshold=int(opts[CONF_THREAT_THRESHOLD]),
            threat_hold=float(opts[CONF_THREAT_HOLD]),
            notify_targets=parse_targets(opts[CONF_NOTIFY_SERVICE]),
            notify_min_level=str(opts[CONF_NOTIFY_MIN_LEVEL]),
            alerts=AlertSettings.from_options(opts.get(SECTION_ALERTS) or {}),
        )


def parse_targets(value: str | list[str] | None) -> tuple[str, ...]:
    """Notify targets; before the picker the option held one name as text."""
    names = [value] if isinstance(value, str) else list(value or ())
    return tuple(n.strip().removeprefix("notify.") for n in names if n and n.strip())


def _time(value: Any) -> time | None:
    return dt_util.parse_time(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """The options flow's alerts section (defaults in const.ALERT_DEFAULTS)."""

    routes: dict[str, str]  # risk level -> route (policy.Route values)
    condition_entity: str | None
    condition_states: tuple[str, ...]
    quiet_start: time | None
    quiet_end: time | None
    quiet_mode: str
    dashboard_path: str

    @classmethod
    def from_options(cls, section: Mapping[str, Any]) -> Self:
        """Read the section, with defaults."""
        opts: dict[str, Any] = ALERT_DEFAULTS | dict(section)
        return cls(
            routes={level: str(opts[key]) for level, key in ROUTE_KEYS.items()},
            condition_entity=opts[CONF_CONDITION_ENTITY] or None,
            condition_states=tuple(str(s) for s in opts[CONF_CONDITION_STATES] or ()),
            quiet_start=_time(opts[CONF_QUIET_START]),
            quiet_end=_time(opts[CONF_QUIET_END]),
            quiet_mode=str(opts[CONF_QUIET_MODE]),
            dashboard_path=str(opts[CONF_DASHBOARD_PATH] or ALERT_DEFAULTS[CONF_DASHBOARD_PATH]),
        )


@dataclass(slots=True)
class SecurityEvent:
    """One security event: the outcome of one batch of frames."""

    event_id: str
    camera_id: str
    camera_name: str
    camera_entity: str | None
    trigger: str
    started_at: datetime
    ended_at: datetime
    objects: list[AnalyzedObject]
    risk: RiskAssessment
    description: str | None = None
    known_matches: list[KnownMatch] = field(default_factory=list)
    preliminary: bool = False
    frames: int = 1
    occurrences: int = 1
    notify: bool = True
    server_timings_ms: dict[str, float] = field(default_factory=dict)
    entry_id: str = ""
    gallery_ids: set[str] = field(default_factory=set)
    # Feedback (the store's async_feedback) and the stored images, set by the event store.
    acknowledged: bool = False
    false_alarm: bool = False
    keep: bool = False  # retention skips it
    identity: str | None = None  # the enrolled name feedback gave the event
    images: tuple[str, ...] = ()  # "snapshot", "frame0", ...: the stored JPEG files

    @property
    def counts(self) -> dict[str, int]:
        """Objects per class."""
        counts: dict[str, int] = {}
        for obj in self.objects:
            counts[obj.label] = counts.get(obj.label, 0) + 1
        return counts

    @property
    def snapshot_url(self) -> str:
        """Authenticated URL of the annotated snapshot."""
        return self.image_url("snapshot")

    def image_url(self, image: str) -> str:
        """Path of one stored image; it needs HA auth (a bearer token or a signed path)."""
        return f"/api/hsi/events/{self.event_id}/{image}.jpg"

    def as_dict(self) -> dict[str, Any]:
        """Shape of bus events, action responses and the history."""
        return {
            "event_id": self.event_id,
            "entry_id": self.entry_id,
            "camera_id": self.camera_id,
            "camera": self.camera_name,
            "camera_entity": self.camera_entity,
            "trigger": self.trigger,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "risk_score": self.risk.risk_score,
            "risk_level": self.risk.risk_level,
            "summary": self.risk.summary,
            "reasoning": self.risk.reasoning,
            "risk_factors": [f.as_dict() for f in self.risk.risk_factors],
            "recommended_action": self.risk.recommended_action,
            "source": self.risk.source,
            "flags": [f.as_dict() for f in self.risk.flags],
            "description": self.description,
            "objects": [o.as_dict() for o in self.objects],
            "counts": self.counts,
            "known_matches": [m.as_dict() for m in self.known_matches],
            "preliminary": self.preliminary,
            "frames": self.frames,
            "occurrences": self.occurrences,
            "notify": self.notify,
            "snapshot_url": self.snapshot_url,
            "gallery_ids": sorted(self.gallery_ids),
            "server_timings_ms": self.server_timings_ms,
            "acknowledged": self.acknowledged,
            "false_alarm": self.false_alarm,
            "keep": self.keep,
            "identity": self.identity,
            "images": list(self.images),
            "image_urls": {name: self.image_url(name) for name in self.images},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Restore a stored event (the event store)."""
        return cls(
            event_id=data["event_id"],
            entry_id=data.get("entry_id", ""),
            camera_id=data["camera_id"],
            camera_name=data["camera"],
            camera_entity=data.get("camera_entity"),
            trigger=data.get("trigger", ""),
            started_at=datetime.fromisoformat(data["started_at"]),
            ended_at=datetime.fromisoformat(data["ended_at"]),
            objects=[AnalyzedObject.from_dict(o) for o in data.get("objects", [])],
            risk=RiskAssessment.build(
                data["risk_score"],
                data.get("summary", ""),
                data.get("reasoning", ""),
                risk_factors=tuple(RiskFactor.from_dict(f) for f in data.get("risk_factors", [])),
                recommended_action=data.get("recommended_action"),
                source=data.get("source", "rules"),
                flags=tuple(Flag.from_dict(f) for f in data.get("flags") or []),
            ),
            description=data.get("description"),
            known_matches=[KnownMatch.from_dict(m) for m in data.get("known_matches", [])],
            preliminary=data.get("preliminary", False),
            frames=data.get("frames", 1),
            occurrences=data.get("occurrences", 1),
            notify=data.get("notify", True),
            gallery_ids=set(data.get("gallery_ids", [])),
            server_timings_ms=dict(data.get("server_timings_ms") or {}),
            acknowledged=bool(data.get("acknowledged", False)),
            false_alarm=bool(data.get("false_alarm", False)),
            keep=bool(data.get("keep", False)),
            identity=data.get("identity"),
            images=tuple(data.get("images") or ()),
        )

    def updated(self, **changes: Any) -> SecurityEvent:
        """Return a copy with changes."""
        return replace(self, **changes)


@dataclass(slots=True)
class HsiRuntimeData:
    """What setup wires together, in ConfigEntry.runtime_data."""

    client: HsiClient
    coordinator: HsiServerCoordinator
    gallery: Gallery
    store: EventStore
    options: PipelineOptions
    analyzer: Analyzer
    notifier: Notifier
    watchers: dict[str, CameraWatcher] = field(default_factory=dict)
    # Recent alerts of every camera: the cooldown is per identity, across cameras.
    alerts: deque[SecurityEvent] = field(
        default_factory=lambda: deque(maxlen=MAX_ALERTS_REMEMBERED)
    )


type HsiConfigEntry = ConfigEntry[HsiRuntimeData]
