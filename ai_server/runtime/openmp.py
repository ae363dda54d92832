"""torch's OpenMP threads sleep, not spin, when ONNX Runtime or OpenVINO run the vision graphs.

torch still runs the detector's pre- and post-processing, CLIP's texts and all of Florence-2 on
its OpenMP threads, which by default keep spinning for a while after each parallel region. With
the detector and CLIP's image tower in OpenVINO or ONNX Runtime, those spinning threads take the
cores the runtime's own threads need. Measured on 2 cores (docs/benchmarks.md "Optimised
runtime"): OpenVINO behind HTTP served 2.35-2.43 img/s with the default policy, 2.61-2.94 with
OMP_WAIT_POLICY=PASSIVE, 1.08 with ACTIVE; a whole event (`bench/event.py --runtime auto`) was
faster in every stage, Florence-2 included. With torch alone PASSIVE cost ~10 % per stage, so
torch keeps the default. libgomp reads the variable once, when torch loads it: this runs first.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import MutableMapping

_LOGGER = logging.getLogger(__name__)

VARIABLE = "OMP_WAIT_POLICY"


def graph_runtime_expected(runtime: str, device: str) -> bool:
    """Whether ONNX Runtime or OpenVINO will serve (accel.resolve_runtime's choice), told
    without importing torch: an installed package for the setting, and no CUDA device asked
    for. `auto` on a host whose GPU torch finds by itself still counts (its CPU idles anyway)."""
    if runtime == "torch" or device.startswith("cuda"):
        return False
    packages = ("openvino", "onnxruntime") if runtime == "auto" else (runtime,)
    return any(importlib.util.find_spec(package) is not None for package in packages)


def sleep_idle_openmp(
    runtime: str, device: str, environ: MutableMapping[str, str] = os.environ
) -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE when a graph runtime will serve and the environment does not
    say otherwise; True when set. Call before torch is imported."""
    if VARIABLE in environ or not graph_runtime_expected(runtime, device):
        return False
    environ[VARIABLE] = "PASSIVE"
    _LOGGER.info(
        "%s=PASSIVE: torch's idle threads sleep while the %s runtime runs", VARIABLE, runtime
    )
    return True
