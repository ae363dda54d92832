"""RT-DETRv2 object detection through transformers (AutoModelForObjectDetection)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForObjectDetection

from ..imaging import Box
from ..runtime.devices import DeviceInfo
from .base import ModelLoadError, hub_failure, module_bytes, resolve_source

_LOGGER = logging.getLogger(__name__)

# Defaults from the original system: r50vd where a GPU carries it, r18vd on CPU-only hosts
# (r50vd costs ~1.1 s per 640 px image on 2 cores, r18vd ~0.58 s).
DEFAULT_GPU_MODEL = "PekingU/rtdetr_v2_r50vd"
DEFAULT_CPU_MODEL = "PekingU/rtdetr_v2_r18vd"


@dataclass(frozen=True)
class DetectRequest:
    """One image for the batcher, with this caller's threshold and class filter."""

    image: Image.Image
    threshold: float
    classes: frozenset[str] | None


@dataclass(frozen=True)
class Detection:
    label: str
    confidence: float
    x: float
    y: float
    width: float
    height: float

    @property
    def box(self) -> Box:
        return Box(self.x, self.y, self.width, self.height)

    def as_dict(self) -> dict[str, Any]:
        return {
            "class": self.label,
            "confidence": round(self.confidence, 4),
            "bbox": self.box.as_dict(),
        }


class Detector:
    """Loads an RT-DETR(v2) checkpoint and detects objects in batches of PIL images."""

    name = "detector"

    def __init__(self, source: str, device: DeviceInfo) -> None:
        self.source = source
        self.device = device
        self._model: Any = None
        self._processor: Any = None
        self._lock = threading.Lock()  # load/unload vs. a batch in flight

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        source = resolve_source(self.source, self.name)
        try:
            processor = AutoImageProcessor.from_pretrained(source)
            model = AutoModelForObjectDetection.from_pretrained(source, dtype=self.device.dtype)
        except (OSError, ValueError) as err:
            raise hub_failure(source, self.name, err) from err
        if not hasattr(processor, "post_process_object_detection"):
            raise ModelLoadError(f"{source} is not an object-detection checkpoint")
        model.to(self.device.device).eval()
        with self._lock:
            self._processor, self._model = processor, model

    def warmup(self) -> None:
        self.detect([DetectRequest(Image.new("RGB", (320, 240)), 1.0, None)])

    def unload(self) -> None:
        with self._lock:
            self._model = self._processor = None

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"source": self.source, "device": self.device.device}
        model = self._model
        if model is not None:
            info["dtype"] = str(self.device.dtype).removeprefix("torch.")
            info["parameters"] = sum(p.numel() for p in model.parameters())
            info["classes"] = len(model.config.id2label)
        return info

    @property
    def labels(self) -> list[str]:
        model = self._model
        return [] if model is None else list(model.config.id2label.values())

    def memory_bytes(self) -> int:
        return module_bytes(self._model)

    @torch.inference_mode()
    def detect(self, batch: list[DetectRequest]) -> list[list[Detection]]:
        """Detections per image, boxes in that image's own pixel coordinates."""
        with self._lock:
            model, processor = self._model, self._processor
        if model is None:
            raise ModelLoadError("detector is not loaded")
        started = time.perf_counter()
        inputs = processor(images=[item.image for item in batch], return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device.device, dtype=self.device.dtype)
        outputs = model(pixel_values=pixel_values)
        sizes = [(item.image.height, item.image.width) for item in batch]
        floor = min(item.threshold for item in batch)
        results = processor.post_process_object_detection(
            outputs, threshold=floor, target_sizes=sizes
        )
        id2label = model.config.id2label
        detections = [
            _to_detections(result, item, id2label)
            for result, item in zip(results, batch, strict=True)
        ]
        _LOGGER.debug(
            "detected %d images in %.1f ms", len(batch), 1000 * (time.perf_counter() - started)
        )
        return detections


def _to_detections(
    result: dict[str, torch.Tensor], item: DetectRequest, id2label: dict[int, str]
) -> list[Detection]:
    found: list[Detection] = []
    width, height = item.image.width, item.image.height
    for score, label_id, box in zip(
        result["scores"].float().tolist(),
        result["labels"].tolist(),
        result["boxes"].float().tolist(),
        strict=True,
    ):
        label = id2label.get(int(label_id), str(label_id))
        if score < item.threshold or not _wanted(label, item.classes):
            continue
        x1, y1 = max(0.0, box[0]), max(0.0, box[1])
        x2, y2 = min(float(width), box[2]), min(float(height), box[3])
        if x2 <= x1 or y2 <= y1:
            continue
        found.append(Detection(label, score, x1, y1, x2 - x1, y2 - y1))
    found.sort(key=lambda d: d.confidence, reverse=True)
    return found


def _wanted(label: str, classes: Collection[str] | None) -> bool:
    return classes is None or label.lower() in classes
