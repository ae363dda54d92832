"""Typed async client for one HSI AI server.

URLs, headers, request bodies and the mapping of answers and failures to typed results and
exceptions live here; callers only see the wire types (models.py) and the exceptions below.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
import orjson
from yarl import URL

from .models import (
    AnalysisResult,
    DetectResult,
    EmbedResult,
    EventMetadata,
    Health,
    ModelStatus,
)
from .risk import as_float

HEALTH_TIMEOUT = 10.0
DETECT_TIMEOUT = 30.0
ANALYZE_TIMEOUT = 180.0

T = TypeVar("T")


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
                retry_after = as_float(response.headers.get("Retry-After"), -1.0)
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
    def _parse(parser: Callable[[Mapping[str, Any]], T], payload: Any, what: str) -> T:
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

    async def analyze(self, frames: Sequence[bytes], metadata: EventMetadata) -> AnalysisResult:
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
            orjson.dumps(metadata.as_dict()).decode(),
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
