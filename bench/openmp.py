"""OpenMP's wait policy and llama.cpp: prompt evaluation and decoding speed of the event bench's
GGUF with OpenMP's default policy and with OMP_WAIT_POLICY=PASSIVE.

PASSIVE makes torch's idle OpenMP threads sleep instead of spinning, which gave OpenVINO's
threads their cores back (docs/benchmarks.md "Optimised runtime"). But llama.cpp's CPU backend
synchronises on the same OpenMP (torch's libgomp.so.1, loaded first, is the one it links
against), and the LLM is the longest stage of an event: this measures what PASSIVE costs it.

libgomp reads the policy once per process, so each measurement is a fresh process; the two
policies alternate (default, PASSIVE, PASSIVE, default, ...) so that a machine slowing down or
speeding up meets both alike. Each process evaluates the same prompt of --prompt-tokens token ids
and then decodes --tokens tokens one at a time (no sampling: the next id is fixed), timing both.

    python bench/openmp.py                                  # the full-size random nemotron GGUF
    python bench/openmp.py --model tiny --pairs 1 --tokens 8  # smoke run (what the test runs)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai_server.runtime.accel import default_threads
from bench import models
from bench.harness import abba, add_cache_option, cpu_model, load_averages, medians

VARIABLE = "OMP_WAIT_POLICY"
POLICIES = ("default", "PASSIVE")
FIGURES = ("prefill_tokens_per_s", "decode_tokens_per_s")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--model", choices=models.LLM_SCALES, default="full", help="full: Nemotron Mini 4B's shapes"
    )
    parser.add_argument("--pairs", type=int, default=2, help="processes per policy")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=48, help="tokens decoded one at a time")
    parser.add_argument("--threads", type=int, default=default_threads())
    add_cache_option(parser)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # one measurement
    return parser.parse_args()


def measure(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One process's figures (the --child side)."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=args.prompt_tokens + args.tokens + 8,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    vocab = llm.n_vocab()
    prompt = [1 + (i * 7919) % (vocab - 1) for i in range(args.prompt_tokens)]
    started = time.perf_counter()
    llm.eval(prompt)
    prefill_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(args.tokens):
        llm.eval([1 + (i * 104729) % (vocab - 1)])
    decode_s = time.perf_counter() - started
    return {
        "policy": os.environ.get(VARIABLE, "default"),
        "prefill_tokens_per_s": args.prompt_tokens / prefill_s,
        "decode_tokens_per_s": args.tokens / decode_s,
    }


def run_child(path: Path, policy: str, args: argparse.Namespace) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if policy != "default":
        environ[VARIABLE] = policy
    done = subprocess.run(
        [
            sys.executable, __file__, "--child", str(path), "--threads", str(args.threads),
            "--prompt-tokens", str(args.prompt_tokens), "--tokens", str(args.tokens),
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"measurement failed: {done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"{policy:<8} prefill {figures['prefill_tokens_per_s']:7.2f} tokens/s, decoding"
        f" {figures['decode_tokens_per_s']:6.2f} tokens/s",
        flush=True,
    )
    return figures


def main() -> None:
    args = _args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args)))
        return
    path = models.llm(args.model, args.cache, args.threads)
    result: dict[str, Any] = {
        "cpu": cpu_model(),
        "threads": args.threads,
        "model": path.name,
        "prompt_tokens": args.prompt_tokens,
        "tokens": args.tokens,
        "load_before": " ".join(load_averages()),
    }
    print(f"{result['cpu']}, {args.threads} threads, {path.name}", flush=True)
    result["runs"] = [run_child(path, policy, args) for policy in abba(POLICIES, args.pairs)]
    result["load_after"] = " ".join(load_averages())
    result["median"] = medians(result["runs"], "policy", POLICIES, FIGURES)
    base, passive = result["median"]["default"], result["median"]["PASSIVE"]
    for key in FIGURES:
        result[f"{key}_passive_vs_default"] = passive[key] / base[key]
    print(
        f"median of {args.pairs}: prefill {base['prefill_tokens_per_s']:.2f} (default) /"
        f" {passive['prefill_tokens_per_s']:.2f} (PASSIVE) tokens/s ="
        f" x{result['prefill_tokens_per_s_passive_vs_default']:.2f}; decoding"
        f" {base['decode_tokens_per_s']:.2f} / {passive['decode_tokens_per_s']:.2f} tokens/s ="
        f" x{result['decode_tokens_per_s_passive_vs_default']:.2f}; load average"
        f" {result['load_before']} before, {result['load_after']} after"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
