"""The model registry: which models exist, which are resident, loading them lazily and safely.

Models load on first use (or at start for `HSI_PRELOAD`), in a worker thread so the event loop
keeps answering /health while weights load. Each model has its own lock, so concurrent first
requests trigger one load, not several. A load failure is remembered and reported (the server
stays up, /health says `degraded`), and a later request retries it. Running out of memory
while loading (MemoryError, torch.OutOfMemoryError, the CPU allocator's RuntimeError) is logged
as an error saying so, and what the failed load allocated is collected at once; requests then
get the error at once for `LOAD_RETRY_S` instead of each pushing the host to its limit again
(cameras ask every second), while `load(retry_now=True)` (POST /models/{name}/load, for an
operator who freed memory) tries at once.

Weights that must be downloaded first (a spec's `weights`, see `models/hub.py`) are fetched by
one background task per model, never by a request: at start (`provision`), or when a request
finds them missing; meanwhile requests get `ModelUnavailableError` (503) at once instead of
waiting minutes. A failed download is retried by a request after `FETCH_RETRY_S`. Each model
reports a `state` for /health: `pending` (weights not here yet), `downloading` (with
`progress`), `loading`, `ready` (loaded, or loadable without a download) or `error`.

Residency: with a memory budget (`HSI_MAX_VRAM_GB` on GPU, `HSI_MAX_RAM_GB` on CPU) a load first
makes room by evicting resident models of lower or equal priority, least recently used first;
models held by a request in flight (`use`) are never evicted. Sizes are each spec's estimate
until a model has loaded once, then what it measured (`memory_bytes()`). With an idle timeout,
optional models nobody used for that long are unloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from ..models.base import DownloadProgress, Model, ModelLoadError, Weights
from .tasks import cancel_and_wait

_LOGGER = logging.getLogger(__name__)

M = TypeVar("M")
GIB = 2**30
Status = Literal["unloaded", "loading", "loaded", "error"]
State = Literal["pending", "downloading", "loading", "ready", "error"]
FETCH_RETRY_S = 60.0  # a request restarts a failed download at most this often
LOAD_RETRY_S = 60.0  # a request retries a load that ran out of memory at most this often


class ModelUnavailableError(Exception):
    """A model is unknown, failed to load, or was unloaded mid-request."""

    def __init__(self, name: str, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"model {name!r} is unavailable: {reason}")
        self.name = name
        self.reason = reason
        self.retry_after = retry_after  # seconds, where the registry knows better than a guess


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model; `priority` orders eviction (higher stays resident longer)."""

    name: str
    factory: Callable[[], Model]
    priority: int = 50
    optional: bool = True
    size_gb: float = 0.0  # estimated resident size, used until the model has loaded once
    weights: Weights | None = None  # files to download before the first load; None: local


@runtime_checkable
class _Measurable(Protocol):
    def memory_bytes(self) -> int: ...


@dataclass
class _Slot:
    spec: ModelSpec
    model: Model | None = None
    status: Status = "unloaded"
    error: str | None = None
    load_seconds: float | None = None
    last_used: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    size_bytes: int | None = None  # measured at the last load
    users: int = 0  # requests holding the model: never evicted while > 0
    evictions: int = 0
    fetch_task: asyncio.Task[None] | None = None
    progress: DownloadProgress | None = None  # of the running download
    fetch_failed_at: float | None = None  # monotonic time of the last failed download
    out_of_memory_at: float | None = None  # monotonic time of the last load out of memory

    @property
    def downloading(self) -> bool:
        return self.fetch_task is not None and not self.fetch_task.done()

    @property
    def state(self) -> State:
        if self.downloading:
            return "downloading"
        if self.status in ("error", "loading"):
            return self.status
        if self.status == "unloaded" and self.spec.weights and not self.spec.weights.present():
            return "pending"
        return "ready"

    @property
    def estimate(self) -> int:
        if self.size_bytes is not None:
            return self.size_bytes
        return int(self.spec.size_gb * GIB)


class ModelRegistry:
    def __init__(
        self,
        specs: Iterable[ModelSpec],
        *,
        warmup: bool = True,
        on_change: Callable[[], None] | None = None,
        budget_gb: float | None = None,
        budget_kind: str = "ram",
        idle_timeout_s: float = 0.0,
    ) -> None:
        self._slots = {spec.name: _Slot(spec) for spec in specs}
        self._warmup = warmup
        self._on_change = on_change
        self.budget_bytes = None if budget_gb is None else int(budget_gb * GIB)
        self.budget_kind = budget_kind
        self.idle_timeout_s = idle_timeout_s
        self._budget_lock = asyncio.Lock()  # one make-room-then-load at a time
        self._reaper: asyncio.Task[None] | None = None
        self.provisioning = False  # `provision` is running: /health says `loading`

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

    @contextlib.asynccontextmanager
    async def use(self, name: str, kind: type[M]) -> AsyncIterator[M]:
        """The model, loaded if needed and held (not evictable) until the block ends."""
        slot = self._slot(name)
        slot.users += 1
        try:
            yield await self.get(name, kind)
        finally:
            slot.users -= 1
            slot.last_used = time.time()

    async def provision(self, preload: Iterable[str], *, download_all: bool) -> None:
        """At start: download and load each `preload` model in turn, then (with `download_all`)
        download every other model's weights, highest priority first, without loading them.

        Failures are recorded per model (status `error`) and do not stop the others.
        """
        first = list(preload)
        self.provisioning = True
        self._changed()
        try:
            for name in first:
                with contextlib.suppress(ModelUnavailableError):
                    await self.fetch(name)
                    await self.load(name)
            if download_all:
                rest = [s for s in self._slots.values() if s.spec.name not in first]
                for slot in sorted(rest, key=lambda s: -s.spec.priority):
                    with contextlib.suppress(ModelUnavailableError):
                        await self.fetch(slot.spec.name)
        finally:
            self.provisioning = False
            self._changed()

    async def fetch(self, name: str) -> None:
        """Download the model's weights unless they are here; one download per model at a time
        (a caller arriving meanwhile waits for the same one)."""
        slot = self._slot(name)
        task = self._start_fetch(slot)
        if task is None:
            return
        await task
        if slot.status == "error":
            raise ModelUnavailableError(name, slot.error or "download failed")

    def _start_fetch(self, slot: _Slot) -> asyncio.Task[None] | None:
        weights = slot.spec.weights
        if weights is None or weights.present():
            return None
        if slot.fetch_task is None or slot.fetch_task.done():
            slot.fetch_task = asyncio.create_task(
                self._fetch(slot, weights), name=f"fetch-{slot.spec.name}"
            )
        return slot.fetch_task

    async def _fetch(self, slot: _Slot, weights: Weights) -> None:
        """The download task: records the outcome in the slot, never raises (but cancelled)."""
        name = slot.spec.name
        slot.status, slot.error = "loading", None
        slot.progress = DownloadProgress()
        self._changed()
        try:
            await weights.fetch(slot.progress)
        except asyncio.CancelledError:
            slot.status = "unloaded"
            raise
        except Exception as err:
            slot.status, slot.error = "error", _reason(err)
            slot.fetch_failed_at = time.monotonic()
            log = _LOGGER.warning if slot.spec.optional else _LOGGER.error
            if isinstance(err, ModelLoadError):  # its message names the model and the cause
                log("%s", slot.error)
            else:
                log("could not download %s: %s", name, slot.error)
        else:
            slot.status, slot.fetch_failed_at = "unloaded", None
        finally:
            slot.progress = None
            self._changed()

    def _require_weights(self, slot: _Slot) -> None:
        """Raise at once while the weights are not here, starting their download if none runs
        (a failed one again after FETCH_RETRY_S)."""
        weights = slot.spec.weights
        if weights is None or weights.present():
            return
        failed_at = slot.fetch_failed_at
        if not slot.downloading and (
            failed_at is None or time.monotonic() - failed_at >= FETCH_RETRY_S
        ):
            self._start_fetch(slot)
        if not slot.downloading and slot.error:
            raise ModelUnavailableError(slot.spec.name, slot.error)
        done = slot.progress.percent if slot.progress else None
        where = f", {done} %" if done is not None else ""
        raise ModelUnavailableError(
            slot.spec.name, f"its weights are downloading ({weights.source}{where}); retry later"
        )

    async def load(self, name: str, *, retry_now: bool = False) -> None:
        """Load `name` unless resident; a load that ran out of memory less than LOAD_RETRY_S ago
        is not tried again (the same error at once) unless `retry_now`."""
        slot = self._slot(name)
        self._require_weights(slot)
        async with slot.lock:
            if slot.model is not None:
                return
            if not retry_now:
                self._hold_off_after_out_of_memory(slot)
            if self.budget_bytes is None:
                await self._load_locked(slot)
                return
            async with self._budget_lock:
                await self._make_room(slot)
                await self._load_locked(slot)
                if self.resident_bytes() > self.budget_bytes:  # the estimate was too low
                    with contextlib.suppress(ModelUnavailableError):
                        await self._make_room(slot, loaded=True)

    @staticmethod
    def _hold_off_after_out_of_memory(slot: _Slot) -> None:
        if slot.out_of_memory_at is None:
            return
        wait = slot.out_of_memory_at + LOAD_RETRY_S - time.monotonic()
        if wait > 0:
            raise ModelUnavailableError(
                slot.spec.name,
                f"{slot.error}; the next try in {wait:.0f} s, or at once by "
                f"POST /models/{slot.spec.name}/load",
                retry_after=wait,
            )

    async def _load_locked(self, slot: _Slot) -> None:
        name = slot.spec.name
        if self.idle_timeout_s > 0 and self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_idle(), name="registry-idle")
        slot.status, slot.error = "loading", None
        self._changed()
        started = time.perf_counter()
        try:
            model = await asyncio.to_thread(self._build, slot.spec)
        except Exception as err:
            if _out_of_memory(err):
                # Whatever the failed load allocated is garbage now: hand it back before the
                # models still serving need it. Always an error, optional model or not: the
                # operator must free memory or pick a smaller model.
                await asyncio.to_thread(_collect)
                slot.status, slot.error = "error", f"out of memory while loading: {_reason(err)}"
                slot.out_of_memory_at = time.monotonic()
                self._changed()
                _LOGGER.error(
                    "could not load %s: out of memory (%s); the other models keep serving, "
                    "a request for %s retries in %.0f s",
                    name,
                    _reason(err),
                    name,
                    LOAD_RETRY_S,
                )
                raise ModelUnavailableError(name, slot.error) from err
            slot.status, slot.error = "error", _reason(err)
            self._changed()
            log = _LOGGER.warning if slot.spec.optional else _LOGGER.error
            log("could not load %s: %s", name, slot.error)
            raise ModelUnavailableError(name, slot.error) from err
        slot.model, slot.status, slot.out_of_memory_at = model, "loaded", None
        slot.load_seconds = time.perf_counter() - started
        if isinstance(model, _Measurable):
            slot.size_bytes = model.memory_bytes()
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
            return await self._unload_locked(slot, "on request")

    async def _unload_locked(self, slot: _Slot, why: str) -> bool:
        model, slot.model = slot.model, None
        if model is None:
            return False
        slot.status = "unloaded"
        await asyncio.to_thread(_release, model)
        self._changed()
        _LOGGER.info("unloaded %s (%s)", slot.spec.name, why)
        return True

    def resident_bytes(self) -> int:
        return sum(slot.estimate for slot in self._slots.values() if slot.model is not None)

    async def _make_room(self, slot: _Slot, *, loaded: bool = False) -> None:
        """Evict lower/equal-priority idle models, least recently used first, until `slot` fits."""
        budget = self.budget_bytes
        if budget is None:
            return
        name, need = slot.spec.name, slot.estimate
        if need > budget:
            slot.status = "error"
            slot.error = (
                f"needs about {need / GIB:.2f} GiB, more than the whole {self.budget_kind} "
                f"budget of {budget / GIB:.2f} GiB ({self.budget_setting})"
            )
            self._changed()
            raise ModelUnavailableError(name, slot.error)
        while True:
            used = self.resident_bytes() - (slot.estimate if loaded else 0)
            if used + need <= budget:
                return
            victims = [
                other
                for other in self._slots.values()
                if other is not slot
                and other.model is not None
                and other.users == 0
                and not other.lock.locked()
                and other.spec.priority <= slot.spec.priority
            ]
            if not victims:
                resident = ", ".join(
                    f"{o.spec.name} ({o.estimate / GIB:.2f} GiB, priority {o.spec.priority}"
                    f"{', in use' if o.users else ''})"
                    for o in self._slots.values()
                    if o.model is not None and o is not slot
                )
                raise ModelUnavailableError(
                    name,
                    f"{self.budget_kind} budget of {budget / GIB:.2f} GiB is full: it needs "
                    f"{need / GIB:.2f} GiB and {max(0, budget - used) / GIB:.2f} GiB are free; "
                    f"nothing evictable (resident: {resident or 'none'})",
                )
            victim = min(victims, key=lambda o: (o.spec.priority, o.last_used or 0.0))
            async with victim.lock:
                victim.evictions += 1
                await self._unload_locked(victim, f"evicted to make room for {name}")

    @property
    def budget_setting(self) -> str:
        return "HSI_MAX_VRAM_GB" if self.budget_kind == "vram" else "HSI_MAX_RAM_GB"

    def budget(self) -> dict[str, Any]:
        """The memory budget and what resident models take of it, for /models."""
        return {
            "kind": self.budget_kind,
            "limit_gb": None if self.budget_bytes is None else round(self.budget_bytes / GIB, 3),
            "used_gb": round(self.resident_bytes() / GIB, 3),
            "idle_timeout_s": self.idle_timeout_s or None,
        }

    async def _reap_idle(self) -> None:
        """Unload optional models nobody used for `idle_timeout_s`."""
        interval = min(30.0, max(0.05, self.idle_timeout_s / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            for slot in self._slots.values():
                idle = now - (slot.last_used or now)
                if (
                    slot.model is not None
                    and slot.spec.optional
                    and slot.users == 0
                    and not slot.lock.locked()
                    and idle >= self.idle_timeout_s
                ):
                    async with slot.lock:
                        await self._unload_locked(slot, f"idle for {idle:.0f} s")

    async def close(self) -> None:
        reaper, self._reaper = self._reaper, None
        await cancel_and_wait(reaper, *(slot.fetch_task for slot in self._slots.values()))
        for name in self.names:
            await self.unload(name)

    def status(self) -> dict[str, dict[str, Any]]:
        """Residency of every model, for /models and /health."""
        report: dict[str, dict[str, Any]] = {}
        for name, slot in self._slots.items():
            entry: dict[str, Any] = {
                "loaded": slot.model is not None,
                "status": slot.status,
                "state": slot.state,
                "priority": slot.spec.priority,
                "optional": slot.spec.optional,
                "size_gb": round(slot.estimate / GIB, 4),
                "size_measured": slot.size_bytes is not None,
            }
            if slot.evictions:
                entry["evictions"] = slot.evictions
            if slot.model is not None:
                entry.update(slot.model.info())
            if slot.load_seconds is not None:
                entry["load_time_ms"] = round(slot.load_seconds * 1000, 1)
            if slot.last_used is not None:
                entry["last_used"] = slot.last_used
            if slot.error:
                entry["error"] = slot.error
            if slot.progress is not None:
                entry["progress"] = slot.progress.as_dict()
            if slot.spec.weights is not None and slot.model is None:
                entry.setdefault("source", slot.spec.weights.source)
            report[name] = entry
        return report

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


def _release(model: Model) -> None:
    """Unload and give the memory back now (GPU caches included), not at the next GC."""
    model.unload()
    _collect()


def _collect() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# How allocators word running out: torch's CPU allocator raises a plain RuntimeError
# ("DefaultCPUAllocator: can't allocate memory"), mmap/malloc failures surface as OSError
# ENOMEM ("Cannot allocate memory"), llama.cpp and others say "out of memory".
_OOM_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def _out_of_memory(err: BaseException) -> bool:
    """Whether `err`, or an error it wraps (a loader's ModelLoadError), is running out of
    memory: MemoryError, torch.OutOfMemoryError (CUDA) or an allocator's RuntimeError/OSError."""
    import torch

    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError | torch.OutOfMemoryError):
            return True
        if isinstance(current, OSError) and current.errno == errno.ENOMEM:
            return True
        if isinstance(current, RuntimeError | OSError | ModelLoadError) and any(
            word in str(current).lower() for word in _OOM_WORDS
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def _as(model: Model, kind: type[M], name: str) -> M:
    if not isinstance(model, kind):
        raise ModelUnavailableError(name, f"is a {type(model).__name__}, not {kind.__name__}")
    return model


def _reason(err: Exception) -> str:
    if isinstance(err, ModelLoadError | ModelUnavailableError):
        return str(err)
    return f"{type(err).__name__}: {err}"
