"""Model residency: memory budget, eviction order, pinning, idle unload, load/unload API, health."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ai_server.app import create_app
from ai_server.keys import PRELOAD_TASK
from ai_server.models.base import ModelLoadError
from ai_server.runtime.registry import GIB, ModelRegistry, ModelSpec, ModelUnavailableError

from .conftest import MakeClient, MakeSettings
from .spec import assert_schema


class FakeModel:
    """A model that takes `size_gb` of the budget; records its life in `log`."""

    def __init__(self, name: str, size_gb: float, log: list[str], *, fail: bool = False) -> None:
        self.name = name
        self.size = int(size_gb * GIB)
        self.log = log
        self.fail = fail
        self.resident = False

    def load(self) -> None:
        if self.fail:
            raise ModelLoadError(f"{self.name}: weights not found")
        self.resident = True
        self.log.append(f"load {self.name}")

    def warmup(self) -> None:
        pass

    def unload(self) -> None:
        self.resident = False
        self.log.append(f"unload {self.name}")

    def info(self) -> dict[str, Any]:
        return {"device": "cpu"}

    def memory_bytes(self) -> int:
        return self.size if self.resident else 0


def registry(
    sizes: dict[str, tuple[int, float]],
    log: list[str],
    *,
    budget_gb: float | None = None,
    idle_timeout_s: float = 0.0,
    estimates: dict[str, float] | None = None,
) -> ModelRegistry:
    """name -> (priority, real size); the spec's estimate defaults to the real size."""
    specs = [
        ModelSpec(
            name,
            lambda name=name, size=size: FakeModel(name, size, log),  # type: ignore[misc]
            priority=priority,
            size_gb=(estimates or {}).get(name, size),
        )
        for name, (priority, size) in sizes.items()
    ]
    return ModelRegistry(specs, budget_gb=budget_gb, idle_timeout_s=idle_timeout_s)


async def test_no_budget_keeps_everything() -> None:
    log: list[str] = []
    reg = registry({"a": (50, 3.0), "b": (50, 3.0)}, log)
    await reg.load("a")
    await reg.load("b")
    assert log == ["load a", "load b"]
    assert reg.budget() == {"kind": "ram", "limit_gb": None, "used_gb": 6.0, "idle_timeout_s": None}


async def test_eviction_takes_lowest_priority_then_least_recently_used() -> None:
    log: list[str] = []
    reg = registry(
        {"detector": (100, 1.0), "clip": (80, 1.0), "florence": (60, 1.0), "llm": (60, 1.0),
         "big": (70, 2.0)},
        log,
        budget_gb=4.0,
    )  # fmt: skip
    for name in ("detector", "clip", "florence", "llm"):
        await reg.load(name)
    reg.loaded("florence", FakeModel)  # florence is now more recently used than llm
    await reg.load("big")  # needs 2 GiB of a full 4 GiB budget: both priority-60 models go
    assert log[-3:] == ["unload llm", "unload florence", "load big"]
    status = reg.status()
    assert [n for n, s in status.items() if s["loaded"]] == ["detector", "clip", "big"]
    assert status["llm"]["evictions"] == 1
    assert reg.budget()["used_gb"] == pytest.approx(4.0)


async def test_lower_priority_never_evicts_higher() -> None:
    log: list[str] = []
    reg = registry({"detector": (100, 3.0), "florence": (60, 2.0)}, log, budget_gb=4.0)
    await reg.load("detector")
    with pytest.raises(ModelUnavailableError, match=r"budget of 4\.00 GiB is full"):
        await reg.load("florence")
    assert reg.status()["detector"]["loaded"]
    assert reg.status()["florence"]["status"] == "unloaded"  # transient: not a failed model


async def test_model_larger_than_the_whole_budget_is_an_error() -> None:
    reg = registry({"huge": (50, 8.0)}, [], budget_gb=4.0)
    with pytest.raises(ModelUnavailableError, match="more than the whole ram budget"):
        await reg.load("huge")
    assert reg.status()["huge"]["status"] == "error"
    assert "HSI_MAX_RAM_GB" in reg.status()["huge"]["error"]


async def test_models_in_use_are_not_evicted() -> None:
    log: list[str] = []
    reg = registry({"clip": (80, 2.0), "florence": (60, 2.0), "other": (60, 2.0)}, log,
                   budget_gb=4.0)  # fmt: skip
    await reg.load("clip")
    async with reg.use("florence", FakeModel) as florence:
        assert florence.resident
        with pytest.raises(ModelUnavailableError, match=r"florence .*in use"):
            await reg.load("other")  # clip outranks it, florence is held
    await reg.load("other")  # released: now florence can go
    assert log[-2:] == ["unload florence", "load other"]


async def test_measured_size_replaces_the_estimate() -> None:
    log: list[str] = []
    # Estimated 0.5 GiB, really 3 GiB: after loading, the registry knows and makes room.
    reg = registry({"a": (50, 2.0), "b": (60, 3.0)}, log, budget_gb=4.0, estimates={"b": 0.5})
    await reg.load("a")
    await reg.load("b")
    assert log == ["load a", "load b", "unload a"]
    assert reg.status()["b"]["size_gb"] == pytest.approx(3.0)
    assert reg.status()["b"]["size_measured"]


async def test_idle_timeout_unloads_optional_models_only() -> None:
    log: list[str] = []
    specs = [
        ModelSpec("detector", lambda: FakeModel("detector", 0.1, log), optional=False),
        ModelSpec("florence", lambda: FakeModel("florence", 0.1, log)),
    ]
    reg = ModelRegistry(specs, idle_timeout_s=0.2)
    await reg.load("detector")
    await reg.load("florence")
    for _ in range(40):
        if "unload florence" in log:
            break
        await asyncio.sleep(0.05)
    assert log == ["load detector", "load florence", "unload florence"]
    assert reg.status()["detector"]["loaded"]
    await reg.close()


