"""GET /health: liveness and readiness in the original shape (no auth), plus the progress of
model downloads (`models.<name>.state` and `.progress`, `downloading`)."""

from __future__ import annotations

import torch
from aiohttp import web

from .. import __version__
from ..keys import DEVICE, REGISTRY
from ..models.detector import Detector
from ..runtime.devices import cuda_memory_used_gb

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    models = registry.status()
    detector = models.get(Detector.name, {})
    failed = sorted(name for name, entry in models.items() if entry["status"] == "error")
    downloading = sorted(name for name, e in models.items() if e.get("state") == "downloading")
    if failed:
        status = "degraded"  # up and answering, but a model failed to load: see models.*.error
    elif registry.provisioning or downloading or detector.get("status") == "loading":
        status = "loading"  # models are being downloaded or loaded: see models.*.state
    else:
        status = "healthy"
    return web.json_response(
        {
            "status": status,
            "model_loaded": bool(detector.get("loaded")),
            "device": request.app[DEVICE].device,
            "cuda_available": torch.cuda.is_available(),
            "vram_used_gb": cuda_memory_used_gb(),
            "models": models,
            "failed_models": failed,
            "downloading": downloading,
            "version": __version__,
        }
    )
