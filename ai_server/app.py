"""The aiohttp application factory (every part made once, started and stopped together) and
the middlewares for errors, auth, limits and metrics."""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from .analysis.breaker import LlmBreaker
from .analysis.pipeline import Pipeline
from .analysis.stages import describe_stage, detect_stage, enrich_stage
from .batchers import ModelBatchers
from .config import Settings
from .errors import ApiError, too_large, unavailable
from .keys import (
    ANALYZE_PIPELINE,
    BATCHERS,
    DEVICE,
    ENRICHER,
    METRICS,
    PRELOAD_TASK,
    REGISTRY,
    SETTINGS,
    TRIM_TASK,
)
from .metrics import Metrics
from .models.catalog import build_specs
from .models.enrich import Enricher, load_labels
from .routes import analyze, describe, detect, embed, enrich, health, llm, metrics, models
from .runtime.allocator import trim_periodically
from .runtime.batcher import BatcherClosedError, QueueFullError
from .runtime.devices import resolve_device
from .runtime.registry import ModelRegistry, ModelUnavailableError
from .runtime.tasks import cancel_and_wait

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = frozenset({"/", "/health"})  # "/" is /health as a page for people
ROUTE_GROUPS = (health, detect, models, metrics, analyze, llm, describe, embed, enrich)


def create_app(settings: Settings, *, registry: ModelRegistry | None = None) -> web.Application:
    """Build the server, every part wired once; `registry` lets tests supply their own models."""
    device = resolve_device(settings.device)
    if registry is None:
        budget = settings.max_vram_gb if device.is_cuda else settings.max_ram_gb
        registry = ModelRegistry(
            build_specs(settings, device),
            warmup=settings.warmup,
            budget_gb=budget,
            budget_kind="vram" if device.is_cuda else "ram",
            idle_timeout_s=settings.model_idle_s,
        )
    app_metrics = Metrics(registry.status)
    batchers = ModelBatchers.build(registry, settings, device, app_metrics)
    enricher = Enricher(
        registry, batchers.clip, batchers.florence, load_labels(settings.labels_path)
    )
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # Outermost first: metrics see the final status that error_middleware produced.
        middlewares=[metrics_middleware, error_middleware, auth_middleware, limit_middleware],
    )
    app[SETTINGS] = settings
    app[DEVICE] = device
    app[REGISTRY] = registry
    app[METRICS] = app_metrics
    app[BATCHERS] = batchers
    app[ENRICHER] = enricher
    app[ANALYZE_PIPELINE] = Pipeline(
        registry,
        detect=detect_stage(registry, batchers.detector, settings),
        enrich=enrich_stage(enricher, settings),
        describe=describe_stage(registry, batchers.florence),
        llm_timeout=settings.llm_timeout,
        breaker=LlmBreaker(settings.llm_pause_s, settings.llm_timeout),
    )
    for group in ROUTE_GROUPS:
        app.add_routes(group.routes)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Batchers, the preload and the malloc trim start with the app; at cleanup every task is
    awaited."""
    settings, registry, batchers = app[SETTINGS], app[REGISTRY], app[BATCHERS]
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    batchers.start()
    app[PRELOAD_TASK] = asyncio.create_task(_preload(registry, settings), name="preload-models")
    app[TRIM_TASK] = (
        asyncio.create_task(trim_periodically(settings.malloc_trim_s), name="malloc-trim")
        if settings.malloc_trim_s
        else None
    )
    yield
    await cancel_and_wait(app[PRELOAD_TASK], app[TRIM_TASK])
    await batchers.close()
    await registry.close()


async def _preload(registry: ModelRegistry, settings: Settings) -> None:
    """First-start provisioning: download and load HSI_PRELOAD's models, then download the
    others (HSI_DOWNLOAD_ALL); failures are recorded per model and /health reports them."""
    for name in settings.preload:
        if name not in registry.names:
            _LOGGER.warning("HSI_PRELOAD names unknown model %r; known: %s", name, registry.names)
    preload = [name for name in settings.preload if name in registry.names]
    await registry.provision(preload, download_all=settings.download_all)


def build_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


# --- middlewares -------------------------------------------------------------------------


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as the JSON error contract."""
    try:
        return await handler(request)
    except ApiError as err:
        return _error_response(err)
    except QueueFullError as err:
        request.app[METRICS].rejected.labels(err.name).inc()
        return _error_response(
            unavailable("queue_full", f"{err}; retry in a moment", retry_after=err.retry_after)
        )
    except ModelUnavailableError as err:
        return _error_response(
            unavailable("model_unavailable", str(err), retry_after=err.retry_after or 5)
        )
    except BatcherClosedError as err:
        return _error_response(unavailable("shutting_down", str(err), retry_after=5))
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        return _error_response(
            too_large("payload_too_large", f"request body exceeds the limit of {limit} bytes")
        )
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code = (err.reason or "error").lower().replace(" ", "_")
        # A 405 names the methods the route takes (RFC 9110: `Allow` is required there).
        kept = {name: err.headers[name] for name in ("Allow",) if name in err.headers}
        return _error_response(ApiError(err.status, code, err.reason or "error", headers=kept))
    except asyncio.CancelledError:
        raise
    except Exception:
        _LOGGER.exception("unhandled error in %s %s", request.method, request.path)
        return _error_response(ApiError(500, "internal_error", "internal server error"))


def _error_response(err: ApiError) -> web.Response:
    return web.json_response(err.body(), status=err.status, headers=err.headers)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.app[SETTINGS].api_key
    if key is None or request.path in PUBLIC_PATHS:
        return await handler(request)
    supplied = request.headers.get("X-API-Key", "")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        supplied = token.strip()
    # Constant-time comparison on bytes, so the key's content and length do not leak by timing.
    if not supplied or not hmac.compare_digest(supplied.encode(), key.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "missing or invalid API key: send Authorization: Bearer <key> or X-API-Key",
            headers={"WWW-Authenticate": 'Bearer realm="hsi"'},
        )
    return await handler(request)


@web.middleware
async def limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse an oversized body from its Content-Length before reading any of it."""
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise too_large(
            "payload_too_large",
            f"request body of {request.content_length} bytes exceeds the limit of {limit} bytes",
        )
    return await handler(request)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    resource = request.match_info.route.resource
    endpoint = resource.canonical if resource is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        metrics = request.app[METRICS]
        metrics.requests.labels(endpoint, request.method, str(status)).inc()
        metrics.request_latency.labels(endpoint).observe(time.perf_counter() - started)
