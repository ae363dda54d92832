"""Typed keys for the objects an application shares with its handlers."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .analysis.pipeline import Pipeline
from .batchers import ModelBatchers
from .config import Settings
from .metrics import Metrics
from .models.enrich import Enricher
from .runtime.devices import DeviceInfo
from .runtime.registry import ModelRegistry

SETTINGS = web.AppKey("settings", Settings)
DEVICE = web.AppKey("device", DeviceInfo)
REGISTRY = web.AppKey("registry", ModelRegistry)
METRICS = web.AppKey("metrics", Metrics)
BATCHERS = web.AppKey("batchers", ModelBatchers)
ENRICHER = web.AppKey("enricher", Enricher)
ANALYZE_PIPELINE = web.AppKey("analyze_pipeline", Pipeline)
PRELOAD_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("preload_task")
TRIM_TASK: web.AppKey[asyncio.Task[None] | None] = web.AppKey("trim_task")
