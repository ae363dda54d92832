"""Shared fixtures for the AI server tests: tiny models, settings, an app client, images."""

from __future__ import annotations

import io
import os
import subprocess
import sys

# Tests never reach a model hub: set before transformers/huggingface_hub read it at import.
os.environ["HF_HUB_OFFLINE"] = "1"
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from PIL import Image

from ai_server.app import create_app
from ai_server.config import Settings, load_settings
from ai_server.keys import PRELOAD_TASK
from ai_server.models import hub, tiny

from .fakehub import FakeHub

ROOT = Path(__file__).resolve().parents[2]
MakeSettings = Callable[..., Settings]
MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


def run_bench(script: str, *args: str, cache: Path, timeout: float = 300) -> str:
    """`bench/<script> ARGS` with the session's model cache as HSI_CACHE_DIR; its output. A run
    that fails, fails the test with the end of its output."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env={**os.environ, "HSI_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One HSI_CACHE_DIR per test session: tiny models are built once, on first use."""
    return tmp_path_factory.mktemp("hsi-cache")


@pytest.fixture
def make_settings(model_cache: Path, tmp_path: Path) -> MakeSettings:
    """Settings for the tiny profile, isolated from the host's environment and add-on file."""

    def make(**overrides: Any) -> Settings:
        # torch: the routes under test do not depend on the runtime, and an exported graph
        # costs each load ~0.3 s; tests/ai_server/test_runtime_*.py test the other runtimes.
        values: dict[str, Any] = {
            "profile": "tiny",
            "cache_dir": model_cache,
            "device": "cpu",
            "runtime": "torch",
        }
        values.update(overrides)
        return load_settings(env={}, options_path=tmp_path / "no-options.json", **values)

    return make


@pytest.fixture
async def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    make_settings: MakeSettings,
) -> MakeClient:
    """An HTTP client for a fresh app; waits until the models named in `preload` are loaded."""

    async def make(
        settings: Settings | None = None, **overrides: Any
    ) -> TestClient[web.Request, web.Application]:
        app = create_app(settings or make_settings(**overrides))
        client = await aiohttp_client(app)
        await app[PRELOAD_TASK]
        return client

    return make


@pytest.fixture
async def client(
    make_client: MakeClient,
) -> TestClient[web.Request, web.Application]:
    return await make_client()


TINY_DETECTOR_REPO = "hsi-test/tiny-detector"
TINY_LLM_REPO = "hsi-test/tiny-llm"


@pytest.fixture
async def fake_hub(
    aiohttp_server: Callable[..., Awaitable[Any]],
    model_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> FakeHub:
    """A model hub on 127.0.0.1 (tests/ai_server/fakehub.py) serving the tiny detector and LLM as
    hub repositories; HF_ENDPOINT points at it, the network is allowed (no HF_HUB_OFFLINE), and
    the downloader logs every progress step and retries at once."""
    built = tiny.make_tiny_models(model_cache / "tiny", ["detector", "llm"])
    fake = FakeHub()
    fake.add_folder(TINY_DETECTOR_REPO, built["detector"])
    fake.add_folder(TINY_LLM_REPO, built["llm"])
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/")).rstrip("/")
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hub, "LOG_INTERVAL_S", 0.0)
    monkeypatch.setattr(hub, "RETRY_DELAY_S", 0.01)
    return fake


def image_bytes(
    width: int = 320,
    height: int = 240,
    fmt: str = "JPEG",
    color: tuple[int, int, int] = (90, 140, 60),
) -> bytes:
    """An encoded test image with some structure (a bright block), so models see edges."""
    image = Image.new("RGB", (width, height), color)
    image.paste((250, 250, 250), (width // 4, height // 4, width // 2, height // 2))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()
