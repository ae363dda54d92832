"""Event budget: how long one security event takes, from its first frame to a preliminary alert
and to the full analysis, per stage, through a real server process.

Starts `python -m ai_server serve` on 127.0.0.1 with real-size random-weight models of every
stage (RT-DETRv2 r18vd or r50vd, CLIP ViT-B/32, Florence-2 base, and a GGUF with Nemotron Mini
4B's `nemotron` architecture quantised to Q4_K_M by llama.cpp's own quantiser; all built once and
cached under --cache), then plays events the way the integration does
(custom_components/hsi/watcher.py and analyzer.py):

- each frame of the event goes to `/detect?embed=1`, one after another as the watcher sends a
  burst; the first answer is when the integration can raise its PRELIMINARY alert (fast path:
  a person at or above the fast-path threshold; the preliminary event is scored by the rules in
  Home Assistant, so it never waits for /analyze or the LLM);
- then the key frames and the metadata the integration sends (detections per frame, context) go
  to `/analyze` as multipart, and the server's `timings_ms` give each stage (enrich, describe,
  risk).

Random weights never stop generating, so /analyze's own LLM call would run to its cap
(risk.RISK_MAX_TOKENS, ~1900 tokens, far beyond a real answer). So by default /analyze scores by
the rules and the LLM risk stage is measured by a PROBE right after: the same prompt (the
pipeline's prompt builder on this event's objects and caption) and the same JSON schema to
/v1/chat/completions with --llm-max-tokens (a real answer's length), streamed, so prefill (time
to the first token) and decoding are measured apart. "full" = the burst + /analyze with the
probe in place of the rules' risk stage. `--llm-in-analyze` lets /analyze call the LLM itself
(for a real GGUF via --llm-path). Florence-2 likewise captions to its cap: --caption-tokens.

Times are wall clock on a machine others may use: the CPU model and the load average before and
after are printed and stored with the figures.

    python bench/event.py                                   # r18vd, every stage, 1+3 events
    python bench/event.py --detector r50vd --events 5 --json /tmp/event.json
    python bench/event.py --stages enrich,describe          # no LLM: rules score the event
    python bench/event.py --llm-scale tiny                  # a scaled-down GGUF (seconds)
    python bench/event.py --models tiny --events 1          # smoke run (tests: CI-sized)

Bounded: at most MAX_EVENTS events and --max-minutes of events (checked between events); the
server is terminated at the end.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hsi_client import (  # noqa: E402
    AnalysisResult,
    AnalyzedObject,
    AnalyzeOptions,
    BoundingBox,
    CameraInfo,
    EventContext,
    EventMetadata,
    HsiClient,
    RecentEvent,
    key_frame,
    time_of_day,
)
from hsi_client import client as hsi_client_module  # noqa: E402

from ai_server.config import RUNTIMES  # noqa: E402
from bench import models  # noqa: E402
from bench.harness import (  # noqa: E402
    Server,
    add_server_options,
    cpu_model,
    load_averages,
    running_server,
)
from bench.load import CONST_FILE, SCENE, camera_frames  # noqa: E402

MAX_EVENTS = 50
STAGES = ("enrich", "describe", "llm")


def integration_confidence(path: Path = CONST_FILE) -> float:
    """The integration's default camera threshold (const.py), read without importing HA."""
    for node in ast.parse(path.read_text()).body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "DEFAULT_CONFIDENCE"
            and node.value is not None
        ):
            return float(ast.literal_eval(node.value))
    raise SystemExit(f"{path}: cannot find DEFAULT_CONFIDENCE")


# Models ----------------------------------------------------------------------------------------


