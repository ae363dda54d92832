"""Florence-2 /describe throughput in-process vs HTTP, and the latency of an 8-object /enrich.

Prints, from one run on one machine: in-process captions/s at each batch size; HTTP /describe
captions/s, p50/p95 and the mean batch the Florence batcher formed at each client concurrency;
the ratio HTTP / in-process at the same effective batch size; then p50/p95 of POST /enrich for
one 640x480 frame with 8 objects (2 persons, car, truck, van-sized truck, dog, cat, bicycle):
CLIP zero-shot on every crop plus Florence OCR on every vehicle, with and without plates.

    python bench/describe.py --model tiny
    python bench/describe.py --model base --requests 8 --enrich-requests 4   # 0.23 B, random
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import platform
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai_server.models.vlm import DescribeRequest, Florence
from ai_server.runtime.devices import resolve_device
from bench import models
from bench.harness import (
    bench_parser,
    best,
    http_levels,
    in_worker,
    percentile,
    running_server,
    steady_time,
)

OBJECTS = [
    {"class": "person", "bbox": {"x": 40, "y": 120, "width": 90, "height": 260}},
    {"class": "person", "bbox": {"x": 150, "y": 140, "width": 80, "height": 240}},
    {"class": "car", "bbox": {"x": 260, "y": 250, "width": 220, "height": 150}},
    {"class": "truck", "bbox": {"x": 420, "y": 180, "width": 210, "height": 200}},
    {"class": "truck", "bbox": {"x": 0, "y": 330, "width": 160, "height": 140}},
    {"class": "dog", "bbox": {"x": 240, "y": 380, "width": 70, "height": 60}},
    {"class": "cat", "bbox": {"x": 560, "y": 420, "width": 60, "height": 50}},
    {"class": "bicycle", "bbox": {"x": 330, "y": 120, "width": 90, "height": 110}},
]


def _args() -> argparse.Namespace:
    parser = bench_parser(__doc__, batches=[1, 4], concurrency=[1, 4], requests=32, repeats=3)
    parser.add_argument("--model", default="tiny", help="tiny, base (random weights) or a path")
    parser.add_argument("--clip", default="tiny", help="CLIP for /enrich: tiny, vitb32 or a path")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads, in-process and in the server (2 threads on 2 shared cores thrash)",
    )
    parser.add_argument("--enrich-requests", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    return parser.parse_args()


def frame() -> tuple[bytes, Image.Image]:
    image = Image.effect_noise((640, 480), 64).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), image


def in_process(model: Florence, args: argparse.Namespace, image: Image.Image) -> dict[int, float]:
    rates: dict[int, float] = {}
    for size in args.batches:
        batch = [DescribeRequest(image, "caption") for _ in range(size)]
        seconds = in_worker(partial(steady_time, partial(model.describe, batch), args.repeats))
        rates[size] = size / seconds
        print(f"in-process  batch {size:>3}: {rates[size]:8.2f} captions/s", flush=True)
    return rates


async def enrich_latency(base_url: str, image_b64: str, requests: int) -> dict[str, Any]:
    """Sequential 8-object /enrich calls: the latency one event's enrichment adds."""
    figures: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        for plates in (True, False):
            body = {"image_base64": image_b64, "objects": OBJECTS, "plates": plates}
            latencies = []
            for i in range(requests + 1):
                started = time.perf_counter()
                async with session.post(f"{base_url}/enrich", json=body) as response:
                    answer = await response.json()
                    if response.status != 200:
                        raise RuntimeError(f"/enrich: HTTP {response.status}: {answer}")
                if i:  # the first call fills the label-embedding cache
                    latencies.append(1000 * (time.perf_counter() - started))
            key = "with_plates" if plates else "without_plates"
            figures[key] = {
                "p50_ms": percentile(latencies, 50),
                "p95_ms": percentile(latencies, 95),
            }
            print(
                f"enrich 8 objects ({key.replace('_', ' ')}): p50 {figures[key]['p50_ms']:8.1f} ms"
                f"  p95 {figures[key]['p95_ms']:8.1f} ms",
                flush=True,
            )
    return figures


def main() -> None:
    args = _args()
    path = models.florence(args.model, args.cache)
    clip = models.clip(args.clip, args.cache)
    data, image = frame()
    image_b64 = base64.b64encode(data).decode()
    payload = json.dumps({"image_base64": image_b64, "task": "caption"}).encode()
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name(0) if device.is_cuda else platform.processor() or "cpu"
    print(
        f"Florence-2 {args.model} + CLIP {args.clip} on {device.device} ({name}), "
        f"{torch.get_num_threads()} threads, 640x480, {args.max_new_tokens} new tokens, "
        f"server max batch {args.max_batch}, wait {args.max_wait_ms} ms",
        flush=True,
    )
    model = Florence(str(path), device, max_new_tokens=args.max_new_tokens)
    model.load()
    before = in_process(model, args, image)
    server_args = [
        "--profile", "tiny", "--cache-dir", str(args.cache), "--florence-path", str(path),
        "--clip-path", str(clip), "--device", args.device, "--torch-threads", str(args.threads),
        "--preload", "detector,clip,florence",
        "--florence-max-new-tokens", str(args.max_new_tokens),
        "--batch-max-size", str(args.max_batch), "--batch-max-wait-ms", str(args.max_wait_ms),
        "--queue-max", "1024",
    ]  # fmt: skip
    with running_server(*server_args) as server:
        after = in_process(model, args, image)  # same minute as HTTP, the server idle
        rates = best(before, after)
        rows = asyncio.run(
            http_levels(
                server.base_url, "/describe", "florence", payload, levels=args.concurrency,
                requests=args.requests, rates=rates, unit="captions",
                content_type="application/json", warmup=24,
            )
        )  # fmt: skip
        enrich = asyncio.run(enrich_latency(server.base_url, image_b64, args.enrich_requests))
        peak_rss = server.peak_rss_mb()
    model.unload()
    print(f"server peak RSS: {peak_rss:.0f} MB")
    if args.json:
        figures = {
            "model": args.model,
            "clip": args.clip,
            "device": device.device,
            "device_name": name,
            "max_new_tokens": args.max_new_tokens,
            "in_process": rates,
            "http": rows,
            "enrich_8_objects": enrich,
            "server_peak_rss_mb": peak_rss,
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
