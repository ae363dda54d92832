"""Load and soak: N simulated cameras against a real server process, through `hsi_client`.

Starts `python -m ai_server serve` on 127.0.0.1 (a free port, an API key, the tiny profile unless
told otherwise) and drives it the way the Home Assistant integration does
(custom_components/hsi/analyzer.py and watcher.py):

- each camera takes a frame every 1/fps seconds and sends it to `/detect?embed=1` at the camera's
  confidence; like the watcher, a camera whose previous frame is still at the server skips the
  frame (counted as skipped); a 503/429 with Retry-After is asked again after it (at most
  DETECT_ATTEMPTS tries, waits capped at MAX_RETRY_AFTER), any other failure loses the frame;
- every `--event-every` seconds a camera closes its batch: up to MAX_KEY_FRAMES key frames
  (hsi_client.key_frames) and the metadata the integration sends (camera, times, detections per
  key frame, time of day, home mode, zones, recent events) go to `/analyze` (ANALYZE_ATTEMPTS
  tries, ANALYZE_RETRY_DELAY doubling, as the analyser does);
- all cameras share MAX_CONCURRENT_DETECTS /detect and MAX_CONCURRENT_ANALYSES /analyze calls
  in flight (two budgets), as one config entry does (`--in-flight N`: one budget of N shared by
  both, as the integration had before; `--in-flight 0`: no client-side limit, as many Home
  Assistant instances would be).

The retry and concurrency constants are read from custom_components/hsi/const.py, so the
simulation follows the integration when those change.

Reported: throughput; p50/p95/p99 latency per call kind (`detect`, `analyze`: one HTTP request;
`frame`: capture to answer, including waits for a slot and Retry-After; `event`: batch closed to
analysis); the back-pressure rate (503/429 with Retry-After: the server shedding load on purpose,
counted apart from errors); every other error by kind; the server's RSS and CPU over time (from
/proc); queue depth, rejections and mean batch size per model (from /metrics).

    python bench/load.py                                   # 4 cameras x 1 fps, 60 s, tiny
    python bench/load.py --cameras 8 --fps 2 --duration 120 --json /tmp/load.json
    python bench/load.py --soak 600                        # RSS trend (MB/min) after warm-up
    python bench/load.py --knee                            # more cameras until p95 > 2 s
    python bench/load.py --knee --detector r18vd           # real-size random-weight RT-DETRv2

Loopback only, bounded: at most MAX_CAMERAS cameras, MAX_DURATION_S per run, MAX_KNEE_STEPS knee
steps; after each run in-flight calls get DRAIN_S seconds, then the run stops and the server is
terminated.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import io
import ipaddress
import json
import math
import os
import random
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image, ImageDraw
from yarl import URL

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hsi_client import (  # noqa: E402
    AnalyzedObject,
    AnalyzeOptions,
    BoundingBox,
    CameraInfo,
    DetectResult,
    EventContext,
    EventMetadata,
    HsiClient,
    HsiConnectionError,
    HsiError,
    HsiNotSupportedError,
    HsiResponseError,
    RecentEvent,
    key_frames,
    time_of_day,
)

from bench import models  # noqa: E402
from bench.harness import (  # noqa: E402
    Server,
    add_server_options,
    cpu_model,
    load_averages,
    percentile,
    running_server,
)

MAX_CAMERAS = 256
MAX_DURATION_S = 6 * 3600
MAX_KNEE_STEPS = 16
DRAIN_S = 60.0  # after a run's window: how long in-flight calls may still finish
KNEE_STEPS = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
CONST_FILE = ROOT / "custom_components" / "hsi" / "const.py"
INTEGRATION_CONSTANTS = (
    "MAX_CONCURRENT_DETECTS",
    "MAX_CONCURRENT_ANALYSES",
    "DETECT_ATTEMPTS",
    "MAX_RETRY_AFTER",
    "ANALYZE_ATTEMPTS",
    "ANALYZE_RETRY_DELAY",
    "MAX_KEY_FRAMES",
    "DEFAULT_CONFIDENCE",
)
# Random-weight detectors rarely pass a real threshold: when a frame has no detection, its
# metadata carries this scene (a person at the door, a car in the drive), so that /analyze
# crops, enriches and describes objects as it does for a real event.
SCENE = (
    ("person", 0.91, (250.0, 120.0, 90.0, 260.0)),
    ("car", 0.84, (20.0, 260.0, 220.0, 140.0)),
)


def integration_constants(path: Path = CONST_FILE) -> dict[str, float]:
    """The integration's retry, concurrency and key-frame constants, read without importing
    Home Assistant (`NAME: Final = value` lines of const.py)."""
    found: dict[str, float] = {}
    for node in ast.parse(path.read_text()).body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id in INTEGRATION_CONSTANTS
            and node.value is not None
        ):
            found[node.target.id] = float(ast.literal_eval(node.value))
    missing = set(INTEGRATION_CONSTANTS) - set(found)
    if missing:
        raise SystemExit(f"{path}: cannot find {', '.join(sorted(missing))}")
    return found


# Frames ----------------------------------------------------------------------------------------


def camera_frames(camera: int, count: int, size: tuple[int, int]) -> list[bytes]:
    """`count` camera-like JPEG frames: a gradient, a few shapes that move a little, noise."""
    width, height = size
    rng = random.Random(camera)
    frames = []
    for index in range(count):
        image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
        draw = ImageDraw.Draw(image)
        for shape in range(5):
            x = (rng.randrange(width - 120) + 12 * index) % max(1, width - 120)
            y = rng.randrange(max(1, height - 160))
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            draw.rectangle((x, y, x + 60 + 12 * shape, y + 140), fill=colour)
        noise = Image.effect_noise((width, height), 12).convert("RGB")
        image = Image.blend(image, noise, 0.15)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        frames.append(buffer.getvalue())
    return frames


# Statistics ------------------------------------------------------------------------------------


@dataclass
class CallStats:
    """One call kind: HTTP requests (or frames/events), their latencies and failures."""

    latencies_ms: list[float] = field(default_factory=list)
    attempts: int = 0
    ok: int = 0
    back_pressure: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        values = self.latencies_ms
        return {
            "count": len(values),
            "attempts": self.attempts,
            "ok": self.ok,
            "back_pressure": self.back_pressure,
            "errors": sum(self.errors.values()),
            "p50_ms": _round(percentile(values, 50)),
            "p95_ms": _round(percentile(values, 95)),
            "p99_ms": _round(percentile(values, 99)),
            "max_ms": _round(max(values)) if values else None,
            "mean_ms": _round(statistics.fmean(values)) if values else None,
        }


def _round(value: float, digits: int = 1) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def classify(err: HsiError) -> str | None:
    """None for deliberate back-pressure (503/429 with Retry-After), else the error's kind."""
    if isinstance(err, HsiResponseError):
        if err.transient and err.retry_after is not None:
            return None
        return f"HTTP {err.status} {err.code}"
    if isinstance(err, HsiConnectionError):
        return "connection or timeout"
    return type(err).__name__


