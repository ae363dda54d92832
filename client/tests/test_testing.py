"""The fake server of hsi_client.testing: what a test can set up, script and read back."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from hsi_client import (
    EventMetadata,
    HsiClient,
    HsiNotSupportedError,
    HsiResponseError,
)
from hsi_client.testing import (
    HEALTHY,
    JPEG,
    PNG,
    RISK,
    Answer,
    FakeServer,
    ReceivedFrame,
    detection,
    unit,
)


def form(*parts: tuple[str, Any, str]) -> aiohttp.FormData:
    """A multipart body of (name, value, content type) fields."""
    data = aiohttp.FormData()
    for name, value, content_type in parts:
        filename = f"{name}.bin" if isinstance(value, bytes) else None
        data.add_field(name, value, content_type=content_type, filename=filename)
    return data


async def post(
    session: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """Status and JSON answer of one POST."""
    async with session.post(url, **kwargs) as response:
        return response.status, await response.json()


def test_samples() -> None:
    """The sample payloads and helpers."""
    assert HEALTHY["status"] == "healthy"
    assert RISK["risk_level"] == "high"
    assert unit(1, 3) == [0.0, 1.0, 0.0]
    assert detection("car", 0.5, [1.0], (1, 2, 3, 4)) == {
        "class": "car",
        "confidence": 0.5,
        "bbox": {"x": 1, "y": 2, "width": 3, "height": 4},
        "embedding": [1.0],
    }
    assert "embedding" not in detection()


async def test_fresh_state_is_a_copy(fake_server: FakeServer) -> None:
    """A test that changes the health of its server leaves the sample and other servers alone."""
    fake_server.health["models"]["llm"]["loaded"] = True
    assert HEALTHY["models"]["llm"]["loaded"] is False
    assert FakeServer().health["models"]["llm"]["loaded"] is False


async def test_down(api: HsiClient, fake_server: FakeServer) -> None:
    """Down: every path answers 503 in plain text, and the requests are still recorded."""
    fake_server.down = True
    with pytest.raises(HsiResponseError) as caught:
        await api.health()
    assert (caught.value.status, caught.value.message) == (503, "down")
    with pytest.raises(HsiResponseError):
        await api.detect(JPEG)
    assert [(r.method, r.path) for r in fake_server.requests] == [
        ("GET", "/health"),
        ("POST", "/detect"),
    ]
    fake_server.down = False
    assert (await api.health()).status == "healthy"
    assert fake_server.count("/health") == 2
    assert fake_server.count("/detect") == 1


async def test_health_status_and_models(
    fake_server: FakeServer, session: aiohttp.ClientSession
) -> None:
    """/health answers `health` with `health_status`; /models lists the models of `health`."""
    fake_server.health_status = 503
    fake_server.health["status"] = "loading"
    async with session.get(f"{fake_server.url}/health") as response:
        assert response.status == 503
        assert (await response.json())["status"] == "loading"
    del fake_server.health["models"]
    async with session.get(f"{fake_server.url}/models") as response:
        assert await response.json() == {"device": "cpu", "models": {}}


async def test_record(fake_server: FakeServer, session: aiohttp.ClientSession) -> None:
    """Method, path, query, headers (any case) and body of each request."""
    async with session.post(
        f"{fake_server.url}/detect?confidence=0.3", data=PNG, headers={"X-Test": "1"}
    ):
        pass
    request = fake_server.last
    assert (request.method, request.path, request.query) == (
        "POST",
        "/detect",
        {"confidence": "0.3"},
    )
    assert request.headers["x-test"] == request.headers["X-Test"] == "1"
    assert request.body == PNG


async def test_detections_queue_then_default(api: HsiClient, fake_server: FakeServer) -> None:
    """`detections` answer the next requests in order, then `default_detections` every time."""
    fake_server.detections = [[detection("person")], [detection("car"), detection("dog")]]
    fake_server.default_detections = [detection("cat")]
    labels = [[d.label for d in (await api.detect(JPEG)).detections] for _ in range(4)]
    assert labels == [["person"], ["car", "dog"], ["cat"], ["cat"]]
    assert fake_server.detections == []


async def test_detect_busy(api: HsiClient, fake_server: FakeServer) -> None:
    """`detect_busy` answers 503 queue_full with Retry-After: 1 that many times first."""
    fake_server.detect_busy = 2
    fake_server.default_detections = [detection("person")]
    for _ in range(2):
        with pytest.raises(HsiResponseError) as caught:
            await api.detect(JPEG)
        assert (caught.value.status, caught.value.code) == (503, "queue_full")
        assert caught.value.retry_after == 1.0
        assert caught.value.transient
    assert len((await api.detect(JPEG)).detections) == 1
    assert fake_server.count("/detect") == 3
    assert fake_server.detect_busy == 0


async def test_detect_needs_a_body(fake_server: FakeServer, session: aiohttp.ClientSession) -> None:
    """No image: 422, as the real server answers."""
    status, body = await post(session, f"{fake_server.url}/detect", data=b"")
    assert (status, body["error"]["code"]) == (422, "validation_error")


async def test_analyze_failures_status_and_risk(api: HsiClient, fake_server: FakeServer) -> None:
    """Failures first (503 busy), then the scripted status; each call is recorded."""
    fake_server.analyze_failures = 1
    with pytest.raises(HsiResponseError) as caught:
        await api.analyze([JPEG], EventMetadata())
    assert (caught.value.status, caught.value.code) == (503, "busy")

    fake_server.analyze_risk = dict(RISK) | {"risk_score": 90, "risk_level": "critical"}
    result = await api.analyze([JPEG, PNG], EventMetadata())
    assert (result.risk.risk_score, result.risk.risk_level) == (90, "critical")

    fake_server.analyze_status = 404
    with pytest.raises(HsiNotSupportedError) as not_supported:
        await api.analyze([JPEG], EventMetadata())
    assert not_supported.value.code == "failed"
    assert [len(call.frames) for call in fake_server.analyze_calls] == [1, 2, 1]
    assert fake_server.analyze_calls[1].frames[1] == ReceivedFrame("frame1.png", "image/png", PNG)
    assert fake_server.analyze_calls[1].metadata == EventMetadata().as_dict()
    assert fake_server.last.body == b""  # multipart: the parts are in analyze_calls


@pytest.mark.parametrize(
    ("parts", "status"),
    [
        ((("metadata", "{}", "application/json"),), 422),  # no frame
        ((("frame", JPEG, "image/jpeg"), ("metadata", "{}", "text/plain")), 422),
        ((("frame", JPEG, "image/jpeg"), ("metadata", "{", "application/json")), 422),
        ((("frame", JPEG, "image/jpeg"), ("metadata", "[]", "application/json")), 422),
    ],
)
async def test_analyze_refuses_what_the_contract_does_not_allow(
    fake_server: FakeServer,
    session: aiohttp.ClientSession,
    parts: tuple[tuple[str, Any, str], ...],
    status: int,
) -> None:
    """At least one frame, and the metadata as one JSON object part; nothing is recorded."""
    answer, body = await post(session, f"{fake_server.url}/analyze", data=form(*parts))
    assert (answer, body["error"]["code"]) == (status, "validation_error")
    assert fake_server.analyze_calls == []


async def test_analyze_wants_multipart(
    fake_server: FakeServer, session: aiohttp.ClientSession
) -> None:
    """A JSON body is no multipart request."""
    status, body = await post(session, f"{fake_server.url}/analyze", json={"frames_base64": []})
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")


async def test_analyze_skips_other_parts(
    fake_server: FakeServer, session: aiohttp.ClientSession
) -> None:
    """Parts that are no frame and no metadata (a nested multipart, a note) are left out."""
    with aiohttp.MultipartWriter("form-data") as body:
        frame = body.append(JPEG, {"Content-Type": "image/jpeg"})
        frame.set_content_disposition("form-data", name="frame", filename="a.jpeg")
        with aiohttp.MultipartWriter("mixed") as nested:
            nested.append("inner")
        body.append(nested)
        note = body.append("a note")
        note.set_content_disposition("form-data", name="note")
    status, answer = await post(session, f"{fake_server.url}/analyze", data=body)
    assert status == 200
    assert answer["risk"] == dict(RISK)
    (call,) = fake_server.analyze_calls
    assert call.frames == [ReceivedFrame("a.jpeg", "image/jpeg", JPEG)]
    assert call.metadata == {}


async def test_embed_vector(api: HsiClient, fake_server: FakeServer) -> None:
    """`embed_vector`: the embedding of every image; texts get unit vectors of its dimension."""
    fake_server.embed_vector = [0.6, 0.8, 0.0, 0.0]
    result = await api.embed(images=[JPEG, PNG], texts=["a", "b"])
    assert result.image_embeddings == [(0.6, 0.8, 0.0, 0.0)] * 2
    assert result.text_embeddings == [tuple(unit(3, 4)), tuple(unit(2, 4))]
    assert result.dim == 4


@pytest.mark.parametrize("data", [b"{", b"[1]"])
async def test_embed_wants_a_json_object(
    fake_server: FakeServer, session: aiohttp.ClientSession, data: bytes
) -> None:
    """Not JSON, or not an object: 422."""
    status, body = await post(
        session,
        f"{fake_server.url}/embed",
        data=data,
        headers={"Content-Type": "application/json"},
    )
    assert (status, body["error"]["code"]) == (422, "validation_error")


async def test_answer_any_case(api: HsiClient, fake_server: FakeServer) -> None:
    """A scripted answer's method is matched in any case; the route's own answer is replaced."""
    fake_server.answer("get", "/health", Answer(json=dict(HEALTHY) | {"status": "loading"}))
    assert (await api.health()).status == "loading"


def test_error_document() -> None:
    """The contract's error document, with the code as the default message."""
    assert json.loads(FakeServer.error(400, "bad", "why").text or "") == {
        "error": {"code": "bad", "message": "why"}
    }
    assert json.loads(FakeServer.error(400, "bad").text or "") == {
        "error": {"code": "bad", "message": "bad"}
    }
