"""Shared benchmark plumbing: start a real server process, drive it with concurrent clients.

Each bench script measures the in-process path and the HTTP path in the same run on the same
machine, so the ratio between them means something.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def abba(settings: tuple[str, str], rounds: int) -> list[str]:
    """Each of two settings `rounds` times, in the order A B B A A B ...: a machine slowing down
    or speeding up during the run meets both alike."""
    first, second = settings
    return [s for r in range(rounds) for s in ((first, second) if r % 2 == 0 else (second, first))]


def medians(
    runs: Sequence[dict[str, Any]], by: str, settings: Sequence[str], keys: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per setting (the runs' `by` field), the median of each of `keys` over its runs."""
    return {
        setting: {
            key: statistics.median(run[key] for run in runs if run[by] == setting) for key in keys
        }
        for setting in settings
    }


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str

    def peak_rss_mb(self) -> float:
        """VmHWM: the process's peak resident set size so far."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextmanager
def running_server(*args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`python -m ai_server serve ARGS` on a free loopback port, until the block ends."""
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"hsi-bench-server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ai_server", "serve", "--host", "127.0.0.1",
             "--port", str(port), *args],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})},
        )  # fmt: skip
        server = Server(process, f"http://127.0.0.1:{port}")
        try:
            asyncio.run(_wait_ready(server, log))
            yield server
        finally:
            process.terminate()
            process.wait(timeout=60)


async def _wait_ready(server: Server, log: Path, limit_s: float = 600) -> None:
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited; see {log}")
            try:
                async with session.get(f"{server.base_url}/health") as response:
                    body = await response.json()
                    if body["status"] != "loading" and body["model_loaded"]:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError(f"server not ready after {limit_s} s; see {log}")


async def http_load(
    url: str,
    payload: bytes,
    *,
    concurrency: int,
    requests: int,
    content_type: str = "image/jpeg",
    params: dict[str, str] | None = None,
) -> LoadResult:
    """`requests` POSTs of `payload` from `concurrency` clients that each send back to back."""
    latencies: list[float] = []
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(
                    url, data=payload, params=params, headers={"Content-Type": content_type}
                ) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url}: HTTP {response.status}")
                latencies.append(1000 * (time.perf_counter() - started))

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return LoadResult(concurrency, requests, seconds, latencies)


async def scrape_mean_batch(base_url: str, model: str) -> tuple[float, float]:
    """(sum, count) of the batch-size histogram, to compute the mean batch between scrapes."""
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/metrics") as response:
        text = await response.text()
    values = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        for kind in values:
            if line.startswith(f'hsi_batch_size_{kind}{{model="{model}"}}'):
                values[kind] = float(line.split()[-1])
    return values["sum"], values["count"]


