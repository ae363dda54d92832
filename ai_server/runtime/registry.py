"""The model registry: which models exist, which are resident, loading them lazily and safely.

Models load on first use (or at start for `HSI_PRELOAD`), in a worker thread so the event loop
keeps answering /health while weights load. Each model has its own lock, so concurrent first
requests trigger one load, not several. A load failure is remembered and reported (the server
stays up, /health says `degraded`), and a later request retries it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ..models.base import Model, ModelLoadError

_LOGGER = logging.getLogger(__name__)

M = TypeVar("M")
Status = Literal["unloaded", "loading", "loaded", "error"]


class ModelUnavailableError(Exception):
    """A model is unknown, failed to load, or was unloaded mid-request."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"model {name!r} is unavailable: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model; `priority` orders eviction (higher stays resident longer)."""

    name: str
    factory: Callable[[], Model]
    priority: int = 50
    optional: bool = True


@dataclass
class _Slot:
    spec: ModelSpec
    model: Model | None = None
    status: Status = "unloaded"
    error: str | None = None
    load_seconds: float | None = None
    last_used: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ModelRegistry:
    def __init__(
        self,
        specs: Iterable[ModelSpec],
        *,
        warmup: bool = True,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._slots = {spec.name: _Slot(spec) for spec in specs}
        self._warmup = warmup
        self._on_change = on_change

    @property
    def names(self) -> list[str]:
        return list(self._slots)

    def _slot(self, name: str) -> _Slot:
        try:
            return self._slots[name]
        except KeyError:
            raise ModelUnavailableError(name, "no such model") from None

    def loaded(self, name: str, kind: type[M]) -> M:
        """The resident model, without loading (for code already running in a batch)."""
        slot = self._slot(name)
        if slot.model is None:
            raise ModelUnavailableError(name, "not loaded")
        slot.last_used = time.time()
        return _as(slot.model, kind, name)

    async def get(self, name: str, kind: type[M]) -> M:
        """The model, loading it first if needed."""
        slot = self._slot(name)
        if slot.model is None:
            await self.load(name)
        return self.loaded(name, kind)

    async def load(self, name: str) -> None:
        slot = self._slot(name)
        async with slot.lock:
            if slot.model is not None:
                return
            slot.status, slot.error = "loading", None
            self._changed()
            started = time.perf_counter()
            try:
                model = await asyncio.to_thread(self._build, slot.spec)
            except Exception as err:
                slot.status, slot.error = "error", _reason(err)
                self._changed()
                log = _LOGGER.warning if slot.spec.optional else _LOGGER.error
                log("could not load %s: %s", name, slot.error)
                raise ModelUnavailableError(name, slot.error) from err
            slot.model, slot.status = model, "loaded"
            slot.load_seconds = time.perf_counter() - started
            slot.last_used = time.time()
            self._changed()
            _LOGGER.info("loaded %s in %.2f s", name, slot.load_seconds)

    def _build(self, spec: ModelSpec) -> Model:
        model = spec.factory()
        model.load()
        if self._warmup:
            model.warmup()
        return model

    async def unload(self, name: str) -> bool:
        """Drop a resident model; False when it was not loaded."""
        slot = self._slot(name)
        async with slot.lock:
            model, slot.model = slot.model, None
            if model is None:
                return False
            slot.status = "unloaded"
            await asyncio.to_thread(model.unload)
            self._changed()
            _LOGGER.info("unloaded %s", name)
            return True

    async def close(self) -> None:
        for name in self.names:
            await self.unload(name)

    def status(self) -> dict[str, dict[str, Any]]:
        """Residency of every model, for /models and /health."""
        report: dict[str, dict[str, Any]] = {}
        for name, slot in self._slots.items():
            entry: dict[str, Any] = {
                "loaded": slot.model is not None,
                "status": slot.status,
                "priority": slot.spec.priority,
                "optional": slot.spec.optional,
            }
            if slot.model is not None:
                entry.update(slot.model.info())
            if slot.load_seconds is not None:
                entry["load_time_ms"] = round(slot.load_seconds * 1000, 1)
            if slot.last_used is not None:
                entry["last_used"] = slot.last_used
            if slot.error:
                entry["error"] = slot.error
            report[name] = entry
        return report

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


def _as(model: Model, kind: type[M], name: str) -> M:
    if not isinstance(model, kind):
        raise ModelUnavailableError(name, f"is a {type(model).__name__}, not {kind.__name__}")
    return model


def _reason(err: Exception) -> str:
    if isinstance(err, ModelLoadError | ModelUnavailableError):
        return str(err)
    return f"{type(err).__name__}: {err}"
