"""Contract fuzzing: schemathesis against ai_server/openapi.yaml and the real server process.

One server (`python -m ai_server serve --profile tiny`, API key on) is fuzzed over HTTP by the
schemathesis CLI: every operation of the spec, positive and negative data (`--mode all`), the
examples, coverage (boundaries, wrong types, missing fields, unexpected methods) and fuzzing
phases. The checks: no 5xx, every status, content type, header and body as the spec documents
them, schema-violating requests refused, a missing key refused, `Allow` on 405. The check that
every schema-valid request is accepted is left out: a valid base64 string need not be a valid
image, so 400/415/422 for valid-looking data is right; `test_fuzzing_reached_every_model`
shows instead that valid requests reached each operation's models and were answered 200.

Bounds (it runs in `make test`): 8 examples per operation in the fuzzing phase, the LLM
operations (seconds per answer on 2 busy cores) 3 and negative-only boundaries, an 8-minute
ceiling. Figures (operations, test cases, requests per endpoint and status) are printed and
written to `$HSI_FUZZ_REPORT` when it is set.

`test_every_protected_operation_refuses_a_missing_or_wrong_key` walks the spec itself: every
operation with `security` refuses no key, a wrong key of the same length, a longer and a
shorter one, an empty bearer token and the key under another scheme, in either header.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .conftest import image_bytes
from .spec import SPEC_PATH, assert_schema, spec
from .test_server_process import start_server, wait_healthy

REPO = Path(__file__).resolve().parents[2]
API_KEY = "fuzz-key-0123456789abcdef"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
LLM_PATHS = ("/completion", "/v1/chat/completions")
FUZZ_TIMEOUT_S = 480

CONFIG = f"""
[phases.coverage.generation]
mode = "all"

[[operations]]
include-path-regex = "^({"|".join(re.escape(p) for p in LLM_PATHS)})$"
request-timeout = 300
generation.max-examples = 3
phases.coverage.generation.mode = "negative"
"""


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """The tiny-profile server with an API key; the LLM context kept small so that the
    fuzzer's generations stay short (a longer request is a 422)."""
    tmp = tmp_path_factory.mktemp("fuzz-server")
    process, port = start_server(
        tmp,
        model_cache,
        HSI_API_KEY=API_KEY,
        NEMOTRON_CONTEXT_SIZE="512",  # the smallest: no answer is longer than ~500 tokens
        HSI_LLM_SLOTS="1",
        HSI_LLM_THREADS="1",
        HSI_LLM_TIMEOUT="280",  # 2 shared cores: slow, but a 503 would be a failure
        HF_HUB_OFFLINE="1",
    )
    try:
        yield f"http://127.0.0.1:{port}", process, tmp
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (method.upper(), path, operation)
        for path, item in spec()["paths"].items()
        for method, operation in item.items()
        if method in methods
    ]


def _url(base: str, path: str) -> str:
    # No such model: with the right key the request gets a 404, and nothing is unloaded.
    return base + path.replace("{name}", "no-such-model")


async def test_every_protected_operation_refuses_a_missing_or_wrong_key(server) -> None:
    base, process, _ = server
    await wait_healthy(base, process)
    wrong = [
        {},
        {"Authorization": f"Bearer {'x' * len(API_KEY)}"},  # same length, other content
        {"Authorization": f"Bearer {API_KEY}x"},
        {"Authorization": f"Bearer {API_KEY[:-1]}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": API_KEY},
        {"X-API-Key": API_KEY.upper()},
        {"X-API-Key": ""},
    ]
    protected = public = 0
    async with aiohttp.ClientSession() as session:
        for method, path, operation in _operations():
            url = _url(base, path)
            if operation.get("security") == []:
                public += 1
                async with session.request(method, url) as response:
                    assert response.status == 200, (method, path)
                continue
            protected += 1
            for headers in wrong:
                async with session.request(method, url, headers=headers) as response:
                    body = await response.json()
                    assert response.status == 401, (method, path, headers, body)
                    assert_schema("Error", body)
                    assert body["error"]["code"] == "unauthorized"
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
            # The right key in either header gets past the check (whatever the body then earns).
            for headers in ({"Authorization": f"Bearer {API_KEY}"}, {"X-API-Key": API_KEY}):
                async with session.request(method, url, headers=headers) as response:
                    assert response.status != 401, (method, path, headers)
    assert protected >= 12 and public == 2, (protected, public)
    print(f"\nauth: {protected} protected operations x {len(wrong)} wrong keys refused; "
          f"{public} public operations open")  # fmt: skip


def _metrics_counts(text: str) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    pattern = re.compile(
        r'^hsi_requests_total\{endpoint="([^"]*)",method="([^"]*)",status="([^"]*)"\} (\S+)$'
    )
    for line in text.splitlines():
        if match := pattern.match(line):
            counts[match.group(1), match.group(2), match.group(3)] += int(float(match.group(4)))
    return counts


