"""Injected faults against the real server process (tiny profile): an LLM that hangs past its
timeout, a model whose folder is corrupt, a model whose load runs out of memory. The server answers
with what still works and says which part failed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ai_server.models.llm import GenerationRequest, LLMError, RemoteLLM
from ai_server.runtime import registry as registry_module
from ai_server.runtime.registry import ModelRegistry, ModelSpec, ModelUnavailableError

from .conftest import TINY_DETECTOR_REPO, MakeClient, image_bytes
from .fakehub import FakeHub
from .test_addon import FakeSupervisor
from .test_server_process import server_log, start_server

PERSON = {
    "class": "person",
    "confidence": 0.95,
    "bbox": {"x": 40, "y": 30, "width": 80, "height": 150},
}


MODELS = json.dumps({"object": "list", "data": [{"id": "stuck", "object": "model"}]}).encode()


class HangingServer:
    """An OpenAI-compatible LLM engine that lists its model (GET /v1/models) but never answers
    a completion: it reads the request and keeps the connection open (an engine stuck)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(5)
            try:
                head = client.recv(65536)
            except OSError:
                client.close()
                continue
            if head.startswith(b"GET /v1/models"):
                client.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(MODELS)}\r\nConnection: close\r\n\r\n".encode()
                    + MODELS
                )
                client.close()
                continue
            self.accepted += 1
            self._clients.append(client)  # kept open, never answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for client in self._clients:
            client.close()
        self.sock.close()


@pytest.fixture(scope="module")
def faulty_server(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Iterator[tuple[str, HangingServer]]:
    """A tiny-profile server whose LLM (a remote engine) hangs and whose Florence-2 folder is
    corrupt."""
    folder = tmp_path_factory.mktemp("faults")
    corrupt = folder / "florence"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{ this is not json")
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 64)
    llm = HangingServer()
    process, port = start_server(
        folder,
        model_cache,
        HSI_LLM_URL=f"http://127.0.0.1:{llm.port}",
        HSI_LLM_TIMEOUT="1",
        FLORENCE_MODEL_PATH=str(corrupt),
        HSI_OFFLINE="true",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"server exited early:\n{server_log(folder)[-3000:]}"
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if json.loads(response.read())["model_loaded"]:
                        break
            except (urllib.error.URLError, OSError, ValueError):
                pass
            assert time.monotonic() < deadline, "server did not start in 120 s"
            time.sleep(0.25)
        yield base, llm
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except Exception:  # pragma: no cover - a stuck process
            process.kill()
        llm.close()


def _analyze_body(**options: bool) -> dict[str, object]:
    return {
        "frames_base64": [base64.b64encode(image_bytes()).decode()],
        "metadata": {
            "camera": {"id": "front", "name": "Front door"},
            "detections": [[PERSON]],
            "context": {"time_of_day": "night"},
            "options": {"enrich": False, "describe": False, "llm": True} | options,
        },
    }


async def test_llm_hanging_past_its_timeout_falls_back_to_rules(
    faulty_server: tuple[str, HangingServer],
) -> None:
    """The LLM engine never answers: /analyze still answers (within the LLM timeout plus the
    rest of the pipeline), scored by the rules, and says why."""
    base, llm = faulty_server
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/health") as response:
            assert response.status == 200
        timeout = aiohttp.ClientTimeout(total=15)
        async with session.post(
            f"{base}/analyze", json=_analyze_body(), timeout=timeout
        ) as response:
            body = await response.json()
            assert response.status == 200, body
    assert llm.accepted >= 1  # the server did ask the LLM
    assert body["risk"]["source"] == "rules"
    # The engine's client (timeout = HSI_LLM_TIMEOUT) or the pipeline's own limit (the same
    # figure) ends the wait, whichever fires first; either way the label is `timeout`.
    llm_report = body["models"]["llm"]
    assert (llm_report["status"], llm_report["reason"]) == (
        "timeout",
        "the LLM took longer than 1 s",
    )
    assert body["risk"]["risk_level"] in ("low", "medium", "high", "critical")
    assert body["risk"]["summary"]
    # The server stays usable: the next event is answered the same way.
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/analyze", json=_analyze_body()) as response,
    ):
        assert response.status == 200
        assert (await response.json())["risk"]["source"] == "rules"


async def test_a_corrupt_model_folder_leaves_the_others_serving(
    faulty_server: tuple[str, HangingServer],
) -> None:
    """Florence-2's folder is corrupt: /describe says so, /detect and /embed keep serving, and
    /health is degraded naming florence (and only florence)."""
    base, _ = faulty_server
    picture = base64.b64encode(image_bytes()).decode()
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{base}/describe", json={"image_base64": picture, "task": "caption"}
        ) as response:
            failed = await response.json()
            assert response.status == 503, failed
        assert "florence" in json.dumps(failed).lower()
        async with session.post(
            f"{base}/detect",
            data=image_bytes(),
            params={"confidence": "0", "classes": "all"},
            headers={"Content-Type": "image/jpeg"},
        ) as response:
            assert response.status == 200
            assert (await response.json())["detections"]
        async with session.post(f"{base}/embed", json={"texts": ["a person"]}) as response:
            assert response.status == 200
            assert (await response.json())["text_embeddings"]
        async with session.get(f"{base}/health") as response:
            health = await response.json()
    assert health["status"] == "degraded"
    assert health["failed_models"] == ["florence"]
    assert health["models"]["florence"]["state"] == "error"
    assert health["models"]["detector"]["loaded"] is True
    # An event asking for captions is still analysed: the caption is left out, not the event.
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/analyze", json=_analyze_body(describe=True, llm=False)) as response,
    ):
        body = await response.json()
        assert response.status == 200, body
    assert body["risk"]["source"] == "rules"
    assert body["models"]["florence"]["status"] in ("unavailable", "error")