async def test_idle_timeout_spares_a_model_in_use() -> None:
    log: list[str] = []
    reg = registry({"florence": (60, 0.1)}, log, idle_timeout_s=0.1)
    async with reg.use("florence", FakeModel):
        await asyncio.sleep(0.35)
        assert reg.status()["florence"]["loaded"]
    await reg.close()


# --- over HTTP with the tiny models ---------------------------------------------------------


async def test_models_endpoint_shows_budget_and_sizes(make_client: MakeClient) -> None:
    client = await make_client(preload=("clip",), max_ram_gb=2.0)
    body = await (await client.get("/models")).json()
    assert_schema("ModelsResponse", body)
    assert body["budget"]["kind"] == "ram"
    assert body["budget"]["limit_gb"] == 2.0
    clip = body["models"]["clip"]
    assert clip["loaded"] and clip["size_measured"] and clip["size_gb"] > 0
    assert body["budget"]["used_gb"] == pytest.approx(clip["size_gb"], abs=1e-3)


async def test_load_and_unload_api(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    response = await client.post("/models/florence/load")
    assert response.status == 200
    body = await response.json()
    assert_schema("ModelAction", body)
    assert body["name"] == "florence" and body["loaded"] and body["dtype"] == "float32"
    response = await client.post("/models/florence/unload")
    body = await response.json()
    assert body["unloaded"] is True and body["loaded"] is False
    again = await (await client.post("/models/florence/unload")).json()
    assert again["unloaded"] is False
    missing = await client.post("/models/nope/load")
    assert missing.status == 404
    assert "clip" in (await missing.json())["error"]["message"]


async def test_tiny_budget_evicts_florence_for_clip(make_client: MakeClient) -> None:
    # The tiny CLIP takes ~6.6 MB and Florence ~0.5 MB: a 6.9 MB budget holds one of them.
    client = await make_client(preload=(), max_ram_gb=0.0064)
    assert (await client.post("/models/florence/load")).status == 200
    assert (await client.post("/models/clip/load")).status == 200
    models = (await (await client.get("/models")).json())["models"]
    assert models["clip"]["loaded"] and not models["florence"]["loaded"]
    assert models["florence"]["evictions"] == 1


async def test_health_degraded_names_the_broken_model(
    make_client: MakeClient, tmp_path, make_settings: MakeSettings
) -> None:
    broken = tmp_path / "no-such-florence"
    client = await make_client(preload=("detector", "florence"), florence_path=str(broken))
    health = await (await client.get("/health")).json()
    assert_schema("Health", health)
    assert health["status"] == "degraded"
    assert health["failed_models"] == ["florence"]
    assert str(broken) in health["models"]["florence"]["error"]
    assert health["model_loaded"] is True  # the detector still serves
    detect = await client.post("/detect", data=_jpeg(), headers={"Content-Type": "image/jpeg"})
    assert detect.status == 200
    describe = await client.post("/describe", json={"image_base64": _b64(), "task": "caption"})
    assert describe.status == 503
    assert (await describe.json())["error"]["code"] == "model_unavailable"


async def test_settings_reach_the_registry(make_settings: MakeSettings) -> None:
    app = create_app(make_settings(max_ram_gb=3.5, model_idle_s=120, preload=()))
    from ai_server.keys import REGISTRY

    reg = app[REGISTRY]
    assert reg.budget()["limit_gb"] == 3.5
    assert reg.idle_timeout_s == 120
    assert PRELOAD_TASK not in app  # created at startup, not by the factory


def _jpeg() -> bytes:
    from .conftest import image_bytes

    return image_bytes(160, 120)


def _b64() -> str:
    import base64

    return base64.b64encode(_jpeg()).decode()


def test_model_locations_override_the_profile(make_settings: MakeSettings) -> None:
    import torch

    from ai_server.models.catalog import clip_source, florence_source
    from ai_server.runtime.devices import DeviceInfo, resolve_device

    cpu, gpu = resolve_device("cpu"), DeviceInfo("cuda:0", torch.float16)
    default = make_settings(profile="default")
    assert florence_source(default, cpu) == "florence-community/Florence-2-base"
    assert florence_source(default, gpu) == "florence-community/Florence-2-large"
    assert clip_source(default) == "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    for profile in ("default", "tiny"):
        chosen = make_settings(profile=profile, florence_path="/m/florence", clip_path="/m/clip")
        assert florence_source(chosen, cpu) == "/m/florence"
        assert clip_source(chosen) == "/m/clip"


def test_residency_settings_from_the_environment(tmp_path) -> None:
    from ai_server.config import ConfigError, load_settings

    env = {
        "FLORENCE_MODEL_PATH": "/models/florence",
        "CLIP_MODEL_PATH": "hf-hub:org/clip",
        "HSI_MAX_VRAM_GB": "6.5",
        "HSI_MAX_RAM_GB": "0",
        "HSI_MODEL_IDLE_S": "300",
        "HSI_LABELS_PATH": str(tmp_path / "labels.yaml"),
    }
    settings = load_settings(env=env, options_path=tmp_path / "none.json")
    assert settings.florence_path == "/models/florence"
    assert settings.clip_path == "hf-hub:org/clip"
    assert (settings.max_vram_gb, settings.max_ram_gb) == (6.5, None)
    assert settings.model_idle_s == 300
    assert settings.labels_path == tmp_path / "labels.yaml"
    with pytest.raises(ConfigError, match="HSI_MAX_VRAM_GB='lots'"):
        load_settings(env={"HSI_MAX_VRAM_GB": "lots"}, options_path=tmp_path / "none.json")
