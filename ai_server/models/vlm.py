"""Florence-2 through transformers (native `Florence2ForConditionalGeneration`).

Tasks map to Florence-2 task tokens; every result is returned in the image's own pixel
coordinates with the server's `{x, y, width, height}` boxes. A region caption for N boxes is N
batch items (one `<REGION_TO_DESCRIPTION>` prompt each), so the dynamic batcher can fill a batch
from one request or from several.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from ..imaging import Box
from ..runtime.devices import DeviceInfo
from .base import ModelLoadError, hub_failure, module_bytes, resolve_source

_LOGGER = logging.getLogger(__name__)

# base (0.23 B) on CPU-only hosts, large (0.77 B) where a GPU carries it; both in the native
# transformers format (no trust_remote_code).
DEFAULT_CPU_MODEL = "florence-community/Florence-2-base"
DEFAULT_GPU_MODEL = "florence-community/Florence-2-large"

Task = Literal["caption", "detailed_caption", "ocr", "ocr_regions", "od", "region_caption"]
TASKS: tuple[Task, ...] = get_args(Task)
_TOKENS: dict[Task, str] = {
    "caption": "<CAPTION>",
    "detailed_caption": "<DETAILED_CAPTION>",
    "ocr": "<OCR>",
    "ocr_regions": "<OCR_WITH_REGION>",
    "od": "<OD>",
    "region_caption": "<REGION_TO_DESCRIPTION>",
}
_LOC_BINS = 1000


@dataclass(frozen=True)
class DescribeRequest:
    """One Florence-2 prompt: a task on an image, with a region for `region_caption`."""

    image: Image.Image
    task: Task
    region: Box | None = None

    def __post_init__(self) -> None:
        if (self.task == "region_caption") != (self.region is not None):
            raise ValueError("region_caption needs a region; other tasks take none")


# caption/detailed_caption/ocr/region_caption: str; ocr_regions/od: list of dicts.
DescribeResult = str | list[dict[str, Any]]


def _prompt(request: DescribeRequest) -> str:
    token = _TOKENS[request.task]
    if request.region is None:
        return token
    box, (w, h) = request.region, request.image.size

    def loc(value: float, size: int) -> int:
        return min(_LOC_BINS - 1, max(0, int(value / size * _LOC_BINS)))

    corners = (
        loc(box.x, w),
        loc(box.y, h),
        loc(box.x + box.width, w),
        loc(box.y + box.height, h),
    )
    return token + "".join(f"<loc_{c}>" for c in corners)


def _xyxy_box(coords: Sequence[float], size: tuple[int, int]) -> Box:
    w, h = size
    x1, y1 = max(0.0, min(coords[0], coords[2])), max(0.0, min(coords[1], coords[3]))
    x2, y2 = min(float(w), max(coords[0], coords[2])), min(float(h), max(coords[1], coords[3]))
    return Box(x1, y1, max(0.0, x2 - x1), max(0.0, y2 - y1))


def _quad_box(quad: Sequence[float], size: tuple[int, int]) -> Box:
    xs, ys = quad[0::2], quad[1::2]
    return _xyxy_box((min(xs), min(ys), max(xs), max(ys)), size)


# Location and control tokens never belong in text answers (a model can still emit them).
_STRAY_TOKENS = re.compile(r"<(?:loc_\d+|pad|/?s|unk)>")


def _clean(text: Any) -> str:
    return " ".join(_STRAY_TOKENS.sub(" ", str(text)).split())


def parse_answer(task: Task, parsed: Any, size: tuple[int, int]) -> DescribeResult:
    """The processor's post-processed answer in the server's result shape for `task`."""
    if task in ("caption", "detailed_caption", "ocr", "region_caption"):
        return _clean(parsed)
    if task == "ocr_regions":
        return [
            {
                "text": _clean(text),
                "quad_box": [round(float(v), 1) for v in quad],
                "bbox": _quad_box([float(v) for v in quad], size).as_dict(),
            }
            for quad, text in zip(
                parsed.get("quad_boxes", []), parsed.get("labels", []), strict=False
            )
        ]
    return [
        {"label": _clean(label), "bbox": _xyxy_box([float(v) for v in box], size).as_dict()}
        for box, label in zip(parsed.get("bboxes", []), parsed.get("labels", []), strict=False)
    ]


class Florence:
    """Loads a Florence-2 checkpoint and answers batches of task prompts."""

    name = "florence"

    def __init__(
        self, source: str, device: DeviceInfo, *, max_new_tokens: int = 256, num_beams: int = 1
    ) -> None:
        self.source = source
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self._model: Any = None
        self._processor: Any = None
        self._token_limit = max_new_tokens
        self._lock = threading.Lock()  # load/unload vs. a batch in flight

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        source = resolve_source(self.source, "Florence-2 model")
        try:
            processor = AutoProcessor.from_pretrained(source)
            model: Any = AutoModelForImageTextToText.from_pretrained(
                source, dtype=self.device.dtype
            )
        except (OSError, ValueError, TypeError) as err:
            raise hub_failure(source, "Florence-2 model", err) from err
        kind = getattr(model.config, "model_type", "?")
        if kind != "florence2" or not hasattr(processor, "post_process_generation"):
            raise ModelLoadError(f"{source} is not a Florence-2 checkpoint (model type {kind})")
        model.to(self.device.device).eval()
        # Learned decoder positions cap the answer length (BART: max_position_embeddings).
        positions = int(getattr(model.config.text_config, "max_position_embeddings", 1024))
        with self._lock:
            self._processor, self._model = processor, model
            self._token_limit = max(1, min(self.max_new_tokens, positions - 2))

    def warmup(self) -> None:
        self.describe([DescribeRequest(Image.new("RGB", (64, 64)), "caption")])

    def unload(self) -> None:
        with self._lock:
            self._model = self._processor = None

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"source": self.source, "device": self.device.device}
        if self._model is not None:
            info["dtype"] = str(self.device.dtype).removeprefix("torch.")
            info["parameters"] = sum(p.numel() for p in self._model.parameters())
            info["tasks"] = list(TASKS)
        return info

    def memory_bytes(self) -> int:
        return module_bytes(self._model)

    @torch.inference_mode()
    def describe(self, batch: Sequence[DescribeRequest]) -> list[DescribeResult]:
        """One answer per request, in order; boxes in that request's image pixels."""
        with self._lock:
            model, processor, limit = self._model, self._processor, self._token_limit
        if model is None:
            raise ModelLoadError("Florence-2 is not loaded")
        started = time.perf_counter()
        inputs = processor(
            text=[_prompt(item) for item in batch],
            images=[item.image for item in batch],
            return_tensors="pt",
            padding=True,
        )
        inputs = inputs.to(self.device.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.device.dtype)
        generated = model.generate(
            **inputs, max_new_tokens=limit, num_beams=self.num_beams, do_sample=False
        )
        texts = processor.batch_decode(generated, skip_special_tokens=False)
        results: list[DescribeResult] = []
        for item, text in zip(batch, texts, strict=True):
            token = _TOKENS[item.task]
            parsed = processor.post_process_generation(
                text, task=token, image_size=item.image.size
            )[token]
            results.append(parse_answer(item.task, parsed, item.image.size))
        _LOGGER.debug(
            "described %d prompts in %.1f ms", len(batch), 1000 * (time.perf_counter() - started)
        )
        return results
