"""Optimised CPU/iGPU runtimes for the vision graphs (`HSI_RUNTIME`): ONNX Runtime and OpenVINO.

A model family loads its checkpoint in torch as always, then hands the part that does the heavy
lifting (the detector's forward pass, CLIP's image tower) to `load_graph`. That exports the
LOADED module to ONNX once and caches the file under `HSI_CACHE_DIR/onnx/`, named by a key over
everything the graph depends on: a digest of the weights as loaded, the input shape, the
precision, the opset and this module's export recipe (`EXPORTER_VERSION`) with torch's version.
A change to any of them is a new file, so a stale graph is never run. The file is written to a
temporary name and renamed into place, so a crash mid-export leaves no half-written graph; a
cached file that the runtime rejects anyway (truncated, corrupted) is deleted and exported again.

Every failure here raises `AccelError` with the reason; the caller keeps serving with torch.
Pre- and post-processing stay in the model family (the processors' own code), so outputs keep
their meaning and the public interfaces do not change.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from .devices import DeviceInfo

_LOGGER = logging.getLogger(__name__)

# Bump when the export recipe below changes: every cached graph is then exported again.
EXPORTER_VERSION = 1
OPSET = 18

Array = npt.NDArray[np.float32]


class AccelError(Exception):
    """Export, compilation or a run failed; the message says which and why."""


@dataclass(frozen=True)
class AccelOptions:
    """Which runtime serves a model's graph (already resolved: never `auto`) and its resources."""

    runtime: str = "torch"
    cache_dir: Path | None = None  # where exported graphs live (HSI_CACHE_DIR/onnx)
    threads: int | None = None  # intra-op threads; None: HSI_TORCH_THREADS' default, the cores

    @property
    def accelerated(self) -> bool:
        return self.runtime != "torch"


def available(runtime: str) -> bool:
    """Whether `runtime`'s Python package is installed (cheap: nothing is imported)."""
    if runtime == "torch":
        return True
    package = {"onnxruntime": "onnxruntime", "openvino": "openvino"}.get(runtime)
    return package is not None and importlib.util.find_spec(package) is not None


def intel_cpu() -> bool:
    """An Intel CPU (and so, most likely, an Intel iGPU beside it), from /proc/cpuinfo."""
    try:
        with Path("/proc/cpuinfo").open() as cpuinfo:
            for line in cpuinfo:
                if line.startswith("vendor_id"):
                    return "GenuineIntel" in line
    except OSError:
        pass
    return False


def resolve_runtime(requested: str, device: DeviceInfo) -> tuple[str, str | None]:
    """The runtime that serves, and why it is not the requested one (None when it is).

    `auto`: OpenVINO where it sees an Intel GPU (the iGPU beside an Intel CPU, its reason to
    exist here), else ONNX Runtime, else OpenVINO on the CPU, else torch. On the CPU alone the two
    ran a frame equally fast, but behind the server's HTTP ONNX Runtime kept 0.91-1.11 of its
    in-process speed and OpenVINO 0.81-0.94 (docs/benchmarks.md "Optimised runtime").
    The runtimes here are for CPUs and Intel iGPUs: on a CUDA device torch serves.
    """
    if device.is_cuda:
        reason = None if requested in {"auto", "torch"} else f"{requested} is not used on CUDA"
        return "torch", reason
    if requested == "auto":
        if available("openvino") and intel_cpu() and openvino_gpu():
            return "openvino", None
        for runtime in ("onnxruntime", "openvino"):
            if available(runtime):
                return runtime, None
        return "torch", None
    if not available(requested):
        return "torch", f"the {requested} package is not installed"
    return requested, None


@functools.cache  # asked once per model load; OpenVINO's device scan takes a moment
def openvino_gpu() -> bool:
    """Whether OpenVINO sees a GPU it can compile for (an Intel iGPU or Arc card)."""
    try:
        import openvino as ov

        return "GPU" in ov.Core().available_devices
    except Exception as err:  # any failure means: no GPU to use
        _LOGGER.debug("OpenVINO device scan failed: %s", err)
        return False


