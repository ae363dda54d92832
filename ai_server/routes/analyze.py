"""POST /analyze: one security event (frames + metadata) to objects, description and risk."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from PIL import Image

from ..analysis.event import parse_metadata
from ..errors import ApiError, unprocessable, unsupported_media
from ..imaging import (
    RawImage,
    decode_base64,
    decode_image,
    loads_json,
    read_json,
    read_multipart,
)
from ..keys import ANALYZE_PIPELINE, SETTINGS

routes = web.RouteTableDef()


async def _read(request: web.Request) -> tuple[list[RawImage], Any]:
    """Frames and raw metadata from a multipart or a JSON body."""
    settings = request.app[SETTINGS]
    content_type = request.content_type.lower()
    if content_type.startswith("multipart/"):
        images, fields = await read_multipart(
            request, max_bytes=settings.max_body_bytes, fields=("metadata",)
        )
        raw = fields.get("metadata")
        if raw is None:
            return images, None
        try:
            return images, loads_json(raw, "metadata part")
        except ApiError as err:  # the metadata's fault, not the body's: 422 as before
            raise unprocessable(err.message) from None
    if content_type == "application/json":
        body = await read_json(request)
        frames = body.get("frames_base64")
        if not isinstance(frames, list):
            raise unprocessable("frames_base64 must be a list of base64 images")
        images = [
            RawImage(decode_base64(item, f"frames_base64[{i}]"), f"frame_{i}")
            for i, item in enumerate(frames)
        ]
        return images, body.get("metadata")
    raise unsupported_media(
        f"unsupported content type {content_type!r}: send multipart/form-data (frame parts and a "
        "metadata part) or application/json ({frames_base64, metadata})"
    )


@routes.post("/analyze")
async def analyze(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    raw_images, raw_metadata = await _read(request)
    if not raw_images:
        raise unprocessable("no frames in the request: send 1 or more `frame` parts")
    if len(raw_images) > settings.analyze_max_frames:
        raise unprocessable(
            f"{len(raw_images)} frames in one event; the limit is {settings.analyze_max_frames}"
        )
    metadata = parse_metadata(raw_metadata, len(raw_images))

    def decode_all() -> list[Image.Image]:
        images = []
        for index, raw in enumerate(raw_images):
            try:
                images.append(decode_image(raw.data, max_pixels=settings.max_image_pixels))
            except ApiError as err:
                raise ApiError(err.status, err.code, f"frame {index}: {err.message}") from None
        return images

    images = await asyncio.to_thread(decode_all)  # CPU work: off the event loop
    analysis = await request.app[ANALYZE_PIPELINE].analyze(images, metadata)
    return web.json_response(analysis.as_dict())
