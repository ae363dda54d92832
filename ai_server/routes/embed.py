"""POST /embed: CLIP image and text embeddings (L2-normalised), optional zero-shot labels.

Also home of `embed_crops`, which /detect?embed=1 uses to add one embedding per detection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from aiohttp import web
from PIL import Image

from ..errors import unprocessable
from ..imaging import Box, RawImage, crop, decode_base64, decode_image, read_images, read_json
from ..keys import BATCHERS, ENRICHER, REGISTRY, SETTINGS
from ..models.clip import Clip, ClipItem, Vector, ensemble, prompts, zero_shot

routes = web.RouteTableDef()

MAX_TEXTS = 256
MAX_TEXT_CHARS = 1000
MAX_LABELS = 100
MAX_TEMPLATES = 20


def _floats(vector: Vector) -> list[float]:
    return [round(float(v), 6) for v in vector]


def _string_list(body: dict[str, Any], field: str, limit: int) -> list[str]:
    value = body.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise unprocessable(f"{field} must be a list of non-empty strings")
    if len(value) > limit:
        raise unprocessable(f"{len(value)} {field} in one request; the limit is {limit}")
    too_long = [i for i, v in enumerate(value) if len(v) > MAX_TEXT_CHARS]
    if too_long:
        raise unprocessable(f"{field}[{too_long[0]}] is longer than {MAX_TEXT_CHARS} characters")
    return [v.strip() for v in value]


async def embed_crops(
    app: web.Application, image: Image.Image, boxes: Sequence[Box]
) -> list[Vector]:
    """One CLIP embedding per box on `image`, through the shared CLIP batcher."""
    if not boxes:
        return []
    crops = await asyncio.to_thread(lambda: [crop(image, box) for box in boxes])
    async with app[REGISTRY].use(Clip.name, Clip):
        # One queue admission for all crops of the image: served or refused as a unit.
        return await app[BATCHERS].clip.submit_many([ClipItem(image=c) for c in crops])


@routes.post("/embed")
async def embed(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body: dict[str, Any] = {}
    if request.content_type.lower() == "application/json":
        body = await read_json(request)
        raw: list[RawImage] = []
        if "image_base64" in body:
            raw.append(RawImage(decode_base64(body["image_base64"], "image_base64")))
        items = body.get("images_base64", [])
        if not isinstance(items, list):
            raise unprocessable("images_base64 must be a list of base64 strings")
        raw += [RawImage(decode_base64(v, f"images_base64[{i}]")) for i, v in enumerate(items)]
    else:
        raw = await read_images(
            request,
            json_field="image_base64",
            json_list_field="images_base64",
            max_bytes=settings.max_body_bytes,
        )
    texts = _string_list(body, "texts", MAX_TEXTS)
    labels = _string_list(body, "labels", MAX_LABELS)
    templates = _string_list(body, "templates", MAX_TEMPLATES)
    if not raw and not texts:
        raise unprocessable("nothing to embed: send images_base64 (or image parts) and/or texts")
    if len(raw) > settings.max_batch_images:
        raise unprocessable(
            f"{len(raw)} images in one request; the limit is {settings.max_batch_images}"
        )
    if labels and not raw:
        raise unprocessable("labels (zero-shot) need at least one image")
    if any("{}" not in t for t in templates):
        raise unprocessable('every template needs a "{}" where the label goes')
    images = await asyncio.gather(
        *(
            asyncio.to_thread(decode_image, r.data, max_pixels=settings.max_image_pixels)
            for r in raw
        )
    )
    started = time.perf_counter()
    batcher = request.app[BATCHERS].clip
    async with request.app[REGISTRY].use(Clip.name, Clip) as clip:
        items = [ClipItem(image=i) for i in images] + [ClipItem(text=t) for t in texts]
        # One queue admission per caller: a request with more items than the queue bound is
        # served as a unit (it used to get 503 queue_full on an idle server, forever).
        vectors = await batcher.submit_many(items)
        label_matrix = None
        if labels:
            ensemble_templates = templates or list(request.app[ENRICHER].labels.templates)
            label_vectors = await batcher.submit_many(
                [ClipItem(text=p) for p in prompts(labels, ensemble_templates)]
            )
            label_matrix = ensemble(label_vectors, len(labels))
        dim, scale, source = clip.dim, clip.logit_scale, clip.source
    image_vectors, text_vectors = vectors[: len(images)], vectors[len(images) :]
    response: dict[str, Any] = {
        "image_embeddings": [_floats(v) for v in image_vectors],
        "text_embeddings": [_floats(v) for v in text_vectors],
        "dim": dim,
        "model": source,
    }
    if label_matrix is not None:
        probs = zero_shot(np.stack(image_vectors), label_matrix, scale)
        response["zero_shot"] = [
            {
                "label": labels[int(np.argmax(row))],
                "confidence": round(float(row.max()), 4),
                "scores": {label: round(float(p), 4) for label, p in zip(labels, row, strict=True)},
            }
            for row in probs
        ]
    response["inference_time_ms"] = round(1000 * (time.perf_counter() - started), 2)
    return web.json_response(response)
