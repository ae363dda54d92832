"""GET /health: liveness and readiness in the original shape (no auth)."""

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
    models = request.app[REGISTRY].status()
    detector = models.get(Detector.name, {})
    failed = sorted(name for name, entry in models.items() if entry["status"] == "error")
    if failed:
        status = "degraded"  # up and answering, but a model failed to load: see models.*.error
    elif detector.get("status") == "loading":
        status = "loading"
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
            "version": __version__,
        }
    )
