"""The detector and CLIP's image tower on each runtime, side by side in one run (issue 12).

Loads the same checkpoint once per runtime (torch, ONNX Runtime, OpenVINO: HSI_RUNTIME) and input
size (HSI_DETECTOR_SIZE), then measures them in interleaved rounds on one worker thread, as the
server's batcher runs them, so that every runtime meets the same machine minutes; the best round
counts. Prints ms per frame and frames/s per runtime and size with the ratio to torch at the same
size, the share of a frame that is pre-processing (PIL/transformers, the same for every runtime),
and CLIP crops/s per runtime. Each figure is also put against the machine's fp32 ceiling: the
model's multiply-adds (torch's FLOP counter) per second as a share of the best large fp32 matrix
product on the same threads, measured in the same run; it tells how far any fp32 runtime could go.

    python bench/runtime.py                                      # r18vd at 640, 480, 320 + CLIP
    python bench/runtime.py --detector r50vd --sizes 640 --no-clip
    python bench/runtime.py --detector tiny --clip tiny --rounds 1   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai_server.models.clip import Clip, ClipItem
from ai_server.models.detector import Detector, DetectRequest
from ai_server.runtime.accel import AccelOptions, available, default_threads
from ai_server.runtime.devices import resolve_device
from bench import models
from bench.detect import jpeg
from bench.embed import crop_jpeg
from bench.harness import add_cache_option, cpu_model, in_worker, ints, load_averages, steady_time

RUNTIMES = ("torch", "onnxruntime", "openvino")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--detector", default="r18vd", help="tiny, r18vd, r50vd (-separated too) or a folder"
    )
    parser.add_argument("--sizes", default="640,480,320", help="detector input sizes (px)")
    parser.add_argument("--clip", default="vitb32", help="tiny, vitb32 or a folder")
    parser.add_argument("--no-clip", action="store_true")
    parser.add_argument("--clip-batches", default="1,8")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument(
        "--threads", type=int, default=default_threads(), help="threads of every runtime"
    )
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; best counts")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--image-size", default="640x480", help="the camera frame")
    add_cache_option(parser)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    return parser.parse_args()


def measure(fn: Callable[[], object], args: argparse.Namespace) -> float:
    """Seconds per call: warm, median of the timed calls, on a worker thread."""
    return in_worker(partial(steady_time, fn, args.repeats, args.min_seconds))


def gflop(forward: Callable[[torch.Tensor], object], example: torch.Tensor) -> float:
    """GFLOP of one forward pass as torch counts them (matrix products and convolutions, 2 per
    multiply-add; attention sampling and element-wise work come on top, uncounted). Counted with
    autograd on: without it nn.MultiheadAttention takes a fused path the counter cannot see
    (CLIP ViT-B/32: 5.9 instead of 8.7 GFLOP)."""
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        forward(example)
    return float(counter.get_total_flops()) / 1e9


def _detector_forward(model: torch.nn.Module, pixels: torch.Tensor) -> object:
    return model(pixel_values=pixels)


def matmul_ceiling(args: argparse.Namespace) -> float:
    """fp32 GFLOP/s of the best large matrix product (oneDNN/MKL) on the benchmark's threads:
    what no fp32 runtime's forward pass can beat on this machine."""
    best = 0.0
    for n in (1024, 2048, 4096):
        a, b = torch.rand(n, n), torch.rand(n, n)
        with torch.no_grad():
            best = max(best, 2 * n**3 / measure(partial(torch.mm, a, b), args) / 1e9)
    return best


def preprocess_seconds(detector: Detector, frame: Any, args: argparse.Namespace) -> float:
    """What the image processor alone takes for one frame (runtime-independent)."""
    processor = detector._processor  # the pipeline's own step, timed alone
    return measure(lambda: processor(images=[frame], return_tensors="pt"), args)


def bench_detector(args: argparse.Namespace, runtimes: list[str]) -> list[dict[str, Any]]:
    device = resolve_device("cpu")
    path = str(models.detector(args.detector, args.cache))
    _, frame = jpeg(args.image_size)
    request = [DetectRequest(frame, 0.5, None)]
    rows: list[dict[str, Any]] = []
    for size in ints(args.sizes):
        loaded: dict[str, Detector] = {}
        for runtime in runtimes:
            accel = AccelOptions(runtime, args.cache / "onnx", args.threads)
            detector = Detector(path, device, size=size, accel=accel)
            detector.load()
            if detector.runtime != runtime:
                print(f"detector {size}: {runtime} fell back to {detector.runtime}", flush=True)
                continue
            loaded[runtime] = detector
        if not loaded:
            continue
        first = next(iter(loaded.values()))  # the checkpoint every runtime was made from
        work = gflop(partial(_detector_forward, first._model), torch.rand(1, 3, size, size))
        seconds: dict[str, list[float]] = {runtime: [] for runtime in loaded}
        for _ in range(args.rounds):
            for runtime, detector in loaded.items():
                seconds[runtime].append(measure(partial(detector.detect, request), args))
        pre = preprocess_seconds(first, frame, args)
        for runtime, detector in loaded.items():
            best = min(seconds[runtime])
            rows.append(
                {
                    "size": size,
                    "runtime": runtime,
                    "ms_per_frame": best * 1000,
                    "frames_per_s": 1 / best,
                    "rounds_ms": [s * 1000 for s in seconds[runtime]],
                    "preprocess_ms": pre * 1000,
                    "gflop": work,
                    "gflop_per_s": work / best,
                }
            )
            detector.unload()
    for row in rows:
        torch_row = next(
            (r for r in rows if r["size"] == row["size"] and r["runtime"] == "torch"), None
        )
        row["vs_torch"] = torch_row["ms_per_frame"] / row["ms_per_frame"] if torch_row else None
        print(
            f"detector {row['size']:>4} px {row['runtime']:<12} {row['ms_per_frame']:8.1f} ms"
            f" {row['frames_per_s']:6.2f} frames/s  x{row['vs_torch'] or float('nan'):.2f} vs"
            f" torch  {row['gflop_per_s']:.0f} GFLOP/s"
            f"  (rounds {', '.join(f'{v:.0f}' for v in row['rounds_ms'])} ms;"
            f" pre-processing {row['preprocess_ms']:.0f} ms)",
            flush=True,
        )
    return rows