@dataclass
class CameraStats:
    frames_due: int = 0
    frames_answered: int = 0
    frames_skipped: int = 0
    frames_lost: int = 0
    detections: int = 0
    events: int = 0
    events_analyzed: int = 0
    events_failed: int = 0
    events_empty: int = 0


@dataclass
class Run:
    """Shared state of one load run."""

    client: HsiClient
    args: argparse.Namespace
    constants: dict[str, float]
    limits: dict[str, asyncio.Semaphore] | None  # per call kind (one object when shared)
    calls: dict[str, CallStats] = field(
        default_factory=lambda: {kind: CallStats() for kind in ("detect", "analyze")}
    )
    frames: CallStats = field(default_factory=CallStats)
    events: CallStats = field(default_factory=CallStats)
    error_examples: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @contextlib.asynccontextmanager
    async def slot(self, kind: str) -> AsyncIterator[None]:
        if self.limits is None:
            yield
        else:
            async with self.limits[kind]:
                yield

    def spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, until: float, which: Any) -> int:
        """Wait until the chosen tasks end or `until` (loop time); cancel the rest and return
        how many were cancelled."""
        tasks = {task for task in self.tasks if which(task)}
        if not tasks:
            return 0
        timeout = max(0.0, until - asyncio.get_running_loop().time())
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)

    async def call(self, kind: str, coro_factory: Any) -> tuple[Any, HsiError | None]:
        """One HTTP request in a slot; (result, None) or (None, error), recorded under `kind`."""
        stats = self.calls[kind]
        async with self.slot(kind):
            stats.attempts += 1
            started = time.perf_counter()
            try:
                result = await coro_factory()
            except HsiError as err:
                kind_of = classify(err)
                if kind_of is None:
                    stats.back_pressure += 1
                else:
                    stats.errors[kind_of] += 1
                    if len(self.error_examples) < 10:
                        self.error_examples.append(f"{kind}: {err}")
                return None, err
            except Exception as err:  # a bug on either side: an error, never silent
                stats.errors[f"unexpected {type(err).__name__}"] += 1
                if len(self.error_examples) < 10:
                    self.error_examples.append(f"{kind}: {err!r}")
                return None, HsiError(repr(err))
        stats.ok += 1
        stats.latencies_ms.append(1000 * (time.perf_counter() - started))
        return result, None


# Cameras ---------------------------------------------------------------------------------------