def _wait_up(base: str, process: subprocess.Popen[bytes], folder: Path) -> dict[str, Any]:
    """/health once the detector is loaded (whatever else failed)."""
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, f"server exited early:\n{server_log(folder)[-3000:]}"
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                health: dict[str, Any] = json.loads(response.read())
                if health["model_loaded"] and health["status"] != "loading":
                    return health
        except (urllib.error.URLError, OSError, ValueError):
            pass
        assert time.monotonic() < deadline, "server did not start in 120 s"
        time.sleep(0.25)


def _ask_for_a_petabyte(folder: Path) -> None:
    """Turn a tiny Florence-2 folder into one whose load runs out of memory for real: its
    config asks for a 10^12-token vocabulary (an embedding of 128 TB, float32) and its
    checkpoint lacks those tensors, so transformers allocates them (a checkpoint that held them
    would fail on a shape mismatch first). torch's CPU allocator refuses: RuntimeError
    "DefaultCPUAllocator: can't allocate memory", at once, nothing touched."""
    from safetensors.torch import load_file, save_file

    config = json.loads((folder / "config.json").read_text())
    vocabulary = config["text_config"]["vocab_size"]
    config["text_config"]["vocab_size"] = 10**12
    (folder / "config.json").write_text(json.dumps(config))
    weights = load_file(folder / "model.safetensors")
    kept = {key: value for key, value in weights.items() if vocabulary not in value.shape}
    assert len(kept) < len(weights)  # the vocabulary-sized tensors are gone
    save_file(kept, folder / "model.safetensors", metadata={"format": "pt"})


