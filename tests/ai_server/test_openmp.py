"""The server asks torch's OpenMP threads to sleep when idle where ONNX Runtime or OpenVINO
serve (ai_server/runtime/openmp.py), before torch loads OpenMP; the environment wins."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ai_server.runtime.openmp import graph_runtime_expected, sleep_idle_openmp

REPO = Path(__file__).resolve().parents[2]

# The real entry point with serving replaced: what the environment says when serving starts,
# and whether torch was already loaded by then (then the setting would come too late).
PROBE = textwrap.dedent(
    """
    import os, sys
    import ai_server.__main__ as entry

    def report(settings):
        print(os.environ.get("OMP_WAIT_POLICY", "unset"), "torch" in sys.modules)
        return 0

    entry._serve = report
    sys.exit(entry.main(["serve", "--profile", "tiny", "--port", "1", *sys.argv[1:]]))
    """
)


def _serve(*args: str, **env: str) -> tuple[str, str]:
    unset = ("OMP_WAIT_POLICY", "HSI_RUNTIME", "HSI_DEVICE")
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=REPO,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    policy, torch_loaded = done.stdout.split()
    return policy, torch_loaded


@pytest.mark.parametrize("runtime", ["auto", "onnxruntime", "openvino"])
def test_serve_sets_passive_before_torch_loads(runtime: str) -> None:
    assert _serve("--runtime", runtime) == ("PASSIVE", "False")


def test_torch_serving_and_the_environment_are_left_alone() -> None:
    assert _serve("--runtime", "torch") == ("unset", "False")
    assert _serve("--device", "cuda") == ("unset", "False")  # the runtimes are for CPUs
    assert _serve(OMP_WAIT_POLICY="ACTIVE") == ("ACTIVE", "False")


def test_sleep_idle_openmp_reports_what_it_did() -> None:
    environ: dict[str, str] = {}
    assert sleep_idle_openmp("auto", "cpu", environ) is True
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert sleep_idle_openmp("auto", "cpu", environ) is False  # already set: left as it is
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert sleep_idle_openmp("torch", "cpu", {}) is False
    assert sleep_idle_openmp("openvino", "cuda:1", {}) is False


def test_a_runtime_without_its_package_leaves_torch_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name)
    )
    assert graph_runtime_expected("openvino", "cpu") is False  # torch will serve
    assert graph_runtime_expected("auto", "cpu") is True  # ONNX Runtime is installed