def default_threads() -> int:
    """The cores this process may use (its CPU affinity, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (names, dtypes, shapes, bytes) as loaded.

    The loaded state, not a file or a revision string: a local folder edited in place, a hub
    revision or a dtype change all give a new digest (~0.1 s per 100 MB of weights).
    """
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)};".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy())  # bytes as stored, no copy
    return digest.hexdigest()


def graph_key(module: torch.nn.Module, shape: Sequence[int], precision: str) -> str:
    """The cache key: weights, input shape (batch excluded: it is dynamic), precision, recipe."""
    parts = (
        weights_digest(module),
        "x".join(str(n) for n in shape[1:]),
        precision,
        f"opset{OPSET}",
        f"recipe{EXPORTER_VERSION}",
        f"torch{torch.__version__}",
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


class Graph:
    """A compiled graph: one float32 batch in, the module's outputs (as numpy) out."""

    def __init__(self, runtime: str, device: str, path: Path, exported: bool) -> None:
        self.runtime = runtime
        self.device = device  # the runtime's device: CPU, or GPU (an Intel iGPU, OpenVINO)
        self.path = path
        self.exported = exported  # this load exported the file (False: the cache served)

    def run(self, batch: Array) -> list[Array]:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "runtime_device": self.device, "graph": self.path.name}

    def memory_bytes(self) -> int:
        """The runtime's copy of the weights, about the graph file's size (the torch module
        stays loaded beside it, for the texts and as the fallback)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


class _OrtGraph(Graph):
    def __init__(self, path: Path, threads: int, exported: bool) -> None:
        import onnxruntime as ort

        super().__init__("onnxruntime", "CPU", path, exported)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # one graph at a time: the batcher runs them in turn
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: its warnings repeat what is logged here
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def run(self, batch: Array) -> list[Array]:
        # InferenceSession.run is thread-safe.
        return [np.asarray(out) for out in self._session.run(None, {self._input: batch})]


class _OpenVinoGraph(Graph):
    def __init__(self, path: Path, threads: int, cache_dir: Path, exported: bool) -> None:
        import openvino as ov

        core = ov.Core()
        # OpenVINO's own cache of compiled models (keyed by graph and settings): a later load
        # imports the blob instead of compiling again (tiny detector 1.0 -> 0.2 s; minutes of
        # kernel compilation on an iGPU).
        core.set_property({"CACHE_DIR": str(cache_dir / "openvino")})
        compiled = None
        device = "CPU"
        if openvino_gpu():  # the one cached scan auto decides by, too
            # An Intel iGPU: OpenVINO's default precision there is f16 (its speed).
            try:
                compiled = core.compile_model(str(path), "GPU", {"PERFORMANCE_HINT": "LATENCY"})
                device = "GPU"
            except RuntimeError as err:
                _LOGGER.warning("OpenVINO could not use the GPU (%s); using the CPU", err)
        if compiled is None:
            # f32 explicitly: on CPUs with AMX or AVX512-BF16, OpenVINO's default is bf16,
            # which would not give torch's fp32 answers.
            compiled = core.compile_model(
                str(path),
                "CPU",
                {
                    "PERFORMANCE_HINT": "LATENCY",
                    "INFERENCE_NUM_THREADS": threads,
                    "INFERENCE_PRECISION_HINT": "f32",
                },
            )
        super().__init__("openvino", device, path, exported)
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: calls take turns

    def run(self, batch: Array) -> list[Array]:
        with self._lock:
            results = self._request.infer({0: batch})
            return [np.array(results[out]) for out in self._compiled.outputs]


def runtime_info(graph: Graph | None, fallback: str | None) -> dict[str, Any]:
    """/health's view of who runs a model: the runtime, and why not the configured one."""
    if graph is not None:
        return graph.info()
    info: dict[str, Any] = {"runtime": "torch"}
    if fallback:
        info["runtime_fallback"] = fallback
    return info


