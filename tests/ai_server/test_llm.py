"""LLM backends: a real tiny GGUF through llama-cpp-python, and a fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hsi_client import level_for

from ai_server.analysis import risk
from ai_server.models import llm as llm_module
from ai_server.models import tiny
from ai_server.models.base import ModelLoadError
from ai_server.models.llm import (
    GenerationRequest,
    LlamaCppLLM,
    LLMError,
    RemoteLLM,
    kv_cache_bytes,
    resolve_gguf,
)

SYSTEM = "You are the risk analyst of a home security system. " * 20


@pytest.fixture(scope="session")
def gguf_path(model_cache: Path) -> Path:
    return tiny.make_tiny_models(model_cache / "tiny", ["llm"])["llm"] / tiny.TINY_LLM_FILE


@pytest.fixture
def local_llm(gguf_path: Path) -> Iterator[LlamaCppLLM]:
    model = LlamaCppLLM(str(gguf_path), slots=1)
    model.load()
    yield model
    model.unload()


def _chat(user: str, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        **kwargs,
    )


def test_tiny_gguf_is_a_real_gguf_file(gguf_path: Path) -> None:
    assert gguf_path.read_bytes()[:4] == b"GGUF"
    assert resolve_gguf(str(gguf_path.parent)) == str(gguf_path)


@pytest.mark.parametrize("source", ["/nowhere/model.gguf", "./missing.gguf", "a/b/c/d"])
def test_missing_model_file_is_a_load_error(source: str) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        LlamaCppLLM(source).load()


def test_folder_without_gguf_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no \.gguf"):
        resolve_gguf(str(tmp_path))


@pytest.mark.parametrize("seed", range(6))
async def test_constrained_output_parses_and_satisfies_the_schema(
    local_llm: LlamaCppLLM, seed: int
) -> None:
    """Random weights say nothing sensible, yet the grammar makes every answer a valid one."""
    request = _chat(
        f"Event {seed}: a person at the front door at night.",
        max_tokens=risk.RISK_MAX_TOKENS,
        temperature=1.0,
        seed=seed,
        json_schema=risk.RISK_SCHEMA,
    )
    completion = await local_llm.generate(request)
    assert completion.finish_reason == "stop"  # closed by the grammar, never cut off
    data = json.loads(completion.text)
    jsonschema.validate(data, risk.RISK_SCHEMA)
    assessment = risk.parse_llm_output(completion.text)
    assert assessment.source == "llm"
    assert assessment.risk_level == level_for(assessment.risk_score)


async def test_prefix_cache_evaluates_only_the_new_part(local_llm: LlamaCppLLM) -> None:
    first = await local_llm.generate(_chat("a person at the door", max_tokens=4))
    second = await local_llm.generate(_chat("a car in the driveway", max_tokens=4))
    assert first.usage.prompt_tokens_evaluated == first.usage.prompt_tokens
    assert second.usage.prompt_tokens_evaluated is not None
    assert second.usage.prompt_tokens_evaluated < second.usage.prompt_tokens * 0.2


async def test_without_prefix_cache_every_token_is_evaluated(gguf_path: Path) -> None:
    model = LlamaCppLLM(str(gguf_path), slots=1, prefix_cache=False)
    model.load()
    try:
        await model.generate(_chat("a person at the door", max_tokens=4))
        again = await model.generate(_chat("a car in the driveway", max_tokens=4))
    finally:
        model.unload()
    assert again.usage.prompt_tokens_evaluated == again.usage.prompt_tokens


async def test_raw_prompt_completion_respects_max_tokens(local_llm: LlamaCppLLM) -> None:
    completion = await local_llm.generate(
        GenerationRequest(prompt="Once upon a time", max_tokens=5, seed=1)
    )
    assert completion.finish_reason == "length"
    assert completion.usage.prompt_tokens > 0
    assert completion.model == tiny.TINY_LLM_FILE


async def test_concurrent_requests_share_the_slots(gguf_path: Path) -> None:
    model = LlamaCppLLM(str(gguf_path), slots=2)
    model.load()
    try:
        results = await asyncio.gather(
            *(model.generate(GenerationRequest(prompt=f"x {i}", max_tokens=8)) for i in range(6))
        )
    finally:
        model.unload()
    assert all(r.usage.completion_tokens > 0 for r in results)


async def test_closing_a_stream_stops_generation_and_frees_the_slot(
    local_llm: LlamaCppLLM,
) -> None:
    stream = local_llm.stream(GenerationRequest(prompt="count", max_tokens=2000))
    await anext(stream)
    await stream.aclose()
    # The only slot is free again: a new request completes at once.
    done = await asyncio.wait_for(
        local_llm.generate(GenerationRequest(prompt="x", max_tokens=2)), 10
    )
    assert done.finish_reason == "length"


class _SetAfter(threading.Event):
    """An event that reads as set from its (checks + 1)-th check on: cancels at a known step."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = checks

    def is_set(self) -> bool:
        self.checks -= 1
        return self.checks < 0


