"""POST /detect and /detect/batch: the original detection API, served through the batcher."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from PIL import Image

from ..config import Settings
from ..errors import ApiError, unprocessable
from ..imaging import RawImage, decode_image, read_images
from ..keys import BATCHERS, REGISTRY, SETTINGS
from ..models.detector import Detection, Detector, DetectRequest
from .embed import embed_crops

routes = web.RouteTableDef()


def _options(request: web.Request) -> tuple[float, frozenset[str] | None]:
    """Per-request threshold (`?confidence=`) and class filter (`?classes=a,b` or `all`)."""
    settings = request.app[SETTINGS]
    threshold = settings.confidence
    raw = request.query.get("confidence")
    if raw is not None:
        try:
            threshold = float(raw)
        except ValueError:
            threshold = -1.0
        if not 0.0 <= threshold <= 1.0:
            raise unprocessable(f"confidence must be a number between 0 and 1, got {raw!r}")
    classes = settings.classes
    raw = request.query.get("classes")
    if raw is not None:
        names = tuple(n.strip().lower() for n in raw.split(",") if n.strip())
        if not names:
            raise unprocessable('classes must be a comma-separated list of names, or "all"')
        classes = None if names == ("all",) else names
    return threshold, None if classes is None else frozenset(classes)


def _embed_flag(request: web.Request) -> bool:
    """`?embed=1` adds a CLIP embedding per detection (for re-identification)."""
    raw = request.query.get("embed", "0").strip().lower()
    if raw not in {"0", "1", "true", "false"}:
        raise unprocessable(f"embed must be 1/true or 0/false, got {raw!r}")
    return raw in {"1", "true"}


async def _decode(raw: RawImage, settings: Settings) -> Image.Image:
    # Decoding is CPU work: keep it off the event loop.
    return await asyncio.to_thread(decode_image, raw.data, max_pixels=settings.max_image_pixels)


async def _read(request: web.Request) -> list[RawImage]:
    return await read_images(
        request,
        json_field="image_base64",
        json_list_field="images_base64",
        max_bytes=request.app[SETTINGS].max_body_bytes,
    )


async def detect_image(
    app: web.Application, image: Image.Image, threshold: float, classes: frozenset[str] | None
) -> list[Detection]:
    """Detections for one image through the shared batcher."""
    await app[REGISTRY].get(Detector.name, Detector)  # loads on first use
    return await app[BATCHERS].detector.submit(DetectRequest(image, threshold, classes))


async def _answer(
    request: web.Request, image: Image.Image, found: list[Detection], started: float
) -> dict[str, Any]:
    """One image's answer in the seed shape, with CLIP embeddings when `?embed=1`."""
    detections = [d.as_dict() for d in found]
    if _embed_flag(request) and found:
        boxes = [d.box for d in found]
        vectors = await embed_crops(request.app, image, boxes)
        for entry, vector in zip(detections, vectors, strict=True):
            entry["embedding"] = [round(float(v), 6) for v in vector]
    return {
        "detections": detections,
        "inference_time_ms": round(1000 * (time.perf_counter() - started), 2),
        "image_width": image.width,
        "image_height": image.height,
    }


@routes.post("/detect")
async def detect(request: web.Request) -> web.Response:
    threshold, classes = _options(request)  # validate the query before reading the body
    _embed_flag(request)
    images = await _read(request)
    if len(images) != 1:
        raise unprocessable(
            f"/detect takes exactly one image, got {len(images)}; use /detect/batch for several"
        )
    image = await _decode(images[0], request.app[SETTINGS])
    started = time.perf_counter()
    found = await detect_image(request.app, image, threshold, classes)
    return web.json_response(await _answer(request, image, found, started))


@routes.post("/detect/batch")
async def detect_batch(request: web.Request) -> web.Response:
    threshold, classes = _options(request)
    _embed_flag(request)
    settings = request.app[SETTINGS]
    images = await _read(request)
    if not images:
        raise unprocessable("no images in the request: send multipart file parts or images_base64")
    if len(images) > settings.max_batch_images:
        raise unprocessable(
            f"{len(images)} images in one request; the limit is {settings.max_batch_images}"
        )
    started = time.perf_counter()

    async def decode(raw: RawImage) -> Image.Image | ApiError:
        try:
            return await _decode(raw, settings)
        except ApiError as err:  # one bad image is reported in its slot, the rest still run
            return err

    decoded = await asyncio.gather(*(decode(raw) for raw in images))
    good = {i: image for i, image in enumerate(decoded) if isinstance(image, Image.Image)}
    await request.app[REGISTRY].get(Detector.name, Detector)  # loads on first use
    # One queue admission for the whole request: it is refused or served as a unit.
    found = await request.app[BATCHERS].detector.submit_many(
        [DetectRequest(image, threshold, classes) for image in good.values()]
    )
    answers = await asyncio.gather(
        *(
            _answer(request, image, dets, started)
            for image, dets in zip(good.values(), found, strict=True)
        )
    )
    by_index = dict(zip(good, answers, strict=True))
    results = []
    for i, (raw, item) in enumerate(zip(images, decoded, strict=True)):
        entry: dict[str, Any] = {"index": i, "filename": raw.filename or f"image_{i}"}
        results.append(entry | (item.body() if isinstance(item, ApiError) else by_index[i]))
    return web.json_response(
        {
            "results": results,
            "total_inference_time_ms": round(1000 * (time.perf_counter() - started), 2),
            "num_images": len(images),
        }
    )
