"""The LLM on the shared port, in the shapes existing tools expect.

- `POST /completion`: llama.cpp server's native endpoint (`prompt`, `n_predict`, `stream`,
  `json_schema`, ...), as the original Nemotron service answered it.
- `POST /v1/chat/completions`: the OpenAI chat API (`messages`, `max_tokens`, `stream`,
  `response_format` incl. `json_schema`), streamed as server-sent events when asked.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any

from aiohttp import web

from ..errors import ApiError, unavailable, unprocessable
from ..imaging import read_json
from ..keys import REGISTRY, SETTINGS
from ..models.llm import (
    Completion,
    Delta,
    GenerationRequest,
    LLMBackend,
    LLMError,
    LLMRequestError,
    Usage,
)

routes = web.RouteTableDef()

MAX_PREDICT = 4096  # generated tokens per request; the context bounds it further
_ROLES = frozenset({"system", "user", "assistant"})


# --- request parsing ------------------------------------------------------------------------


def _number(body: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise unprocessable(f"{key} must be a number between {lo:g} and {hi:g}")
    return float(value)


def _int(body: Mapping[str, Any], keys: tuple[str, ...], default: int) -> int:
    """The first of `keys` that is set; every one that is set must be valid."""
    found: list[int] = []
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise unprocessable(f"{key} must be an integer")
        if value == 0 or value > MAX_PREDICT:
            raise unprocessable(f"{key} must be between 1 and {MAX_PREDICT} (or -1)")
        found.append(default if value < 0 else value)  # llama.cpp: -1 = until the context is full
    return found[0] if found else default


_UNSET = -1  # no max_tokens in the request (or a negative one: "until the context is full")


def _with_default_tokens(
    generation: GenerationRequest, backend: LLMBackend, default: int
) -> GenerationRequest:
    """A request without a token limit gets `default`, at most half the backend's context: a
    client that sets none is never refused because the server's default does not fit."""
    if generation.max_tokens != _UNSET:
        return generation
    return replace(generation, max_tokens=max(1, min(default, backend.context_size // 2)))


def _stop(body: Mapping[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and len(value) <= 8:
        return tuple(value)
    raise unprocessable("stop must be a string or a list of at most 8 strings")


def _seed(body: Mapping[str, Any]) -> int | None:
    value = body.get("seed")
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value < 0):
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise unprocessable("seed must be an integer")
    return value


def _stream(body: Mapping[str, Any]) -> bool:
    value = body.get("stream", False)
    if not isinstance(value, bool):
        raise unprocessable("stream must be true or false")
    return value


def _schema(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise unprocessable(f"{name} must be a JSON schema object")
    return value


def _response_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise unprocessable("response_format.type must be text, json_object or json_schema")
    # Checked whatever the type, so that a malformed field is never silently ignored.
    _schema(fmt.get("schema"), "response_format.schema")
    spec = fmt.get("json_schema")
    if spec is not None:
        if not isinstance(spec, dict):
            raise unprocessable("response_format.json_schema must be an object with a schema")
        _schema(spec.get("schema"), "response_format.json_schema.schema")
    if fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":  # any object, or the schema llama-cpp-python accepts here
        return _schema(fmt.get("schema"), "response_format.schema") or {"type": "object"}
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise unprocessable("response_format.json_schema must be an object with a schema")
    return _schema(spec.get("schema"), "response_format.json_schema.schema") or {"type": "object"}


def _messages(body: Mapping[str, Any]) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise unprocessable("messages must be a non-empty list of {role, content}")
    parsed = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(role, str) or role not in _ROLES:  # a dict role is unhashable
            raise unprocessable(f"messages[{i}].role must be one of system, user, assistant")
        content = message.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            content = "".join(
                str(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
        if not isinstance(content, str):
            raise unprocessable(f"messages[{i}].content must be a string")
        parsed.append({"role": str(message["role"]), "content": content})
    return parsed


def _backend(request: web.Request) -> AbstractAsyncContextManager[LLMBackend]:
    """The LLM, loaded if needed and kept resident while the request uses it."""
    return request.app[REGISTRY].use(LLMBackend.name, LLMBackend)  # type: ignore[type-abstract]


def _llm_failure(err: Exception, timeout: float) -> ApiError:
    if isinstance(err, LLMRequestError):
        return unprocessable(str(err))
    if isinstance(err, TimeoutError):
        return unavailable("llm_timeout", f"the LLM took longer than {timeout:g} s", retry_after=5)
    return unavailable("llm_error", str(err), retry_after=5)


async def _sse(
    request: web.Request, events: AsyncIterator[dict[str, Any] | str]
) -> web.StreamResponse:
    """Send `events` as server-sent events; a failure mid-stream becomes an error event."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        async for event in events:
            data = event if isinstance(event, str) else json.dumps(event)
            await response.write(f"data: {data}\n\n".encode())
    except (LLMError, TimeoutError) as err:
        failure = _llm_failure(err, request.app[SETTINGS].llm_timeout)
        await response.write(f"data: {json.dumps(failure.body())}\n\n".encode())
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
    await response.write_eof()
    return response


async def _timed(
    backend: LLMBackend, request: GenerationRequest, limit_s: float
) -> AsyncGenerator[Delta, None]:
    """The backend's stream under the overall time limit."""
    stream = backend.stream(request)
    try:
        async with asyncio.timeout(limit_s):
            async for delta in stream:
                yield delta
    finally:
        await stream.aclose()


async def _complete(backend: LLMBackend, request: GenerationRequest, limit_s: float) -> Completion:
    try:
        async with asyncio.timeout(limit_s):
            return await backend.generate(request)
    except (LLMError, TimeoutError) as err:
        raise _llm_failure(err, limit_s) from None


# --- POST /completion (llama.cpp) ------------------------------------------------------------


def _llama_stop_type(finish: str) -> str:
    return {"length": "limit", "stop": "eos"}.get(finish, finish)


def _llama_final(completion: Completion, started: float) -> dict[str, Any]:
    usage = completion.usage
    evaluated = usage.prompt_tokens_evaluated
    return {
        "content": completion.text,
        "stop": True,
        "model": completion.model,
        "stop_type": _llama_stop_type(completion.finish_reason),
        "tokens_predicted": usage.completion_tokens,
        "tokens_evaluated": usage.prompt_tokens,
        "tokens_cached": usage.prompt_tokens - evaluated if evaluated is not None else 0,
        "truncated": False,
        "timings": {
            "prompt_n": evaluated if evaluated is not None else usage.prompt_tokens,
            "predicted_n": usage.completion_tokens,
            "total_ms": round(1000 * (time.perf_counter() - started), 2),
        },
    }


@routes.post("/completion")
async def completion(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise unprocessable("prompt must be a non-empty string")
    generation = GenerationRequest(
        prompt=prompt,
        max_tokens=_int(body, ("n_predict", "max_tokens"), _UNSET),
        temperature=_number(body, "temperature", 0.8, 0, 5),
        top_p=_number(body, "top_p", 0.95, 0, 1),
        stop=_stop(body),
        json_schema=_schema(body.get("json_schema"), "json_schema"),
        seed=_seed(body),
    )
    stream = _stream(body)
    timeout = request.app[SETTINGS].llm_timeout
    started = time.perf_counter()
    async with _backend(request) as backend:
        generation = _with_default_tokens(generation, backend, 256)
        if not stream:
            result = await _complete(backend, generation, timeout)
            return web.json_response(_llama_final(result, started))
        return await _sse(request, _llama_events(backend, generation, timeout, started))


async def _llama_events(
    backend: LLMBackend, generation: GenerationRequest, limit_s: float, started: float
) -> AsyncGenerator[dict[str, Any] | str, None]:
    async for delta in _timed(backend, generation, limit_s):
        if delta.text:
            yield {"content": delta.text, "stop": False}
        if delta.finish_reason is not None:
            final = Completion("", delta.finish_reason, delta.usage or Usage(), backend.model_id)
            yield _llama_final(final, started)


# --- POST /v1/chat/completions (OpenAI) -------------------------------------------------------


def _openai_usage(completion: Completion) -> dict[str, Any]:
    usage = completion.usage
    data: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
    if usage.prompt_tokens_evaluated is not None:
        cached = usage.prompt_tokens - usage.prompt_tokens_evaluated
        data["prompt_tokens_details"] = {"cached_tokens": cached}
    return data


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    generation = GenerationRequest(
        messages=_messages(body),
        max_tokens=_int(body, ("max_completion_tokens", "max_tokens"), _UNSET),
        temperature=_number(body, "temperature", 0.7, 0, 2),
        top_p=_number(body, "top_p", 0.95, 0, 1),
        stop=_stop(body),
        json_schema=_response_format(body),
        seed=_seed(body),
    )
    stream = _stream(body)
    timeout = request.app[SETTINGS].llm_timeout
    async with _backend(request) as backend:
        generation = _with_default_tokens(generation, backend, 512)
        return await _chat(request, backend, generation, stream, timeout)


async def _chat(
    request: web.Request,
    backend: LLMBackend,
    generation: GenerationRequest,
    stream: bool,
    limit_s: float,
) -> web.StreamResponse:
    timeout = limit_s
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not stream:
        result = await _complete(backend, generation, timeout)
        return web.json_response(
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": result.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": result.text},
                        "finish_reason": result.finish_reason,
                    }
                ],
                "usage": _openai_usage(result),
            }
        )

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": backend.model_id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    async def events() -> AsyncIterator[dict[str, Any] | str]:
        yield chunk({"role": "assistant", "content": ""}, None)
        async for delta in _timed(backend, generation, timeout):
            if delta.text:
                yield chunk({"content": delta.text}, None)
            if delta.finish_reason is not None:
                final = chunk({}, delta.finish_reason)
                done = Completion("", delta.finish_reason, delta.usage or Usage(), "")
                final["usage"] = _openai_usage(done)
                yield final
        yield "[DONE]"

    return await _sse(request, events())
