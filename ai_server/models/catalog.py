"""Which models this server offers and where each one's weights come from.

A model's source is, in order: its setting (e.g. `RTDETR_MODEL_PATH`), else the active profile's
default: a hub id for `default`, a random-weight build under `HSI_CACHE_DIR/tiny` for `tiny`
(built on first use, then reused).
"""

from __future__ import annotations

from ..config import Settings
from ..runtime.devices import DeviceInfo
from ..runtime.registry import ModelSpec
from . import tiny
from .detector import DEFAULT_CPU_MODEL, DEFAULT_GPU_MODEL, Detector


def tiny_source(settings: Settings, name: str) -> str:
    """Path of the tiny model `name`, building it on first use (runs in the load thread)."""
    return str(tiny.make_tiny_models(settings.cache_dir / "tiny", [name])[name])


def detector_source(settings: Settings, device: DeviceInfo) -> str:
    if settings.detector_path:
        return settings.detector_path
    if settings.profile == "tiny":
        return tiny_source(settings, "detector")
    return DEFAULT_GPU_MODEL if device.is_cuda else DEFAULT_CPU_MODEL


def build_specs(settings: Settings, device: DeviceInfo) -> list[ModelSpec]:
    return [
        ModelSpec(
            "detector",
            lambda: Detector(detector_source(settings, device), device),
            priority=100,
            optional=False,
        ),
    ]
