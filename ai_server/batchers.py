"""Every model's dynamic batcher, made here and nowhere else, started and closed together.

One batcher per batched model (the detector, CLIP, Florence-2; the LLM queues for its own slots
in models/llm.py). Each runs the resident model from the registry, is sized for the device
(`Settings.batch_size`: the setting, else 16 on CUDA and the model's own CPU batch) and reports
its batches to the application's metrics under the model's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .config import Settings
from .metrics import Metrics
from .models.clip import Clip, ClipItem, Vector
from .models.detector import Detection, Detector, DetectRequest
from .models.enrich import ClipBatcher, FlorenceBatcher
from .models.vlm import DescribeRequest, DescribeResult, Florence
from .runtime.batcher import BatchStats, DynamicBatcher
from .runtime.devices import DeviceInfo
from .runtime.registry import ModelRegistry

T = TypeVar("T")
R = TypeVar("R")

DetectBatcher = DynamicBatcher[DetectRequest, list[Detection]]


@dataclass(frozen=True)
class ModelBatchers:
    """The application's batchers, one per batched model."""

    detector: DetectBatcher
    clip: ClipBatcher
    florence: FlorenceBatcher

    @classmethod
    def build(
        cls, registry: ModelRegistry, settings: Settings, device: DeviceInfo, metrics: Metrics
    ) -> ModelBatchers:
        def make(
            name: str, run: Callable[[list[T]], Sequence[R]], cpu_batch: int
        ) -> DynamicBatcher[T, R]:
            def observe(stats: BatchStats) -> None:
                metrics.batch_size.labels(name).observe(stats.size)
                metrics.inference_latency.labels(name).observe(stats.seconds)
                metrics.queue_depth.labels(name).set(stats.queue_depth)

            return DynamicBatcher(
                name,
                run,
                max_batch_size=settings.batch_size(cuda=device.is_cuda, cpu_default=cpu_batch),
                max_wait_ms=settings.batch_max_wait_ms,
                max_queue=settings.queue_max,
                observer=observe,
            )

        def run_detector(batch: list[DetectRequest]) -> list[list[Detection]]:
            return registry.loaded(Detector.name, Detector).detect(batch)

        def run_clip(batch: list[ClipItem]) -> Sequence[Vector]:
            return registry.loaded(Clip.name, Clip).embed(batch)

        def run_florence(batch: list[DescribeRequest]) -> Sequence[DescribeResult]:
            return registry.loaded(Florence.name, Florence).describe(batch)

        # On CPU a 640 px detector and Florence-2's generation run fastest one item at a time,
        # CLIP's 224 px crops in batches (docs/benchmarks.md: detector ~40 % fewer images/s in
        # batches on 2 cores; ViT-B/32 12.5 -> 20 crops/s at batch 8; Florence-2 base 0.33 ->
        # 0.30 captions/s).
        return cls(
            detector=make(Detector.name, run_detector, cpu_batch=1),
            clip=make(Clip.name, run_clip, cpu_batch=8),
            florence=make(Florence.name, run_florence, cpu_batch=1),
        )

    def __iter__(self) -> Iterator[DynamicBatcher[Any, Any]]:
        return iter((self.detector, self.clip, self.florence))

    def start(self) -> None:
        for batcher in self:
            batcher.start()

    async def close(self) -> None:
        """Stop every worker (awaited); callers still waiting get BatcherClosedError."""
        for batcher in self:
            await batcher.close()