def load_graph(
    module: torch.nn.Module,
    example: torch.Tensor,
    *,
    name: str,
    outputs: Sequence[str],
    options: AccelOptions,
    precision: str = "fp32",
) -> Graph:
    """Export `module` (cached) and compile it for `options.runtime`; AccelError on failure.

    `example` is one input batch of the shape every call will have but the batch size.
    """
    if not options.accelerated:
        raise AccelError("the torch runtime has no graph")
    if options.cache_dir is None:
        raise AccelError("no cache folder for exported graphs")
    threads = options.threads or default_threads()
    folder = options.cache_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}-{graph_key(module, tuple(example.shape), precision)}.onnx"
    except OSError as err:
        raise AccelError(f"cannot use the graph cache {folder}: {err}") from err
    exported = False
    if not path.is_file():
        export_onnx(module, example, path, outputs)
        exported = True
    try:
        return _compile(options.runtime, path, threads, folder, exported)
    except Exception as err:  # the runtimes raise their own types (and RuntimeError)
        if exported:
            raise AccelError(f"{options.runtime} rejected the exported graph: {err}") from err
        # A cached file that does not load (truncated by a full disk, corrupted): export anew.
        _LOGGER.warning("cached graph %s does not load (%s); exporting it again", path, err)
        path.unlink(missing_ok=True)
    export_onnx(module, example, path, outputs)
    try:
        return _compile(options.runtime, path, threads, folder, True)
    except Exception as err:
        raise AccelError(f"{options.runtime} rejected the exported graph: {err}") from err


def graph_or_torch(
    label: str,
    module: torch.nn.Module,
    example: torch.Tensor,
    *,
    name: str,
    outputs: Sequence[str],
    options: AccelOptions,
) -> tuple[Graph | None, str | None]:
    """`load_graph`, or None and the reason when torch must serve (logged once, here)."""
    try:
        graph = load_graph(module, example, name=name, outputs=outputs, options=options)
    except AccelError as err:
        _LOGGER.warning("%s: %s is not used, torch serves: %s", label, options.runtime, err)
        return None, str(err)
    _LOGGER.info("%s: %s serves (%s)", label, graph.runtime, graph.device)
    return graph, None


def _compile(runtime: str, path: Path, threads: int, folder: Path, exported: bool) -> Graph:
    if runtime == "onnxruntime":
        return _OrtGraph(path, threads, exported)
    if runtime == "openvino":
        return _OpenVinoGraph(path, threads, folder, exported)
    raise AccelError(f"unknown runtime {runtime!r}")


def export_onnx(
    module: torch.nn.Module, example: torch.Tensor, path: Path, outputs: Sequence[str]
) -> None:
    """Trace `module` into an ONNX file at `path` (atomically), batch dimension dynamic.

    The TorchScript exporter (`dynamo=False`): torch's newer exporter fails on RT-DETRv2 in
    transformers 5 (its `torch_compilable_check` becomes `aten._is_all_true`, which has no ONNX
    function in torch 2.14). Tracing fixes every shape but the batch, which the input size
    setting already fixes.
    """
    _LOGGER.info("exporting %s to ONNX (once; cached as %s)", type(module).__name__, path.name)
    handle, scratch = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".part", dir=path.parent)
    os.close(handle)
    axes = {"input": {0: "batch"}, **{out: {0: "batch"} for out in outputs}}
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # Tracer and deprecation warnings: about shapes the input size fixes anyway.
            warnings.simplefilter("ignore")
            # nn.MultiheadAttention's fused inference path (CLIP's ViT) has no ONNX export;
            # the composite path it replaces computes the same.
            torch.backends.mha.set_fastpath_enabled(False)
            torch.onnx.export(
                module,
                (example,),
                scratch,
                input_names=["input"],
                output_names=list(outputs),
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        Path(scratch).replace(path)
    except Exception as err:  # the exporter raises many types; all mean "no graph"
        # Its messages can carry the whole traced graph: the first line says what failed.
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        raise AccelError(f"ONNX export failed: {type(err).__name__}: {first}") from err
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        with contextlib.suppress(OSError):
            Path(scratch).unlink()
