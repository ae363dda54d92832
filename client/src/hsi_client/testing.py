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

Scene frames are the pictures of scripted scenes: `scene_frame` draws objects as solid boxes, one
colour per identity, and writes them into the PNG's `hsi-scene` text chunk, where the AI server's
`scripted` profile (tests only) finds what to detect; `read_scene_frame` parses that chunk.

    png = scene_frame([SceneObject("person", "visitor-1"), {"class": "car", "identity": "c1"}])
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import io
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Self

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from .taxonomy import group_of

__all__ = [
    "DEFAULT_SCENE_CONFIDENCE",
    "EMBED_DIM",
    "HEALTHY",
    "JPEG",
    "PNG",
    "RISK",
    "SCENE_BACKGROUND",
    "SCENE_CHUNK",
    "SCENE_COLOUR_STEP",
    "WEBP",
    "AnalyzeCall",
    "Answer",
    "FakeServer",
    "Received",
    "ReceivedFrame",
    "SceneObject",
    "detection",
    "identity_colour",
    "read_scene_frame",
    "scene_frame",
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

    `text` (sent as `content_type`, by default text/html: e.g. a proxy's page) wins over
    `json`; `delay` seconds pass first.
    """

    status: int = 200
    json: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "text/html"  # of `text`

    async def response(self) -> web.Response:
        """Wait `delay`, then answer."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.text is not None:
            return web.Response(
                status=self.status,
                text=self.text,
                content_type=self.content_type,
                headers=self.headers,
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


# --- scene frames: the pictures of scripted scenes -----------------------------------------

SCENE_CHUNK: Final = "hsi-scene"
"""The PNG text chunk of a scene frame: JSON `{"objects": [{class, identity, confidence, box}]}`
with `box` as `[x, y, width, height]` in pixels."""

SCENE_COLOUR_STEP: Final = 16
"""Identity colours sit at the centre of 16-level cells per channel (`8 + 16 k`): quantising a
pixel to its cell (`value // 16`) gives the identity's cell back, even after a re-encoding that
moves a colour by up to 7 levels."""

SCENE_BACKGROUND: Final = (200, 200, 200)
"""The light grey of a scene frame's background (a grey cell: never an identity's colour)."""

# A faint darker grid on the background: a perfectly flat picture measures as blurred (variance
# of the Laplacian ~0), which the server's quality check would report for every frame.
_GRID_COLOUR: Final = (152, 152, 152)
_GRID_SPACING: Final = 16
# An identity's strongest and weakest channel lie at least this many cells apart: saturated
# colours, clearly apart from the grey background.
_MIN_SPREAD: Final = 4
# Shapes of laid-out objects per group: (width / height, height as a share of the frame's).
_SHAPES: Final[Mapping[str, tuple[float, float]]] = {
    "person": (0.4, 0.6),
    "vehicle": (2.0, 0.35),
    "animal": (1.4, 0.25),
    "other": (1.0, 0.2),
}
_MIN_SLOT = 4  # pixels of frame width per laid-out object
DEFAULT_SCENE_CONFIDENCE: Final = 0.9
"""The confidence of a scene object that does not give one."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class SceneObject:
    """One object of a scene frame: its class, who or what it is (the same `identity` is the
    same person, vehicle or animal in every frame), its detection confidence and its box
    `(x, y, width, height)` in pixels (None: `scene_frame` places it)."""

    label: str
    identity: str
    confidence: float = DEFAULT_SCENE_CONFIDENCE
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"class must be a non-empty string, got {self.label!r}")
        if not isinstance(self.identity, str) or not self.identity.strip():
            raise ValueError(f"identity must be a non-empty string, got {self.identity!r}")
        if not _is_number(self.confidence) or not 0 <= self.confidence <= 1:
            raise ValueError(f"confidence must be a number from 0 to 1, got {self.confidence!r}")
        box: Any = self.box
        if box is None:
            return
        if not isinstance(box, list | tuple) or len(box) != 4 or not all(map(_is_number, box)):
            raise ValueError(f"box must be [x, y, width, height] in pixels, got {box!r}")
        if box[2] <= 0 or box[3] <= 0:
            raise ValueError(f"box width and height must be > 0, got {box[2]}x{box[3]}")
        object.__setattr__(self, "box", tuple(box))

    def as_dict(self) -> dict[str, Any]:
        """The object as the `hsi-scene` chunk carries it."""
        return {
            "class": self.label,
            "identity": self.identity,
            "confidence": self.confidence,
            "box": None if self.box is None else list(self.box),
        }


def identity_colour(identity: str) -> tuple[int, int, int]:
    """The RGB colour of an identity in scene frames: always the same for one identity, one of
    2,310 saturated colours picked by a hash of it for different ones (two identities share a
    colour only by a hash collision, about 1 in 2,300 for a pair: check here when in doubt)."""
    attempt = 0
    while True:
        digest = hashlib.sha256(f"{identity}\x00{attempt}".encode()).digest()
        red, green, blue = (1 + digest[i] % 14 for i in range(3))  # cells 1..14 of 16
        if max(red, green, blue) - min(red, green, blue) >= _MIN_SPREAD:
            step = SCENE_COLOUR_STEP
            return (8 + step * red, 8 + step * green, 8 + step * blue)
        attempt += 1


def _scene_object(
    item: SceneObject | Mapping[str, Any], where: str, *, strict: bool = False
) -> SceneObject:
    """A SceneObject from an object or a mapping with the chunk's keys (all four when strict)."""
    if isinstance(item, SceneObject):
        return item
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be a mapping or a SceneObject, got {type(item).__name__}")
    keys = ("class", "identity", "confidence", "box")
    unknown = [str(key) for key in item if key not in keys]
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(unknown)}; known: {keys}")
    needed = keys if strict else keys[:2]
    missing = [key for key in needed if item.get(key) is None]
    if missing:
        raise ValueError(f"{where} needs {', '.join(missing)}")
    confidence = item.get("confidence")  # absent or null: the default (only when not strict)
    try:
        return SceneObject(
            item["class"],
            item["identity"],
            DEFAULT_SCENE_CONFIDENCE if confidence is None else confidence,
            item.get("box"),
        )
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _place(label: str, slot: int, slots: int, width: int, height: int) -> tuple[int, int, int, int]:
    """A box for the `slot`-th of `slots` side-by-side places across the frame."""
    aspect, share = _SHAPES[group_of(label)]
    slot_width = width / slots
    box_height = share * height
    box_width = box_height * aspect
    fit = min(1.0, 0.8 * slot_width / box_width)  # narrower than its slot: no overlap
    box_width, box_height = max(1.0, box_width * fit), max(1.0, box_height * fit)
    x = slot * slot_width + (slot_width - box_width) / 2
    y = max(0.0, 0.92 * height - box_height)
    return (int(x), int(y), int(box_width), int(box_height))


def scene_frame(
    objects: Iterable[SceneObject | Mapping[str, Any]], width: int = 640, height: int = 480
) -> bytes:
    """A PNG of `objects` on a plain light-grey background, with the `hsi-scene` chunk.

    Each object is a box filled with its identity's colour (`identity_colour`), drawn in order
    (a later one covers an earlier one where they overlap). Objects are `SceneObject`s or
    mappings with `class`, `identity`, and optionally `confidence` (absent or null: 0.9) and
    `box` (`[x, y, width, height]`). Objects without a box are laid out side by side, left to
    right in their order, each in its own slot of the frame's width (people tall, vehicles wide)
    and without overlap among themselves. The chunk lists every object with its final box.
    Pillow is needed (imported here only: the library itself does not require it).
    """
    from PIL import Image, ImageDraw, PngImagePlugin

    for name, size in (("width", width), ("height", height)):
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 10_000:
            raise ValueError(f"{name} must be an integer from 1 to 10000, got {size!r}")
    items = [_scene_object(item, f"objects[{i}]") for i, item in enumerate(objects)]
    unplaced = sum(1 for item in items if item.box is None)
    if unplaced and width / unplaced < _MIN_SLOT:
        raise ValueError(
            f"{unplaced} objects without a box do not fit side by side in {width} pixels; "
            "give them boxes"
        )
    boxes: list[tuple[float, float, float, float]] = []
    slot = 0
    for item in items:
        box = item.box
        if box is None:
            box = _place(item.label, slot, unplaced, width, height)
            slot += 1
        boxes.append(box)
    items = [replace(item, box=box) for item, box in zip(items, boxes, strict=True)]
    image = Image.new("RGB", (width, height), SCENE_BACKGROUND)
    draw = ImageDraw.Draw(image)
    for column in range(_GRID_SPACING // 2, width, _GRID_SPACING):
        draw.line([(column, 0), (column, height - 1)], fill=_GRID_COLOUR)
    for row in range(_GRID_SPACING // 2, height, _GRID_SPACING):
        draw.line([(0, row), (width - 1, row)], fill=_GRID_COLOUR)
    for index, (item, (x, y, w, h)) in enumerate(zip(items, boxes, strict=True)):
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            raise ValueError(
                f"objects[{index}].box {[x, y, w, h]} lies outside the {width}x{height} frame"
            )
        corners = (x, y, max(x, x + w - 1), max(y, y + h - 1))  # inclusive, as crops count
        draw.rectangle(corners, fill=identity_colour(item.identity))
    info = PngImagePlugin.PngInfo()
    info.add_text(SCENE_CHUNK, json.dumps({"objects": [item.as_dict() for item in items]}))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_scene_frame(text: str) -> list[SceneObject]:
    """The objects of a scene frame's `hsi-scene` chunk; ValueError says what is malformed."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ValueError(f"{SCENE_CHUNK} chunk is not valid JSON: {err}") from None
    if (
        not isinstance(data, dict)
        or list(data) != ["objects"]
        or not isinstance(data["objects"], list)
    ):
        raise ValueError(f'{SCENE_CHUNK} chunk must be {{"objects": [...]}}, got {text[:80]!r}')
    return [
        _scene_object(item, f"{SCENE_CHUNK} objects[{i}]", strict=True)
        for i, item in enumerate(data["objects"])
    ]
