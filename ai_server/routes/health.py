"""GET /health: liveness and readiness in the original shape (no auth), plus the progress of
model downloads (`models.<name>.state` and `.progress`, `downloading`). GET /: the same as a small
HTML page for people (Home Assistant's "Visit" link on the server's device opens it)."""

from __future__ import annotations

from html import escape
from typing import Any

import torch
from aiohttp import web

from .. import __version__
from ..keys import DEVICE, REGISTRY
from ..models.detector import Detector
from ..runtime.devices import cuda_memory_used_gb

routes = web.RouteTableDef()


def _health(request: web.Request) -> dict[str, Any]:
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
    return {
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


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response(_health(request))


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>HSI AI server: {status}</title>
<style>
  :root {{ color-scheme: light dark; font-family: system-ui, sans-serif; }}
  body {{ max-width: 46rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
  table {{ border-collapse: collapse; width: 100%; }}
  th, td {{ text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #8884; }}
  .status {{ font-weight: 600; }}
  .healthy {{ color: #2e7d32; }} .loading {{ color: #ef6c00; }} .degraded {{ color: #c62828; }}
  small {{ opacity: 0.7; }}
</style>
</head>
<body>
<h1>Home Security Intelligence AI server</h1>
<p>Status: <span class="status {status}">{status}</span> &middot; version {version}
 &middot; device {device}</p>
<table>
<thead><tr><th>Model</th><th>State</th><th>Device</th><th>Size</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p><small>Home Assistant's Home Security Intelligence integration uses this server. Its API
needs the API key; this page and <a href="health">/health</a> (the same as JSON) do not.</small></p>
</body>
</html>
"""


def _row(name: str, model: dict[str, Any]) -> str:
    state = str(model.get("state") or model.get("status") or "")
    progress = model.get("progress") or {}
    if state == "downloading" and progress.get("percent") is not None:
        state = f"{state} {float(progress['percent']):.0f} %"
    if model.get("error"):
        state = f"{state}: {model['error']}"
    size = f"{float(model.get('size_gb') or 0):.2f} GB" if model.get("size_gb") else ""
    cells = (name, state, str(model.get("device") or ""), size)
    return "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>"


@routes.get("/")
async def status_page(request: web.Request) -> web.Response:
    """What /health says, readable in a browser, without the API key."""
    body = _health(request)
    rows = "\n".join(_row(name, model) for name, model in sorted(body["models"].items()))
    page = _PAGE.format(
        status=escape(body["status"]),
        version=escape(str(body["version"])),
        device=escape(str(body["device"])),
        rows=rows or '<tr><td colspan="4">no models</td></tr>',
    )
    return web.Response(text=page, content_type="text/html")