def steady_time(fn: Callable[[], object], repeats: int, min_seconds: float = 2.0) -> float:
    """Median seconds per call over at least `repeats` calls and `min_seconds`, after a warm-up.

    The first calls of a model are several times slower than the rest (measured for RT-DETRv2
    r18vd on 2 cores: 7.1 s, 2.0 s, then ~1.0 s; allocator, oneDNN and kernel caches): one
    untimed call and three timed ones would measure the warm-up. Warm for at least three calls
    and `min_seconds / 2`, then time at least `repeats` calls and `min_seconds`.
    """
    warm_until = time.perf_counter() + min_seconds / 2
    for _ in range(3):
        fn()
    while time.perf_counter() < warm_until:
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + min_seconds
    while len(times) < repeats or time.perf_counter() < deadline:
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def in_worker(fn: Callable[[], float]) -> float:
    """Run `fn` in one worker thread, as the server's batcher runs a model, so the in-process
    reference is taken where the server takes it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def best(*runs: dict[int, float]) -> dict[int, float]:
    """The faster of repeated in-process runs per batch size: ratios against it are cautious."""
    return {size: max(run[size] for run in runs) for size in runs[0]}


def reference_rate(rates: dict[int, float], batch: float) -> float:
    """In-process items/s at a (fractional) batch size, linear between measured sizes."""
    sizes = sorted(rates)
    if batch <= sizes[0]:
        return rates[sizes[0]]
    for low, high in itertools.pairwise(sizes):
        if batch <= high:
            share = (batch - low) / (high - low)
            return rates[low] + share * (rates[high] - rates[low])
    return rates[sizes[-1]]


async def http_levels(
    base_url: str,
    endpoint: str,
    model: str,
    payload: bytes,
    *,
    levels: Sequence[int],
    requests: int,
    rates: dict[int, float],
    unit: str,
    content_type: str = "image/jpeg",
    warmup: int = 4,
) -> list[dict[str, Any]]:
    """HTTP throughput and latency at each client concurrency, against in-process `rates`.

    The mean batch the server formed comes from its own /metrics, and the ratio divides HTTP
    throughput by in-process throughput at that batch size (and by the best in-process rate).
    """
    url = f"{base_url}{endpoint}"
    await http_load(url, payload, concurrency=2, requests=warmup, content_type=content_type)
    rows = []
    for concurrency in levels:
        before = await scrape_mean_batch(base_url, model)
        result = await http_load(
            url, payload, concurrency=concurrency, requests=requests, content_type=content_type
        )
        after = await scrape_mean_batch(base_url, model)
        mean_batch = (after[0] - before[0]) / max(1.0, after[1] - before[1])
        reference = reference_rate(rates, mean_batch)
        row = {
            "concurrency": concurrency,
            "throughput": result.throughput,
            "p50_ms": result.percentile(50),
            "p95_ms": result.percentile(95),
            "mean_batch": mean_batch,
            "in_process_same_batch": reference,
            "ratio": result.throughput / reference,
            "ratio_vs_best_in_process": result.throughput / max(rates.values()),
        }
        rows.append(row)
        print(
            f"http  {concurrency:>3} clients: {row['throughput']:8.2f} {unit}/s  "
            f"p50 {row['p50_ms']:8.1f} ms  p95 {row['p95_ms']:8.1f} ms  "
            f"mean batch {mean_batch:5.2f}  ratio vs in-process same batch {row['ratio']:.2f}, "
            f"vs best in-process {row['ratio_vs_best_in_process']:.2f}",
            flush=True,
        )
    return rows


def ints(text: str) -> list[int]:
    """A comma list of integers, as the benches' options take them."""
    return [int(part) for part in text.split(",") if part]


def cpu_model() -> str:
    """The CPU's model name: figures from different machines do not compare."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def load_averages() -> list[str]:
    """The machine's 1, 5 and 15-minute load averages, as /proc/loadavg writes them."""
    return Path("/proc/loadavg").read_text().split()[:3]


def add_cache_option(parser: argparse.ArgumentParser) -> None:
    """--cache: where the random-weight models (and their runtime exports) are built, once."""
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "hsi-bench",
        help="folder of the built models, kept between runs",
    )


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--device, --server-arg and --cache: how a bench starts its `ai_server serve` process."""
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        dest="extra",
        help="extra `ai_server serve` option, e.g. --server-arg=--queue-max=8 (repeatable)",
    )
    add_cache_option(parser)


def bench_parser(
    doc: str | None,
    *,
    batches: list[int],
    concurrency: list[int],
    requests: int,
    repeats: int,
) -> argparse.ArgumentParser:
    """The options every in-process vs HTTP bench shares; scripts add their own."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=ints, default=batches)
    parser.add_argument("--concurrency", type=ints, default=concurrency)
    parser.add_argument("--requests", type=int, default=requests, help="HTTP requests per level")
    parser.add_argument(
        "--repeats", type=int, default=repeats, help="timed in-process runs per batch"
    )
    parser.add_argument("--max-batch", default="auto", help="HSI_BATCH_MAX_SIZE for the server")
    parser.add_argument("--max-wait-ms", type=float, default=2)
    add_cache_option(parser)
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser
