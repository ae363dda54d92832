"""POST /analyze end to end (tiny detector + tiny GGUF), and the LLM endpoints."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hsi_client import level_for

from ai_server.analysis import risk
from ai_server.keys import BATCHERS, REGISTRY
from ai_server.models.llm import GenerationRequest, LLMBackend, LLMError

from .conftest import MakeClient, image_bytes

Client = TestClient[web.Request, web.Application]
LEVELS = {"low", "medium", "high", "critical"}
FAST = {"enrich": False, "describe": False}


def _form(frames: list[bytes], metadata: Any) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for index, frame in enumerate(frames):
        form.add_field("frame", frame, filename=f"f{index}.jpg", content_type="image/jpeg")
    if metadata is not None:
        text = metadata if isinstance(metadata, str) else json.dumps(metadata)
        form.add_field("metadata", text, content_type="application/json")
    return form


def _metadata(**extra: Any) -> dict[str, Any]:
    return {
        "camera": {"id": "cam1", "name": "Front Door", "description": "porch"},
        "started_at": "2026-11-26T23:10:00+00:00",
        "ended_at": "2026-11-26T23:14:00+00:00",
        "context": {"time_of_day": "night", "home_mode": "away", "zones": "porch, driveway"},
        **extra,
    }


PERSON = {
    "class": "person",
    "confidence": 0.93,
    "bbox": {"x": 10, "y": 20, "width": 50, "height": 90},
}


def _check_contract(body: dict[str, Any], frames: int) -> dict[str, Any]:
    assert set(body) >= {"objects", "description", "risk", "timings_ms", "models"}
    found = body["risk"]
    assert isinstance(found["risk_score"], int) and 0 <= found["risk_score"] <= 100
    assert found["risk_level"] == level_for(found["risk_score"])
    assert found["source"] in ("llm", "rules")
    assert found["summary"] and found["reasoning"]
    for obj in body["objects"]:
        assert 0 <= obj["frame"] < frames
        assert set(obj["bbox"]) == {"x", "y", "width", "height"}
    assert body["timings_ms"]["total"] >= body["timings_ms"]["risk"]
    return found


@pytest.fixture
async def llm_client(make_client: MakeClient) -> Client:
    return await make_client(preload=("detector", "llm"))


async def test_analyze_with_client_detections_uses_the_llm(llm_client: Client) -> None:
    frames = [image_bytes(), image_bytes()]
    metadata = _metadata(detections=[[PERSON], []], options=FAST)
    answer = await llm_client.post("/analyze", data=_form(frames, metadata))
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    found = _check_contract(body, 2)
    assert found["source"] == "llm"
    assert body["objects"][0]["class"] == "person" and body["objects"][0]["frame"] == 0
    assert body["models"]["detector"]["status"] == "skipped"
    assert "detect" not in body["timings_ms"]
    llm = body["models"]["llm"]
    assert llm["status"] == "used" and llm["prompt_tokens"] > 0
    assert llm["prompt_tiers"]["event"] == "full"


async def test_analyze_without_detections_runs_the_detector(llm_client: Client) -> None:
    frames = [image_bytes(), image_bytes(fmt="PNG")]
    answer = await llm_client.post("/analyze", data=_form(frames, _metadata(options=FAST)))
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    _check_contract(body, 2)
    assert body["models"]["detector"]["status"] == "used"
    assert body["timings_ms"]["detect"] >= 0


async def test_analyze_json_body_and_every_stage(llm_client: Client) -> None:
    """JSON transport; the tiny profile has every model, so every stage runs."""
    florence = llm_client.server.app[BATCHERS].florence
    batches_before = florence.batches_run
    frames = [base64.b64encode(image_bytes()).decode()]
    answer = await llm_client.post(
        "/analyze", json={"frames_base64": frames, "metadata": _metadata()}
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    _check_contract(body, 1)
    for stage in ("enrich", "florence"):
        assert body["models"][stage]["status"] == "used", body["models"][stage]
    # The caption went through Florence-2's batcher, shared with /describe.
    assert florence.batches_run > batches_before


async def test_stages_off_score_by_rules(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    metadata = _metadata(
        detections=[[PERSON]], options={"enrich": False, "describe": False, "llm": False}
    )
    answer = await client.post("/analyze", data=_form([image_bytes()], metadata))
    body = await answer.json()
    found = _check_contract(body, 1)
    assert found["source"] == "rules"
    assert body["models"]["llm"]["status"] == "off"
    assert body["models"]["enrich"]["status"] == "off"
    assert body["models"]["florence"]["status"] == "off"
    assert body["description"] is None
    # Person (25) + night (20) + away (25) + dwell 240 s (20) = 90: critical, never a constant.
    assert found["risk_score"] == 90 and found["risk_level"] == "critical"
    assert registry_status(client, "llm") == "unloaded"  # never touched


def registry_status(client: Client, name: str) -> str:
    return str(client.app[REGISTRY].status()[name]["status"])


async def test_missing_model_path_keeps_the_server_up_with_rules(make_client: MakeClient) -> None:
    client = await make_client(llm_path="/nowhere/nemotron.gguf", preload=("detector", "llm"))
    health = await (await client.get("/health")).json()
    assert health["status"] == "degraded"
    assert health["models"]["llm"]["status"] == "error"
    assert "does not exist" in health["models"]["llm"]["error"]
    metadata = _metadata(detections=[[PERSON]], options=FAST)
    answer = await client.post("/analyze", data=_form([image_bytes()], metadata))
    assert answer.status == 200
    body = await answer.json()
    assert body["risk"]["source"] == "rules"
    assert body["models"]["llm"]["status"] == "unavailable"
    chat = await client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert chat.status == 503
    assert (await chat.json())["error"]["code"] == "model_unavailable"


class _Broken(LLMBackend):
    """A backend that fails (or hangs) the way a real one can."""

    context_size = 4096

    def __init__(self, mode: str) -> None:
        self.mode = mode

    @property
    def model_id(self) -> str:
        return "broken"

    def load(self) -> None: ...

    def warmup(self) -> None: ...

    def unload(self) -> None: ...

    def info(self) -> dict[str, Any]:
        return {"device": "cpu"}

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Any, None]:
        if self.mode == "hang":
            await asyncio.sleep(60)
        if self.mode == "garbage":
            from ai_server.models.llm import Delta

            yield Delta("not json at all", "stop")
            return
        raise LLMError("backend exploded")
        yield  # pragma: no cover - makes this an async generator


@pytest.mark.parametrize(
    ("mode", "status"), [("raise", "error"), ("hang", "timeout"), ("garbage", "invalid_output")]
)
async def test_llm_failures_fall_back_to_rules(
    make_client: MakeClient, mode: str, status: str
) -> None:
    client = await make_client(preload=(), llm_timeout=1.0)
    registry = client.app[REGISTRY]
    slot = registry._slots["llm"]  # swap in a failing backend, keeping the real registry
    slot.spec = type(slot.spec)("llm", lambda: _Broken(mode), priority=40)
    metadata = _metadata(detections=[[PERSON]], options=FAST)
    answer = await client.post("/analyze", data=_form([image_bytes()], metadata))
    assert answer.status == 200
    body = await answer.json()
    assert body["risk"]["source"] == "rules"
    assert body["models"]["llm"]["status"] == status
    assert body["risk"]["risk_score"] == 90


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({"camera": "front"}, "metadata.camera must be an object"),
        ({"detections": [[PERSON], []]}, "2 entries for 1 frame"),
        ({"detections": [[{"class": "person", "bbox": {"x": 1}}]]}, "bbox.y must be a number"),
        ({"detections": [[dict(PERSON, confidence=3)]]}, "between 0 and 1"),
        ({"options": {"llm": "yes"}}, "metadata.options.llm must be true or false"),
        ({"started_at": "yesterday"}, "ISO 8601"),
        (
            {"started_at": "2026-01-01T10:00:00", "ended_at": "2026-01-01T09:00:00"},
            "before",
        ),
    ],
)
async def test_malformed_metadata_is_422(
    make_client: MakeClient, metadata: Any, message: str
) -> None:
    client = await make_client(preload=())
    answer = await client.post("/analyze", data=_form([image_bytes()], metadata))
    assert answer.status == 422
    error = (await answer.json())["error"]
    assert error["code"] == "validation_error"
    assert message in error["message"]


async def test_zero_and_too_many_frames_are_422(make_client: MakeClient) -> None:
    client = await make_client(preload=(), analyze_max_frames=2)
    none = await client.post("/analyze", data=_form([], _metadata()))
    assert none.status == 422
    assert "no frames" in (await none.json())["error"]["message"]
    many = await client.post("/analyze", data=_form([image_bytes()] * 3, _metadata()))
    assert many.status == 422
    assert "limit is 2" in (await many.json())["error"]["message"]
    json_none = await client.post("/analyze", json={"frames_base64": [], "metadata": {}})
    assert json_none.status == 422


async def test_bad_frame_and_bad_transport(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    bad = await client.post("/analyze", data=_form([b"GIF89a..."], _metadata()))
    assert bad.status == 415
    assert "frame 0" in (await bad.json())["error"]["message"]
    raw = await client.post("/analyze", data=b"x", headers={"Content-Type": "text/plain"})
    assert raw.status == 415


# --- /completion and /v1/chat/completions -----------------------------------------------------


async def _sse(answer: aiohttp.ClientResponse) -> list[str]:
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    text = await answer.text()
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


async def test_completion_llama_cpp_shape(llm_client: Client) -> None:
    answer = await llm_client.post("/completion", json={"prompt": "Hello", "n_predict": 6})
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert body["stop"] is True and isinstance(body["content"], str)
    assert body["stop_type"] == "limit"
    assert body["tokens_evaluated"] > 0 and body["timings"]["predicted_n"] > 0


async def test_completion_with_json_schema_and_streaming(llm_client: Client) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "enum": [1, 2, 3]}},
        "required": ["n"],
        "additionalProperties": False,
    }
    plain = await llm_client.post(
        "/completion", json={"prompt": "n?", "n_predict": 64, "json_schema": schema}
    )
    jsonschema.validate(json.loads((await plain.json())["content"]), schema)
    answer = await llm_client.post(
        "/completion", json={"prompt": "n?", "n_predict": 64, "json_schema": schema, "stream": True}
    )
    events = [json.loads(data) for data in await _sse(answer)]
    assert events[-1]["stop"] is True
    assert all(e["stop"] is False for e in events[:-1])
    text = "".join(e["content"] for e in events[:-1])
    jsonschema.validate(json.loads(text), schema)


async def test_chat_completions_openai_shape(llm_client: Client) -> None:
    request = {
        "model": "anything",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 400,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": risk.RISK_SCHEMA},
        },
    }
    answer = await llm_client.post("/v1/chat/completions", json=request)
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert (
        body["usage"]["total_tokens"]
        == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    if choice["finish_reason"] == "stop":
        jsonschema.validate(json.loads(choice["message"]["content"]), risk.RISK_SCHEMA)


async def test_chat_completions_streaming(llm_client: Client) -> None:
    request = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "stream": True}
    answer = await llm_client.post("/v1/chat/completions", json=request)
    events = await _sse(answer)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": []}),
        ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "temperature": 9},
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}},
        ),
        ("/completion", {"prompt": ""}),
        ("/completion", {"prompt": "x", "n_predict": 0}),
        ("/completion", {"prompt": "x", "stream": "yes"}),
    ],
)
async def test_llm_endpoints_validate_requests(
    make_client: MakeClient, path: str, body: dict[str, Any]
) -> None:
    client = await make_client(preload=())
    answer = await client.post(path, json=body)
    assert answer.status == 422
    assert (await answer.json())["error"]["code"] == "validation_error"
