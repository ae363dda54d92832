"""Wire types of the HSI server contract: what goes to the server and what comes back.

Parsing is lenient where the meaning is clear (numbers as strings, missing optional parts); the
server validates requests strictly on its side and builds these same types from them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from .risk import RiskAssessment, as_float
from .timeofday import time_of_day


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A box in pixel coordinates of its image."""

    x: float
    y: float
    width: float
    height: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a contract bbox."""
        return cls(
            x=as_float(data.get("x")),
            y=as_float(data.get("y")),
            width=as_float(data.get("width")),
            height=as_float(data.get("height")),
        )

    def as_dict(self) -> dict[str, float]:
        """The contract shape, to a tenth of a pixel."""
        return {
            "x": round(self.x, 1),
            "y": round(self.y, 1),
            "width": round(self.width, 1),
            "height": round(self.height, 1),
        }


def _count(value: Any, default: int) -> int:
    """A whole number from an answer (numbers as strings too); `default` for NaN, inf or junk."""
    number = as_float(value, default)
    return int(number) if math.isfinite(number) else default


def _embedding(value: Any) -> tuple[float, ...] | None:
    return tuple(map(float, value)) if value else None


@dataclass(frozen=True, slots=True)
class Detection:
    """One object found by /detect."""

    label: str
    confidence: float
    bbox: BoundingBox
    embedding: tuple[float, ...] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse one entry of `detections`."""
        return cls(
            label=str(data["class"]),
            confidence=as_float(data.get("confidence")),
            bbox=BoundingBox.from_dict(data.get("bbox") or {}),
            embedding=_embedding(data.get("embedding")),
        )

    def as_dict(self) -> dict[str, Any]:
        """The contract shape without the embedding."""
        return {
            "class": self.label,
            "confidence": round(self.confidence, 4),
            "bbox": self.bbox.as_dict(),
        }

    def in_frame(self, frame: int) -> AnalyzedObject:
        """This detection as an object of frame `frame` of an event."""
        return AnalyzedObject(self.label, self.confidence, frame, self.bbox)


@dataclass(frozen=True, slots=True)
class DetectResult:
    """Answer of POST /detect."""

    detections: list[Detection]
    inference_time_ms: float
    image_width: int
    image_height: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse the /detect answer."""
        return cls(
            detections=[Detection.from_dict(d) for d in data["detections"]],
            inference_time_ms=as_float(data.get("inference_time_ms")),
            image_width=int(data.get("image_width") or 0),
            image_height=int(data.get("image_height") or 0),
        )


def _opt_number(value: Any) -> float | None:
    number = as_float(value, math.nan)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """A model's weights downloading on the server (`/health` `models.<name>.progress`)."""

    bytes: int
    total: int | None = None
    percent: float | None = None
    rate_bps: float | None = None
    eta_s: float | None = None
    file: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a progress entry; the percent is computed when only the sizes are sent."""
        done = _count(data.get("bytes"), 0)
        total = _opt_number(data.get("total"))
        percent = _opt_number(data.get("percent"))
        if percent is None and total:
            percent = round(100.0 * done / total, 1)
        file = data.get("file")
        return cls(
            bytes=done,
            total=None if total is None else int(total),
            percent=percent,
            rate_bps=_opt_number(data.get("rate_bps")),
            eta_s=_opt_number(data.get("eta_s")),
            file=file if isinstance(file, str) else None,
        )


# The provisioning state of a server that predates `state`, from its residency `status` (or,
# without one, from `loaded`).
_STATE_OF_STATUS = {"loaded": "ready", "loading": "loading", "error": "error"}


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One model as the server reports it.

    `state` is the model's provisioning: `pending` (weights not on the server yet),
    `downloading` (see `progress`), `loading`, `ready` or `error` (see `error`).
    """

    name: str
    loaded: bool
    device: str | None
    details: dict[str, Any] = field(default_factory=dict)
    state: str | None = None
    error: str | None = None
    progress: DownloadProgress | None = None

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Self:
        """Parse one model entry."""
        details = {k: v for k, v in data.items() if k not in ("name", "loaded", "device")}
        loaded = bool(data.get("loaded"))
        state = data.get("state")
        if not isinstance(state, str):
            state = _STATE_OF_STATUS.get(str(data.get("status"))) or ("ready" if loaded else None)
        error = data.get("error")
        progress = data.get("progress")
        if isinstance(progress, Mapping):
            progress = DownloadProgress.from_dict(progress)
        return cls(
            name=name,
            loaded=loaded,
            device=data.get("device"),
            details=details,
            state=state,
            error=str(error) if error else None,
            progress=progress if isinstance(progress, DownloadProgress) else None,
        )