def _counts(base: str) -> Counter[tuple[str, str, str]]:
    request = urllib.request.Request(
        f"{base}/metrics", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return _metrics_counts(response.read().decode())


@pytest.fixture(scope="module")
def fuzz_run(server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run schemathesis once for the module; its output, exit status and the server's counts."""
    base, process, server_dir = server
    asyncio.run(wait_healthy(base, process))
    assert SCHEMATHESIS.exists() or shutil.which("schemathesis"), "schemathesis is not installed"
    work = tmp_path_factory.mktemp("fuzz")
    config = work / "schemathesis.toml"
    config.write_text(CONFIG)
    before = _counts(base)
    started = time.monotonic()
    command = [
        str(SCHEMATHESIS if SCHEMATHESIS.exists() else "schemathesis"),
        "--config-file", str(config),
        "run", str(SPEC_PATH),
        "--url", base,
        "-H", f"Authorization: Bearer {API_KEY}",
        "--mode", "all",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "8",
        "--workers", "1",
        "--seed", "20261127",
        "--request-timeout", "60",
        "--exclude-checks", "positive_data_acceptance",
        "--no-color",
        "--max-failures", "20",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCHEMATHESIS_HOOKS": "tests.ai_server.fuzz_hooks",
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        command, cwd=work, env=env, capture_output=True, text=True,
        timeout=FUZZ_TIMEOUT_S, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    after = _counts(base)
    requests = after - before
    # Our own /metrics reads are not the fuzzer's.
    requests.pop(("/metrics", "GET", "200"), None)
    output = result.stdout + result.stderr
    return {
        "rc": result.returncode,
        "output": output,
        "elapsed_s": round(elapsed, 1),
        "requests": requests,
        "server_log": "".join(p.read_text(errors="replace") for p in server_dir.glob("*.log")),
    }


def _summary(output: str) -> dict[str, int]:
    figures: dict[str, int] = {}
    if match := re.search(r"Selected:\s*(\d+)/(\d+)", output):
        figures["operations_selected"], figures["operations_total"] = map(int, match.groups())
    if match := re.search(r"Tested:\s*(\d+)", output):
        figures["operations_tested"] = int(match.group(1))
    if match := re.search(r"(\d+) generated", output):
        figures["test_cases"] = int(match.group(1))
    return figures


def test_schemathesis_finds_no_contract_violation(fuzz_run: dict[str, Any]) -> None:
    output, requests = fuzz_run["output"], fuzz_run["requests"]
    figures = _summary(output)
    by_status = Counter[str]()
    for (_, _, status), count in requests.items():
        by_status[status] += count
    report = {
        **figures,
        "requests": sum(requests.values()),
        "requests_by_status": dict(sorted(by_status.items())),
        "requests_by_operation": {
            f"{m} {e}": sum(c for (e2, m2, _), c in requests.items() if (e2, m2) == (e, m))
            for (e, m, _) in sorted(requests)
        },
        "elapsed_s": fuzz_run["elapsed_s"],
    }
    print("\ncontract fuzzing:", json.dumps(report, indent=1))
    if path := os.environ.get("HSI_FUZZ_REPORT"):
        Path(path).write_text(json.dumps(report, indent=1) + "\n")
    tail = output[-12000:]
    assert fuzz_run["rc"] == 0, f"schemathesis found contract violations:\n{tail}"
    assert figures.get("operations_tested") == len(_operations()), tail
    assert figures.get("test_cases", 0) >= 500, tail
    assert not any(status.startswith("5") for status in by_status), by_status
    # Our error middleware logs every 500 it turns into the JSON contract.
    assert "unhandled error in" not in fuzz_run["server_log"], fuzz_run["server_log"][-6000:]


def test_fuzzing_reached_every_model(fuzz_run: dict[str, Any]) -> None:
    """Valid requests got through to the models: a 200 on every operation that takes data,
    so the response schemas were checked on real answers, not only on errors."""
    answered = {(e, m) for (e, m, status), count in fuzz_run["requests"].items() if status == "200"}
    missing = [
        (method, path)
        for method, path, _ in _operations()
        if "{" not in path and (path, method) not in answered and method == "POST"
    ]
    assert not missing, f"no 200 from {missing}: {sorted(fuzz_run['requests'].items())}"


async def test_server_is_healthy_after_fuzzing(server, fuzz_run: dict[str, Any]) -> None:
    base, process, _ = server
    assert process.poll() is None, "the server died while fuzzed"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/detect",
            data=image_bytes(),
            headers={"Content-Type": "image/jpeg", "X-API-Key": API_KEY},
        ) as response,
    ):
        assert response.status == 200  # loads the detector again if the fuzzer unloaded it
        assert_schema("DetectResponse", await response.json())
    assert_schema("Health", await wait_healthy(base, process))