async def test_out_of_memory_on_model_load_degrades_and_a_later_load_retries(
    tmp_path: Path, model_cache: Path
) -> None:
    """Florence-2 runs out of memory while loading at start: the process stays up, logs an
    error naming florence and saying "out of memory", /health is degraded naming it, /detect
    keeps serving, /describe answers 503 saying why. Once memory suffices (here: the folder
    holds a model that fits) requests still get the 503 at once for a minute, saying when the
    next try is, with Retry-After (no camera pushes the host to its limit every second); the
    operator's POST /models/florence/load tries at once, and /describe and /health are whole."""
    from ai_server.models import tiny

    good = tmp_path / "florence-good"
    tiny.build_florence(good)
    florence = tmp_path / "florence"
    shutil.copytree(good, florence)
    _ask_for_a_petabyte(florence)
    process, port = start_server(
        tmp_path,
        model_cache,
        FLORENCE_MODEL_PATH=str(florence),
        HSI_PRELOAD="detector,florence",
        HSI_OFFLINE="true",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = _wait_up(base, process, tmp_path)
        assert health["status"] == "degraded"
        assert health["failed_models"] == ["florence"]
        assert "out of memory" in health["models"]["florence"]["error"]
        assert health["models"]["detector"]["loaded"] is True
        errors = [
            line
            for line in server_log(tmp_path).splitlines()
            if " ERROR " in line and "florence" in line and "out of memory" in line
        ]
        assert errors, server_log(tmp_path)[-3000:]
        assert "can't allocate memory" in errors[0]  # the allocator's own refusal, not a stub
        picture = base64.b64encode(image_bytes()).decode()
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{base}/detect", data=image_bytes(), headers={"Content-Type": "image/jpeg"}
            ) as response:
                assert response.status == 200
            async with session.post(
                f"{base}/describe", json={"image_base64": picture, "task": "caption"}
            ) as response:
                failed = await response.json()
                assert response.status == 503, failed
            assert "florence" in failed["error"]["message"]
            assert "out of memory" in failed["error"]["message"]
            assert process.poll() is None
            # Memory suffices again, but requests hold off for LOAD_RETRY_S...
            shutil.rmtree(florence)
            shutil.copytree(good, florence)
            async with session.post(
                f"{base}/describe", json={"image_base64": picture, "task": "caption"}
            ) as response:
                held = await response.json()
                assert response.status == 503, held
                assert 1 <= int(response.headers["Retry-After"]) <= 60
            assert "next try in" in held["error"]["message"]
            assert "POST /models/florence/load" in held["error"]["message"]
            # ...and the operator's load tries at once.
            async with session.post(f"{base}/models/florence/load") as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["loaded"] is True
            async with session.post(
                f"{base}/describe", json={"image_base64": picture, "task": "caption"}
            ) as response:
                assert response.status == 200, await response.text()
            async with session.get(f"{base}/health") as response:
                health = await response.json()
        assert health["status"] == "healthy"
        assert health["failed_models"] == []
        assert health["models"]["florence"]["loaded"] is True
    finally:
        process.terminate()
        process.wait(timeout=30)


class _Greedy:
    """A model whose load asks Python for an exabyte: a real MemoryError, not a raised one."""

    name = "greedy"

    def load(self) -> None:
        bytearray(2**60)

    def warmup(self) -> None:
        pass

    def unload(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {"device": "cpu"}


async def test_memory_error_on_load_is_reported_as_out_of_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Python's own MemoryError (not the torch allocator's RuntimeError) is recognised too, and
    an optional model running out of memory is still logged as an error."""
    registry = ModelRegistry([ModelSpec("greedy", _Greedy, optional=True)], warmup=False)
    for attempt in (1, 2):  # asked to retry now (as POST /models/greedy/load does): it tries
        with pytest.raises(ModelUnavailableError, match="out of memory"):
            await registry.load("greedy", retry_now=True)
        errors = [r for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == attempt
        assert "greedy" in errors[-1].getMessage()
        assert "out of memory" in errors[-1].getMessage()
    assert registry.status()["greedy"]["status"] == "error"


async def test_requests_hold_off_after_a_load_runs_out_of_memory(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within LOAD_RETRY_S of running out of memory, requests get the error at once (no load:
    no new log line, the factory not called) with how long until the next try; after it, the
    next request tries again."""
    built = []

    def greedy() -> _Greedy:
        built.append(1)
        return _Greedy()

    registry = ModelRegistry([ModelSpec("greedy", greedy)], warmup=False)
    with pytest.raises(ModelUnavailableError, match="out of memory"):
        await registry.get("greedy", _Greedy)
    for _ in range(3):
        with pytest.raises(ModelUnavailableError, match="next try in 60 s") as held:
            await registry.get("greedy", _Greedy)
        assert held.value.retry_after is not None and 59 < held.value.retry_after <= 60
    assert len(built) == 1
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1
    assert registry.status()["greedy"]["status"] == "error"
    monkeypatch.setattr(registry_module, "LOAD_RETRY_S", 0.0)
    with pytest.raises(ModelUnavailableError, match="out of memory while loading"):
        await registry.get("greedy", _Greedy)
    assert len(built) == 2