@dataclass
class Camera:
    index: int
    images: list[bytes]
    run: Run
    stats: CameraStats = field(default_factory=CameraStats)
    busy: bool = False
    batch: list[tuple[bytes, DetectResult]] = field(default_factory=list)
    batch_started: datetime | None = None
    recent: list[RecentEvent] = field(default_factory=list)

    @property
    def camera_id(self) -> str:
        return f"camera.load_{self.index}"

    async def drive(self, start: float, until: float) -> None:
        """Frames at the camera's rate until `until` (event-loop time), events on schedule."""
        loop = asyncio.get_running_loop()
        args = self.run.args
        period = 1.0 / args.fps
        rng = random.Random(self.index)
        due = start + rng.uniform(0, period)  # cameras are not in lockstep
        # Cameras are at random points of their event cycle, as in a steady state.
        next_event = start + max(period, rng.uniform(0, args.event_every))
        frame = 0
        while due < until:
            await asyncio.sleep(max(0.0, due - loop.time()))
            self.stats.frames_due += 1
            if self.busy:
                self.stats.frames_skipped += 1  # the watcher starts no burst while one runs
            else:
                self.busy = True
                self.run.spawn(self.detect(self.images[frame % len(self.images)], due), "detect")
            frame += 1
            if due >= next_event:
                self.close_batch()
                next_event += args.event_every
            due += period

    async def detect(self, image: bytes, due: float) -> None:
        """One frame: /detect?embed=1 at the camera's confidence, Retry-After honoured."""
        run, constants = self.run, self.run.constants
        loop = asyncio.get_running_loop()
        attempts = int(constants["DETECT_ATTEMPTS"])
        try:
            for attempt in range(attempts):
                result, err = await run.call(
                    "detect",
                    lambda: run.client.detect(image, confidence=run.args.confidence, embed=True),
                )
                if err is None:
                    self.stats.frames_answered += 1
                    self.stats.detections += len(result.detections)
                    run.frames.ok += 1
                    run.frames.latencies_ms.append(1000 * (loop.time() - due))
                    if not self.batch:
                        self.batch_started = datetime.now(UTC)
                    self.batch.append((image, result))
                    return
                retry = isinstance(err, HsiResponseError) and err.transient
                if not retry or attempt + 1 == attempts:
                    break
                assert isinstance(err, HsiResponseError)
                await asyncio.sleep(min(err.retry_after or 1.0, constants["MAX_RETRY_AFTER"]))
            self.stats.frames_lost += 1
            run.frames.errors["frame lost"] += 1
        finally:
            self.busy = False

    def close_batch(self) -> None:
        """The batch window is over: its key frames go to /analyze (in a task of its own)."""
        batch, started = self.batch, self.batch_started
        self.batch, self.batch_started = [], None
        self.stats.events += 1
        if not batch or started is None:
            self.stats.events_empty += 1  # no frame answered: the integration opens no event
            return
        self.run.spawn(self.analyze(batch, started), "analyze")

    def metadata(
        self, frames: Sequence[tuple[bytes, DetectResult]], started: datetime
    ) -> EventMetadata:
        """What analyzer.metadata() sends: camera, times, detections per key frame, context."""
        detections = []
        for index, (_, result) in enumerate(frames):
            found = tuple(d.in_frame(index) for d in result.detections)
            if not found:
                found = tuple(
                    AnalyzedObject(label, confidence, index, BoundingBox(*box))
                    for label, confidence, box in SCENE
                )
            detections.append(found)
        return EventMetadata(
            camera=CameraInfo(self.camera_id, f"Load {self.index}", "front door and driveway"),
            started_at=started,
            ended_at=datetime.now(UTC),
            detections=tuple(detections),
            context=EventContext(
                time_of_day=time_of_day(started.astimezone()),
                home_mode="away",
                recent_events=tuple(self.recent[-5:]),
                zones=("front door", "driveway"),
            ),
            options=AnalyzeOptions(enrich=True, describe=True, llm=True),
        )

    async def analyze(self, batch: list[tuple[bytes, DetectResult]], started: datetime) -> None:
        """One event: key frames + metadata to /analyze, retried as the analyser does."""
        run, constants = self.run, self.run.constants
        objects = [
            d.in_frame(index) for index, (_, result) in enumerate(batch) for d in result.detections
        ]
        chosen = key_frames(objects, len(batch), int(constants["MAX_KEY_FRAMES"]))
        frames = [batch[i] for i in chosen] or batch[-1:]
        metadata = self.metadata(frames, started)
        images = [image for image, _ in frames]
        closed = time.perf_counter()
        delay = constants["ANALYZE_RETRY_DELAY"]
        attempts = int(constants["ANALYZE_ATTEMPTS"])
        for attempt in range(attempts):
            result, err = await run.call("analyze", lambda: run.client.analyze(images, metadata))
            if err is None:
                self.stats.events_analyzed += 1
                run.events.ok += 1
                run.events.latencies_ms.append(1000 * (time.perf_counter() - closed))
                risk = result.risk
                self.recent.append(
                    RecentEvent(started.isoformat(), risk.risk_level, risk.summary[:200])
                )
                del self.recent[:-5]
                return
            if isinstance(err, HsiNotSupportedError) or (
                isinstance(err, HsiResponseError) and err.status < 500 and not err.transient
            ):
                break  # the analyser gives up at once: the same request would fail again
            if attempt + 1 < attempts:
                await asyncio.sleep(delay)
                delay *= 2
        self.stats.events_failed += 1  # the integration would fall back to its rules
        run.events.errors["event fell back to rules"] += 1


# Server observation ----------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (llama.cpp or loaders may fork)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def rss_mb(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


