"""bench/event.py: a CI-sized run (the tiny profile's models and a scaled-down nemotron GGUF, one
warm-up and one timed event) of the real command line against a real server process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_bench

LLM_TOKENS = 24


@pytest.fixture(scope="module")
def event_run(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("event")
    run_bench(
        "event.py", "--models", "tiny", "--events", "1", "--warmup", "1",
        "--llm-max-tokens", str(LLM_TOKENS), "--threads", "2", "--cache", str(model_cache),
        "--json", str(out / "event.json"), "--markdown", str(out / "event.md"),
        cache=model_cache,
    )  # fmt: skip
    return json.loads((out / "event.json").read_text()), (out / "event.md").read_text()


def test_every_stage_is_timed_and_the_llm_answers(event_run: tuple[dict[str, Any], str]) -> None:
    result, _ = event_run
    assert [e["warmup"] for e in result["events"]] == [True, False]
    event = result["events"][1]
    assert set(event["stages_ms"]) == {"enrich", "describe", "risk", "total"}
    # /analyze scores by the rules; the LLM risk stage is the probe (random weights never stop).
    assert event["llm_status"] == "off" and event["risk_source"] == "rules"
    # The metadata carries a person and a car per frame (random boxes are noise).
    assert event["objects"] == 2 * 4
    probe = event["llm_probe"]
    assert probe["prompt_tokens"] > 100
    assert 1 <= probe["completion_tokens"] <= LLM_TOKENS
    # The preliminary alert is the first frame's answer: it never waits for /analyze.
    assert event["preliminary_ms"] <= event["detect_burst_ms"] < event["full_ms"]
    rules_ms = event["stages_ms"]["risk"]
    assert event["full_ms"] == pytest.approx(
        event["detect_burst_ms"] + event["analyze_ms"] - rules_ms + probe["total_ms"]
    )


def test_report_names_the_machine_and_the_figures(event_run: tuple[dict[str, Any], str]) -> None:
    result, markdown = event_run
    assert result["cpu_model"] and len(result["load_average_start"]) == 3
    assert result["runtime"] == "torch" and result["stages"] == ["enrich", "describe", "llm"]
    assert result["served_by"] == {"detector": "torch", "clip": "torch"}  # read from /health
    names = set(result["summary"])
    assert "preliminary alert (/detect?embed=1, frame 1)" in names
    assert "LLM risk (probe): prefill (time to first token)" in names
    assert all(row["n"] == 1 for row in result["summary"].values())
    assert "| preliminary alert (/detect?embed=1, frame 1) |" in markdown
    assert result["cpu_model"] in markdown


def test_stages_can_be_turned_off() -> None:
    from bench import event

    args = event._args(["--stages", "enrich", "--captions", "0"])
    assert args.stages == ("enrich",)
    assert event._args(["--captions", "0"]).stages == ("enrich", "llm")
    with pytest.raises(SystemExit):
        event._args(["--stages", "enrich,dream"])
