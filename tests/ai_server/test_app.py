"""The application as a whole: auth, health states, model control, metrics, error contract."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from PIL import Image

from ai_server.analysis.event import parse_metadata
from ai_server.analysis.pipeline import Pipeline
from ai_server.app import create_app
from ai_server.config import Settings
from ai_server.keys import ANALYZE_PIPELINE, BATCHERS, PRELOAD_TASK, REGISTRY
from ai_server.models.clip import Clip
from ai_server.models.detector import Detector
from ai_server.models.llm import LLMBackend
from ai_server.models.vlm import Florence
from ai_server.runtime.registry import ModelRegistry, ModelSpec

from .conftest import MakeClient, MakeSettings, image_bytes
from .spec import assert_schema

JPEG = {"Content-Type": "image/jpeg"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic s3cret"}, 401),
        ({"X-API-Key": "s3cre"}, 401),
        ({"Authorization": "Bearer s3cret"}, 200),
        ({"authorization": "bearer s3cret"}, 200),
        ({"X-API-Key": "s3cret"}, 200),
    ],
)
async def test_api_key_guards_every_endpoint_but_health(
    make_client: MakeClient, headers, status: int
) -> None:
    client = await make_client(api_key="s3cret")
    for method, path, kwargs in (
        ("POST", "/detect", {"data": image_bytes(), "headers": JPEG}),
        ("GET", "/models", {}),
        ("GET", "/metrics", {}),
    ):
        merged = {**kwargs, "headers": {**kwargs.get("headers", {}), **headers}}
        response = await client.request(method, path, **merged)
        assert response.status == status, path
        if status == 401:
            body = await response.json()
            assert body["error"]["code"] == "unauthorized"
            assert "s3cret" not in await response.text()
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/health")).status == 200
    assert (await client.get("/")).status == 200


async def test_status_page_is_html_for_people(make_client: MakeClient) -> None:
    """Home Assistant's "Visit" link opens "/": a page, not a 401 in JSON, with no key needed."""
    client = await make_client(api_key="s3cret")
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    health = await (await client.get("/health")).json()
    status = health["status"]
    assert f'class="status {status}"' in page
    assert f"version {health['version']}" in page
    for name in health["models"]:
        assert f"<td>{name}</td>" in page
    assert "s3cret" not in page


async def test_batch_sizes_are_per_model_on_cpu(client) -> None:
    batchers = client.server.app[BATCHERS]
    sizes = {batcher.name: batcher.max_batch_size for batcher in batchers}
    assert sizes == {Detector.name: 1, Clip.name: 8, Florence.name: 1}


async def test_no_key_configured_means_open(client) -> None:
    assert (await client.get("/models")).status == 200


async def test_health_reports_models_and_device(client) -> None:
    body = await (await client.get("/health")).json()
    assert_schema("Health", body)
    assert body["status"] == "healthy"
    assert body["model_loaded"] is True
    assert body["device"] == "cpu"
    detector = body["models"]["detector"]
    assert detector["loaded"] and detector["status"] == "loaded"
    assert detector["parameters"] > 0 and detector["classes"] == 80


