"""Device selection and device facts for /health and /metrics."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import ConfigError


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # "cpu" or "cuda:N"
    dtype: torch.dtype

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


def resolve_device(requested: str) -> DeviceInfo:
    """`auto` picks the first CUDA GPU when there is one; fp16 on GPU, fp32 on CPU."""
    if requested == "auto":
        requested = "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return DeviceInfo("cpu", torch.float32)
    index = int(requested.partition(":")[2] or 0)
    if not torch.cuda.is_available():
        raise ConfigError(f"Invalid setting HSI_DEVICE={requested!r}: CUDA is not available")
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"Invalid setting HSI_DEVICE={requested!r}: only {torch.cuda.device_count()} "
            "CUDA device(s) present"
        )
    return DeviceInfo(f"cuda:{index}", torch.float16)


def cuda_memory_used_gb() -> float:
    """Memory held by this process's tensors on every GPU, in GiB (0 without CUDA)."""
    if not torch.cuda.is_available():
        return 0.0
    total = sum(torch.cuda.memory_allocated(i) for i in range(torch.cuda.device_count()))
    return round(total / 2**30, 3)