def model_paths(args: argparse.Namespace) -> dict[str, Path]:
    from ai_server.models.tiny import make_tiny_models

    cache: Path = args.cache
    paths: dict[str, Path] = {}
    if args.models == "tiny":  # the tiny profile's models and a scaled-down GGUF: a smoke run
        paths = make_tiny_models(cache / "tiny", ["detector", "clip", "florence"])
        if "llm" in args.stages:
            paths["llm"] = models.llm("tiny", cache, args.threads)
        return paths
    paths["detector"] = models.detector(args.detector, cache)
    paths["clip"] = models.clip("vitb32", cache)
    paths["florence"] = models.florence("base", cache)
    if "llm" in args.stages:
        if args.llm_path is not None:
            paths["llm"] = args.llm_path
        else:
            print("random-weight nemotron GGUF (built on first use: minutes at full size)")
            paths["llm"] = models.llm(args.llm_scale, cache, args.threads)
    return paths


# One event -------------------------------------------------------------------------------------


def event_metadata(
    index: int,
    detections: Sequence[Sequence[AnalyzedObject]],
    started: datetime,
    recent: Sequence[RecentEvent],
    stages: Sequence[str],
    *,
    keep: bool = False,
    llm: bool = False,
) -> EventMetadata:
    """What analyzer.metadata() sends; the camera and history differ from event to event, so
    only the system prompt is a shared prefix (as between two real events).

    A random-weight detector's boxes are noise (several random COCO classes per frame), so
    unless `keep` the detections sent are a real event's: a person at the door and a car in
    the drive in every frame (bench/load.py's SCENE); that is what enrichment crops and the
    prompt describes.
    """
    frames = []
    for frame, found in enumerate(detections):
        if not (keep and found):
            found = [
                AnalyzedObject(label, confidence, frame, BoundingBox(*box))
                for label, confidence, box in SCENE
            ]
        frames.append(tuple(found))
    return EventMetadata(
        camera=CameraInfo(
            f"camera.event_{index % 4}", f"Camera {index % 4}", "front door and driveway"
        ),
        started_at=started,
        ended_at=datetime.now(UTC),
        detections=tuple(frames),
        context=EventContext(
            time_of_day=time_of_day(started.astimezone()),
            home_mode="away",
            recent_events=tuple(recent[-5:]),
            zones=("front door", "driveway"),
        ),
        options=AnalyzeOptions(enrich="enrich" in stages, describe="describe" in stages, llm=llm),
    )


async def llm_probe(
    session: aiohttp.ClientSession,
    server: Server,
    api_key: str,
    metadata: EventMetadata,
    result: AnalysisResult,
    frames: int,
    max_tokens: int,
) -> dict[str, Any]:
    """The event's risk prompt (built as the pipeline builds it) to /v1/chat/completions,
    streamed: time to the first token (prefill) and the decoding rate."""
    from ai_server.analysis import risk
    from ai_server.analysis.prompts import EventFacts, build_prompt
    from ai_server.models.llm import _estimate_tokens

    captions = {}
    if result.description:
        captions[key_frame(result.objects, frames)] = result.description
    prompt = build_prompt(
        EventFacts(metadata, result.objects, frames, captions),
        count_tokens=_estimate_tokens,
        context_size=4096,
        answer_tokens=max_tokens,
    )
    body = {
        "messages": prompt.messages,
        "max_tokens": max_tokens,
        "temperature": 0.1,
        "stream": True,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "risk", "schema": risk.RISK_SCHEMA},
        },
    }
    started = time.perf_counter()
    first: float | None = None
    pieces = 0
    usage: dict[str, Any] = {}
    async with session.post(
        f"{server.base_url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=aiohttp.ClientTimeout(total=1800),
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"LLM probe: HTTP {response.status}: {await response.text()}")
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if "error" in chunk:
                raise RuntimeError(f"LLM probe: {chunk['error']}")
            for choice in chunk.get("choices", []):
                if choice.get("delta", {}).get("content"):
                    pieces += 1
                    if first is None:
                        first = time.perf_counter()
            usage = chunk.get("usage") or usage
    ended = time.perf_counter()
    tokens = int(usage.get("completion_tokens", pieces))
    prefill_s = (first or ended) - started
    decode_s = ended - (first or ended)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
    return {
        "prompt_chars": sum(len(m["content"]) for m in prompt.messages),
        "prompt_tokens": usage.get("prompt_tokens"),
        "prompt_tokens_cached": cached,
        "completion_tokens": tokens,
        "prefill_ms": 1000 * prefill_s,
        "decode_ms": 1000 * decode_s,
        "decode_tokens_per_s": (tokens - 1) / decode_s if decode_s > 0 and tokens > 1 else None,
        "total_ms": 1000 * (ended - started),
    }