@dataclass(frozen=True, slots=True)
class Health:
    """Answer of GET /health."""

    status: str
    model_loaded: bool
    device: str | None
    cuda_available: bool
    vram_used_gb: float | None
    models: dict[str, ModelStatus]
    version: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse the /health answer."""
        models = data.get("models") or {}
        if not isinstance(models, Mapping):
            models = {}
        vram = data.get("vram_used_gb")
        return cls(
            status=str(data["status"]),
            model_loaded=bool(data.get("model_loaded")),
            device=data.get("device"),
            cuda_available=bool(data.get("cuda_available")),
            vram_used_gb=None if vram is None else as_float(vram),
            models={
                name: ModelStatus.from_dict(name, info if isinstance(info, Mapping) else {})
                for name, info in models.items()
            },
            version=data.get("version"),
        )

    @property
    def models_loaded(self) -> list[str]:
        """Names of the resident models."""
        return sorted(name for name, model in self.models.items() if model.loaded)

    @property
    def loading(self) -> bool:
        """The server is downloading or loading its models (first start): not a failure."""
        return self.status == "loading"

    @property
    def downloading(self) -> list[str]:
        """Names of the models whose weights are downloading now."""
        return sorted(name for name, model in self.models.items() if model.state == "downloading")

    @property
    def errors(self) -> dict[str, str]:
        """Models in `error`, with the server's message (it names the cause)."""
        return {
            name: model.error or "failed"
            for name, model in sorted(self.models.items())
            if model.state == "error"
        }

    @property
    def download_percent(self) -> float | None:
        """How far the running downloads are, together (None when nothing downloads or no
        size is known yet)."""
        running = [
            m.progress for m in self.models.values() if m.state == "downloading" and m.progress
        ]
        total = sum(p.total for p in running if p.total)
        if not total:
            return None
        done = sum(min(p.bytes, p.total) for p in running if p.total)
        return round(100.0 * done / total, 1)


@dataclass(frozen=True, slots=True)
class AnalyzedObject:
    """One object of an event: a class and a box on one of its frames."""

    label: str
    confidence: float
    frame: int
    bbox: BoundingBox
    attributes: dict[str, Any] = field(default_factory=dict)
    embedding: tuple[float, ...] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse one entry of `objects`."""
        attributes = data.get("attributes")
        return cls(
            label=str(data["class"]),
            confidence=as_float(data.get("confidence")),
            frame=int(data.get("frame") or 0),
            bbox=BoundingBox.from_dict(data.get("bbox") or {}),
            attributes=dict(attributes) if isinstance(attributes, Mapping) else {},
            embedding=_embedding(data.get("embedding")),
        )

    def as_dict(self) -> dict[str, Any]:
        """The contract shape without the embedding."""
        return {
            "class": self.label,
            "confidence": round(self.confidence, 4),
            "frame": self.frame,
            "bbox": self.bbox.as_dict(),
            "attributes": self.attributes,
        }


@dataclass(frozen=True, slots=True)
class KnownMatch:
    """A re-identification match of one object against the integration's gallery."""

    gallery_id: str
    label: str
    name: str | None
    enrolled: bool
    similarity: float
    times_seen_today: int

    @property
    def description(self) -> str:
        """Human-readable line for the prompt and the event."""
        if self.enrolled:
            return f"enrolled {self.label}: {self.name or 'household member'}"
        return f"same unknown {self.label} seen {self.times_seen_today} times today"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse one match (the `known_matches` shape)."""
        return cls(
            gallery_id=str(data.get("gallery_id") or ""),
            label=str(data.get("class") or "object"),
            name=str(data["name"]) if data.get("name") else None,
            enrolled=bool(data.get("enrolled")),
            similarity=as_float(data.get("similarity")),
            times_seen_today=_count(data.get("times_seen_today"), 1),
        )

    def as_dict(self) -> dict[str, Any]:
        """The contract shape."""
        return {
            "gallery_id": self.gallery_id,
            "class": self.label,
            "name": self.name,
            "enrolled": self.enrolled,
            "similarity": round(self.similarity, 4),
            "times_seen_today": self.times_seen_today,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class RecentEvent:
    """An earlier event of the same camera, as context for the next one."""

    started_at: str
    risk_level: str
    summary: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse one recent event."""
        return cls(
            started_at=str(data.get("started_at") or ""),
            risk_level=str(data.get("risk_level") or "?"),
            summary=str(data.get("summary") or ""),
        )

    def as_dict(self) -> dict[str, str]:
        """The contract shape."""
        return {
            "started_at": self.started_at,
            "risk_level": self.risk_level,
            "summary": self.summary,
        }


