"""POST /enrich: attributes per object (CLIP zero-shot, plate OCR) and frame quality."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..errors import unprocessable
from ..imaging import decode_base64, decode_image, parse_box, read_json
from ..keys import ENRICHER, SETTINGS
from ..models.enrich import EnrichObject, ReferenceDimError, parse_reference

routes = web.RouteTableDef()

MAX_OBJECTS = 64


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise unprocessable(f"{name} must be true or false")
    return value


def parse_objects(value: Any, size: tuple[int, int]) -> list[EnrichObject]:
    """`objects: [{class, bbox, confidence?}]`, boxes checked against the image."""
    if not isinstance(value, list):
        raise unprocessable("objects must be a list of {class, bbox: {x, y, width, height}}")
    if len(value) > MAX_OBJECTS:
        raise unprocessable(f"{len(value)} objects in one request; the limit is {MAX_OBJECTS}")
    objects = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise unprocessable(f"objects[{i}] must be an object {{class, bbox}}")
        label = item.get("class")
        if not isinstance(label, str) or not label.strip():
            raise unprocessable(f"objects[{i}].class must be a non-empty string")
        confidence = item.get("confidence")
        if confidence is not None and (
            isinstance(confidence, bool) or not isinstance(confidence, int | float)
        ):
            raise unprocessable(f"objects[{i}].confidence must be a number")
        box = parse_box(item.get("bbox"), f"objects[{i}].bbox", size)
        objects.append(
            EnrichObject(
                label.strip().lower(), box, None if confidence is None else float(confidence)
            )
        )
    return objects


@routes.post("/enrich")
async def enrich(request: web.Request) -> web.Response:
    """JSON `{image_base64, objects, reference_embedding?, embed?, plates?}`."""
    settings = request.app[SETTINGS]
    if request.content_type.lower() != "application/json":
        raise unprocessable("/enrich takes a JSON body {image_base64, objects: [...]}")
    body = await read_json(request)
    if "image_base64" not in body:
        raise unprocessable("JSON body needs image_base64")
    embed, plates = _flag(body, "embed", False), _flag(body, "plates", True)
    reference = None
    if body.get("reference_embedding") is not None:
        try:
            reference = parse_reference(body["reference_embedding"])
        except ValueError as err:
            raise unprocessable(str(err)) from None
    data = decode_base64(body["image_base64"], "image_base64")
    image = await asyncio.to_thread(decode_image, data, max_pixels=settings.max_image_pixels)
    objects = parse_objects(body.get("objects", []), image.size)
    try:
        result = await request.app[ENRICHER].enrich(
            image, objects, reference=reference, embed=embed, plates=plates
        )
    except ReferenceDimError as err:
        raise unprocessable(str(err)) from None
    return web.json_response(result.as_dict())
