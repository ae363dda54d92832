"""bench/openmp.py, CI-sized: llama.cpp's prompt and decoding speed under OpenMP's default wait
policy and under OMP_WAIT_POLICY=PASSIVE, each in its own process, as the process reports it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_bench


def test_llama_cpp_bench_measures_both_policies(tmp_path: Path, model_cache: Path) -> None:
    run_bench(
        "openmp.py", "--model", "tiny", "--pairs", "1", "--prompt-tokens", "32", "--tokens", "4",
        "--cache", str(model_cache), "--json", str(tmp_path / "omp.json"), cache=model_cache,
    )  # fmt: skip
    result = json.loads((tmp_path / "omp.json").read_text())
    assert [run["policy"] for run in result["runs"]] == ["default", "PASSIVE"]
    for key in ("prefill_tokens_per_s", "decode_tokens_per_s"):
        assert all(run[key] > 0 for run in result["runs"])
        ratio = result["median"]["PASSIVE"][key] / result["median"]["default"][key]
        assert result[f"{key}_passive_vs_default"] == pytest.approx(ratio)