async def _settled(base: str, process: subprocess.Popen[bytes], folder: Path) -> dict[str, Any]:
    """/health once start-up provisioning is over (loaded or failed), polled without blocking
    the loop (a fake hub or Supervisor in this process must keep answering)."""
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as session:
        while True:
            assert process.poll() is None, f"server exited:\n{server_log(folder)[-3000:]}"
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{base}/health") as response:
                    health: dict[str, Any] = await response.json()
                    if health["status"] != "loading":
                        return health
            assert time.monotonic() < deadline, "server did not settle in 120 s"
            await asyncio.sleep(0.25)


async def test_a_full_disk_and_a_read_only_data_folder_degrade_the_server(
    tmp_path: Path, model_cache: Path, fake_hub: FakeHub, aiohttp_server: Any
) -> None:
    """What the server writes to disk: downloaded weights and the add-on's API key. One real
    process meets both faults. The disk is full for the detector's download for real (its
    partial file is a link to /dev/full, where every write fails with ENOSPC): a logged error
    naming the model, the folder and the cause, /health degraded naming it, the process up, the
    other models serving. /data cannot take the generated API key (a regular file stands where
    the folder must be: unwritable even for root, no mount needed): the server starts anyway,
    guarded by the key, which Home Assistant receives through discovery, and logs an error
    saying the key lasts this run only."""
    folder = tmp_path / "models" / TINY_DETECTOR_REPO
    folder.mkdir(parents=True)
    (folder / "model.safetensors.part").symlink_to("/dev/full")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    supervisor = await FakeSupervisor().start(aiohttp_server)
    process, port = start_server(
        tmp_path,
        model_cache,
        RTDETR_MODEL_PATH=TINY_DETECTOR_REPO,
        HSI_MODELS_DIR=str(tmp_path / "models"),
        HSI_PRELOAD="detector",
        SUPERVISOR_TOKEN="sup-token",
        HSI_SUPERVISOR_URL=supervisor.url,
        HSI_ADDON_DATA_DIR=str(blocker / "data"),
        HSI_API_KEY="",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = await _settled(base, process, tmp_path)
        assert (health["status"], health["failed_models"]) == ("degraded", ["detector"])
        error = health["models"]["detector"]["error"]
        assert error.startswith(f"could not download detector ({TINY_DETECTOR_REPO}")
        assert f"cannot write into {folder} (No space left on device)" in error
        assert "HSI_MODELS_DIR" in error
        deadline = time.monotonic() + 30
        while not supervisor.posted:
            assert time.monotonic() < deadline, "no discovery message"
            await asyncio.sleep(0.1)
        key = supervisor.posted[0]["config"]["api_key"]
        assert len(key) >= 43
        async with aiohttp.ClientSession() as session:
            embed = f"{base}/embed"
            async with session.post(embed, json={"texts": ["a person"]}) as response:
                assert response.status == 401  # guarded
            guarded = {"Authorization": f"Bearer {key}"}
            async with session.post(
                embed, json={"texts": ["a person"]}, headers=guarded
            ) as response:
                assert response.status == 200  # CLIP (a local folder) keeps serving
            async with session.post(
                f"{base}/detect",
                data=image_bytes(),
                headers={"Content-Type": "image/jpeg", **guarded},
            ) as response:
                refused = await response.json()
                assert response.status == 503, refused
            assert "No space left on device" in refused["error"]["message"]
        assert process.poll() is None
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
    log = server_log(tmp_path)
    assert key not in log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert any("detector" in line and "No space left on device" in line for line in errors), log
    assert any(
        str(blocker / "data" / "api_key") in line
        and "Not a directory" in line
        and "this run only" in line
        for line in errors
    ), log


async def test_a_file_where_the_models_folder_must_be(
    make_client: MakeClient,
    fake_hub: FakeHub,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A models folder that cannot be created (a regular file in the way): the same degraded
    service, the cause named."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    client = await make_client(
        detector_path=TINY_DETECTOR_REPO,
        models_dir=blocker / "models",
        preload=("detector",),
        download_all=False,
    )
    health = await (await client.get("/health")).json()
    assert (health["status"], health["failed_models"]) == ("degraded", ["detector"])
    error = health["models"]["detector"]["error"]
    assert "Not a directory" in error
    assert "HSI_MODELS_DIR" in error
    assert any(
        r.levelname == "ERROR" and "Not a directory" in r.getMessage() for r in caplog.records
    )
    assert (await client.post("/embed", json={"texts": ["a person"]})).status == 200


@contextlib.asynccontextmanager
async def _stand_in_llm(mode: str) -> AsyncIterator[TestServer]:
    """An OpenAI-compatible LLM engine on 127.0.0.1 that lists its model, then answers every
    completion as `mode` says: `hang` (never), `500`, `bad json` (a stream that is not JSON)."""

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "stand-in"}]})

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        if mode == "hang":
            await asyncio.sleep(3600)  # until the test's server closes
        if mode == "500":
            return web.json_response({"error": {"message": "engine crashed"}}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices": [{"delta": {"content": "\n\n')
        return response

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


async def test_a_remote_llm_past_its_timeout_raises_a_timeout() -> None:
    """The remote engine's own client timer is a TimeoutError (and an LLMError), so it and the
    pipeline's limit, the same figure racing it, give the same label."""
    async with _stand_in_llm("hang") as server:
        backend = RemoteLLM(str(server.make_url("")), timeout=1)
        with pytest.raises(TimeoutError, match="timed out after 1 s") as raised:
            await backend.generate(GenerationRequest(messages=[{"role": "user", "content": "?"}]))
    assert isinstance(raised.value, LLMError)


@pytest.mark.parametrize(
    ("mode", "status", "reason"),
    [
        ("hang", "timeout", "the LLM took longer than 1 s"),
        ("500", "error", "answered 500"),
        ("bad json", "error", "malformed JSON"),
        ("refused", "error", "ClientConnectorError"),
    ],
)
async def test_the_rules_fallback_says_why_the_llm_failed(
    make_client: MakeClient, mode: str, status: str, reason: str
) -> None:
    """An LLM past its timeout labels the event's rules fallback `timeout`; an engine that
    fails (5xx, malformed stream, connection refused once it was up) labels it `error`."""
    async with _stand_in_llm(mode) as server:
        client = await make_client(
            llm_url=str(server.make_url("")), llm_timeout=1.0, preload=("llm",)
        )
        if mode == "refused":
            await server.close()  # the engine went away after the server found it
        response = await client.post("/analyze", json=_analyze_body())
        body = await response.json()
        assert response.status == 200, body
    assert body["risk"]["source"] == "rules"
    report = body["models"]["llm"]
    assert report["status"] == status, report
    assert reason in report["reason"]