def split_zones(text: str) -> tuple[str, ...]:
    """Zones written as free text (comma or line separated) to their names."""
    return tuple(z.strip() for z in text.replace("\n", ",").split(",") if z.strip())


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """The camera of an event."""

    id: str | None = None
    name: str | None = None
    description: str | None = None

    @property
    def label(self) -> str:
        """What to call the camera in text."""
        return self.name or self.id or "camera"


@dataclass(frozen=True, slots=True)
class EventContext:
    """What the client knows around an event."""

    time_of_day: str | None = None
    home_mode: str | None = None
    known_matches: tuple[KnownMatch, ...] = ()
    recent_events: tuple[RecentEvent, ...] = ()
    zones: tuple[str, ...] = ()
    usual_activity: str | None = None


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    """Optional stages of /analyze, each on unless turned off."""

    enrich: bool = True
    describe: bool = True
    llm: bool = True


@dataclass(frozen=True, slots=True)
class EventMetadata:
    """The `metadata` of POST /analyze: one security event's camera, times, detections, context."""

    camera: CameraInfo = field(default_factory=CameraInfo)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # One tuple of objects per frame, in frame order; None: the server detects.
    detections: tuple[tuple[AnalyzedObject, ...], ...] | None = None
    context: EventContext = field(default_factory=EventContext)
    options: AnalyzeOptions = field(default_factory=AnalyzeOptions)

    @property
    def dwell_seconds(self) -> float:
        """How long the event lasted (0 when unknown)."""
        if self.started_at is None or self.ended_at is None:
            return 0.0
        try:
            return max(0.0, (self.ended_at - self.started_at).total_seconds())
        except TypeError:  # one aware, one naive
            return 0.0

    @property
    def time_of_day(self) -> str | None:
        """As sent, else from the hour of `started_at` (the camera's local time if it has one)."""
        if self.context.time_of_day:
            return self.context.time_of_day.lower()
        return None if self.started_at is None else time_of_day(self.started_at)

    def as_dict(self) -> dict[str, Any]:
        """The JSON the server reads."""
        ctx = self.context
        return {
            "camera": {
                "id": self.camera.id,
                "name": self.camera.name,
                "description": self.camera.description,
            },
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "detections": None
            if self.detections is None
            else [[o.as_dict() for o in frame] for frame in self.detections],
            "context": {
                "time_of_day": ctx.time_of_day,
                "home_mode": ctx.home_mode,
                "known_matches": [m.as_dict() for m in ctx.known_matches],
                "recent_events": [e.as_dict() for e in ctx.recent_events],
                "zones": list(ctx.zones) or None,
                "usual_activity": ctx.usual_activity,
            },
            "options": {
                "enrich": self.options.enrich,
                "describe": self.options.describe,
                "llm": self.options.llm,
            },
        }


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """Answer of POST /analyze."""

    objects: list[AnalyzedObject]
    description: str | None
    risk: RiskAssessment
    timings_ms: dict[str, float] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse the /analyze answer."""
        timings = data.get("timings_ms") or {}
        models = data.get("models") or {}
        return cls(
            objects=[AnalyzedObject.from_dict(o) for o in data.get("objects") or []],
            description=data.get("description"),
            risk=RiskAssessment.from_dict(data["risk"]),
            timings_ms={k: as_float(v) for k, v in timings.items()}
            if isinstance(timings, Mapping)
            else {},
            models=dict(models) if isinstance(models, Mapping) else {},
        )

    def as_dict(self) -> dict[str, Any]:
        """The contract shape."""
        return {
            "objects": [o.as_dict() for o in self.objects],
            "description": self.description,
            "risk": self.risk.as_dict(),
            "timings_ms": self.timings_ms,
            "models": self.models,
        }


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """Answer of POST /embed."""

    image_embeddings: list[tuple[float, ...]]
    text_embeddings: list[tuple[float, ...]]
    dim: int
    model: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse the /embed answer."""
        return cls(
            image_embeddings=[tuple(map(float, e)) for e in data.get("image_embeddings") or []],
            text_embeddings=[tuple(map(float, e)) for e in data.get("text_embeddings") or []],
            dim=int(data.get("dim") or 0),
            model=data.get("model"),
        )


def frames_objects(frames: Sequence[Sequence[Detection]]) -> list[AnalyzedObject]:
    """Detections per frame as the objects of one event (frame indexes set)."""
    return [d.in_frame(index) for index, found in enumerate(frames) for d in found]
