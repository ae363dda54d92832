"""CLIP through open_clip: L2-normalised image and text embeddings, zero-shot classification.

One batch function (`embed`) serves images and texts alike, so a single dynamic batcher feeds the
model: crops from /detect?embed=1, /embed and the enrichment zoo share batches. Zero-shot
classification is plain arithmetic on those embeddings (`zero_shot`), with each label's text
embedding the normalised mean over a prompt ensemble ("a photo of a {}.", ...).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from ..runtime.accel import AccelOptions, Graph, graph_or_torch, runtime_info
from ..runtime.devices import DeviceInfo
from .base import ModelLoadError, hub_failure, module_bytes, resolve_source

_LOGGER = logging.getLogger(__name__)

# ViT-B/32 trained on LAION-2B: the original system's CLIP, small enough for CPU-only hosts.
DEFAULT_MODEL = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
DEFAULT_TEMPLATES = ("a photo of a {}.",)

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ClipItem:
    """One thing to embed: an image or a text (exactly one is set)."""

    image: Image.Image | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if (self.image is None) == (self.text is None):
            raise ValueError("a ClipItem holds exactly one of image or text")


def open_clip_name(source: str) -> str:
    """The open_clip model name for a setting: a local folder, an hf-hub id, or as given."""
    if source.startswith(("hf-hub:", "local-dir:")):
        return source
    resolved = resolve_source(source, "CLIP model")
    if Path(resolved).is_dir():
        return f"local-dir:{resolved}"
    return f"hf-hub:{resolved}"


class _ImageTower(torch.nn.Module):
    """CLIP's image tower as a graph: preprocessed pixels in, unnormalised features out."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.model.encode_image(pixels)
        return features


class Clip:
    """Loads an open_clip checkpoint and embeds batches of images and texts.

    With an accelerated runtime (`accel`), the image tower runs as an exported graph
    (runtime/accel.py); texts stay in torch (short, cheap, and rarely on the hot path).
    """

    name = "clip"

    def __init__(
        self, source: str, device: DeviceInfo, *, accel: AccelOptions | None = None
    ) -> None:
        self.source = source
        self.device = device
        self.accel = accel or AccelOptions()
        self._graph: Graph | None = None
        self._fallback: str | None = None  # why torch serves although another runtime was set
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._dim = 0
        self._lock = threading.Lock()  # load/unload vs. a batch in flight

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def logit_scale(self) -> float:
        model = self._model
        return 100.0 if model is None else float(model.logit_scale.exp().item())

    def load(self) -> None:
        import open_clip

        name = open_clip_name(self.source)
        precision = "fp16" if self.device.dtype == torch.float16 else "fp32"
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, device=self.device.device, precision=precision
            )
            tokenizer = open_clip.get_tokenizer(name)
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            raise hub_failure(name.partition(":")[2], "CLIP model", err) from err
        if not hasattr(model, "encode_image") or not hasattr(model, "encode_text"):
            raise ModelLoadError(f"{self.source} is not a CLIP model (no image/text towers)")
        model.eval()
        with torch.inference_mode():
            dim = int(model.encode_text(tokenizer(["probe"]).to(self.device.device)).shape[-1])
        graph, fallback = self._load_graph(model, preprocess)
        with self._lock:
            self._model, self._preprocess, self._tokenizer, self._dim = (
                model,
                preprocess,
                tokenizer,
                dim,
            )
            self._graph, self._fallback = graph, fallback

    def _load_graph(self, model: Any, preprocess: Any) -> tuple[Graph | None, str | None]:
        if not self.accel.accelerated:
            return None, None
        # The tower's input shape is whatever the checkpoint's own preprocessing produces.
        example = preprocess(Image.new("RGB", (64, 64))).unsqueeze(0).to(dtype=self.device.dtype)
        return graph_or_torch(
            "CLIP image tower",
            _ImageTower(model),
            example,
            name="clip-image",
            outputs=("features",),
            options=self.accel,
        )

    @property
    def runtime(self) -> str:
        """The runtime serving the image tower now: torch, onnxruntime or openvino."""
        graph = self._graph
        return "torch" if graph is None else graph.runtime

    def warmup(self) -> None:
        self.embed([ClipItem(image=Image.new("RGB", (64, 64))), ClipItem(text="a photo")])

    def unload(self) -> None:
        with self._lock:
            self._model = self._preprocess = self._tokenizer = self._graph = None

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"source": self.source, "device": self.device.device}
        if self._model is not None:
            info["dtype"] = str(self.device.dtype).removeprefix("torch.")
            info["parameters"] = sum(p.numel() for p in self._model.parameters())
            info["dim"] = self._dim
            info.update(runtime_info(self._graph, self._fallback))
        return info

    def memory_bytes(self) -> int:
        graph = self._graph
        return module_bytes(self._model) + (0 if graph is None else graph.memory_bytes())

    @torch.inference_mode()
    def embed(self, batch: Sequence[ClipItem]) -> list[Vector]:
        """One L2-normalised float32 vector per item, in order."""
        with self._lock:
            model, preprocess, tokenizer = self._model, self._preprocess, self._tokenizer
            graph = self._graph
        if model is None:
            raise ModelLoadError("CLIP is not loaded")
        out: list[Vector | None] = [None] * len(batch)
        images = [(i, item.image) for i, item in enumerate(batch) if item.image is not None]
        texts = [(i, item.text) for i, item in enumerate(batch) if item.text is not None]
        if images:
            pixels = torch.stack([preprocess(image) for _, image in images])
            pixels = pixels.to(self.device.device, dtype=self.device.dtype)
            features = None if graph is None else self._run_graph(graph, pixels)
            vectors = _normalise(model.encode_image(pixels) if features is None else features)
            for (index, _), vector in zip(images, vectors, strict=True):
                out[index] = vector
        if texts:
            tokens = tokenizer([text for _, text in texts]).to(self.device.device)
            vectors = _normalise(model.encode_text(tokens))
            for (index, _), vector in zip(texts, vectors, strict=True):
                out[index] = vector
        return [vector for vector in out if vector is not None]

    def _run_graph(self, graph: Graph, pixels: torch.Tensor) -> Vector | None:
        """The tower's features, or None after a failure (then torch serves from now on)."""
        try:
            (features,) = graph.run(pixels.float().numpy())
        except Exception as err:  # the runtimes raise their own types
            reason = f"{graph.runtime} failed to run: {type(err).__name__}: {err}"
            with self._lock:
                if self._graph is graph:  # log once, however many batches were in flight
                    self._graph, self._fallback = None, reason
                    _LOGGER.warning("CLIP: torch serves from now on: %s", reason)
            return None
        return features


