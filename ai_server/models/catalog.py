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
from .llm import DEFAULT_REPO, LlamaCppLLM, LLMBackend, RemoteLLM


def tiny_source(settings: Settings, name: str) -> str:
    """Path of the tiny model `name`, building it on first use (runs in the load thread)."""
    return str(tiny.make_tiny_models(settings.cache_dir / "tiny", [name])[name])


def detector_source(settings: Settings, device: DeviceInfo) -> str:
    if settings.detector_path:
        return settings.detector_path
    if settings.profile == "tiny":
        return tiny_source(settings, "detector")
    return DEFAULT_GPU_MODEL if device.is_cuda else DEFAULT_CPU_MODEL


def llm_source(settings: Settings) -> str:
    """NEMOTRON_MODEL_PATH, else the profile's model (a tiny GGUF, or Nemotron Mini on the hub)."""
    if settings.llm_path:
        return settings.llm_path
    if settings.profile == "tiny":
        return tiny_source(settings, "llm")
    return DEFAULT_REPO


def build_llm(settings: Settings, device: DeviceInfo) -> LLMBackend:
    """HSI_LLM_URL moves the LLM to an OpenAI-compatible server; otherwise it runs in process."""
    if settings.llm_url:
        return RemoteLLM(
            settings.llm_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            context_size=settings.llm_context_size,
            timeout=settings.llm_timeout,
        )
    return LlamaCppLLM(
        llm_source(settings),
        context_size=settings.llm_context_size,
        gpu_layers=settings.llm_gpu_layers,
        slots=settings.llm_slots,
        threads=settings.llm_threads,
        prefix_cache=settings.llm_prefix_cache,
        max_queue=settings.queue_max,
        use_gpu=settings.device != "cpu",  # llama.cpp may offload where torch cannot (Vulkan)
    )


def build_specs(settings: Settings, device: DeviceInfo) -> list[ModelSpec]:
    return [
        ModelSpec(
            "detector",
            lambda: Detector(detector_source(settings, device), device),
            priority=100,
            optional=False,
        ),
        # Largest and least urgent: evicted first; /analyze falls back to rules without it.
        ModelSpec("llm", lambda: build_llm(settings, device), priority=40),
    ]