def bench_clip(args: argparse.Namespace, runtimes: list[str]) -> list[dict[str, Any]]:
    device = resolve_device("cpu")
    path = str(models.clip(args.clip, args.cache))
    _, crop = crop_jpeg("160x320")
    loaded: dict[str, Clip] = {}
    for runtime in runtimes:
        clip = Clip(path, device, accel=AccelOptions(runtime, args.cache / "onnx", args.threads))
        clip.load()
        if clip.runtime == runtime:
            loaded[runtime] = clip
    if not loaded:
        return []
    first = next(iter(loaded.values()))
    pixels = first._preprocess(crop).unsqueeze(0)  # the tower's input, as the server makes it
    work = gflop(first._model.encode_image, pixels)  # per crop
    rows: list[dict[str, Any]] = []
    for batch in ints(args.clip_batches):
        items = [ClipItem(image=crop) for _ in range(batch)]
        seconds: dict[str, list[float]] = {runtime: [] for runtime in loaded}
        for _ in range(args.rounds):
            for runtime, clip in loaded.items():
                seconds[runtime].append(measure(partial(clip.embed, items), args))
        base = min(seconds["torch"]) if "torch" in seconds else None
        for runtime in loaded:
            best = min(seconds[runtime])
            row = {
                "batch": batch,
                "runtime": runtime,
                "crops_per_s": batch / best,
                "vs_torch": base / best if base else None,
                "gflop_per_s": work * batch / best,
            }
            rows.append(row)
            print(
                f"CLIP batch {batch:>2} {runtime:<12} {row['crops_per_s']:7.1f} crops/s"
                f"  x{row['vs_torch'] or float('nan'):.2f} vs torch  {row['gflop_per_s']:.0f}"
                " GFLOP/s",
                flush=True,
            )
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"CPU `{result['cpu']}`, {result['cores']} cores, {result['threads']} threads per runtime;"
        f" {result['started']}; load average before {result['load_before']}, after"
        f" {result['load_after']}; best of {result['rounds']} interleaved rounds. fp32 ceiling"
        " (best large matrix product, same threads, the better of before and after):"
        f" {' / '.join(f'{c:.0f}' for c in result['ceilings_gflop_per_s'])} GFLOP/s.",
        "",
        "| input | runtime | ms / frame | frames/s | vs torch | GFLOP/s (of ceiling) |"
        " pre-processing ms |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["detector"]:
        lines.append(
            f"| {row['size']} | {row['runtime']} | {row['ms_per_frame']:.0f} |"
            f" {row['frames_per_s']:.2f} | {row['vs_torch']:.2f}x | {row['gflop_per_s']:.0f}"
            f" ({row['of_ceiling']:.0%}) | {row['preprocess_ms']:.0f} |"
        )
    if result["clip"]:
        lines += [
            "",
            "| CLIP batch | runtime | crops/s | vs torch | GFLOP/s (of ceiling) |",
            "| ---: | --- | ---: | ---: | ---: |",
        ]
        for row in result["clip"]:
            lines.append(
                f"| {row['batch']} | {row['runtime']} | {row['crops_per_s']:.1f} |"
                f" {row['vs_torch']:.2f}x | {row['gflop_per_s']:.0f} ({row['of_ceiling']:.0%}) |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = _args()
    runtimes = [r for r in args.runtimes.split(",") if r and available(r)]
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": default_threads(),
        "threads": args.threads,
        "rounds": args.rounds,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_before": " ".join(load_averages()),
    }
    print(f"{result['cpu']}, {result['cores']} cores; runtimes {', '.join(runtimes)}", flush=True)
    ceilings = [matmul_ceiling(args)]
    result["detector"] = bench_detector(args, runtimes)
    result["clip"] = [] if args.no_clip else bench_clip(args, runtimes)
    ceilings.append(matmul_ceiling(args))  # before and after: the better moment counts
    ceiling = result["ceiling_gflop_per_s"] = max(ceilings)
    result["ceilings_gflop_per_s"] = ceilings
    for row in result["detector"] + result["clip"]:
        row["of_ceiling"] = row["gflop_per_s"] / ceiling
    result["load_after"] = " ".join(load_averages())
    text = markdown(result)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
