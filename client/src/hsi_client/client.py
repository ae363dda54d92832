"""Typed async client for one HSI AI server.

URLs, headers, request bodies and the mapping of answers and failures to typed results and
exceptions live here; callers only see the wire types (models.py) and the exceptions below.

Content types: a server (or a proxy in front of it) may label a good answer wrongly (text/html,
text/plain, none). Such a body is used only when it parses as JSON and validates as the typed
result (a warning says so, once per path and label); anything else is an HsiInvalidResponseError
that names the content type and the body's first bytes, so a proxy's login page never passes
for an answer and the operator sees what did arrive.
"""

from __future__ import annotations

import base64
import logging
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

_LOGGER = logging.getLogger(__name__)
FIRST_BYTES = 80  # of an unusable body, quoted in the error


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
        self._mislabelled: set[tuple[str, str]] = set()  # (path, content type) warned about

    def _headers(self) -> dict[str, str]:
        if self._api_key:
            return {"Authorization": f"Bearer {self._api_key}"}
        return {}

    async def _request(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        timeout_s: float,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """Send one request; return its JSON answer as `parse` makes it (a typed result)."""
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
                content_type = response.headers.get("Content-Type")
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
                raise HsiInvalidResponseError(
                    f"{path} did not answer JSON: {_what_came(content_type, body)}"
                ) from err
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
        if _is_json(content_type):
            return parse(payload)
        try:
            result = parse(payload)
        except HsiInvalidResponseError as err:
            raise HsiInvalidResponseError(f"{err}; {_what_came(content_type, body)}") from err
        label = content_type or "none"
        if (path, label) not in self._mislabelled:
            self._mislabelled.add((path, label))
            _LOGGER.warning(
                "%s answered %s with content type %s, not application/json (a proxy?); its "
                "body is valid JSON of the right shape, so it is used",
                self.url,
                path,
                label,
            )
        return result

    async def health(self) -> Health:
        """GET /health (no key needed)."""
        return await self._request(
            "GET", "/health", _parser(Health.from_dict, "/health"), timeout_s=HEALTH_TIMEOUT
        )

    async def validate(self) -> Health:
        """Check that the server is an HSI server and that the API key is accepted.

        /health needs no key, so /models (which does) proves the key.
        """
        health = await self.health()
        await self.models()
        return health

    async def models(self) -> dict[str, ModelStatus]:
        """GET /models."""
        return await self._request(
            "GET", "/models", _parser(_models, "/models"), timeout_s=HEALTH_TIMEOUT
        )

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
        return await self._request(
            "POST",
            "/detect",
            _parser(DetectResult.from_dict, "/detect"),
            timeout_s=DETECT_TIMEOUT,
            params=params,
            data=image,
            headers={"Content-Type": image_content_type(image)},
        )

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
        return await self._request(
            "POST",
            "/analyze",
            _parser(AnalysisResult.from_dict, "/analyze"),
            timeout_s=ANALYZE_TIMEOUT,
            data=form,
        )

    async def embed(self, images: Sequence[bytes] = (), texts: Sequence[str] = ()) -> EmbedResult:
        """POST /embed with base64 images and/or texts."""
        body: dict[str, Any] = {}
        if images:
            body["images_base64"] = [base64.b64encode(i).decode() for i in images]
        if texts:
            body["texts"] = list(texts)
        return await self._request(
            "POST",
            "/embed",
            _parser(EmbedResult.from_dict, "/embed"),
            timeout_s=DETECT_TIMEOUT,
            json_body=body,
        )


def _parser(parse: Callable[[Mapping[str, Any]], T], what: str) -> Callable[[Any], T]:
    """`parse` for a decoded body: a JSON object, else HsiInvalidResponseError naming `what`."""

    def run(payload: Any) -> T:
        if not isinstance(payload, Mapping):
            raise HsiInvalidResponseError(f"{what}: expected a JSON object")
        try:
            return parse(payload)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise HsiInvalidResponseError(f"{what}: unexpected answer ({err!r})") from err

    return run


def _models(payload: Mapping[str, Any]) -> dict[str, ModelStatus]:
    """/models: `{models: {name: info}}`, `{models: [{name, ...}]}` or the mapping itself."""
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


def _is_json(content_type: str | None) -> bool:
    """application/json, or a `+json` type (application/problem+json), parameters aside."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _what_came(content_type: str | None, body: bytes) -> str:
    """What an unusable answer was, for its error: the content type and the first bytes."""
    label = f"content type {content_type}" if content_type else "no content type"
    if not body:
        return f"{label}, empty body"
    first = body[:FIRST_BYTES].decode("utf-8", "replace")
    more = "..." if len(body) > FIRST_BYTES else ""
    return f"{label}, body starts {first!r}{more}"
