"""GET /models and POST /models/{name}/load|unload: what is resident, and control over it."""

from __future__ import annotations

from aiohttp import web

from ..errors import ApiError
from ..keys import DEVICE, REGISTRY
from ..runtime.registry import ModelRegistry

routes = web.RouteTableDef()


def _known(registry: ModelRegistry, name: str) -> None:
    if name not in registry.names:
        raise ApiError(
            404, "unknown_model", f"no model named {name!r}; known: {', '.join(registry.names)}"
        )


@routes.get("/models")
async def list_models(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    return web.json_response(
        {
            "device": request.app[DEVICE].device,
            "models": registry.status(),
            "budget": registry.budget(),
        }
    )


@routes.post("/models/{name}/load")
async def load_model(request: web.Request) -> web.Response:
    registry, name = request.app[REGISTRY], request.match_info["name"]
    _known(registry, name)
    await registry.load(name, retry_now=True)  # the operator asks: no hold-off
    return web.json_response({"name": name, **registry.status()[name]})


@routes.post("/models/{name}/unload")
async def unload_model(request: web.Request) -> web.Response:
    registry, name = request.app[REGISTRY], request.match_info["name"]
    _known(registry, name)
    was_loaded = await registry.unload(name)
    return web.json_response({"name": name, "unloaded": was_loaded, **registry.status()[name]})
