"""GET /metrics: Prometheus text exposition."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ..keys import BATCHERS, METRICS

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    collected = request.app[METRICS]
    for batcher in request.app[BATCHERS]:
        collected.queue_depth.labels(batcher.name).set(batcher.queue_depth)
    response = web.Response(body=collected.render())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
