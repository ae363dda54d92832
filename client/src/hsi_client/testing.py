"""A scriptable fake HSI server for the tests of HSI clients.

Like `aiohttp.test_utils`, this module ships in the library for tests only and needs nothing
but aiohttp. `FakeServer` answers `/health`, `/models`, `/detect`, `/analyze` and `/embed` as
the contract says, records every request, and does on demand what a real server cannot be made
to do: be down, refuse a key, be busy, fail an analysis, or answer whatever a test scripts.

    async with FakeServer().serve() as server:  # or: await aiohttp_server(server.app())
        server.detections = [[detection("person", 0.9, unit(0))]]
        client = HsiClient(server.url, session)
        found = await client.detect(JPEG, embed=True)
        assert (server.last.path, server.last.query) == ("/detect", {"embed": "1"})
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = [
    "EMBED_DIM",
    "HEALTHY",
    "JPEG",
    "PNG",
    "RISK",
    "WEBP",
    "AnalyzeCall",
    "Answer",
    "FakeServer",
    "Received",
    "ReceivedFrame",
    "detection",
    "unit",
]

# Just enough of each format for content-type sniffing; the fake server never decodes images.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32)

# The dimension of the embeddings that /embed answers unless `FakeServer.embed_vector` is set.
EMBED_DIM = 8

HEALTHY: Mapping[str, Any] = {
    "status": "healthy",
    "model_loaded": True,
    "device": "cpu",
    "cuda_available": False,
    "vram_used_gb": 0.0,
    "models": {"detector": {"loaded": True, "device": "cpu"}, "llm": {"loaded": False}},
    "version": "0.1.0",
}
"""The /health answer of a ready server (`FakeServer.health` starts as a copy)."""

RISK: Mapping[str, Any] = {
    "risk_score": 72,
    "risk_level": "high",
    "summary": "Unknown person at the door",
    "reasoning": "A person nobody knows stands at the door at night.",
    "risk_factors": [{"factor": "person", "contribution": 40, "description": "person"}],
    "recommended_action": "Check the camera",
    "source": "llm",
    "flags": [{"type": "night", "description": "after dark", "severity": "warning"}],
}
"""The risk of every /analyze answer unless `FakeServer.analyze_risk` is set."""


def unit(index: int, dim: int = EMBED_DIM) -> list[float]:
    """A unit embedding along one axis."""
    return [1.0 if i == index else 0.0 for i in range(dim)]


def detection(
    label: str = "person",
    confidence: float = 0.8,
    embedding: list[float] | None = None,
    box: tuple[float, float, float, float] = (40, 30, 100, 150),
) -> dict[str, Any]:
    """One /detect entry (the embedding is answered only to `?embed=1`)."""
    data: dict[str, Any] = {
        "class": label,
        "confidence": confidence,
        "bbox": dict(zip(("x", "y", "width", "height"), box, strict=True)),
    }
    if embedding is not None:
        data["embedding"] = embedding
    return data


@dataclass
class Answer:
    """A scripted answer that replaces a route's own (`FakeServer.answer`).

    `text` (sent as text/html, e.g. a proxy's page) wins over `json`; `delay` seconds pass first.
    """

    status: int = 200
    json: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    async def response(self) -> web.Response:
        """Wait `delay`, then answer."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.text is not None:
            return web.Response(
                status=self.status, text=self.text, content_type="text/html", headers=self.headers
            )
        return web.json_response(self.json, status=self.status, headers=self.headers)


@dataclass
class Received:
    """One request as the fake server saw it.

    `headers` look names up case-insensitively; `body` is empty for a multipart request (the
    parts of an /analyze request are in `FakeServer.analyze_calls`).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes


@dataclass
class ReceivedFrame:
    """One `frame` part of an /analyze request."""

    filename: str | None
    content_type: str | None
    body: bytes


@dataclass
class AnalyzeCall:
    """One well-formed /analyze request: its frames in order and its metadata part."""

    frames: list[ReceivedFrame]
    metadata: dict[str, Any]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeServer:
    """A scriptable HSI server: the contract's answers, and what a test sets up or scripts.

    Every request is recorded in `requests`, then, in this order: `down` answers 503 (plain
    text, as a proxy would); a set `api_key` refuses any other Bearer token with 401 (except on
    /health); a scripted `Answer` for the method and path replaces the route; the route answers.
    """

    url: str = ""
    """The base URL once running (`serve()` sets it), without a trailing slash."""
    api_key: str | None = None
    down: bool = False
    health: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(dict(HEALTHY)))
    health_status: int = 200
    detections: list[list[dict[str, Any]]] = field(default_factory=list)
    """The answers of the next /detect requests, one list of `detection()`s each, in order."""
    default_detections: list[dict[str, Any]] = field(default_factory=list)
    """What /detect answers when `detections` has run out."""
    detect_busy: int = 0
    """Answer /detect with 503 queue_full (Retry-After: 1) this many times first."""
    analyze_status: int = 200
    """Any other status: /analyze answers it with the error document (code "failed")."""
    analyze_failures: int = 0
    """Answer /analyze with 503 busy this many times first."""
    analyze_risk: dict[str, Any] | None = None
    """The risk of the /analyze answer instead of `RISK`."""
    embed_supported: bool = True
    """False: /embed answers 404 not_found, as an older server."""
    embed_vector: list[float] | None = None
    """The embedding of every image sent to /embed; None: `unit(i)` for the i-th image."""
    script: dict[tuple[str, str], Answer] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    analyze_calls: list[AnalyzeCall] = field(default_factory=list)

    def answer(self, method: str, path: str, answer: Answer) -> None:
        """Script the answer of one route (for every later request to it)."""
        self.script[(method.upper(), path)] = answer

    @property
    def last(self) -> Received:
        """The latest request."""
        return self.requests[-1]

    def count(self, path: str) -> int:
        """How many requests reached a path."""
        return sum(1 for request in self.requests if request.path == path)

    @staticmethod
    def error(status: int, code: str, message: str | None = None) -> web.Response:
        """The contract's error document."""
        return web.json_response(
            {"error": {"code": code, "message": message or code}}, status=status
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record the request, be down, check the key, play a scripted answer."""
        multipart = request.content_type.startswith("multipart/")
        body = b"" if multipart else await request.read()
        self.requests.append(
            Received(
                request.method, request.path, dict(request.query), request.headers.copy(), body
            )
        )
        if self.down:
            return web.Response(status=503, text="down")
        if (
            request.path != "/health"
            and self.api_key is not None
            and request.headers.get("Authorization") != f"Bearer {self.api_key}"
        ):
            return self.error(401, "unauthorized")
        scripted = self.script.get((request.method, request.path))
        if scripted is not None:
            return await scripted.response()
        return await handler(request)

    async def handle_health(self, request: web.Request) -> web.Response:
        """GET /health."""
        return web.json_response(self.health, status=self.health_status)

    async def handle_models(self, request: web.Request) -> web.Response:
        """GET /models."""
        return web.json_response({"device": "cpu", "models": self.health.get("models", {})})

    async def handle_detect(self, request: web.Request) -> web.Response:
        """POST /detect: the next scripted detections (embeddings only to ?embed=1)."""
        if not await request.read():
            return self.error(422, "validation_error", "request has no body: send an image")
        if self.detect_busy > 0:
            self.detect_busy -= 1
            response = self.error(503, "queue_full")
            response.headers["Retry-After"] = "1"
            return response
        found = self.detections.pop(0) if self.detections else self.default_detections
        if request.query.get("embed") != "1":
            found = [{k: v for k, v in d.items() if k != "embedding"} for d in found]
        return web.json_response(
            {
                "detections": found,
                "inference_time_ms": 12.5,
                "image_width": 320,
                "image_height": 240,
            }
        )

    async def handle_analyze(self, request: web.Request) -> web.Response:
        """POST /analyze (multipart): record the frames and metadata, answer one person."""
        if not request.content_type.startswith("multipart/"):
            return self.error(415, "unsupported_media_type", "send multipart/form-data")
        frames: list[ReceivedFrame] = []
        metadata: Any = {}
        async for part in await request.multipart():
            if not isinstance(part, aiohttp.BodyPartReader):
                continue  # a nested multipart: no frame of the contract's
            if part.name == "frame":
                content_type = part.headers.get("Content-Type")
                frames.append(ReceivedFrame(part.filename, content_type, bytes(await part.read())))
            elif part.name == "metadata":
                try:
                    metadata = json.loads(await part.text())
                except ValueError:
                    metadata = None
                if part.headers.get("Content-Type") != "application/json" or not isinstance(
                    metadata, dict
                ):
                    return self.error(422, "validation_error", "metadata: a JSON object part")
        if not frames:
            return self.error(422, "validation_error", "no frames: send 1 or more frame parts")
        self.analyze_calls.append(AnalyzeCall(frames, metadata))
        if self.analyze_failures > 0:
            self.analyze_failures -= 1
            return self.error(503, "busy")
        if self.analyze_status != 200:
            return self.error(self.analyze_status, "failed")
        return web.json_response(
            {
                "objects": [
                    {
                        "class": "person",
                        "confidence": 0.93,
                        "frame": 0,
                        "bbox": {"x": 40, "y": 30, "width": 100, "height": 150},
                        "attributes": {"clothing": "dark jacket"},
                    }
                ],
                "description": "A person in a dark jacket at the front door.",
                "risk": dict(self.analyze_risk or RISK),
                "timings_ms": {"total": 321.0},
                "models": {"llm": "tiny"},
            }
        )

    async def handle_embed(self, request: web.Request) -> web.Response:
        """POST /embed: one embedding per image, `unit(dim - 1 - i)` for the i-th text."""
        if not self.embed_supported:
            return self.error(404, "not_found")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.error(422, "validation_error", "send a JSON object")
        images = body.get("images_base64", [])
        texts = body.get("texts", [])
        dim = len(self.embed_vector) if self.embed_vector is not None else EMBED_DIM
        return web.json_response(
            {
                "image_embeddings": [
                    self.embed_vector if self.embed_vector is not None else unit(i % dim, dim)
                    for i in range(len(images))
                ],
                "text_embeddings": [unit((dim - 1 - i) % dim, dim) for i in range(len(texts))],
                "dim": dim,
                "model": "tiny",
            }
        )

    def app(self) -> web.Application:
        """The aiohttp application, for a test server of one's own (e.g. `aiohttp_server`)."""
        app = web.Application(middlewares=[self.middleware])
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/models", self.handle_models)
        app.router.add_post("/detect", self.handle_detect)
        app.router.add_post("/analyze", self.handle_analyze)
        app.router.add_post("/embed", self.handle_embed)
        return app

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1") -> AsyncIterator[Self]:
        """Run on a free port of `host` meanwhile (`aiohttp.test_utils.TestServer`); sets `url`."""
        async with TestServer(self.app(), host=host) as running:
            self.url = str(running.make_url("")).rstrip("/")
            yield self
