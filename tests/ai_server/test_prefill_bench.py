"""bench/prefill.py, CI-sized: a given-up LLM call and the slot's release, with the prompt
evaluated in the shipped steps and as one whole (llama.cpp's own batches), alternating."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_server.models.llm import PREFILL_STEP

from .conftest import run_bench


def test_prefill_bench_measures_both_step_settings(tmp_path: Path, model_cache: Path) -> None:
    run_bench(
        "prefill.py", "--model", "tiny", "--rounds", "2", "--prompt-tokens", "256",
        "--cancel-after", "0.001", "--cache", str(model_cache),
        "--json", str(tmp_path / "prefill.json"), cache=model_cache,
    )  # fmt: skip
    result = json.loads((tmp_path / "prefill.json").read_text())
    assert [run["setting"] for run in result["runs"]] == ["shipped", "whole", "whole", "shipped"]
    assert result["shipped_step"] == PREFILL_STEP
    assert all(run["release_s"] > 0 and run["prefill_tokens_per_s"] > 0 for run in result["runs"])
    shipped, whole = result["median"]["shipped"], result["median"]["whole"]
    assert result["release_whole_vs_shipped"] == pytest.approx(
        whole["release_s"] / shipped["release_s"]
    )
    assert result["prefill_shipped_vs_whole"] == pytest.approx(
        shipped["prefill_tokens_per_s"] / whole["prefill_tokens_per_s"]
    )
    assert result["prompt_tokens"] == 256
