"""The models the benches run: random-weight builds of the real architectures, made once under
`--cache` (model weights cannot be downloaded here), the tiny profile's models, or a folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ai_server.models import tiny

# A scaled-down nemotron GGUF (same architecture and quantisation) for quick runs and tests.
TINY_LLM = {"n_embd": 256, "n_layer": 2, "n_head": 2, "n_head_kv": 1, "n_ff": 768}
TINY_LLM_VOCAB = 8192
LLM_SCALES = ("full", "tiny")


def cached_model(target: Path, build: Callable[[Path], object], what: str) -> Path:
    """`target`, built once (again when tiny.TINY_VERSION's recipes change)."""
    if not tiny.stamp_ok(target):
        print(f"building random-weight {what} in {target}", flush=True)
    return tiny.build_once(target, build, f"random-weight {what}")


def detector(name: str, cache: Path) -> Path:
    """tiny, r18vd or r50vd (RT-DETRv2, random weights), each also as `<name>-separated` (scores
    separated as a trained model's are, so every runtime reports the same boxes:
    tiny.separate_scores), or a folder."""
    builders = {"r18vd": tiny.build_detector_r18vd, "r50vd": tiny.build_detector_r50vd}
    base, _, variant = name.partition("-")
    if variant == "separated" and (base == "tiny" or base in builders):
        source = detector(base, cache)
        return cached_model(
            cache / name, lambda p: tiny.separate_scores(source, p), f"RT-DETRv2 {name}"
        )
    if name == "tiny":
        return tiny.make_tiny_models(cache / "tiny", ["detector"])["detector"]
    if name in builders:
        return cached_model(cache / name, builders[name], f"RT-DETRv2 {name}")
    return Path(name)


def clip(name: str, cache: Path) -> Path:
    """tiny or vitb32 (open_clip ViT-B/32, random weights), or a folder."""
    if name == "tiny":
        return tiny.make_tiny_models(cache / "tiny", ["clip"])["clip"]
    if name == "vitb32":
        return cached_model(
            cache / "clip-vit-b32", lambda p: tiny.build_clip(p, full_size=True), "CLIP ViT-B/32"
        )
    return Path(name)


def florence(name: str, cache: Path) -> Path:
    """tiny or base (Florence-2 base, random weights), or a folder."""
    if name == "tiny":
        return tiny.make_tiny_models(cache / "tiny", ["florence"])["florence"]
    if name == "base":
        return cached_model(
            cache / "florence2-base",
            lambda p: tiny.build_florence(p, full_size=True),
            "Florence-2 base",
        )
    return Path(name)


def llm(scale: str, cache: Path, threads: int | None = None) -> Path:
    """The random-weight nemotron GGUF: `full` (Nemotron Mini 4B's shapes, Q4_K_M, built by
    llama.cpp's quantiser on first use: minutes) or `tiny` (the same architecture, 2 layers)."""
    if scale not in LLM_SCALES:
        raise ValueError(f"unknown LLM scale {scale!r}: {', '.join(LLM_SCALES)}")
    params = {**TINY_LLM, "vocab_size": TINY_LLM_VOCAB} if scale == "tiny" else {}
    return tiny.nemotron_gguf(cache / "llm", threads=threads, **params)
