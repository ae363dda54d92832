"""The detect, enrich and describe stages of /analyze, made from the models the endpoints share.

`create_app` hands them to the `Pipeline` when it makes it, so /analyze's frames, crops and
captions join the same detector, CLIP and Florence-2 batches as the other endpoints' requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from hsi_client import AnalyzedObject
from PIL import Image

from ..batchers import DetectBatcher
from ..config import Settings
from ..imaging import Box
from ..models.detector import Detection, Detector, DetectRequest
from ..models.enrich import Enricher, EnrichObject, FlorenceBatcher
from ..models.vlm import DescribeRequest, Florence
from ..runtime.registry import ModelRegistry
from .pipeline import DescribeFn, DetectFn, EnrichFn


def detect_stage(registry: ModelRegistry, batcher: DetectBatcher, settings: Settings) -> DetectFn:
    """Detections on one frame with the server's threshold and classes, through the batcher."""
    threshold = settings.confidence
    classes = None if settings.classes is None else frozenset(settings.classes)

    async def detect(image: Image.Image) -> list[Detection]:
        await registry.get(Detector.name, Detector)  # loads on first use
        return await batcher.submit(DetectRequest(image, threshold, classes))

    return detect


def enrich_stage(enricher: Enricher, settings: Settings) -> EnrichFn:
    """The zoo in the shape the pipeline calls: the event's frames, each with its objects ->
    per frame (attributes per object, quality). Plates are read on the HSI_PLATE_READS widest
    vehicles of the whole event, not on every vehicle of every frame."""

    async def enrich(
        images: Sequence[Image.Image], objects: Sequence[Sequence[AnalyzedObject]]
    ) -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
        frames = [
            [
                EnrichObject(
                    o.label, Box(o.bbox.x, o.bbox.y, o.bbox.width, o.bbox.height), o.confidence
                )
                for o in mine
            ]
            for mine in objects
        ]
        frames = enricher.limit_plate_reads(frames, settings.plate_reads)
        results = await asyncio.gather(
            *(enricher.enrich(image, items) for image, items in zip(images, frames, strict=True))
        )
        return [
            ([entry["attributes"] for entry in result.objects], result.image) for result in results
        ]

    return enrich


def describe_stage(registry: ModelRegistry, batcher: FlorenceBatcher) -> DescribeFn:
    """The key frame's caption, batched with /describe's requests."""

    async def describe(image: Image.Image) -> str:
        async with registry.use(Florence.name, Florence):
            return str(await batcher.submit(DescribeRequest(image, "caption")))

    return describe
