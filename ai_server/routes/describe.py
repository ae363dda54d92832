"""POST /describe: Florence-2 captions, OCR, object detection and region captions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from ..errors import unprocessable
from ..imaging import (
    Box,
    decode_base64,
    decode_image,
    loads_json,
    parse_box,
    read_images,
    read_json,
)
from ..keys import BATCHERS, REGISTRY, SETTINGS
from ..models.vlm import TASKS, DescribeRequest, Florence, Task

routes = web.RouteTableDef()

MAX_BOXES = 32


def _task(value: Any) -> Task:
    if value is None:
        return "caption"
    if not isinstance(value, str) or value not in TASKS:
        raise unprocessable(f"task must be one of {', '.join(TASKS)}; got {value!r}")
    return value


def _raw_boxes(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise unprocessable("region_caption needs boxes: a non-empty list of {x, y, width, height}")
    if len(value) > MAX_BOXES:
        raise unprocessable(f"{len(value)} boxes in one request; the limit is {MAX_BOXES}")
    return value


@routes.post("/describe")
async def describe(request: web.Request) -> web.Response:
    """JSON `{image_base64, task, boxes?}`, or an image body / part with `?task=&boxes=`."""
    settings = request.app[SETTINGS]
    if request.content_type.lower() == "application/json":
        body = await read_json(request)
        if "image_base64" not in body:
            raise unprocessable("JSON body needs image_base64")
        data = decode_base64(body["image_base64"], "image_base64")
        task, boxes_value = _task(body.get("task")), body.get("boxes")
    else:
        task = _task(request.query.get("task"))
        boxes_value = None
        if "boxes" in request.query:
            boxes_value = loads_json(request.query["boxes"], "boxes")
        images = await read_images(
            request,
            json_field="image_base64",
            json_list_field="images_base64",
            max_bytes=settings.max_body_bytes,
        )
        if len(images) != 1:
            raise unprocessable(f"/describe takes exactly one image, got {len(images)}")
        data = images[0].data
    if task != "region_caption" and boxes_value is not None:
        raise unprocessable("boxes are only for task region_caption")
    raw_boxes = _raw_boxes(boxes_value) if task == "region_caption" else []
    image = await asyncio.to_thread(decode_image, data, max_pixels=settings.max_image_pixels)
    boxes: list[Box] = [parse_box(b, f"boxes[{i}]", image.size) for i, b in enumerate(raw_boxes)]
    started = time.perf_counter()
    batcher = request.app[BATCHERS].florence
    async with request.app[REGISTRY].use(Florence.name, Florence):
        if task == "region_caption":
            captions = await asyncio.gather(
                *(batcher.submit(DescribeRequest(image, task, box)) for box in boxes)
            )
            result: Any = [
                {"bbox": box.as_dict(), "caption": caption}
                for box, caption in zip(boxes, captions, strict=True)
            ]
        else:
            result = await batcher.submit(DescribeRequest(image, task))
    return web.json_response(
        {
            "task": task,
            "result": result,
            "inference_time_ms": round(1000 * (time.perf_counter() - started), 2),
            "image_width": image.width,
            "image_height": image.height,
        }
    )
