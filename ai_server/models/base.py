"""The shape every model family shares, so the registry and batcher treat them alike."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch


class ModelLoadError(Exception):
    """A model could not be loaded; the message says why in a user's terms."""


class Model(Protocol):
    """Load, warm up, infer on a batch (family-specific method), unload."""

    name: str

    def load(self) -> None: ...

    def warmup(self) -> None: ...

    def unload(self) -> None: ...

    def info(self) -> dict[str, Any]:
        """Facts for /models: source, device, dtype, sizes."""
        ...


@dataclass
class DownloadProgress:
    """How far a model's download has come; written by the downloader, read by /health."""

    total: int | None = None  # bytes of every file to fetch, once the hub listed them
    bytes: int = 0  # bytes on disk, a resumed part included
    file: str | None = None  # the file being fetched now
    resumed_from: int = 0  # bytes already on disk when this run started (not in the rate)
    started: float = field(default_factory=time.monotonic)

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return round(min(100.0, 100.0 * self.bytes / self.total), 1)

    def rate(self, now: float | None = None) -> float | None:
        """Bytes per second fetched in this run, or None in its first moments."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        fetched = self.bytes - self.resumed_from
        return fetched / elapsed if elapsed > 0.5 and fetched > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """The /health shape: bytes, total, percent, rate_bps, eta_s, file."""
        rate = self.rate()
        eta = None
        if rate and self.total is not None:
            eta = round(max(0, self.total - self.bytes) / rate, 1)
        return {
            "bytes": self.bytes,
            "total": self.total,
            "percent": self.percent,
            "rate_bps": None if rate is None else round(rate),
            "eta_s": eta,
            "file": self.file,
        }


class Weights(Protocol):
    """Files a model needs that may have to be downloaded before its first load
    (`models/hub.py`); a model from a local folder has none."""

    @property
    def source(self) -> str:
        """What is fetched, for messages: a hub id such as `PekingU/rtdetr_v2_r18vd`."""
        ...

    def present(self) -> bool:
        """Complete on disk (cheap: no network)."""
        ...

    async def fetch(self, progress: DownloadProgress) -> None:
        """Download what is missing, updating `progress`; ModelLoadError says why it failed."""
        ...


def module_bytes(module: torch.nn.Module | None) -> int:
    """Bytes held by a torch module's parameters and buffers (0 when not loaded)."""
    if module is None:
        return 0
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def resolve_source(source: str, what: str) -> str:
    """A local folder/file as an absolute path, or a hub id `org/name` left as is.

    Hub ids download on users' machines; where the hub is unreachable, the loader turns the
    failure into a ModelLoadError that says so.
    """
    path = Path(source).expanduser()
    if path.exists():
        return str(path.resolve())
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise ModelLoadError(f"{what} path does not exist: {source}")
    return source


def hub_failure(source: str, what: str, err: Exception) -> ModelLoadError:
    """Explain a failed load, naming the offline case that users will meet most."""
    if Path(source).exists():
        return ModelLoadError(f"could not load {what} from {source}: {err}")
    return ModelLoadError(
        f"could not load {what} {source!r} from the Hugging Face hub (offline, or the id is "
        f"wrong?). Download it once or point the setting at a local folder. Cause: {err}"
    )