def test_prefill_stops_between_steps_and_resumes_where_it_stopped(
    local_llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm_module, "PREFILL_STEP", 8)
    context = local_llm._contexts[0]
    context.reset()
    tokens = context.tokenize(SYSTEM.encode(), special=True)
    assert len(tokens) > 40
    with pytest.raises(llm_module._Stop):
        llm_module._interruptible_eval(context, _SetAfter(3))(tokens)
    assert context.n_tokens == 3 * 8  # three steps evaluated, none after the cancel
    llm_module._interruptible_eval(context, threading.Event())(tokens[24:])
    assert context.n_tokens == len(tokens)
    assert list(context.input_ids[: len(tokens)]) == tokens


async def test_a_cancelled_prefill_stops_and_the_context_stays_consistent(
    local_llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generation cancelled mid-prompt (its caller timed out) stops at the next step, gives
    the context back with llama-cpp's own eval, and the next request on it (reusing the part
    evaluated, prefix cache on) answers exactly as a fresh context does."""
    monkeypatch.setattr(llm_module, "PREFILL_STEP", 8)
    request = GenerationRequest(prompt=SYSTEM + "What now?", max_tokens=12, temperature=0)
    context = local_llm._contexts[0]
    context.reset()
    fresh = await local_llm.generate(request)
    context.reset()
    job = llm_module._Job(request, asyncio.get_running_loop(), asyncio.Queue())
    job.cancel = _SetAfter(2)
    with pytest.raises(llm_module._Stop):
        list(local_llm._generate(context, job))
    assert context.n_tokens == 2 * 8
    assert "eval" not in vars(context)  # llama-cpp's own eval again
    again = await local_llm.generate(request)
    assert again.text == fresh.text
    assert again.usage.prompt_tokens_evaluated == again.usage.prompt_tokens - 2 * 8


async def test_prompt_longer_than_the_context_is_an_error(local_llm: LlamaCppLLM) -> None:
    with pytest.raises(LLMError, match="exceeds the context"):
        await local_llm.generate(GenerationRequest(prompt="word " * 5000, max_tokens=8))


def test_kv_cache_size_from_the_gguf_header() -> None:
    # Nemotron Mini 4B's shape: 32 layers, width 3072, 24 heads sharing 8 KV heads.
    header = {
        "general.architecture": "nemotron",
        "nemotron.block_count": "32",
        "nemotron.embedding_length": "3072",
        "nemotron.attention.head_count": "24",
        "nemotron.attention.head_count_kv": "8",
    }
    assert kv_cache_bytes(header, 4096) == 2**29  # 0.5 GiB of f16 keys and values
    assert kv_cache_bytes({}, 4096) == 0


def test_memory_is_measured_for_the_budget(gguf_path: Path) -> None:
    model = LlamaCppLLM(str(gguf_path), slots=2, context_size=512)
    assert model.memory_bytes() == 0
    model.load()
    try:
        context = model._contexts[0]
        per_slot_kv = kv_cache_bytes(context.metadata, context.n_ctx())
        assert per_slot_kv > 0
        # CPU: the weights are mapped once, each slot has its own KV cache.
        assert model.memory_bytes() == gguf_path.stat().st_size + 2 * per_slot_kv
    finally:
        model.unload()
    assert model.memory_bytes() == 0


def test_token_count_uses_the_model_tokenizer(local_llm: LlamaCppLLM) -> None:
    text = "A person was detected at the front door at night."
    assert 0 < local_llm.count_tokens(text) < len(text)


# --- remote backend against a fake OpenAI-compatible server -----------------------------------

Handler = Callable[[web.Request], Any]


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[..., Any]]:
    servers: list[TestServer] = []

    async def start(chat: Handler | None = None, models_status: int = 200) -> str:
        async def models(request: web.Request) -> web.Response:
            if models_status != 200:
                return web.json_response({"error": "nope"}, status=models_status)
            return web.json_response({"data": [{"id": "nemotron-mini"}]})

        async def default_chat(request: web.Request) -> web.StreamResponse:
            await request.json()
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for piece in ['{"risk_score": 72, ', '"summary": "x", "reasoning": "y"}']:
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            final = {
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": 100,
                    "completion_tokens": 9,
                    "prompt_tokens_details": {"cached_tokens": 90},
                },
            }
            await response.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
            return response

        app = web.Application()
        app.router.add_get("/v1/models", models)
        app.router.add_post("/v1/chat/completions", chat or default_chat)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


async def test_remote_backend_streams_and_sends_the_schema(
    fake_server: Callable[..., Any],
) -> None:
    url = await fake_server()
    backend = RemoteLLM(url + "/v1", api_key="secret", timeout=5)
    await asyncio.to_thread(backend.load)
    assert backend.model_id == "nemotron-mini"
    completion = await backend.generate(_chat("hi", json_schema=risk.RISK_SCHEMA))
    assert json.loads(completion.text)["risk_score"] == 72
    assert completion.finish_reason == "stop"
    assert completion.usage.prompt_tokens == 100
    assert completion.usage.prompt_tokens_evaluated == 10


async def test_remote_backend_request_shape(fake_server: Callable[..., Any]) -> None:
    captured: dict[str, Any] = {}

    async def chat(request: web.Request) -> web.Response:
        captured["auth"] = request.headers.get("Authorization")
        captured["body"] = await request.json()
        return web.json_response(
            {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}
        )

    url = await fake_server(chat)
    backend = RemoteLLM(url, model="m", api_key="k", timeout=5)
    completion = await backend.generate(_chat("hi", json_schema={"type": "object"}, stop=["\n"]))
    assert completion.text == "ok"  # a plain JSON answer is understood as well
    assert captured["auth"] == "Bearer k"
    body = captured["body"]
    assert body["model"] == "m"
    assert body["stop"] == ["\n"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert body["messages"][1] == {"role": "user", "content": "hi"}


async def test_remote_backend_http_error_is_an_llm_error(fake_server: Callable[..., Any]) -> None:
    async def chat(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "model overloaded"}}, status=500)

    backend = RemoteLLM(await fake_server(chat), timeout=5)
    with pytest.raises(LLMError, match="500"):
        await backend.generate(_chat("hi"))


async def test_remote_backend_malformed_stream_is_an_llm_error(
    fake_server: Callable[..., Any],
) -> None:
    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: {not json\n\n")
        return response

    backend = RemoteLLM(await fake_server(chat), timeout=5)
    with pytest.raises(LLMError, match="malformed"):
        await backend.generate(_chat("hi"))


async def test_remote_backend_timeout_is_an_llm_error(fake_server: Callable[..., Any]) -> None:
    async def chat(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    backend = RemoteLLM(await fake_server(chat), timeout=1)
    with pytest.raises(LLMError, match="timed out"):
        await backend.generate(_chat("hi"))


async def test_remote_load_fails_when_unreachable_or_refused(
    fake_server: Callable[..., Any], unused_tcp_port: int
) -> None:
    with pytest.raises(ModelLoadError, match="unreachable"):
        await asyncio.to_thread(RemoteLLM(f"http://127.0.0.1:{unused_tcp_port}", timeout=2).load)
    url = await fake_server(models_status=401)
    with pytest.raises(ModelLoadError, match="401"):
        await asyncio.to_thread(RemoteLLM(url, timeout=2).load)
