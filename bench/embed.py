"""CLIP embedding throughput: the model in-process vs the same model behind POST /embed.

Prints, from one run on one machine: in-process crops/s at each batch size; HTTP /embed crops/s
(one crop per request, as /detect?embed=1 and the integration send them), p50/p95 latency and
the mean batch the CLIP batcher formed at each client concurrency; the ratio HTTP / in-process
at the same effective batch size.

    python bench/embed.py --model tiny
    python bench/embed.py --model vitb32 --requests 48      # ViT-B/32, random weights
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import platform
import sys
from functools import partial
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai_server.models.clip import Clip, ClipItem
from ai_server.runtime.devices import resolve_device
from bench import models
from bench.harness import bench_parser, best, http_levels, in_worker, running_server, steady_time


def _args() -> argparse.Namespace:
    parser = bench_parser(__doc__, batches=[1, 4, 8], concurrency=[1, 4, 8], requests=96, repeats=5)
    parser.add_argument("--model", default="tiny", help="tiny, vitb32 (random weights) or a path")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads, in-process and in the server (2 threads on 2 shared cores thrash)",
    )
    parser.add_argument("--crop-size", default="160x320", help="a person-sized crop")
    return parser.parse_args()


def crop_jpeg(size: str) -> tuple[bytes, Image.Image]:
    width, height = (int(v) for v in size.split("x"))
    image = Image.effect_noise((width, height), 64).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), image


def in_process(clip: Clip, args: argparse.Namespace, image: Image.Image) -> dict[int, float]:
    rates: dict[int, float] = {}
    for size in args.batches:
        batch = [ClipItem(image=image) for _ in range(size)]
        seconds = in_worker(partial(steady_time, partial(clip.embed, batch), args.repeats))
        rates[size] = size / seconds
        print(f"in-process  batch {size:>3}: {rates[size]:8.2f} crops/s", flush=True)
    return rates


def main() -> None:
    args = _args()
    path = models.clip(args.model, args.cache)
    data, image = crop_jpeg(args.crop_size)
    payload = json.dumps({"images_base64": [base64.b64encode(data).decode()]}).encode()
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name(0) if device.is_cuda else platform.processor() or "cpu"
    print(
        f"CLIP {args.model} on {device.device} ({name}), {torch.get_num_threads()} threads, "
        f"crop {args.crop_size}, server max batch {args.max_batch}, wait {args.max_wait_ms} ms",
        flush=True,
    )
    clip = Clip(str(path), device)
    clip.load()
    before = in_process(clip, args, image)
    server_args = [
        "--profile", "tiny", "--cache-dir", str(args.cache), "--clip-path", str(path),
        "--device", args.device, "--torch-threads", str(args.threads), "--preload", "detector,clip",
        "--batch-max-size", str(args.max_batch), "--batch-max-wait-ms", str(args.max_wait_ms),
        "--queue-max", "1024",
    ]  # fmt: skip
    with running_server(*server_args) as server:
        after = in_process(clip, args, image)  # same minute as HTTP, the server idle
        rates = best(before, after)
        rows = asyncio.run(
            http_levels(
                server.base_url, "/embed", "clip", payload, levels=args.concurrency,
                requests=args.requests, rates=rates, unit="crops",
                content_type="application/json", warmup=32,
            )
        )  # fmt: skip
        peak_rss = server.peak_rss_mb()
    clip.unload()
    print(f"server peak RSS: {peak_rss:.0f} MB")
    if args.json:
        figures = {
            "model": args.model,
            "device": device.device,
            "device_name": name,
            "crop_size": args.crop_size,
            "in_process": rates,
            "http": rows,
            "server_peak_rss_mb": peak_rss,
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
