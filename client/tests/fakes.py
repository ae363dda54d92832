"""Test doubles of the library's tests: a scriptable fake HSI server and sample payloads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

# Just enough of each format for the content-type sniffing; the fake server never decodes them.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32)

HEALTHY: dict[str, Any] = {
    "status": "healthy",
    "model_loaded": True,
    "device": "cpu",
    "cuda_available": False,
    "vram_used_gb": 0.0,
    "models": {"detector": {"loaded": True, "device": "cpu"}, "llm": {"loaded": False}},
    "version": "0.1.0",
}

RISK: dict[str, Any] = {
    "risk_score": 72,
    "risk_level": "high",
    "summary": "Unknown person at the door",
    "reasoning": "A person nobody knows stands at the door at night.",
    "risk_factors": [{"factor": "person", "contribution": 40, "description": "person"}],
    "recommended_action": "Check the camera",
    "source": "llm",
    "flags": [{"type": "night", "description": "after dark", "severity": "warning"}],
}


def unit(index: int, dim: int = 8) -> list[float]:
    """A unit embedding along one axis."""
    return [1.0 if i == index else 0.0 for i in range(dim)]


def detection(
    label: str = "person",
    confidence: float = 0.8,
    embedding: list[float] | None = None,
    box: tuple[float, float, float, float] = (40, 30, 100, 150),
) -> dict[str, Any]:
    """One /detect entry."""
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
    """A scripted answer that replaces a route's normal one."""

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
    """One request as the fake server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeServer:
    """A scriptable HSI server: the contract's answers, or whatever a test scripts per path."""

    url: str = ""
    api_key: str | None = None
    health: dict[str, Any] = field(default_factory=lambda: dict(HEALTHY))
    detections: list[dict[str, Any]] = field(default_factory=list)
    embed_supported: bool = True
    # (method, path) -> the answer that replaces the route's own
    script: dict[tuple[str, str], Answer] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    analyze_calls: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, method: str, path: str, answer: Answer) -> None:
        """Script the answer of one route."""
        self.script[(method, path)] = answer

    @property
    def last(self) -> Received:
        """The latest request."""
        return self.requests[-1]

    @staticmethod
    def error(status: int, code: str) -> web.Response:
        """The contract's error document."""
        return web.json_response({"error": {"code": code, "message": code}}, status=status)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record the request, check the key, play a scripted answer."""
        body = await request.read() if request.content_type != "multipart/form-data" else b""
        self.requests.append(
            Received(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
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
        return web.json_response(self.health)

    async def handle_models(self, request: web.Request) -> web.Response:
        """GET /models."""
        return web.json_response({"device": "cpu", "models": self.health["models"]})

    async def handle_detect(self, request: web.Request) -> web.Response:
        """POST /detect."""
        found = self.detections
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
        """POST /analyze (multipart): record the parts, answer one person."""
        frames: list[dict[str, Any]] = []
        metadata: dict[str, Any] = {}
        async for part in await request.multipart():
            assert isinstance(part, aiohttp.BodyPartReader)
            if part.name == "frame":
                frames.append(
                    {
                        "filename": part.filename,
                        "content_type": part.headers.get("Content-Type"),
                        "body": bytes(await part.read()),
                    }
                )
            elif part.name == "metadata":
                assert part.headers.get("Content-Type") == "application/json"
                metadata = json.loads(await part.text())
        self.analyze_calls.append({"frames": frames, "metadata": metadata})
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
                "risk": RISK,
                "timings_ms": {"total": 321.0},
                "models": {"llm": "tiny"},
            }
        )

    async def handle_embed(self, request: web.Request) -> web.Response:
        """POST /embed: one unit vector per image and text."""
        if not self.embed_supported:
            return self.error(404, "not_found")
        body = await request.json()
        images = body.get("images_base64", [])
        texts = body.get("texts", [])
        return web.json_response(
            {
                "image_embeddings": [unit(i) for i in range(len(images))],
                "text_embeddings": [unit(7 - i) for i in range(len(texts))],
                "dim": 8,
                "model": "tiny",
            }
        )

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self.middleware])
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/models", self.handle_models)
        app.router.add_post("/detect", self.handle_detect)
        app.router.add_post("/analyze", self.handle_analyze)
        app.router.add_post("/embed", self.handle_embed)
        return app