def cpu_seconds(pids: Sequence[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def parse_metrics(text: str) -> dict[tuple[str, str], float]:
    """Prometheus text → {(metric name, model label): value} for the series this tool reads."""
    wanted = (
        "hsi_queue_depth",
        "hsi_queue_rejected_total",
        "hsi_batch_size_sum",
        "hsi_batch_size_count",
        "hsi_inference_latency_seconds_sum",
        "hsi_inference_latency_seconds_count",
    )
    values: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        if name not in wanted:
            continue
        labels, _, value = rest.rpartition("}")
        model = ""
        for part in labels.split(","):
            key, _, raw = part.partition("=")
            if key.strip() == "model":
                model = raw.strip().strip('"')
        with contextlib.suppress(ValueError):
            values[(name, model)] = float(value.split()[0])
    return values


@dataclass
class Observer:
    """Samples the server process (RSS, CPU), the machine (CPU, load) and /metrics."""

    server: Server
    session: aiohttp.ClientSession
    headers: dict[str, str]
    interval_s: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    metrics_first: dict[tuple[str, str], float] = field(default_factory=dict)
    metrics_last: dict[tuple[str, str], float] = field(default_factory=dict)
    metrics_errors: int = 0

    async def metrics(self) -> dict[tuple[str, str], float]:
        try:
            async with self.session.get(
                f"{self.server.base_url}/metrics",
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                if response.status != 200:
                    raise aiohttp.ClientResponseError(
                        response.request_info, (), status=response.status
                    )
                return parse_metrics(await response.text())
        except (aiohttp.ClientError, TimeoutError):
            self.metrics_errors += 1
            return {}

    async def watch(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        pid = self.server.process.pid
        cpu_before, busy_before = cpu_seconds(process_tree(pid)), system_cpu()
        client_before = sum(os.times()[:2])
        self.metrics_first = await self.metrics()
        self.metrics_last = dict(self.metrics_first)
        last = start
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
            now = loop.time()
            pids = process_tree(pid)
            cpu_now, busy_now = cpu_seconds(pids), system_cpu()
            client_now = sum(os.times()[:2])
            elapsed = max(1e-6, now - last)
            metrics = await self.metrics()
            if metrics:
                self.metrics_last = metrics
            total = max(1.0, busy_now[1] - busy_before[1])
            self.samples.append(
                {
                    "t_s": round(now - start, 2),
                    "rss_mb": round(rss_mb(pids), 1),
                    "server_cpu_cores": round((cpu_now - cpu_before) / elapsed, 3),
                    "client_cpu_cores": round((client_now - client_before) / elapsed, 3),
                    "machine_busy": round((busy_now[0] - busy_before[0]) / total, 3),
                    "load1": load_average(),
                    "queue_depth": {
                        model: value
                        for (name, model), value in metrics.items()
                        if name == "hsi_queue_depth"
                    },
                }
            )
            cpu_before, busy_before, client_before, last = cpu_now, busy_now, client_now, now

    def delta(self, name: str, model: str) -> float:
        return self.metrics_last.get((name, model), 0.0) - self.metrics_first.get(
            (name, model), 0.0
        )


def slope_per_min(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 3:
        return None
    xs = [t / 60 for t, _ in points]
    ys = [v for _, v in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def server_figures(observer: Observer, cores: int, window_s: float) -> dict[str, Any]:
    """CPU, load and queue depth over the load window (not the drain after it); batches and
    model time from /metrics over the whole run."""
    samples = [s for s in observer.samples if s["t_s"] <= window_s + 0.5] or observer.samples
    models = sorted({model for name, model in observer.metrics_last if name == "hsi_queue_depth"})
    queue: dict[str, dict[str, float | None]] = {}
    for model in models:
        depths = [s["queue_depth"].get(model, 0.0) for s in samples if s["queue_depth"]]
        batches = observer.delta("hsi_batch_size_count", model)
        queue[model] = {
            "queue_depth_max": max(depths, default=0.0),
            "queue_depth_mean": round(statistics.fmean(depths), 2) if depths else 0.0,
            "rejected": observer.delta("hsi_queue_rejected_total", model),
            "batches": batches,
            "mean_batch": round(observer.delta("hsi_batch_size_sum", model) / batches, 2)
            if batches
            else None,
            "mean_inference_ms": round(
                1000 * observer.delta("hsi_inference_latency_seconds_sum", model) / batches, 1
            )
            if batches
            else None,
        }

    def mean(key: str) -> float | None:
        values = [float(s[key]) for s in samples]
        return round(statistics.fmean(values), 3) if values else None

    return {
        "cores": cores,
        "server_cpu_cores_mean": mean("server_cpu_cores"),
        "client_cpu_cores_mean": mean("client_cpu_cores"),
        "machine_busy_mean": mean("machine_busy"),
        "load1_mean": mean("load1"),
        "load1_max": max((float(s["load1"]) for s in samples), default=None),
        "models": queue,
        "metrics_scrape_errors": observer.metrics_errors,
    }


def limits(report: dict[str, Any]) -> list[str]:
    """What held throughput back in this run, from the figures (strongest first)."""
    server = report["server"]
    cores = server["cores"]
    found: list[str] = []
    used = server["server_cpu_cores_mean"] or 0.0
    busy = server["machine_busy_mean"] or 0.0
    if used >= 0.85 * cores:
        found.append(f"CPU saturation: the server used {used:.2f} of {cores} cores")
    elif busy >= 0.9:
        found.append(
            f"CPU saturation of the machine ({100 * busy:.0f} % busy): the server used "
            f"{used:.2f} cores, the load generator {server['client_cpu_cores_mean'] or 0:.2f}, "
            "other processes the rest"
        )
    detector = server["models"].get("detector") or {}
    if detector.get("rejected"):
        found.append(f"detector queue full: {detector['rejected']:.0f} requests refused (503)")
    if (detector.get("queue_depth_mean") or 0) >= 0.5:
        found.append(
            f"requests wait in the detector queue (mean depth {detector['queue_depth_mean']}, "
            f"max {detector['queue_depth_max']:.0f}); the batcher runs batches of "
            f"{detector.get('mean_batch')} image(s) on average, "
            f"{detector.get('mean_inference_ms')} ms each"
        )
    frame, detect = report["latency_ms"]["frame"], report["latency_ms"]["detect"]
    if frame["p95_ms"] and detect["p95_ms"] and frame["p95_ms"] > 2 * detect["p95_ms"]:
        in_flight = report["config"]["in_flight"]
        if isinstance(in_flight, int):
            why = (
                f"for one of the {in_flight} calls in flight (one budget shared with /analyze, "
                "whose calls hold slots for seconds)"
            )
        elif in_flight == "unlimited":
            why = "out Retry-After before asking again"
        else:
            why = f"for a /detect slot ({in_flight} calls in flight)"
        found.append(
            f"frames wait on the client side {why}: frame p95 {frame['p95_ms']:.0f} ms vs "
            f"request p95 {detect['p95_ms']:.0f} ms"
        )
    analyze = server["models"]
    heavy = [
        name
        for name in ("llm", "florence", "clip")
        if (analyze.get(name) or {}).get("mean_inference_ms")
    ]
    if heavy and used >= 0.85 * cores:
        found.append(
            "/analyze shares the cores: "
            + ", ".join(f"{n} {analyze[n]['mean_inference_ms']} ms per batch" for n in heavy)
        )
    return found or ["nothing saturated"]


# One run ---------------------------------------------------------------------------------------


async def warm_up(client: HsiClient, camera: Camera, confidence: float, key: int) -> None:
    """Load every model the run uses and touch the largest event it sends (untimed): one
    /detect per distinct frame, one /analyze with as many key frames as an event carries."""
    frames = []
    for image in camera.images:
        frames.append((image, await client.detect(image, confidence=confidence, embed=True)))
    frames = (frames * key)[:key]
    await client.analyze([i for i, _ in frames], camera.metadata(frames, datetime.now(UTC)))


async def load_run(
    server: Server, args: argparse.Namespace, cameras_count: int, duration_s: float
) -> dict[str, Any]:
    """`cameras_count` cameras for `duration_s` seconds against a running server; the report."""
    constants = integration_constants()
    in_flight: int | str
    limits: dict[str, asyncio.Semaphore] | None
    if args.in_flight is None:  # the integration's two budgets
        detects = int(constants["MAX_CONCURRENT_DETECTS"])
        analyses = int(constants["MAX_CONCURRENT_ANALYSES"])
        in_flight = f"{detects} /detect + {analyses} /analyze"
        limits = {"detect": asyncio.Semaphore(detects), "analyze": asyncio.Semaphore(analyses)}
    elif args.in_flight > 0:  # one budget shared by both
        in_flight, shared = args.in_flight, asyncio.Semaphore(args.in_flight)
        limits = {"detect": shared, "analyze": shared}
    else:
        in_flight, limits = 0, None
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = HsiClient(server.base_url, session, api_key=args.api_key)
        run = Run(client, args, constants, limits)
        size = tuple(int(v) for v in args.image_size.split("x"))
        cameras = [
            Camera(i, camera_frames(i, args.frames_per_camera, (size[0], size[1])), run)
            for i in range(cameras_count)
        ]
        await warm_up(client, cameras[0], args.confidence, int(constants["MAX_KEY_FRAMES"]))
        observer = Observer(
            server, session, {"Authorization": f"Bearer {args.api_key}"}, args.sample_s
        )
        stop = asyncio.Event()
        watcher = asyncio.create_task(observer.watch(stop))
        loop = asyncio.get_running_loop()
        load_before = load_average()
        start = loop.time() + 0.2
        until = start + duration_s
        await asyncio.gather(*(camera.drive(start, until) for camera in cameras))
        drain_until = loop.time() + DRAIN_S
        unfinished = await run.drain(drain_until, lambda task: task.get_name() == "detect")
        for camera in cameras:
            camera.close_batch()  # the last partial batch is an event too
        unfinished += await run.drain(drain_until, lambda task: True)
        elapsed = loop.time() - start
        stop.set()
        await watcher
    report = build_report(
        args, cameras_count, duration_s, elapsed, in_flight, run, cameras, observer
    )
    report["machine"]["load1_before"] = load_before
    report["unfinished_at_end"] = unfinished
    if unfinished:
        report["errors"]["by_kind"]["unfinished after drain"] = unfinished
        report["errors"]["count"] += unfinished
    return report


def build_report(
    args: argparse.Namespace,
    cameras_count: int,
    duration_s: float,
    elapsed: float,
    in_flight: int | str,
    run: Run,
    cameras: Sequence[Camera],
    observer: Observer,
) -> dict[str, Any]:
    totals = CameraStats()
    for camera in cameras:
        for name in vars(totals):
            setattr(totals, name, getattr(totals, name) + getattr(camera.stats, name))
    errors: Counter[str] = Counter()
    for kind, stats in run.calls.items():
        for name, count in stats.errors.items():
            errors[f"{kind}: {name}"] += count
    attempts = sum(s.attempts for s in run.calls.values())
    back_pressure = sum(s.back_pressure for s in run.calls.values())
    warmup_s = min(args.warmup_s, 0.5 * elapsed)
    points = [(s["t_s"], s["rss_mb"]) for s in observer.samples if s["t_s"] >= warmup_s]
    slope = slope_per_min(points)
    rss = [s["rss_mb"] for s in observer.samples]
    report: dict[str, Any] = {
        "config": {
            "cameras": cameras_count,
            "fps": args.fps,
            "duration_s": duration_s,
            "event_every_s": args.event_every,
            "in_flight": in_flight or "unlimited",
            "confidence": args.confidence,
            "image_size": args.image_size,
            "profile": args.profile,
            "detector": args.detector,
            "server_args": args.server_args,
        },
        "machine": {"cpu_model": cpu_model(), "cores": os.cpu_count()},
        "elapsed_s": round(elapsed, 1),
        "throughput": {
            "frames_offered_per_s": round(cameras_count * args.fps, 2),
            # Per second of the load window (answers that came while draining included).
            "frames_answered_per_s": round(totals.frames_answered / duration_s, 2),
            "requests_per_s": round(attempts / duration_s, 2),
            "events_analyzed_per_s": round(totals.events_analyzed / duration_s, 3),
            **{k: v for k, v in vars(totals).items()},
            "detections_per_frame": round(totals.detections / max(1, totals.frames_answered), 2),
        },
        "latency_ms": {
            "detect": run.calls["detect"].summary(),
            "analyze": run.calls["analyze"].summary(),
            "frame": run.frames.summary(),
            "event": run.events.summary(),
        },
        "back_pressure": {
            "count": back_pressure,
            "rate": round(back_pressure / attempts, 4) if attempts else 0.0,
            "by_call": {kind: s.back_pressure for kind, s in run.calls.items()},
        },
        "errors": {
            "count": sum(errors.values()),
            "by_kind": dict(errors),
            "frames_lost": totals.frames_lost,
            "events_fell_back": totals.events_failed,
            "examples": run.error_examples,
        },
        "cameras": [
            {"id": c.camera_id, **{k: v for k, v in vars(c.stats).items()}} for c in cameras
        ],
        "rss": {
            "start_mb": rss[0] if rss else None,
            "end_mb": rss[-1] if rss else None,
            "peak_mb": max(rss, default=None),
            "warmup_s": round(warmup_s, 1),
            "slope_mb_per_min": None if slope is None else round(slope, 3),
            "samples": [[s["t_s"], s["rss_mb"]] for s in observer.samples],
        },
        "server": server_figures(observer, os.cpu_count() or 1, duration_s),
        "timeline": observer.samples,
    }
    report["limits"] = limits(report)
    return report


# Modes -----------------------------------------------------------------------------------------


def print_run(report: dict[str, Any], title: str) -> None:
    t, lat, srv = report["throughput"], report["latency_ms"], report["server"]
    print(f"== {title}", flush=True)
    print(
        f"   frames {t['frames_answered']}/{t['frames_due']} answered "
        f"({t['frames_answered_per_s']}/s of {t['frames_offered_per_s']}/s offered), "
        f"{t['frames_skipped']} skipped, {t['frames_lost']} lost; events "
        f"{t['events_analyzed']}/{t['events']} analysed; detections/frame "
        f"{t['detections_per_frame']}"
    )
    for kind in ("detect", "frame", "analyze", "event"):
        s = lat[kind]
        print(
            f"   {kind:<8} n={s['count']:<5} p50 {s['p50_ms']} ms  p95 {s['p95_ms']} ms  "
            f"p99 {s['p99_ms']} ms  max {s['max_ms']} ms"
        )
    print(
        f"   back-pressure {report['back_pressure']['count']} "
        f"({100 * report['back_pressure']['rate']:.1f} % of requests); errors "
        f"{report['errors']['count']} {report['errors']['by_kind'] or ''}"
    )
    rss = report["rss"]
    print(
        f"   server RSS {rss['start_mb']} -> {rss['end_mb']} MB (peak {rss['peak_mb']}), "
        f"slope after {rss['warmup_s']} s: {rss['slope_mb_per_min']} MB/min; server CPU "
        f"{srv['server_cpu_cores_mean']} cores, machine busy {srv['machine_busy_mean']}, "
        f"load {srv['load1_mean']}"
    )
    print(f"   limits: {'; '.join(report['limits'])}", flush=True)


def knee_steps(args: argparse.Namespace) -> list[int]:
    steps = [int(v) for v in args.knee_steps.split(",") if v] if args.knee_steps else KNEE_STEPS
    return [n for n in steps if n <= args.max_cameras][:MAX_KNEE_STEPS]


def knee(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Step the camera count up until p95 of /detect (capture to answer) exceeds the bound."""
    bound_ms = 1000 * args.knee_p95_s
    rows: list[dict[str, Any]] = []
    over: dict[str, Any] | None = None
    steps = knee_steps(args)
    tried: set[int] = set()
    index = refined = 0
    while index < len(steps) and len(tried) < MAX_KNEE_STEPS:
        cameras = steps[index]
        tried.add(cameras)
        report = asyncio.run(load_run(server, args, cameras, args.step_s))
        print_run(report, f"knee step: {cameras} cameras x {args.fps} fps")
        p95 = report["latency_ms"]["frame"]["p95_ms"]
        row = {
            "cameras": cameras,
            "frame_p95_ms": p95,
            "frame_p50_ms": report["latency_ms"]["frame"]["p50_ms"],
            "detect_p95_ms": report["latency_ms"]["detect"]["p95_ms"],
            "analyze_p95_ms": report["latency_ms"]["analyze"]["p95_ms"],
            "frames_answered_per_s": report["throughput"]["frames_answered_per_s"],
            "frames_offered_per_s": report["throughput"]["frames_offered_per_s"],
            "skipped": report["throughput"]["frames_skipped"],
            "back_pressure": report["back_pressure"]["count"],
            "errors": report["errors"]["count"],
            "server_cpu_cores": report["server"]["server_cpu_cores_mean"],
            "machine_busy": report["server"]["machine_busy_mean"],
            "load1_mean": report["server"]["load1_mean"],
            "detector": report["server"]["models"].get("detector"),
            "limits": report["limits"],
        }
        rows.append(row)
        if p95 is None or p95 > bound_ms:
            over = row
            good = max(
                (r["cameras"] for r in rows if r is not row and _under(r, bound_ms)), default=0
            )
            middle = (good + cameras) // 2
            # One refinement step between the last count under the bound and this one.
            if refined < args.refine and good and middle not in tried and good < middle < cameras:
                refined += 1
                steps = [*steps[:index], middle]
                index = len(steps) - 1
                over = None
                continue
            break
        index += 1
    under = [r for r in rows if _under(r, bound_ms)]
    held = max(under, key=lambda r: r["cameras"]) if under else None
    over = over or min(
        (r for r in rows if not _under(r, bound_ms)), key=lambda r: r["cameras"], default=None
    )
    return {
        "bound_p95_ms": bound_ms,
        "fps": args.fps,
        "held_cameras": held["cameras"] if held else 0,
        "held": held,
        "first_over": over,
        "limits": over["limits"] if over else ["bound not reached within the steps"],
        "steps": rows,
    }


def _under(row: dict[str, Any], bound_ms: float) -> bool:
    return row["frame_p95_ms"] is not None and row["frame_p95_ms"] <= bound_ms


def soak_verdict(report: dict[str, Any], max_slope: float) -> dict[str, Any]:
    slope = report["rss"]["slope_mb_per_min"]
    measured_min = (report["elapsed_s"] - report["rss"]["warmup_s"]) / 60
    return {
        "slope_mb_per_min": slope,
        "growth_over_window_mb": None if slope is None else round(slope * measured_min, 1),
        "max_slope_mb_per_min": max_slope,
        "no_growth_trend": slope is not None and slope <= max_slope,
        "errors": report["errors"]["count"],
        "back_pressure": report["back_pressure"]["count"],
        "passed": slope is not None and slope <= max_slope and report["errors"]["count"] == 0,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def markdown(result: dict[str, Any]) -> str:
    """The figures as Markdown (docs/reliability.md)."""
    lines = [f"`python bench/{result['command']}`", ""]
    if result["mode"] == "knee":
        k = result["knee"]
        steps = k["steps"]
        loads = [r["load1_mean"] for r in steps if r["load1_mean"] is not None]
    else:
        report = result["report"]
        loads = [report["server"]["load1_mean"]] if report["server"]["load1_mean"] else []
    lines += [
        f"CPU `{result['cpu_model']}`, {os.cpu_count()} cores; {result['started']} to "
        f"{result['ended']}; load average (1, 5, 15 min) {' '.join(result['load_average_start'])}"
        f" before, {' '.join(result['load_average_end'])} after"
        + (f", 1-min mean during the run {statistics.fmean(loads):.2f}" if loads else ""),
        "",
    ]
    if result["mode"] == "knee":
        lines += [
            "| cameras | frames/s offered | answered | frame p50 ms | frame p95 ms "
            "| /detect p95 ms | /analyze p95 ms | skipped | 503 | errors | server CPU cores "
            "| machine busy | load 1 min | detector queue mean/max | detector ms/batch |",
            "| " + " | ".join(["---"] * 15) + " |",
        ]
        for r in sorted(steps, key=lambda r: r["cameras"]):
            det = r["detector"] or {}
            lines.append(
                f"| {r['cameras']} | {r['frames_offered_per_s']} | {r['frames_answered_per_s']} "
                f"| {_ms(r['frame_p50_ms'])} | {_ms(r['frame_p95_ms'])} "
                f"| {_ms(r['detect_p95_ms'])} | {_ms(r['analyze_p95_ms'])} | {r['skipped']} "
                f"| {r['back_pressure']} | {r['errors']} | {r['server_cpu_cores']} "
                f"| {r['machine_busy']} | {r['load1_mean']} "
                f"| {det.get('queue_depth_mean')}/{det.get('queue_depth_max')} "
                f"| {det.get('mean_inference_ms')} |"
            )
        over = k["first_over"]
        lines += [
            "",
            f"Knee: **{k['held_cameras']} cameras x {k['fps']} fps** keep p95 (capture to "
            f"answer) <= {k['bound_p95_ms'] / 1000:g} s; "
            + (f"{over['cameras']} cameras do not. " if over else "")
            + "Limits at the first count over: "
            + "; ".join(k["limits"])
            + ".",
        ]
        return "\n".join(lines) + "\n"
    t, lat = report["throughput"], report["latency_ms"]
    lines += [
        "| call | n | p50 ms | p95 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    names = {
        "detect": "/detect?embed=1 (request)",
        "frame": "frame (capture to answer)",
        "analyze": "/analyze (request)",
        "event": "event (closed to analysed)",
    }
    for kind, name in names.items():
        s = lat[kind]
        lines.append(
            f"| {name} | {s['count']} | {_ms(s['p50_ms'])} | {_ms(s['p95_ms'])} "
            f"| {_ms(s['p99_ms'])} | {_ms(s['max_ms'])} |"
        )
    rss, err = report["rss"], report["errors"]
    lines += [
        "",
        f"Frames {t['frames_answered']}/{t['frames_due']} answered "
        f"({t['frames_answered_per_s']}/s of {t['frames_offered_per_s']}/s offered; "
        f"{t['frames_skipped']} skipped while the camera's previous frame was out, "
        f"{t['frames_lost']} lost); events {t['events_analyzed']}/{t['events']} analysed "
        f"({t['events_failed']} fell back to rules). Back-pressure: "
        f"{report['back_pressure']['count']} (503/429 with Retry-After, "
        f"{100 * report['back_pressure']['rate']:.2f} % of requests). Other errors: "
        f"{err['count']}{' ' + json.dumps(err['by_kind']) if err['by_kind'] else ''}. "
        f"Server RSS {rss['start_mb']} MB at the start, {rss['end_mb']} MB at the end, peak "
        f"{rss['peak_mb']} MB; trend after the first {rss['warmup_s']:g} s: "
        f"{rss['slope_mb_per_min']} MB/min. Server CPU {report['server']['server_cpu_cores_mean']}"
        f" cores on average. Limits: {'; '.join(report['limits'])}.",
    ]
    if "soak" in result:
        v = result["soak"]
        lines += [
            "",
            f"Soak verdict: trend {v['slope_mb_per_min']} MB/min "
            f"({v['growth_over_window_mb']} MB over the measured window; flat means <= "
            f"{v['max_slope_mb_per_min']} MB/min), {v['errors']} errors, "
            f"{v['back_pressure']} back-pressure answers: "
            + ("**passed**." if v["passed"] else "**failed**."),
        ]
    return "\n".join(lines) + "\n"


def plot_rss(path: Path, result: dict[str, Any]) -> None:
    """RSS over time, the warm-up left out of the trend, and the fitted trend line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = result["report"]
    rss = report["rss"]
    times = [t / 60 for t, _ in rss["samples"]]
    values = [v for _, v in rss["samples"]]
    fig, axis = plt.subplots(figsize=(8, 3.5))
    axis.plot(times, values, lw=1, label="server RSS")
    warm = rss["warmup_s"] / 60
    axis.axvspan(0, warm, color="0.9", label="warm-up (not in the trend)")
    slope = rss["slope_mb_per_min"]
    after = [(t, v) for t, v in zip(times, values, strict=True) if t >= warm]
    if slope is not None and after:
        mean_t = statistics.fmean(t for t, _ in after)
        mean_v = statistics.fmean(v for _, v in after)
        ends = [after[0][0], after[-1][0]]
        axis.plot(
            ends,
            [mean_v + slope * (t - mean_t) for t in ends],
            "r--",
            label=f"trend {slope:+.2f} MB/min",
        )
    config = report["config"]
    axis.set(
        xlabel="minutes",
        ylabel="MB",
        title=f"{config['cameras']} cameras x {config['fps']} fps, profile {config['profile']}",
    )
    axis.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


# Command line ----------------------------------------------------------------------------------


def _args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--fps", type=float, default=1.0, help="frames per second per camera")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument(
        "--event-every",
        type=float,
        default=30,
        help="seconds between a camera's /analyze events (the integration's idle timeout: 30)",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        help="calls in flight across all cameras, one budget shared by /detect and /analyze "
        "(default: the integration's two budgets, MAX_CONCURRENT_DETECTS and "
        "MAX_CONCURRENT_ANALYSES; 0: unlimited)",
    )
    parser.add_argument(
        "--confidence", type=float, help="camera threshold (default: the integration's)"
    )
    parser.add_argument("--image-size", default="640x480")
    parser.add_argument("--frames-per-camera", type=int, default=3, help="distinct JPEGs")
    parser.add_argument("--profile", default="tiny", help="server profile (tiny, default)")
    parser.add_argument(
        "--detector",
        default="profile",
        help="profile (the profile's), r18vd or r50vd (real-size, random weights), or a path",
    )
    add_server_options(parser)
    parser.add_argument("--sample-s", type=float, default=1.0, help="RSS/CPU/metrics interval")
    parser.add_argument(
        "--warmup-s", type=float, help="seconds left out of the RSS slope (default 20 %%, <= 120)"
    )
    parser.add_argument("--soak", type=float, metavar="SECONDS", help="soak run of this length")
    parser.add_argument(
        "--max-slope", type=float, default=1.0, help="soak: RSS trend (MB/min) still called flat"
    )
    parser.add_argument("--knee", action="store_true", help="step cameras up to the p95 bound")
    parser.add_argument("--knee-p95-s", type=float, default=2.0)
    parser.add_argument("--knee-steps", help="comma list of camera counts")
    parser.add_argument("--step-s", type=float, default=30, help="knee: seconds per step")
    parser.add_argument("--max-cameras", type=int, default=128)
    parser.add_argument(
        "--refine", type=int, default=1, help="knee: bisection steps after the first count over"
    )
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument(
        "--no-timeline", action="store_true", help="--json without the per-second samples"
    )
    parser.add_argument("--plot", type=Path, help="a PNG of the server's RSS over time")
    parser.add_argument("--markdown", type=Path, help="write the figures as Markdown here")
    args = parser.parse_args(argv)
    if args.soak is not None:
        args.duration = args.soak
    if not 1 <= args.cameras <= MAX_CAMERAS or not 1 <= args.max_cameras <= MAX_CAMERAS:
        parser.error(f"cameras must be 1..{MAX_CAMERAS}")
    if not 0 < args.duration <= MAX_DURATION_S or not 0 < args.step_s <= 600:
        parser.error(f"duration must be 0..{MAX_DURATION_S} s, a knee step 0..600 s")
    if not 0 < args.fps <= 30 or args.event_every <= 0:
        parser.error("fps must be 0..30 and --event-every positive")
    if args.warmup_s is None:
        run_s = args.step_s if args.knee else args.duration
        args.warmup_s = min(120.0, 0.2 * run_s)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _args(argv)
    constants = integration_constants()
    if args.confidence is None:
        args.confidence = constants["DEFAULT_CONFIDENCE"]
    args.api_key = secrets.token_urlsafe(24)
    args.cache.mkdir(parents=True, exist_ok=True)
    # "profile": the profile's own detector; else a random-weight real-size build or a folder.
    path = None if args.detector == "profile" else models.detector(args.detector, args.cache)
    server_args = ["--profile", args.profile, "--device", args.device, "--classes", "all"]
    if path is not None:
        server_args += ["--detector-path", str(path)]
    server_args += args.extra
    args.server_args = server_args
    env = {
        "HSI_API_KEY": args.api_key,  # not on the command line: ps shows that
        "HSI_CACHE_DIR": os.environ.get("HSI_CACHE_DIR", str(args.cache)),
        "HF_HUB_OFFLINE": "1",
    }
    started = datetime.now(UTC)
    load_start = load_averages()
    with running_server(*server_args, env=env) as server:
        host = URL(server.base_url).host or ""
        if not ipaddress.ip_address(host).is_loopback:
            raise SystemExit(f"refusing a non-loopback server: {server.base_url}")
        result: dict[str, Any]
        if args.knee:
            result = {"mode": "knee", "knee": knee(server, args)}
            k = result["knee"]
            print(
                f"knee: {k['held_cameras']} cameras x {args.fps} fps hold p95 <= "
                f"{args.knee_p95_s} s; first over: "
                f"{(k['first_over'] or {}).get('cameras')}; limits: {'; '.join(k['limits'])}"
            )
        else:
            report = asyncio.run(load_run(server, args, args.cameras, args.duration))
            mode = "soak" if args.soak is not None else "load"
            print_run(report, f"{mode}: {args.cameras} cameras x {args.fps} fps, {args.duration} s")
            result = {"mode": mode, "report": report}
            if args.soak is not None:
                result["soak"] = soak_verdict(report, args.max_slope)
                print(f"soak: {result['soak']}")
            if args.plot:
                plot_rss(args.plot, result)
            if args.no_timeline:
                report.pop("timeline")
    result["started"] = started.isoformat(timespec="seconds")
    result["ended"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["wall_s"] = round((datetime.now(UTC) - started) / timedelta(seconds=1), 1)
    result["load_average_start"] = load_start
    result["load_average_end"] = load_averages()
    result["cpu_model"] = cpu_model()
    result["command"] = " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(result))
    if result["mode"] == "soak":
        return 0 if result["soak"]["passed"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
