"""Detection throughput: the model in-process vs the same model behind the HTTP server.

Prints, from one run on one machine: in-process images/s at each batch size; HTTP /detect
images/s, p50/p95 latency and the mean batch the batcher formed at each client concurrency;
the ratio HTTP / in-process at the same effective batch size; the server's peak RSS.

    python bench/detect.py --model tiny
    python bench/detect.py --model r50vd --requests 24
    python bench/detect.py --model r50vd --device cuda --batches 1,8,32 \
        --concurrency 1,8,32,64 --max-batch 32          # on a GPU host
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import platform
import sys
from functools import partial
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai_server.models.detector import Detector, DetectRequest
from ai_server.runtime.accel import AccelOptions, resolve_runtime
from ai_server.runtime.devices import resolve_device
from bench import models
from bench.harness import bench_parser, best, http_levels, in_worker, running_server, steady_time


def _args() -> argparse.Namespace:
    parser = bench_parser(
        __doc__, batches=[1, 4, 8], concurrency=[1, 4, 8, 16], requests=96, repeats=5
    )
    parser.add_argument(
        "--model",
        default="tiny",
        help="tiny, r18vd, r50vd (random weights; -separated too) or a path",
    )
    parser.add_argument(
        "--runtime",
        default="torch",
        help="torch, onnxruntime, openvino or auto: the same for in-process and the server",
    )
    parser.add_argument("--image-size", default="640x480")
    parser.add_argument("--plot", type=Path, help="write a PNG of throughput and p95 here")
    parser.add_argument("--replot", type=Path, help="only plot the figures of an earlier --json")
    return parser.parse_args()


def jpeg(size: str) -> tuple[bytes, Image.Image]:
    """A camera-like frame: smooth background, a few solid shapes, sensor noise."""
    width, height = (int(v) for v in size.split("x"))
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x, y = (i * 97) % max(1, width - 120), (i * 61) % max(1, height - 160)
        draw.rectangle((x, y, x + 80 + 10 * i, y + 140), fill=(40 * i % 255, 120, 200 - 30 * i))
    noise = Image.effect_noise((width, height), 12).convert("RGB")
    image = Image.blend(image, noise, 0.15)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def in_process(
    detector: Detector, args: argparse.Namespace, image: Image.Image
) -> dict[int, float]:
    """Images/s per batch size, on a worker thread as the server's batcher runs the model, each
    after its own warm-up (`steady_time`)."""
    rates: dict[int, float] = {}
    for size in args.batches:
        batch = [DetectRequest(image, 0.5, None) for _ in range(size)]
        seconds = in_worker(partial(steady_time, partial(detector.detect, batch), args.repeats))
        rates[size] = size / seconds
        print(f"in-process  batch {size:>3}: {rates[size]:8.2f} img/s", flush=True)
    return rates


def plot(path: Path, title: str, rows: list[dict[str, Any]], rates: dict[int, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    concurrency = [row["concurrency"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(concurrency, [row["throughput"] for row in rows], "o-", label="HTTP /detect")
    left.plot(
        concurrency,
        [row["in_process_same_batch"] for row in rows],
        "s--",
        label="in-process, same batch",
    )
    left.set(xlabel="concurrent clients", ylabel="images / s", title="throughput")
    left.set_ylim(bottom=0)
    left.legend()
    right.plot(concurrency, [row["p95_ms"] for row in rows], "o-", color="tab:red", label="p95")
    right.plot(concurrency, [row["p50_ms"] for row in rows], "o-", color="tab:orange", label="p50")
    right.set(xlabel="concurrent clients", ylabel="ms", title="latency")
    right.set_ylim(bottom=0)
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main() -> None:
    args = _args()
    if args.replot:
        saved = json.loads(args.replot.read_text())
        rates = {int(size): rate for size, rate in saved["in_process"].items()}
        title = f"RT-DETRv2 {saved['model']} on {saved['device']}"
        plot(args.plot or args.replot.with_suffix(".png"), title, saved["http"], rates)
        return
    path = models.detector(args.model, args.cache)
    payload, image = jpeg(args.image_size)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(0) if device.is_cuda else platform.processor() or "cpu"
    print(
        f"model {args.model} on {device.device} ({name}), {torch.get_num_threads()} threads, "
        f"image {args.image_size}, server max batch {args.max_batch}, wait {args.max_wait_ms} ms",
        flush=True,
    )
    runtime, reason = resolve_runtime(args.runtime, device)
    if reason:
        print(f"runtime {args.runtime}: {reason}", flush=True)
    accel = AccelOptions(runtime, args.cache / "onnx", torch.get_num_threads())
    detector = Detector(str(path), device, accel=accel)
    detector.load()
    print(f"in-process runtime: {detector.info().get('runtime', 'torch')}", flush=True)
    before = in_process(detector, args, image)
    server_args = [
        "--detector-path", str(path), "--device", args.device, "--classes", "all",
        "--batch-max-size", str(args.max_batch), "--batch-max-wait-ms", str(args.max_wait_ms),
        "--queue-max", "1024",
    ]  # fmt: skip
    env = {"HSI_RUNTIME": runtime, "HSI_CACHE_DIR": str(args.cache)}
    with running_server(*server_args, env=env) as server:
        after = in_process(detector, args, image)  # same minute as HTTP, the server idle
        rates = best(before, after)
        rows = asyncio.run(
            http_levels(
                server.base_url, "/detect", "detector", payload, levels=args.concurrency,
                requests=args.requests, rates=rates, unit="img",
            )
        )  # fmt: skip
        peak_rss = server.peak_rss_mb()
    detector.unload()
    print(f"server peak RSS: {peak_rss:.0f} MB")
    figures = {
        "model": args.model,
        "device": device.device,
        "device_name": name,
        "image_size": args.image_size,
        "runtime": runtime,
        "in_process": rates,
        "http": rows,
        "server_peak_rss_mb": peak_rss,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    if args.plot:
        plot(args.plot, f"RT-DETRv2 {args.model} on {device.device}", rows, rates)


if __name__ == "__main__":
    main()
