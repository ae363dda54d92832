"""Wiring for the vision models beside the detector: CLIP and Florence-2 batchers, the
enrichment zoo, and their routes (/embed, /describe, /enrich).

`setup_vision` is called once by `create_app`; everything it makes hangs off the application
(typed keys), and the batchers start and stop with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web
from PIL import Image

from .analysis.event import EventObject
from .analysis.pipeline import DescribeFn, EnrichFn
from .config import Settings
from .imaging import Box
from .keys import ANALYZE_PIPELINE, CLIP_BATCHER, ENRICHER, FLORENCE_BATCHER
from .metrics import Metrics
from .models.clip import Clip, ClipItem, Vector
from .models.enrich import Enricher, EnrichObject, load_labels
from .models.vlm import DescribeRequest, DescribeResult, Florence
from .routes import describe, embed, enrich
from .runtime.batcher import DynamicBatcher, model_batcher
from .runtime.devices import DeviceInfo
from .runtime.registry import ModelRegistry


def setup_vision(
    app: web.Application,
    settings: Settings,
    device: DeviceInfo,
    registry: ModelRegistry,
    metrics: Metrics,
) -> None:
    """Batchers for CLIP and Florence-2, the enricher, and the routes that use them."""

    def run_clip(batch: list[ClipItem]) -> Sequence[Vector]:
        return registry.loaded("clip", Clip).embed(batch)

    def run_florence(batch: list[DescribeRequest]) -> Sequence[DescribeResult]:
        return registry.loaded("florence", Florence).describe(batch)

    # On CPU, CLIP's 224 px crops batch well; Florence-2's generation does not
    # (docs/benchmarks.md: ViT-B/32 12.5 -> 20 crops/s at batch 8; base 0.33 -> 0.30 captions/s).
    app[CLIP_BATCHER] = model_batcher("clip", run_clip, settings, device, metrics, cpu_batch=8)
    app[FLORENCE_BATCHER] = model_batcher(
        "florence", run_florence, settings, device, metrics, cpu_batch=1
    )
    app[ENRICHER] = Enricher(
        registry, app[CLIP_BATCHER], app[FLORENCE_BATCHER], load_labels(settings.labels_path)
    )
    for routes in (describe.routes, embed.routes, enrich.routes):
        app.add_routes(routes)
    if ANALYZE_PIPELINE in app:
        app[ANALYZE_PIPELINE].enrich = analysis_enricher(app[ENRICHER])
        app[ANALYZE_PIPELINE].describe = batched_caption(registry, app[FLORENCE_BATCHER])
    app.cleanup_ctx.append(_lifecycle)


def batched_caption(
    registry: ModelRegistry, batcher: DynamicBatcher[DescribeRequest, DescribeResult]
) -> DescribeFn:
    """/analyze's key-frame caption, batched with /describe's requests."""

    async def describe(image: Image.Image) -> str:
        async with registry.use("florence", Florence):
            return str(await batcher.submit(DescribeRequest(image, "caption")))

    return describe


def analysis_enricher(enricher: Enricher) -> EnrichFn:
    """The zoo in the shape /analyze's pipeline calls: (frame, objects) -> (attributes, quality)."""

    async def run(
        image: Image.Image, objects: Sequence[EventObject]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        items = [
            EnrichObject(
                o.label, Box(o.bbox.x, o.bbox.y, o.bbox.width, o.bbox.height), o.confidence
            )
            for o in objects
        ]
        result = await enricher.enrich(image, items)
        return [entry["attributes"] for entry in result.objects], result.image

    return run


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[CLIP_BATCHER].start()
    app[FLORENCE_BATCHER].start()
    yield
    await app[CLIP_BATCHER].close()
    await app[FLORENCE_BATCHER].close()
