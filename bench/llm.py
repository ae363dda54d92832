"""LLM risk stage: prompt tokens evaluated per /analyze call with and without prefix reuse, and
the per-stage time split of /analyze.

Part 1 sends the same sequence of risk prompts (the real system prompt + a different event each
time, built by the real prompt builder) to two in-process llama.cpp backends on one GGUF file:
one reusing the KV cache of the shared system-prompt prefix (the server's default), one
resetting it before every call (HSI_LLM_PREFIX_CACHE=false). llama.cpp's own counter says how
many prompt tokens it evaluated per call.

Part 2 runs /analyze through the real application (tiny profile: detector, CLIP, Florence-2 and
the tiny GGUF, all random weights) and reports the median time of each stage.

    python bench/llm.py                          # tiny GGUF (same tokenizer shape as real ones)
    python bench/llm.py --model nemotron-mini-4b-instruct-Q4_K_M.gguf --events 8
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from hsi_client import AnalyzedObject
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai_server.analysis import risk
from ai_server.analysis.event import parse_metadata
from ai_server.analysis.prompts import EventFacts, build_prompt
from ai_server.app import create_app
from ai_server.config import load_settings
from ai_server.imaging import Box
from ai_server.keys import PRELOAD_TASK
from ai_server.models import tiny
from ai_server.models.llm import GenerationRequest, LlamaCppLLM
from bench.harness import add_cache_option

_LABELS = ("person", "car", "dog", "truck", "bicycle")
_MODES = ("home", "away", "night", "vacation")
_TIMES = ("night", "morning", "afternoon", "evening")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the tiny one)")
    parser.add_argument("--events", type=int, default=12, help="risk prompts per backend")
    parser.add_argument("--analyze", type=int, default=8, help="/analyze calls for the split")
    parser.add_argument("--max-tokens", type=int, default=risk.RISK_MAX_TOKENS)
    add_cache_option(parser)
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args()


def _event(index: int) -> EventFacts:
    """A plausible, different event each time (cameras, classes, context all vary)."""
    frames = 1 + index % 3
    metadata = parse_metadata(
        {
            "camera": {"name": f"Camera {index % 4}", "description": "driveway and front door"},
            "started_at": f"2026-11-26T{(index * 5) % 24:02d}:10:00",
            "ended_at": f"2026-11-26T{(index * 5) % 24:02d}:1{index % 6}:00",
            "context": {
                "time_of_day": _TIMES[index % 4],
                "home_mode": _MODES[index % 4],
                "zones": "porch, driveway, street",
                "known_matches": [{"description": f"same unknown person seen {index} times today"}],
                "recent_events": [{"risk_level": "low", "summary": "car passing by"}],
            },
        },
        frames,
    )
    objects = [
        AnalyzedObject(
            _LABELS[(index + k) % len(_LABELS)], 0.6 + 0.05 * k, k % frames, Box(0, 0, 9, 9)
        )
        for k in range(1 + index % 4)
    ]
    return EventFacts(metadata, objects, frames, {0: "a person walking up the driveway"})


async def _prefix_run(path: Path, reuse: bool, events: int, max_tokens: int) -> dict[str, Any]:
    backend = LlamaCppLLM(str(path), slots=1, prefix_cache=reuse)
    await asyncio.to_thread(backend.load)
    evaluated, totals, seconds = [], [], []
    try:
        for index in range(events):
            prompt = build_prompt(
                _event(index),
                count_tokens=backend.count_tokens,
                context_size=backend.context_size,
                answer_tokens=max_tokens,
            )
            request = GenerationRequest(
                messages=prompt.messages,
                max_tokens=max_tokens,
                temperature=0.1,
                json_schema=risk.RISK_SCHEMA,
                seed=index,
            )
            completion = await backend.generate(request)
            evaluated.append(completion.usage.prompt_tokens_evaluated or 0)
            totals.append(completion.usage.prompt_tokens)
            seconds.append(completion.seconds)
    finally:
        await asyncio.to_thread(backend.unload)
    # The first call fills the cache either way; repeated calls are what the target is about.
    return {
        "prefix_reuse": reuse,
        "prompt_tokens_mean": statistics.mean(totals[1:]),
        "evaluated_first": evaluated[0],
        "evaluated_mean_repeated": statistics.mean(evaluated[1:]),
        "seconds_median_repeated": statistics.median(seconds[1:]),
    }


def _jpeg(seed: int) -> bytes:
    image = Image.new("RGB", (640, 480), (40 + seed * 10 % 200, 90, 60))
    image.paste((240, 240, 240), (200, 120, 320, 400))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


async def _stage_split(cache: Path, calls: int) -> dict[str, Any]:
    settings = load_settings(
        env={}, profile="tiny", cache_dir=cache, device="cpu", preload=("detector", "llm")
    )
    app = create_app(settings)
    async with TestClient(TestServer(app)) as client:
        await app[PRELOAD_TASK]
        timings: dict[str, list[float]] = {}
        statuses: dict[str, str] = {}
        for index in range(calls + 1):
            form = FormData()
            for frame in range(2):
                form.add_field(
                    "frame", _jpeg(index + frame), filename="f.jpg", content_type="image/jpeg"
                )
            metadata = {"camera": {"name": "Porch"}, "context": {"time_of_day": "night"}}
            form.add_field("metadata", json.dumps(metadata), content_type="application/json")
            answer = await client.post("/analyze", data=form)
            body = await answer.json()
            if index == 0:
                continue  # first call loads CLIP/Florence-2 lazily
            for stage, ms in body["timings_ms"].items():
                timings.setdefault(stage, []).append(ms)
            statuses = {name: entry["status"] for name, entry in body["models"].items()}
    return {
        "median_ms": {stage: round(statistics.median(v), 1) for stage, v in timings.items()},
        "stage_status": statuses,
    }


async def main() -> None:
    args = _args()
    path = (
        args.model
        or tiny.make_tiny_models(args.cache / "tiny", ["llm"])["llm"] / tiny.TINY_LLM_FILE
    )
    reuse = await _prefix_run(path, True, args.events, args.max_tokens)
    fresh = await _prefix_run(path, False, args.events, args.max_tokens)
    saved = 1 - reuse["evaluated_mean_repeated"] / fresh["evaluated_mean_repeated"]
    print(f"model: {path.name}; {args.events} risk prompts per backend")
    for run in (fresh, reuse):
        label = "prefix reuse" if run["prefix_reuse"] else "no reuse    "
        print(
            f"  {label}: prompt {run['prompt_tokens_mean']:.0f} tokens, evaluated "
            f"{run['evaluated_mean_repeated']:.0f} per repeated call "
            f"(first call {run['evaluated_first']}), "
            f"median call {run['seconds_median_repeated'] * 1000:.0f} ms"
        )
    print(f"  prompt tokens evaluated per repeated call: {100 * saved:.1f} % fewer with reuse")
    split = await _stage_split(args.cache, args.analyze)
    print(f"/analyze stage split (median of {args.analyze} calls, 2 frames, tiny models):")
    model_of = {"detect": "detector", "enrich": "enrich", "describe": "florence", "risk": "llm"}
    for stage, ms in split["median_ms"].items():
        status = split["stage_status"].get(model_of.get(stage, ""), "")
        print(f"  {stage:9s} {ms:8.1f} ms   {status}")
    if args.json:
        args.json.write_text(
            json.dumps({"prefix": [fresh, reuse], "saved": saved, "split": split}, indent=2)
        )


if __name__ == "__main__":
    asyncio.run(main())