def _normalise(features: torch.Tensor | Vector) -> list[Vector]:
    if isinstance(features, torch.Tensor):
        features = features.float().cpu().numpy()
    matrix = features.astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return list(matrix / np.maximum(norms, 1e-12))


def ensemble(vectors: Sequence[Vector], labels: int) -> npt.NDArray[np.float32]:
    """Label embeddings (labels x dim) from `labels * templates` prompt embeddings in label order.

    Each label's prompts are averaged and the mean renormalised: the prompt ensemble of the
    CLIP paper, which makes zero-shot labels less sensitive to one phrasing.
    """
    if labels <= 0 or len(vectors) % labels:
        raise ValueError(f"{len(vectors)} prompt embeddings do not split into {labels} labels")
    stacked = np.stack(vectors).reshape(labels, len(vectors) // labels, -1).mean(axis=1)
    norms = np.linalg.norm(stacked, axis=1, keepdims=True)
    result: npt.NDArray[np.float32] = (stacked / np.maximum(norms, 1e-12)).astype(np.float32)
    return result


def prompts(labels: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Every template filled with every label, grouped by label (the order `ensemble` expects).

    `{}` is replaced literally, not with `str.format`: templates come from requests too, and
    format syntax in one (`{0.__class__}`, a lone `}`) must neither fail nor be evaluated.
    """
    return [template.replace("{}", label) for label in labels for template in templates]


def zero_shot(
    images: npt.NDArray[np.float32], label_matrix: npt.NDArray[np.float32], logit_scale: float
) -> npt.NDArray[np.float32]:
    """Probabilities (images x labels): softmax of the scaled cosine similarities."""
    logits = logit_scale * images @ label_matrix.T
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    result: npt.NDArray[np.float32] = (weights / weights.sum(axis=1, keepdims=True)).astype(
        np.float32
    )
    return result