async def test_lazy_loading_without_preload(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    health = await (await client.get("/health")).json()
    assert (health["status"], health["model_loaded"]) == ("healthy", False)
    response = await client.post("/detect", data=image_bytes(), headers=JPEG)
    assert response.status == 200  # loaded on first use
    assert (await (await client.get("/health")).json())["model_loaded"] is True


async def test_broken_detector_path_degrades_and_explains(
    make_client: MakeClient, tmp_path
) -> None:
    client = await make_client(detector_path=str(tmp_path / "missing"))
    health = await (await client.get("/health")).json()
    assert health["status"] == "degraded"
    assert "does not exist" in health["models"]["detector"]["error"]
    response = await client.post("/detect", data=image_bytes(), headers=JPEG)
    assert response.status == 503
    body = await response.json()
    assert body["error"]["code"] == "model_unavailable"
    assert "missing" in body["error"]["message"]


async def test_hub_id_offline_gives_a_clear_error(make_client: MakeClient) -> None:
    # conftest sets HF_HUB_OFFLINE=1, as on a machine without internet.
    client = await make_client(detector_path="no-such-org/no-such-model")
    health = await (await client.get("/health")).json()
    error = health["models"]["detector"]["error"]
    assert "Hugging Face hub" in error and "no-such-org/no-such-model" in error


async def test_not_a_detection_checkpoint(make_client: MakeClient, tmp_path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    client = await make_client(detector_path=str(tmp_path))
    health = await (await client.get("/health")).json()
    assert health["status"] == "degraded"
    assert str(tmp_path) in health["models"]["detector"]["error"]


async def test_models_listing_and_load_unload(client) -> None:
    listing = await (await client.get("/models")).json()
    assert_schema("ModelsResponse", listing)
    assert listing["models"]["detector"]["loaded"] is True

    unloaded = await client.post("/models/detector/unload")
    body = await unloaded.json()
    assert_schema("ModelAction", body)
    assert (body["name"], body["unloaded"], body["loaded"]) == ("detector", True, False)
    again = await (await client.post("/models/detector/unload")).json()
    assert again["unloaded"] is False

    loaded = await (await client.post("/models/detector/load")).json()
    assert_schema("ModelAction", loaded)
    assert loaded["loaded"] is True and loaded["load_time_ms"] > 0
    assert (await client.post("/detect", data=image_bytes(), headers=JPEG)).status == 200

    unknown = await client.post("/models/nope/load")
    assert unknown.status == 404
    assert "detector" in (await unknown.json())["error"]["message"]


async def test_metrics_exposition(client) -> None:
    await client.post("/detect", data=image_bytes(), headers=JPEG)
    await client.post("/detect", data=b"junk", headers=JPEG)
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    for needle in (
        'hsi_requests_total{endpoint="/detect",method="POST",status="200"} 1.0',
        'hsi_requests_total{endpoint="/detect",method="POST",status="415"} 1.0',
        'hsi_request_latency_seconds_bucket{endpoint="/detect"',
        'hsi_inference_latency_seconds_count{model="detector"} ',
        'hsi_batch_size_sum{model="detector"} ',
        'hsi_queue_depth{model="detector"} 0.0',
        'hsi_model_loaded{device="cpu",model="detector"} 1.0',
    ):
        assert needle in text, needle


async def test_unknown_route_and_method_are_json(client) -> None:
    missing = await client.get("/nope")
    assert missing.status == 404
    assert_schema("Error", await missing.json())
    wrong = await client.get("/detect")
    assert wrong.status == 405
    assert (await wrong.json())["error"]["code"] == "method_not_allowed"


async def test_apps_do_not_share_state(make_client: MakeClient) -> None:
    first = await make_client()
    second = await make_client()
    await first.post("/detect", data=image_bytes(), headers=JPEG)
    text = await (await second.get("/metrics")).text()
    assert 'endpoint="/detect"' not in text


def test_model_names_are_the_model_classes_names(make_settings: MakeSettings) -> None:
    app = create_app(make_settings())
    names = [Detector.name, Clip.name, Florence.name, LLMBackend.name]
    assert app[REGISTRY].names == names
    assert set(Settings().preload) <= set(names)  # config.py stays free of torch: checked here


async def test_the_pipeline_is_complete_when_the_app_is_made(make_settings: MakeSettings) -> None:
    """Every stage is given to the Pipeline when it is made, on the app's own batchers."""
    stages = inspect.signature(Pipeline).parameters
    for stage in ("detect", "enrich", "describe"):
        assert stages[stage].default is inspect.Parameter.empty, stage
    app = create_app(make_settings(preload=()))
    batchers, registry = app[BATCHERS], app[REGISTRY]
    metadata = parse_metadata({"options": {"llm": False}}, 1)
    try:  # straight from the factory: no startup, nothing patched in between
        analysis = await app[ANALYZE_PIPELINE].analyze([Image.new("RGB", (96, 64))], metadata)
    finally:
        await batchers.close()
        await registry.close()
    for model in (Detector.name, "enrich", Florence.name):
        assert analysis.models[model]["status"] == "used", analysis.models[model]
    assert batchers.detector.batches_run and batchers.florence.batches_run


class SlowModel:
    """Takes `seconds` to load (in the registry's load thread)."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds = name, seconds

    def load(self) -> None:
        time.sleep(self.seconds)

    def warmup(self) -> None:
        pass

    def unload(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {"device": "cpu"}


async def test_shutdown_cancels_and_awaits_every_task(
    make_settings: MakeSettings,
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> None:
    """Batcher workers, the idle reaper, the malloc trim and a preload still loading all end
    with the app."""
    registry = ModelRegistry(
        [ModelSpec(Detector.name, lambda: SlowModel(Detector.name, 0.5))], idle_timeout_s=60
    )
    before = asyncio.all_tasks()
    client = await aiohttp_client(
        create_app(make_settings(preload=(Detector.name,)), registry=registry)
    )
    app = client.server.app
    await asyncio.sleep(0.05)  # the preload is loading the detector now
    started = {task.get_name(): task for task in asyncio.all_tasks() - before}
    names = {"preload-models", "registry-idle", "malloc-trim"}
    assert names | {f"batcher-{b.name}" for b in app[BATCHERS]} <= set(started), sorted(started)
    assert not app[PRELOAD_TASK].done()
    await client.close()
    assert app[PRELOAD_TASK].cancelled()
    assert [name for name, task in started.items() if not task.done()] == []


async def test_malloc_trim_s_zero_starts_no_trim(
    make_settings: MakeSettings,
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> None:
    before = asyncio.all_tasks()
    client = await aiohttp_client(create_app(make_settings(preload=(), malloc_trim_s=0)))
    started = {task.get_name() for task in asyncio.all_tasks() - before}
    assert "batcher-detector" in started  # the app started, without a trim
    assert "malloc-trim" not in started
    await client.close()
