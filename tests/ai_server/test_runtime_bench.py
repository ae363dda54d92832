"""bench/runtime.py: a CI-sized run (the tiny profile's detector with separated scores, as
bench/models.py builds it, and its CLIP; one size, one round) of the real command line: every
installed runtime measured, each against torch at the same size and the machine's fp32 ceiling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_server.runtime.accel import available

from .conftest import run_bench


def test_runtime_bench_compares_every_runtime_with_torch(tmp_path: Path, model_cache: Path) -> None:
    run_bench(
        "runtime.py", "--detector", "tiny-separated", "--clip", "tiny", "--sizes", "320",
        "--clip-batches", "1", "--rounds", "1", "--repeats", "2", "--min-seconds", "0.2",
        "--cache", str(model_cache), "--json", str(tmp_path / "r.json"),
        "--markdown", str(tmp_path / "r.md"), cache=model_cache,
    )  # fmt: skip
    result = json.loads((tmp_path / "r.json").read_text())
    runtimes = [r for r in ("torch", "onnxruntime", "openvino") if available(r)]
    assert [row["runtime"] for row in result["detector"]] == runtimes
    assert [row["runtime"] for row in result["clip"]] == runtimes
    for row in result["detector"]:
        assert row["size"] == 320
        assert row["frames_per_s"] == pytest.approx(1000 / row["ms_per_frame"])
        assert 0 < row["preprocess_ms"] < row["ms_per_frame"]
        torch_ms = result["detector"][0]["ms_per_frame"]
        assert row["vs_torch"] == pytest.approx(torch_ms / row["ms_per_frame"])
    assert result["detector"][0]["vs_torch"] == 1.0
    assert all(row["crops_per_s"] > 0 for row in result["clip"])
    # Work per second against the machine's fp32 ceiling: one model, one count for every runtime.
    ceiling, ceilings = result["ceiling_gflop_per_s"], result["ceilings_gflop_per_s"]
    assert len(ceilings) == 2 and ceiling == max(ceilings) > 0  # before and after
    assert len({row["gflop"] for row in result["detector"]}) == 1
    for row in result["detector"]:
        assert row["gflop"] > 0
        assert row["gflop_per_s"] == pytest.approx(row["gflop"] * row["frames_per_s"])
        assert row["of_ceiling"] == pytest.approx(row["gflop_per_s"] / ceiling)
    for row in result["clip"]:
        assert row["gflop_per_s"] > 0
        assert row["of_ceiling"] == pytest.approx(row["gflop_per_s"] / ceiling)
    table = (tmp_path / "r.md").read_text()
    assert table.count("| 320 |") == len(runtimes)