async def served_by(server: Server) -> dict[str, str]:
    """Who serves each vision model, from /health: `auto` resolves on the server's machine."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.base_url}/health") as response,
    ):
        entries = (await response.json())["models"]
    return {
        name: " ".join(
            [entry["runtime"], *([entry["runtime_device"]] if "runtime_device" in entry else [])]
        )
        for name, entry in entries.items()
        if "runtime" in entry
    }


async def run_events(server: Server, args: argparse.Namespace) -> list[dict[str, Any]]:
    confidence = args.confidence or integration_confidence()
    width, height = (int(v) for v in args.image_size.split("x"))
    recent: list[RecentEvent] = []
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60 * args.max_minutes
    # The integration gives up on /analyze after hsi_client's ANALYZE_TIMEOUT; the bench waits
    # longer so that a slow machine is measured, and flags the events that would have failed.
    integration_limit_ms = 1000 * hsi_client_module.ANALYZE_TIMEOUT
    hsi_client_module.ANALYZE_TIMEOUT = args.analyze_timeout
    async with aiohttp.ClientSession() as session:
        client = HsiClient(server.base_url, session, api_key=args.api_key)
        for index in range(args.warmup + args.events):
            if time.monotonic() > deadline:
                print(f"stopping: --max-minutes {args.max_minutes:g} reached", flush=True)
                break
            images = camera_frames(index, args.frames, (width, height))
            started = datetime.now(UTC)
            t0 = time.perf_counter()
            detections: list[list[AnalyzedObject]] = []
            preliminary_ms = 0.0
            for frame, image in enumerate(images):
                found = await client.detect(image, confidence=confidence, embed=True)
                detections.append([d.in_frame(frame) for d in found.detections])
                if frame == 0:
                    preliminary_ms = 1000 * (time.perf_counter() - t0)
            burst_ms = 1000 * (time.perf_counter() - t0)
            in_analyze = "llm" in args.stages and args.llm_in_analyze
            metadata = event_metadata(
                index,
                detections,
                started,
                recent,
                args.stages,
                keep=args.keep_detections,
                llm=in_analyze,
            )
            t1 = time.perf_counter()
            result = await client.analyze(images, metadata)
            analyze_ms = 1000 * (time.perf_counter() - t1)
            llm = result.models.get("llm", {})
            row: dict[str, Any] = {
                "event": index,
                "warmup": index < args.warmup,
                "preliminary_ms": preliminary_ms,
                "detect_burst_ms": burst_ms,
                "analyze_ms": analyze_ms,
                "full_ms": burst_ms + analyze_ms,
                "over_integration_timeout": analyze_ms > integration_limit_ms,
                "stages_ms": dict(result.timings_ms),
                "llm_status": llm.get("status"),
                "llm_reason": llm.get("reason"),
                "llm_prompt_tokens": llm.get("prompt_tokens"),
                "llm_prompt_tokens_evaluated": llm.get("prompt_tokens_evaluated"),
                "llm_completion_tokens": llm.get("completion_tokens"),
                "risk_source": result.risk.source,
                # /detect?embed=1 embeds every detection with CLIP: its cost grows with these.
                "detections_per_frame": sum(map(len, detections)) / len(detections),
                "objects": len(result.objects),
            }
            if "llm" in args.stages and not in_analyze:
                probe = await llm_probe(
                    session,
                    server,
                    args.api_key,
                    metadata,
                    result,
                    len(images),
                    args.llm_max_tokens,
                )
                row["llm_probe"] = probe
                # The LLM's risk stage takes the place of the rules' (a few ms) in /analyze.
                without_risk = analyze_ms - result.timings_ms.get("risk", 0.0)
                row["full_ms"] = burst_ms + without_risk + probe["total_ms"]
            events.append(row)
            recent.append(
                RecentEvent(started.isoformat(), result.risk.risk_level, result.risk.summary[:200])
            )
            print_event(row)
    return events


# Report ----------------------------------------------------------------------------------------


def print_event(row: dict[str, Any]) -> None:
    stages = ", ".join(f"{k} {v:.0f}" for k, v in row["stages_ms"].items())
    line = (
        f"event {row['event']}{' (warm-up)' if row['warmup'] else ''}: "
        f"preliminary {row['preliminary_ms']:.0f} ms, burst {row['detect_burst_ms']:.0f} ms "
        f"({row['detections_per_frame']:.1f} detections/frame), "
        f"/analyze {row['analyze_ms']:.0f} ms ({stages}; LLM {row['llm_status']}), "
        f"full {row['full_ms']:.0f} ms"
        f"{' (over the integration timeout)' if row['over_integration_timeout'] else ''}"
    )
    if (probe := row.get("llm_probe")) is not None:
        rate = probe["decode_tokens_per_s"]
        line += (
            f"; probe: {probe['prompt_tokens']} prompt tokens ({probe['prompt_tokens_cached']} "
            f"cached), prefill {probe['prefill_ms']:.0f} ms, {probe['completion_tokens']} tokens "
            f"at {rate or float('nan'):.2f}/s"
        )
    print(line, flush=True)


def summarise(events: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """p50 and max (ms) per figure over the timed events."""
    timed = [e for e in events if not e["warmup"]]
    series: dict[str, list[float]] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, int | float):
            series.setdefault(name, []).append(float(value))

    for event in timed:
        add("preliminary alert (/detect?embed=1, frame 1)", event["preliminary_ms"])
        add("detections, whole burst", event["detect_burst_ms"])
        for stage, value in event["stages_ms"].items():
            add(f"/analyze stage: {stage}", value)
        add("/analyze (HTTP)", event["analyze_ms"])
        if (probe := event.get("llm_probe")) is not None:
            add("LLM risk (probe): prefill (time to first token)", probe["prefill_ms"])
            add("LLM risk (probe): decoding", probe["decode_ms"])
            add("LLM risk (probe): total", probe["total_ms"])
        add("full analysis (burst + /analyze + LLM)", event["full_ms"])
    return {
        name: {"p50_ms": statistics.median(values), "max_ms": max(values), "n": len(values)}
        for name, values in series.items()
    }


def print_table(summary: dict[str, dict[str, float]]) -> None:
    width = max((len(name) for name in summary), default=10)
    print(f"\n{'figure':<{width}}  {'p50 ms':>10}  {'max ms':>10}  n")
    for name, row in summary.items():
        print(f"{name:<{width}}  {row['p50_ms']:>10.0f}  {row['max_ms']:>10.0f}  {row['n']:.0f}")


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"`{result['command']}`",
        "",
        f"CPU: {result['cpu_model']} ({result['cores']} cores); load average "
        f"{' '.join(result['load_average_start'])} before, "
        f"{' '.join(result['load_average_end'])} after; {result['wall_s']} s wall.",
        "",
        "| figure | p50 ms | max ms | n |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, row in result["summary"].items():
        lines.append(f"| {name} | {row['p50_ms']:.0f} | {row['max_ms']:.0f} | {row['n']:.0f} |")
    timed = [e for e in result["events"] if not e["warmup"]]
    statuses = sorted({str(e["llm_status"]) for e in timed})
    per_frame = statistics.median([e["detections_per_frame"] for e in timed] or [float("nan")])
    lines += [
        "",
        f"Random-weight detections per frame (each embedded by CLIP for /detect?embed=1): "
        f"{per_frame:.1f}. LLM stage of /analyze: {', '.join(statuses)}; server peak RSS "
        f"{result['server_peak_rss_mb']:.0f} MB. Events whose /analyze took longer than the "
        f"integration waits: {sum(e['over_integration_timeout'] for e in timed)} of {len(timed)}.",
    ]
    probes = [e["llm_probe"] for e in timed if "llm_probe" in e]
    if probes:
        rates = [p["decode_tokens_per_s"] for p in probes if p["decode_tokens_per_s"]]
        lines.append(
            f"LLM probe: {probes[0]['prompt_tokens']} prompt tokens "
            f"({probes[0]['prompt_chars']} characters of chat messages), "
            f"{statistics.median([p['prompt_tokens_cached'] for p in probes]):.0f} from the "
            f"prefix cache (median), {probes[0]['completion_tokens']} answer tokens, "
            f"decoding {statistics.median(rates) if rates else float('nan'):.2f} tokens/s."
        )
    return "\n".join(lines) + "\n"


# Command line ----------------------------------------------------------------------------------


def _stages(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip() and part != "none")
    unknown = set(names) - set(STAGES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown stage(s) {', '.join(sorted(unknown))}")
    return names


def _args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--detector",
        default="r18vd",
        help="r18vd, r50vd (add -separated: same boxes on every runtime) or a folder",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="torch",
        help="detector and CLIP runtime (HSI_RUNTIME for the server)",
    )
    parser.add_argument(
        "--stages",
        type=_stages,
        default=STAGES,
        help="comma list of enrich,describe,llm (or none): the /analyze options",
    )
    parser.add_argument(
        "--captions",
        type=int,
        choices=(0, 1),
        default=1,
        help="captions per event: /analyze captions the key frame (1) or none (0: no describe)",
    )
    parser.add_argument(
        "--caption-tokens",
        type=int,
        default=32,
        help="Florence-2 answer cap (HSI_FLORENCE_MAX_NEW_TOKENS): random weights never stop "
        "early, so this is the caption/OCR length measured",
    )
    parser.add_argument(
        "--llm-max-tokens", type=int, default=200, help="the LLM probe's answer length"
    )
    parser.add_argument(
        "--llm-in-analyze",
        action="store_true",
        help="let /analyze call the LLM itself (for a real GGUF that stops by itself; random "
        "weights run to risk.RISK_MAX_TOKENS) instead of the probe",
    )
    parser.add_argument(
        "--llm-timeout",
        type=float,
        default=1800,
        help="HSI_LLM_TIMEOUT for the server (its default, 60 s, cuts a slow machine's prefill)",
    )
    parser.add_argument(
        "--models",
        choices=("full", "tiny"),
        default="full",
        help="full: real-size random-weight models; tiny: the tiny profile's (a smoke run)",
    )
    parser.add_argument(
        "--llm-scale", choices=models.LLM_SCALES, default="full", help="tiny: a 2-layer GGUF"
    )
    parser.add_argument("--llm-path", type=Path, help="a GGUF file instead of the random one")
    parser.add_argument("--threads", type=int, help="torch and llama.cpp threads (default: all)")
    parser.add_argument("--prefix-cache", choices=("on", "off"), default="on")
    parser.add_argument(
        "--confidence", type=float, help="/detect threshold (default: the integration's)"
    )
    parser.add_argument(
        "--keep-detections",
        action="store_true",
        help="send the random detector's boxes to /analyze instead of a person and a car",
    )
    parser.add_argument("--frames", type=int, default=4, help="frames per event")
    parser.add_argument("--image-size", default="640x480")
    parser.add_argument("--events", type=int, default=3, help="timed events")
    parser.add_argument("--warmup", type=int, default=1, help="untimed events first")
    parser.add_argument("--max-minutes", type=float, default=30, help="stop starting events")
    parser.add_argument(
        "--analyze-timeout", type=float, default=1800, help="seconds the bench waits for /analyze"
    )
    add_server_options(parser)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--markdown", type=Path, help="write the figures as Markdown here")
    args = parser.parse_args(argv)
    if args.captions == 0:
        args.stages = tuple(s for s in args.stages if s != "describe")
    if not 1 <= args.events + args.warmup <= MAX_EVENTS or args.events < 1:
        parser.error(f"events + warm-up must be 1..{MAX_EVENTS}, at least one timed")
    if not 1 <= args.frames <= 16:
        parser.error("frames must be 1..16")
    return args


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = {
        "HSI_API_KEY": args.api_key,  # not on the command line: ps shows that
        "HSI_CACHE_DIR": os.environ.get("HSI_CACHE_DIR", str(args.cache)),
        "HSI_OFFLINE": "true",
        "HF_HUB_OFFLINE": "1",
        "HSI_RUNTIME": args.runtime,
        "HSI_FLORENCE_MAX_NEW_TOKENS": str(args.caption_tokens),
        "HSI_LLM_PREFIX_CACHE": "true" if args.prefix_cache == "on" else "false",
    }
    if args.threads is not None:
        env["HSI_TORCH_THREADS"] = env["HSI_LLM_THREADS"] = str(args.threads)
    env["HSI_LLM_TIMEOUT"] = f"{args.llm_timeout:g}"
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = _args(argv)
    args.api_key = secrets.token_urlsafe(24)
    args.cache.mkdir(parents=True, exist_ok=True)
    paths = model_paths(args)
    server_args = ["--profile", "default", "--device", args.device, "--classes", "all"]
    server_args += ["--detector-path", str(paths["detector"])]
    server_args += ["--clip-path", str(paths["clip"]), "--florence-path", str(paths["florence"])]
    if "llm" in paths:
        server_args += ["--llm-path", str(paths["llm"])]
    preload = ["detector", "clip", "florence", *(["llm"] if "llm" in paths else [])]
    server_args += ["--preload", ",".join(preload), *args.extra]
    started = datetime.now(UTC)
    load_start = load_averages()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); load average {' '.join(load_start)}")
    events: list[dict[str, Any]] = []
    served: dict[str, str] = {}
    peak_rss_mb = float("nan")
    servers: list[Server] = []
    try:
        with running_server(*server_args, env=server_env(args)) as server:
            servers.append(server)
            served = asyncio.run(served_by(server))
            print(f"served by: {', '.join(f'{k} {v}' for k, v in served.items())}", flush=True)
            events = asyncio.run(run_events(server, args))
            peak_rss_mb = server.peak_rss_mb()
    except subprocess.TimeoutExpired as err:
        # Not stopped 60 s after SIGTERM (seen while a timed-out LLM generation was still
        # evaluating its prompt): killed, so that the bench stays bounded.
        print("the server did not stop within 60 s of SIGTERM: killed", flush=True)
        for server in servers:
            server.process.kill()
            server.process.wait()
        if err.__context__ is not None:  # the failure that ended the run comes first
            raise err.__context__ from None
    summary = summarise(events)
    print_table(summary)
    load_end = load_averages()
    print(f"load average {' '.join(load_start)} before, {' '.join(load_end)} after")
    result = {
        "command": " ".join(["bench/event.py", *(argv if argv is not None else sys.argv[1:])]),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "started": started.isoformat(timespec="seconds"),
        "wall_s": round((datetime.now(UTC) - started) / timedelta(seconds=1), 1),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "server_args": server_args,
        "runtime": args.runtime,
        "served_by": served,
        "stages": list(args.stages),
        "models": {name: str(path) for name, path in paths.items()},
        "server_peak_rss_mb": round(peak_rss_mb, 1),
        "summary": summary,
        "events": events,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
