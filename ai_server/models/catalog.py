"""Which models this server offers and where each one's weights come from.

A model's source is, in order: its setting (e.g. `RTDETR_MODEL_PATH`), else the active profile's
default: a hub id for `default`, a random-weight build under `HSI_CACHE_DIR/tiny` for `tiny`
(built on first use, then reused). A hub id is downloaded into the models folder
(`HSI_MODELS_DIR`, `models/hub.py`) before the first load, and loaded from there; the spec's
`weights` tell the registry what to fetch. The `scripted` profile (tests only) has models of its
own that answer what scene frames say (`models/scripted.py`) and no LLM; model settings do not
apply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from ..runtime.accel import AccelOptions, resolve_runtime
from ..runtime.devices import DeviceInfo
from ..runtime.registry import ModelSpec
from . import clip, tiny, vlm
from .detector import DEFAULT_CPU_MODEL, DEFAULT_GPU_MODEL, Detector
from .hub import (
    HubWeights,
    ModelStore,
    Select,
    gguf_file,
    hub_id,
    open_clip_files,
    transformers_files,
)
from .llm import DEFAULT_FILE, DEFAULT_QUANT, DEFAULT_REPO, LlamaCppLLM, LLMBackend, RemoteLLM

_LOGGER = logging.getLogger(__name__)


def tiny_source(settings: Settings, name: str) -> str:
    """Path of the tiny model `name`, building it on first use (runs in the load thread)."""
    return str(tiny.make_tiny_models(settings.cache_dir / "tiny", [name])[name])


def detector_source(settings: Settings, device: DeviceInfo) -> str:
    if settings.detector_path:
        return settings.detector_path
    if settings.profile == "tiny":
        return tiny_source(settings, Detector.name)
    return DEFAULT_GPU_MODEL if device.is_cuda else DEFAULT_CPU_MODEL


def florence_source(settings: Settings, device: DeviceInfo) -> str:
    if settings.florence_path:
        return settings.florence_path
    if settings.profile == "tiny":
        return tiny_source(settings, vlm.Florence.name)
    return vlm.DEFAULT_GPU_MODEL if device.is_cuda else vlm.DEFAULT_CPU_MODEL


def clip_source(settings: Settings) -> str:
    if settings.clip_path:
        return settings.clip_path
    if settings.profile == "tiny":
        return tiny_source(settings, clip.Clip.name)
    return clip.DEFAULT_MODEL


def _size_gb(settings: Settings, device: DeviceInfo, parameters: float, tiny_gb: float) -> float:
    """Estimated resident size before the first load (then the registry measures it)."""
    if settings.profile == "tiny":
        return tiny_gb
    return parameters * (2 if device.is_cuda else 4) / 2**30


def _llm_size_gb(settings: Settings, device: DeviceInfo) -> float:
    """Before the first load: the GGUF file if it is here (else Nemotron Mini Q4_K_M's 2.7 GB),
    once per slot on a GPU, plus ~0.5 GB of KV cache per slot per 4096 tokens of context."""
    if settings.llm_url:
        return 0.0  # served elsewhere
    if settings.profile == "tiny" and not settings.llm_path:
        return 0.01
    path = Path(settings.llm_path or "")
    weights = path.stat().st_size / 2**30 if path.is_file() else 2.7
    copies = settings.llm_slots if device.is_cuda else 1
    kv = 0.5 * settings.llm_slots * settings.llm_context_size / 4096
    return weights * copies + kv


def llm_source(settings: Settings) -> str:
    """NEMOTRON_MODEL_PATH, else the profile's model (a tiny GGUF, or Nemotron Mini on the hub)."""
    if settings.llm_path:
        return settings.llm_path
    if settings.profile == "tiny":
        return tiny_source(settings, LLMBackend.name)
    return DEFAULT_REPO


def hub_weights(
    store: ModelStore,
    settings: Settings,
    name: str,
    configured: str | None,
    default: str,
    *,
    setting: str,
    select: Select,
) -> HubWeights | None:
    """What model `name` downloads when its source (the setting, else the default profile's
    model) is a hub id; None for a local folder and for the tiny profile's builds."""
    value = configured or (None if settings.profile == "tiny" else default)
    found = hub_id(value) if value else None
    if found is None:
        return None
    repo, file = found
    if name == LLMBackend.name:
        file = file or (DEFAULT_FILE if repo == DEFAULT_REPO else None)
        select = gguf_file(file, DEFAULT_QUANT)
    return store.weights(repo, model=name, setting=setting, select=select, file=file)


def _local(weights: HubWeights | None, source: Callable[[], str]) -> str:
    """The loader's source: the downloaded folder (or file) of a hub model, else `source()`
    (called in the load thread: it may build a tiny model)."""
    return str(weights.path) if weights is not None else source()


def build_llm(
    settings: Settings, device: DeviceInfo, weights: HubWeights | None = None
) -> LLMBackend:
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
        _local(weights, lambda: llm_source(settings)),
        context_size=settings.llm_context_size,
        gpu_layers=settings.llm_gpu_layers,
        slots=settings.llm_slots,
        threads=settings.llm_threads,
        prefix_cache=settings.llm_prefix_cache,
        max_queue=settings.queue_max,
        use_gpu=settings.device != "cpu",  # offload when llama.cpp has a GPU build (CUDA)
    )


