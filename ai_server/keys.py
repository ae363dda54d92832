"""Typed keys for the objects an application shares with its handlers."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .analysis.pipeline import Pipeline
from .config import Settings
from .metrics import Metrics
from .models.clip import ClipItem, Vector
from .models.detector import Detection, DetectRequest
from .models.enrich import Enricher
from .models.vlm import DescribeRequest, DescribeResult
from .runtime.batcher import DynamicBatcher
from .runtime.devices import DeviceInfo
from .runtime.registry import ModelRegistry

SETTINGS = web.AppKey("settings", Settings)
DEVICE = web.AppKey("device", DeviceInfo)
REGISTRY = web.AppKey("registry", ModelRegistry)
METRICS = web.AppKey("metrics", Metrics)
DETECT_BATCHER: web.AppKey[DynamicBatcher[DetectRequest, list[Detection]]] = web.AppKey(
    "detect_batcher"
)
PRELOAD_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("preload_task")
ANALYZE_PIPELINE = web.AppKey("analyze_pipeline", Pipeline)
CLIP_BATCHER: web.AppKey[DynamicBatcher[ClipItem, Vector]] = web.AppKey("clip_batcher")
FLORENCE_BATCHER: web.AppKey[DynamicBatcher[DescribeRequest, DescribeResult]] = web.AppKey(
    "florence_batcher"
)
ENRICHER = web.AppKey("enricher", Enricher)
