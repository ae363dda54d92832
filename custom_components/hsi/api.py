"""Typed async client for the HSI AI server.

The whole server contract lives in this module: URLs, headers, request bodies and the parsing of
answers into dataclasses. The rest of the integration only sees the dataclasses and exceptions.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
import time
from typing import Any, Self

import aiohttp
import orjson
from yarl import URL

HEALTH_TIMEOUT = 10.0
DETECT_TIMEOUT = 30.0
ANALYZE_TIMEOUT = 180.0


class HsiError(Exception):
    """Base error of the HSI client."""


class HsiConnectionError(HsiError):
    """The server could not be reached, or it timed out."""


class HsiAuthError(HsiError):
    """The server rejected the API key (401)."""


class HsiInvalidResponseError(HsiError):
    """The answer is not what an HSI server sends (not JSON, wrong shape)."""


class HsiResponseError(HsiError):
    """The server answered with an error document."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        """Keep the HTTP status, the server's error code and its Retry-After (seconds)."""
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Busy or still loading (503, 429): the same request may succeed a moment later."""
        return self.status in (429, 503)


class HsiNotSupportedError(HsiResponseError):
    """The server does not offer this endpoint (404): an older or partial server."""


def _float(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A box in pixel coordinates."""

    x: float
    y: float
    width: float
    height: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a contract bbox."""
        return cls(
            x=_float(data.get("x")),
            y=_float(data.get("y")),
            width=_float(data.get("width")),
            height=_float(data.get("height")),
        )

    def as_dict(self) -> dict[str, float]:
        """Return the contract shape."""
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object."""

    label: str
    confidence: float
    bbox: BoundingBox
    embedding: tuple[float, ...] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse one entry of `detections`."""
        embedding = data.get("embedding")
        return cls(
            label=str(data["class"]),
            confidence=_float(data.get("confidence")),
            bbox=BoundingBox.from_dict(data.get("bbox") or {}),
            embedding=tuple(map(float, embedding)) if embedding else None,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the contract shape without the embedding."""
        return {
            "class": self.label,
            "confidence": round(self.confidence, 4),
            "bbox": self.bbox.as_dict(),
        }


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
            inference_time_ms=_float(data.get("inference_time_ms")),
            image_width=int(data.get("image_width") or 0),
            image_height=int(data.get("image_height") or 0),
        )


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One model as the server reports it."""

    name: str
    loaded: bool
    device: str | None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Self:
        """Parse one model entry."""
        details = {k: v for k, v in data.items() if k not in ("name", "loaded", "device")}
        return cls(
            name=name,
            loaded=bool(data.get("loaded")),
            device=data.get("device"),
            details=details,
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
            vram_used_gb=None if vram is None else _float(vram),
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


@dataclass(frozen=True, slots=True)
class RiskFactor:
    """One contribution to a risk score."""

    factor: str
    contribution: float
    description: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a risk factor."""
        return cls(
            factor=str(data.get("factor", "")),
            contribution=_float(data.get("contribution")),
            description=str(data.get("description", "")),
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the contract shape."""
        return {
            "factor": self.factor,
            "contribution": self.contribution,
            "description": self.description,
        }


RISK_LEVEL_BOUNDS = (("critical", 85), ("high", 60), ("medium", 30), ("low", 0))


def risk_level_for(score: int) -> str:
    """Map a 0-100 score to its level (the risk contract)."""
    for level, low in RISK_LEVEL_BOUNDS:
        if score >= low:
            return level
    return "low"


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """The risk part of an analysis."""

    risk_score: int
    risk_level: str
    summary: str
    reasoning: str
    risk_factors: list[RiskFactor] = field(default_factory=list)
    recommended_action: str | None = None
    source: str = "llm"
    flags: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        score: float,
        summary: str,
        reasoning: str,
        *,
        risk_factors: list[RiskFactor] | None = None,
        recommended_action: str | None = None,
        source: str,
        flags: list[dict[str, str]] | None = None,
    ) -> Self:
        """Clamp the score and derive the level from it."""
        clamped = max(0, min(100, round(score)))
        return cls(
            risk_score=clamped,
            risk_level=risk_level_for(clamped),
            summary=summary,
            reasoning=reasoning,
            risk_factors=risk_factors or [],
            recommended_action=recommended_action,
            source=source,
            flags=flags or [],
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse `risk`; a level that disagrees with the score is recomputed."""
        return cls.build(
            _float(data["risk_score"]),
            str(data.get("summary", "")),
            str(data.get("reasoning", "")),
            risk_factors=[
                RiskFactor.from_dict(f)
                for f in data.get("risk_factors") or []
                if isinstance(f, Mapping)
            ],
            recommended_action=data.get("recommended_action"),
            source=str(data.get("source") or "llm"),
            flags=[
                {key: str(flag.get(key, "")) for key in ("type", "description", "severity")}
                for flag in data.get("flags") or []
                if isinstance(flag, Mapping)
            ],
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the contract shape."""
        return {
            "risk_score": self.risk_score,
            "risk_level": self.risk_level,
            "summary": self.summary,
            "reasoning": self.reasoning,
            "risk_factors": [f.as_dict() for f in self.risk_factors],
            "recommended_action": self.recommended_action,
            "source": self.source,
            "flags": self.flags,
        }


@dataclass(frozen=True, slots=True)
class AnalyzedObject:
    """One object of an analysed event."""

    label: str
    confidence: float
    frame: int
    bbox: BoundingBox
    attributes: dict[str, Any] = field(default_factory=dict)
    embedding: tuple[float, ...] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse one entry of `objects`."""
        embedding = data.get("embedding")
        attributes = data.get("attributes")
        return cls(
            label=str(data["class"]),
            confidence=_float(data.get("confidence")),
            frame=int(data.get("frame") or 0),
            bbox=BoundingBox.from_dict(data.get("bbox") or {}),
            attributes=dict(attributes) if isinstance(attributes, Mapping) else {},
            embedding=tuple(map(float, embedding)) if embedding else None,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the contract shape without the embedding."""
        return {
            "class": self.label,
            "confidence": round(self.confidence, 4),
            "frame": self.frame,
            "bbox": self.bbox.as_dict(),
            "attributes": self.attributes,
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
            timings_ms={k: _float(v) for k, v in timings.items()}
            if isinstance(timings, Mapping)
            else {},
            models=dict(models) if isinstance(models, Mapping) else {},
        )


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


def image_content_type(image: bytes) -> str:
    """Sniff the content type the server needs for a raw image body."""
    if image.startswith(b"\x89PNG"):
        return "image/png"
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"


class HsiClient:
    """Async client for one HSI AI server."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        api_key: str | None = None,
    ) -> None:
        """Use HA's shared session; `url` is the server's base URL."""
        self.url = URL(url.rstrip("/"))
        self._session = session
        self._api_key = api_key or None
        self.last_latency_ms: float | None = None

    def _headers(self) -> dict[str, str]:
        if self._api_key:
            return {"Authorization": f"Bearer {self._api_key}"}
        return {}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        timeout_s: float,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer."""
        url = self.url.joinpath(path.lstrip("/"))
        all_headers = self._headers() | dict(headers or {})
        start = time.monotonic()
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                data=data,
                json=json_body,
                headers=all_headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                body = await response.read()
                status = response.status
                retry_after = _float(response.headers.get("Retry-After"), -1.0)
        except TimeoutError as err:
            raise HsiConnectionError(f"Timeout talking to {self.url}") from err
        except aiohttp.ClientError as err:
            raise HsiConnectionError(f"Cannot reach {self.url}: {err}") from err
        self.last_latency_ms = (time.monotonic() - start) * 1000
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as err:
            if status < 400:
                raise HsiInvalidResponseError(f"{path} did not answer JSON") from err
            payload = None
        if status >= 400:
            error = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(error, dict):
                code = str(error.get("code", "http_error"))
                message = str(error.get("message", ""))
            else:
                code, message = "http_error", body[:200].decode(errors="replace")
            if status == 401:
                raise HsiAuthError(message or "Invalid API key")
            if status in (404, 405):
                raise HsiNotSupportedError(status, code, message or f"{path} not supported")
            raise HsiResponseError(status, code, message, retry_after if retry_after >= 0 else None)
        return payload

    @staticmethod
    def _parse[T](parser: Callable[[Mapping[str, Any]], T], payload: Any, what: str) -> T:
        if not isinstance(payload, Mapping):
            raise HsiInvalidResponseError(f"{what}: expected a JSON object")
        try:
            result: T = parser(payload)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise HsiInvalidResponseError(f"{what}: unexpected answer ({err!r})") from err
        return result

    async def health(self) -> Health:
        """GET /health (no key needed)."""
        payload = await self._request("GET", "/health", timeout_s=HEALTH_TIMEOUT)
        return self._parse(Health.from_dict, payload, "/health")

    async def validate(self) -> Health:
        """Check that the server is an HSI server and that the API key is accepted.

        /health needs no key, so /models (which does) proves the key.
        """
        health = await self.health()
        await self.models()
        return health

    async def models(self) -> dict[str, ModelStatus]:
        """GET /models."""
        payload = await self._request("GET", "/models", timeout_s=HEALTH_TIMEOUT)
        if not isinstance(payload, Mapping):
            raise HsiInvalidResponseError("/models: expected a JSON object")
        models = payload.get("models", payload)
        result: dict[str, ModelStatus] = {}
        if isinstance(models, Mapping):
            for name, info in models.items():
                if isinstance(info, Mapping):
                    result[str(name)] = ModelStatus.from_dict(str(name), info)
        elif isinstance(models, list):
            for info in models:
                if isinstance(info, Mapping) and "name" in info:
                    result[str(info["name"])] = ModelStatus.from_dict(str(info["name"]), info)
        return result

    async def detect(
        self,
        image: bytes,
        *,
        confidence: float | None = None,
        embed: bool = False,
    ) -> DetectResult:
        """POST /detect with a raw image body."""
        params: dict[str, str] = {}
        if confidence is not None:
            params["confidence"] = f"{confidence:g}"
        if embed:
            params["embed"] = "1"
        payload = await self._request(
            "POST",
            "/detect",
            timeout_s=DETECT_TIMEOUT,
            params=params,
            data=image,
            headers={"Content-Type": image_content_type(image)},
        )
        return self._parse(DetectResult.from_dict, payload, "/detect")

    async def analyze(self, frames: Sequence[bytes], metadata: Mapping[str, Any]) -> AnalysisResult:
        """POST /analyze as multipart: `frame` parts and one `metadata` JSON part."""
        if not frames:
            raise ValueError("analyze needs at least one frame")
        form = aiohttp.FormData()
        for index, frame in enumerate(frames):
            content_type = image_content_type(frame)
            form.add_field(
                "frame",
                frame,
                filename=f"frame{index}.{content_type.rsplit('/', 1)[1]}",
                content_type=content_type,
            )
        form.add_field(
            "metadata",
            orjson.dumps(metadata, default=str).decode(),
            content_type="application/json",
        )
        payload = await self._request("POST", "/analyze", timeout_s=ANALYZE_TIMEOUT, data=form)
        return self._parse(AnalysisResult.from_dict, payload, "/analyze")

    async def embed(self, images: Sequence[bytes] = (), texts: Sequence[str] = ()) -> EmbedResult:
        """POST /embed with base64 images and/or texts."""
        body: dict[str, Any] = {}
        if images:
            body["images_base64"] = [base64.b64encode(i).decode() for i in images]
        if texts:
            body["texts"] = list(texts)
        payload = await self._request("POST", "/embed", timeout_s=DETECT_TIMEOUT, json_body=body)
        return self._parse(EmbedResult.from_dict, payload, "/embed")