def accel_options(settings: Settings, device: DeviceInfo) -> AccelOptions:
    """HSI_RUNTIME resolved for this host (runtime/accel.py), graphs cached in HSI_CACHE_DIR."""
    runtime, reason = resolve_runtime(settings.runtime, device)
    if reason:
        _LOGGER.warning("HSI_RUNTIME=%s: torch serves (%s)", settings.runtime, reason)
    return AccelOptions(runtime, settings.cache_dir / "onnx", settings.torch_threads)


def build_specs(settings: Settings, device: DeviceInfo) -> list[ModelSpec]:
    if settings.profile == "scripted":  # tests only; imported here, never by a real server
        from . import scripted

        return scripted.build_specs()
    accel = accel_options(settings, device)
    store = ModelStore.from_settings(settings)
    gpu = device.is_cuda
    detector_w = hub_weights(
        store,
        settings,
        Detector.name,
        settings.detector_path,
        DEFAULT_GPU_MODEL if gpu else DEFAULT_CPU_MODEL,
        setting="RTDETR_MODEL_PATH",
        select=transformers_files,
    )
    clip_w = hub_weights(
        store,
        settings,
        clip.Clip.name,
        settings.clip_path,
        clip.DEFAULT_MODEL,
        setting="CLIP_MODEL_PATH",
        select=open_clip_files,
    )
    florence_w = hub_weights(
        store,
        settings,
        vlm.Florence.name,
        settings.florence_path,
        vlm.DEFAULT_GPU_MODEL if gpu else vlm.DEFAULT_CPU_MODEL,
        setting="FLORENCE_MODEL_PATH",
        select=transformers_files,
    )
    llm_w = None
    if not settings.llm_url:
        llm_w = hub_weights(
            store,
            settings,
            LLMBackend.name,
            settings.llm_path,
            DEFAULT_REPO,
            setting="NEMOTRON_MODEL_PATH",
            select=gguf_file(None, DEFAULT_QUANT),
        )
    return [
        ModelSpec(
            Detector.name,
            lambda: Detector(
                _local(detector_w, lambda: detector_source(settings, device)),
                device,
                size=settings.detector_size,
                accel=accel,
            ),
            priority=100,
            optional=False,
            weights=detector_w,
        ),
        ModelSpec(
            clip.Clip.name,
            lambda: clip.Clip(_local(clip_w, lambda: clip_source(settings)), device, accel=accel),
            priority=80,  # small, and used per detection (re-identification)
            size_gb=_size_gb(settings, device, 151e6, 0.0062),  # ViT-B/32
            weights=clip_w,
        ),
        ModelSpec(
            vlm.Florence.name,
            lambda: vlm.Florence(
                _local(florence_w, lambda: florence_source(settings, device)),
                device,
                max_new_tokens=settings.florence_max_new_tokens,
                num_beams=settings.florence_num_beams,
            ),
            priority=60,
            size_gb=_size_gb(settings, device, 777e6 if gpu else 232e6, 0.0005),
            weights=florence_w,
        ),
        # Largest and least urgent: evicted first; /analyze falls back to rules without it.
        ModelSpec(
            LLMBackend.name,
            lambda: build_llm(settings, device, llm_w),
            priority=40,
            size_gb=_llm_size_gb(settings, device),
            weights=llm_w,
        ),
    ]
