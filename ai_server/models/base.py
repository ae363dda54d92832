"""The shape every model family shares, so the registry and batcher treat them alike."""

from __future__ import annotations

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
