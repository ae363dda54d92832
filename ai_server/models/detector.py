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
from ..runtime.accel import AccelOptions, Graph, graph_or_torch, runtime_info
from ..runtime.devices import DeviceInfo
from .base import ModelLoadError, hub_failure, module_bytes, resolve_source

_LOGGER = logging.getLogger(__name__)

# Defaults from the original system: r50vd where a GPU carries it, r18vd on CPU-only hosts
# (r50vd costs ~1.1 s per 640 px image on 2 cores, r18vd ~0.58 s).
DEFAULT_GPU_MODEL = "PekingU/rtdetr_v2_r50vd"
DEFAULT_CPU_MODEL = "PekingU/rtdetr_v2_r18vd"
DEFAULT_SIZE = 640  # RT-DETR's training resolution (HSI_DETECTOR_SIZE)


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


class _Head(torch.nn.Module):
    """The forward pass as a graph: pixels in, what post-processing reads out."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.model(pixel_values=pixel_values)
        return outputs.logits, outputs.pred_boxes


@dataclass(frozen=True)
class _GraphOutputs:
    """The two fields of a model output that `post_process_object_detection` reads."""

    logits: torch.Tensor
    pred_boxes: torch.Tensor


class Detector:
    """Loads an RT-DETR(v2) checkpoint and detects objects in batches of PIL images.

    Images are resized to `size` x `size` (HSI_DETECTOR_SIZE) before the model; boxes come back
    in each image's own pixels whatever the size. With an accelerated runtime (`accel`), the
    forward pass runs as an exported graph (runtime/accel.py) and torch serves only when that
    fails; pre- and post-processing are the checkpoint's processor either way.
    """

    name = "detector"

    def __init__(
        self,
        source: str,
        device: DeviceInfo,
        *,
        size: int = DEFAULT_SIZE,
        accel: AccelOptions | None = None,
    ) -> None:
        self.source = source
        self.device = device
        self.size = size
        self.accel = accel or AccelOptions()
        self._model: Any = None
        self._processor: Any = None
        self._graph: Graph | None = None
        self._fallback: str | None = None  # why torch serves although another runtime was set
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
        processor.size = {"height": self.size, "width": self.size}
        if getattr(model.config, "anchor_image_size", None):
            # Anchors precomputed for one size would not fit another: derive them from the
            # feature maps of each input instead (what the model does without the setting).
            model.config.anchor_image_size = None
        model.to(self.device.device).eval()
        graph, fallback = self._load_graph(model)
        with self._lock:
            self._processor, self._model = processor, model
            self._graph, self._fallback = graph, fallback

    def _load_graph(self, model: torch.nn.Module) -> tuple[Graph | None, str | None]:
        if not self.accel.accelerated:
            return None, None
        example = torch.rand(1, 3, self.size, self.size, dtype=self.device.dtype)
        return graph_or_torch(
            "detector",
            _Head(model),
            example,
            name=f"detector-{self.size}",
            outputs=("logits", "pred_boxes"),
            options=self.accel,
        )

    def warmup(self) -> None:
        self.detect([DetectRequest(Image.new("RGB", (320, 240)), 1.0, None)])

    def unload(self) -> None:
        with self._lock:
            self._model = self._processor = self._graph = None

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"source": self.source, "device": self.device.device}
        model = self._model
        if model is not None:
            info["dtype"] = str(self.device.dtype).removeprefix("torch.")
            info["parameters"] = sum(p.numel() for p in model.parameters())
            info["classes"] = len(model.config.id2label)
            info["input_size"] = self.size
            info.update(runtime_info(self._graph, self._fallback))
        return info

    @property
    def runtime(self) -> str:
        """The runtime serving the forward pass now: torch, onnxruntime or openvino."""
        graph = self._graph
        return "torch" if graph is None else graph.runtime

    @property
    def labels(self) -> list[str]:
        model = self._model
        return [] if model is None else list(model.config.id2label.values())

    def memory_bytes(self) -> int:
        graph = self._graph
        return module_bytes(self._model) + (0 if graph is None else graph.memory_bytes())

    @torch.inference_mode()
    def detect(self, batch: list[DetectRequest]) -> list[list[Detection]]:
        """Detections per image, boxes in that image's own pixel coordinates."""
        with self._lock:
            model, processor, graph = self._model, self._processor, self._graph
        if model is None:
            raise ModelLoadError("detector is not loaded")
        started = time.perf_counter()
        inputs = processor(images=[item.image for item in batch], return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device.device, dtype=self.device.dtype)
        outputs: Any = None
        if graph is not None:
            outputs = self._run_graph(graph, pixel_values)
        if outputs is None:
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

    def _run_graph(self, graph: Graph, pixel_values: torch.Tensor) -> _GraphOutputs | None:
        """The graph's outputs, or None after a failure (then torch serves from now on)."""
        try:
            logits, boxes = graph.run(pixel_values.float().numpy())
        except Exception as err:  # the runtimes raise their own types
            reason = f"{graph.runtime} failed to run: {type(err).__name__}: {err}"
            with self._lock:
                if self._graph is graph:  # log once, however many batches were in flight
                    self._graph, self._fallback = None, reason
                    _LOGGER.warning("detector: torch serves from now on: %s", reason)
            return None
        return _GraphOutputs(torch.from_numpy(logits), torch.from_numpy(boxes))


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
