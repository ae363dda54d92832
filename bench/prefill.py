"""A timed-out LLM call: how soon its context is free again, and what prompt steps cost.

The server evaluates a prompt `PREFILL_STEP` tokens at a time and stops between steps once
nobody waits for the answer (an event's LLM call past `HSI_LLM_TIMEOUT`, a client gone); before,
llama.cpp evaluated the whole prompt in its own 512-token batches and only the first generated
token saw the cancel. This runs the server's backend (`LlamaCppLLM`, one slot, prefix reuse off so
every prompt is evaluated whole) with the step as shipped and with the whole prompt as one step
(the old behaviour: llama.cpp's own 512-token batches, nothing checked between them), alternating
(shipped, whole, whole, shipped, ...) so that a machine slowing down meets both alike:

- release: a prompt of --prompt-tokens tokens is given up --cancel-after s into its evaluation;
  the time from giving up until a one-token request on the same (only) slot is answered;
- prefill: tokens/s evaluating the whole prompt (what the shorter steps cost).

    python bench/prefill.py                                    # the full-size random nemotron GGUF
    python bench/prefill.py --model tiny --rounds 1 --prompt-tokens 256   # smoke run (the test)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai_server.models import llm as llm_module
from ai_server.models.llm import GenerationRequest, LlamaCppLLM
from ai_server.runtime.accel import default_threads
from bench import models
from bench.harness import abba, add_cache_option, cpu_model, load_averages, medians

SETTINGS = ("shipped", "whole")
WHOLE = 1 << 30  # one step for any prompt: llama.cpp evaluates it in its own batches, unchecked


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--model", choices=models.LLM_SCALES, default="full", help="full: Nemotron Mini 4B's shapes"
    )
    parser.add_argument("--rounds", type=int, default=2, help="measurements per step setting")
    parser.add_argument("--prompt-tokens", type=int, default=800, help="an event's new tokens")
    parser.add_argument("--cancel-after", type=float, default=5.0, help="seconds into the prompt")
    parser.add_argument("--threads", type=int, default=default_threads())
    add_cache_option(parser)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.rounds < 1 or args.prompt_tokens < 16 or args.cancel_after < 0:
        parser.error("rounds >= 1, prompt tokens >= 16, cancel-after >= 0")
    return args


def _prompt(backend: LlamaCppLLM, tokens: int) -> str:
    """Text of at least `tokens` tokens for this model, different words throughout."""
    words: list[str] = []
    while backend.count_tokens(" ".join(words)) < tokens:
        words.extend(f"camera{len(words)} saw motion" for _ in range(16))
    return " ".join(words)


async def _release_s(backend: LlamaCppLLM, prompt: str, cancel_after: float) -> float:
    """Give up on `prompt` `cancel_after` s in; seconds until the slot answers again."""
    stream = backend.stream(GenerationRequest(prompt=prompt, max_tokens=1))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(anext(stream), cancel_after)
    given_up = time.perf_counter()
    await stream.aclose()  # as the server does when its timeout fires
    await backend.generate(GenerationRequest(prompt="x", max_tokens=1))
    return time.perf_counter() - given_up


async def _prefill_tokens_per_s(backend: LlamaCppLLM, prompt: str) -> float:
    started = time.perf_counter()
    done = await backend.generate(GenerationRequest(prompt=prompt, max_tokens=1))
    return done.usage.prompt_tokens / (time.perf_counter() - started)


async def run(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    backend = LlamaCppLLM(
        str(path),
        slots=1,
        prefix_cache=False,
        threads=args.threads,
        context_size=args.prompt_tokens + 256,
    )
    backend.load()
    shipped = llm_module.PREFILL_STEP
    try:
        prompt = _prompt(backend, args.prompt_tokens)
        runs: list[dict[str, Any]] = []
        for setting in abba(SETTINGS, args.rounds):
            llm_module.PREFILL_STEP = shipped if setting == "shipped" else WHOLE
            runs.append(
                {
                    "setting": setting,
                    "release_s": await _release_s(backend, prompt, args.cancel_after),
                    "prefill_tokens_per_s": await _prefill_tokens_per_s(backend, prompt),
                }
            )
            print(json.dumps(runs[-1]), flush=True)
    finally:
        llm_module.PREFILL_STEP = shipped
        backend.unload()
    median = medians(runs, "setting", SETTINGS, ("release_s", "prefill_tokens_per_s"))
    new, old = median["shipped"], median["whole"]
    return {
        "cpu": cpu_model(),
        "load_average": load_averages(),
        "model": path.name,
        "threads": args.threads,
        "prompt_tokens": args.prompt_tokens,
        "cancel_after_s": args.cancel_after,
        "shipped_step": shipped,
        "runs": runs,
        "median": median,
        "release_whole_vs_shipped": old["release_s"] / new["release_s"],
        "prefill_shipped_vs_whole": new["prefill_tokens_per_s"] / old["prefill_tokens_per_s"],
    }


def main() -> None:
    args = _args()
    path = models.llm(args.model, args.cache, threads=args.threads)
    result = asyncio.run(run(args, path))
    print(f"CPU: {result['cpu']}, {args.threads} threads, load {' '.join(result['load_average'])}")
    print(f"{path.name}: {args.prompt_tokens}-token prompt given up after {args.cancel_after:g} s")
    names = {"shipped": f"steps of {result['shipped_step']}", "whole": "the whole prompt"}
    for setting, figures in result["median"].items():
        print(
            f"{names[setting]:>16}: slot free {figures['release_s']:7.2f} s after giving up, "
            f"prefill {figures['prefill_tokens_per_s']:7.1f} tokens/s"
        )
    print(
        f"slot free {result['release_whole_vs_shipped']:.1f}x sooner in steps; prefill speed "
        f"{result['prefill_shipped_vs_whole']:.2f}x of the whole prompt's"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
