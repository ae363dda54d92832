"""The HTTP client against a fake server: contract parsing, the API key and every failure mode."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from hsi_client import (
    AnalysisResult,
    AnalyzedObject,
    BoundingBox,
    CameraInfo,
    EventContext,
    EventMetadata,
    Health,
    HsiAuthError,
    HsiClient,
    HsiConnectionError,
    HsiError,
    HsiInvalidResponseError,
    HsiNotSupportedError,
    HsiResponseError,
    KnownMatch,
    image_content_type,
)
from hsi_client import client as client_module
from hsi_client.testing import JPEG, PNG, WEBP, Answer, FakeServer, detection, unit


async def test_health_and_models(api: HsiClient) -> None:
    """Health and models parse into dataclasses; the latency of the last request is kept."""
    assert api.last_latency_ms is None
    health = await api.validate()
    assert isinstance(health, Health)
    assert health.status == "healthy"
    assert health.models_loaded == ["detector"]
    assert health.models["llm"].loaded is False
    assert health.models["llm"].device is None
    assert health.version == "0.1.0"
    assert health.vram_used_gb == 0.0
    assert api.last_latency_ms is not None
    assert api.last_latency_ms >= 0
    models = await api.models()
    assert models["detector"].device == "cpu"
    assert models["detector"].loaded is True


async def test_base_url_may_end_in_a_slash(
    fake_server: FakeServer, session: aiohttp.ClientSession
) -> None:
    """A trailing slash on the base URL does not double the path's."""
    api = HsiClient(f"{fake_server.url}/", session)
    assert str(api.url) == fake_server.url
    await api.health()
    assert fake_server.last.path == "/health"


async def test_detect_sends_raw_image_with_params(api: HsiClient, fake_server: FakeServer) -> None:
    """Raw body with its content type, confidence and embed parameters; embeddings parse."""
    fake_server.detections = [[detection("person", 0.91, unit(0)), detection("car", 0.6)]]
    result = await api.detect(PNG, confidence=0.4, embed=True)
    request = fake_server.last
    assert (request.method, request.path) == ("POST", "/detect")
    assert request.query == {"confidence": "0.4", "embed": "1"}
    assert request.headers["Content-Type"] == "image/png"
    assert request.body == PNG
    assert [d.label for d in result.detections] == ["person", "car"]
    assert result.detections[0].embedding == tuple(unit(0))
    assert result.detections[1].embedding is None
    assert result.detections[0].bbox == BoundingBox(40, 30, 100, 150)
    assert result.detections[0].confidence == 0.91
    assert (result.image_width, result.image_height) == (320, 240)
    assert result.inference_time_ms == 12.5


async def test_detect_without_params(api: HsiClient, fake_server: FakeServer) -> None:
    """No confidence, no embed: no query; a JPEG goes as image/jpeg."""
    fake_server.default_detections = [detection("person", 0.91, unit(0))]
    result = await api.detect(JPEG)
    assert fake_server.last.query == {}
    assert fake_server.last.headers["Content-Type"] == "image/jpeg"
    assert result.detections[0].embedding is None


async def test_analyze_multipart(api: HsiClient, fake_server: FakeServer) -> None:
    """Frames go as repeated parts, the metadata's `as_dict()` as one JSON part; results parse."""
    metadata = EventMetadata(
        camera=CameraInfo("c", "Door", ""),
        started_at=datetime(2026, 1, 1, 23, 0, tzinfo=UTC),
        ended_at=datetime(2026, 1, 1, 23, 1, tzinfo=UTC),
        detections=(
            (AnalyzedObject("person", 0.9, 0, BoundingBox(1, 2, 3, 4)),),
            (),
        ),
        context=EventContext(
            time_of_day="night",
            home_mode="away",
            known_matches=(KnownMatch("g1", "person", None, False, 0.91, 3),),
            zones=("porch",),
        ),
    )
    result = await api.analyze([JPEG, PNG], metadata)
    call = fake_server.analyze_calls[-1]
    assert [(f.filename, f.content_type, f.body) for f in call.frames] == [
        ("frame0.jpeg", "image/jpeg", JPEG),
        ("frame1.png", "image/png", PNG),
    ]
    assert call.metadata == metadata.as_dict()
    assert call.metadata["camera"]["name"] == "Door"
    assert call.metadata["started_at"] == "2026-01-01T23:00:00+00:00"
    assert isinstance(result, AnalysisResult)
    assert result.risk.risk_score == 72
    assert result.risk.risk_level == "high"
    assert result.risk.risk_factors[0].factor == "person"
    assert result.risk.flags[0].type == "night"
    assert result.objects[0].attributes == {"clothing": "dark jacket"}
    assert result.objects[0].label == "person"
    assert result.description == "A person in a dark jacket at the front door."
    assert result.timings_ms == {"total": 321.0}
    assert result.models == {"llm": "tiny"}


async def test_analyze_needs_a_frame(api: HsiClient, fake_server: FakeServer) -> None:
    """No frames: refused before anything is sent."""
    with pytest.raises(ValueError, match="at least one frame"):
        await api.analyze([], EventMetadata())
    assert fake_server.requests == []


async def test_embed(api: HsiClient, fake_server: FakeServer) -> None:
    """/embed sends base64 images and texts; a server without it is 'not supported'."""
    result = await api.embed(images=[JPEG, PNG], texts=["a person"])
    body = json.loads(fake_server.last.body)
    assert [base64.b64decode(i) for i in body["images_base64"]] == [JPEG, PNG]
    assert body["texts"] == ["a person"]
    assert result.image_embeddings == [tuple(unit(0)), tuple(unit(1))]
    assert result.text_embeddings == [tuple(unit(7))]
    assert (result.dim, result.model) == (8, "tiny")

    await api.embed(texts=["only text"])
    assert json.loads(fake_server.last.body) == {"texts": ["only text"]}

    fake_server.embed_supported = False
    with pytest.raises(HsiNotSupportedError) as caught:
        await api.embed(images=[JPEG])
    assert caught.value.status == 404
    assert caught.value.code == "not_found"


async def test_api_key_header(fake_server: FakeServer, session: aiohttp.ClientSession) -> None:
    """The key goes as a Bearer token; a wrong or missing key is an auth error."""
    fake_server.api_key = "k"
    await HsiClient(fake_server.url, session, "k").validate()
    assert fake_server.last.headers["Authorization"] == "Bearer k"
    with pytest.raises(HsiAuthError):
        await HsiClient(fake_server.url, session, "wrong").validate()
    with pytest.raises(HsiAuthError, match="unauthorized"):
        await HsiClient(fake_server.url, session).detect(JPEG)
    assert "Authorization" not in fake_server.last.headers
    # An empty key is no key.
    with pytest.raises(HsiAuthError):
        await HsiClient(fake_server.url, session, "").models()
    assert "Authorization" not in fake_server.last.headers


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Answer(text="<html>router</html>"), HsiInvalidResponseError),
        (Answer(json=["not", "an", "object"]), HsiInvalidResponseError),
        (Answer(json={"no": "status"}), HsiInvalidResponseError),
        (Answer(text=""), HsiInvalidResponseError),
        (Answer(status=500, text="Internal Server Error"), HsiResponseError),
        (
            Answer(status=503, json={"error": {"code": "loading", "message": "warming"}}),
            HsiResponseError,
        ),
        (Answer(status=404, json={"error": {"code": "not_found"}}), HsiNotSupportedError),
        (Answer(status=405, text="Method Not Allowed"), HsiNotSupportedError),
        (Answer(status=401, json={"error": {"code": "unauthorized"}}), HsiAuthError),
    ],
)
async def test_health_failures(
    api: HsiClient, fake_server: FakeServer, answer: Answer, error: type[Exception]
) -> None:
    """Each bad answer maps to one typed error, every one an HsiError."""
    fake_server.answer("GET", "/health", answer)
    with pytest.raises(error) as caught:
        await api.health()
    assert isinstance(caught.value, HsiError)


async def test_error_without_document(api: HsiClient, fake_server: FakeServer) -> None:
    """A plain-text error keeps its status and its text; auth and 404 have default messages."""
    fake_server.answer("GET", "/health", Answer(status=500, text="Internal Server Error"))
    with pytest.raises(HsiResponseError) as caught:
        await api.health()
    assert (caught.value.status, caught.value.code) == (500, "http_error")
    assert caught.value.message == "Internal Server Error"
    assert str(caught.value) == "500 http_error: Internal Server Error"
    assert not isinstance(caught.value, HsiNotSupportedError)

    fake_server.answer("GET", "/health", Answer(status=401, json={"error": {}}))
    with pytest.raises(HsiAuthError, match="Invalid API key"):
        await api.health()

    fake_server.answer("GET", "/health", Answer(status=404, json={"error": "gone"}))
    with pytest.raises(HsiNotSupportedError) as not_supported:
        await api.health()
    assert not_supported.value.code == "http_error"
    assert not_supported.value.message == '{"error": "gone"}'

    fake_server.answer("GET", "/health", Answer(status=404, text=""))
    with pytest.raises(HsiNotSupportedError) as not_supported:
        await api.health()
    assert not_supported.value.message == "/health not supported"


async def test_connection_refused(session: aiohttp.ClientSession) -> None:
    """Nothing listens on the port: a connection error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = HsiClient(f"http://127.0.0.1:{port}", session)
    with pytest.raises(HsiConnectionError, match="Cannot reach"):
        await api.health()
    assert api.last_latency_ms is None


async def test_timeout(
    api: HsiClient, fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that does not answer in time: a connection error."""
    monkeypatch.setattr(client_module, "HEALTH_TIMEOUT", 0.05)
    fake_server.answer("GET", "/health", Answer(json=fake_server.health, delay=1.0))
    with pytest.raises(HsiConnectionError, match="Timeout"):
        await api.health()


async def test_error_document_is_kept(api: HsiClient, fake_server: FakeServer) -> None:
    """The server's code and message survive; Retry-After tells a transient failure's wait."""
    fake_server.answer(
        "POST",
        "/detect",
        Answer(status=413, json={"error": {"code": "too_large", "message": "image too large"}}),
    )
    with pytest.raises(HsiResponseError) as caught:
        await api.detect(JPEG)
    assert caught.value.status == 413
    assert caught.value.code == "too_large"
    assert caught.value.message == "image too large"
    assert caught.value.retry_after is None
    assert not caught.value.transient

    fake_server.answer(
        "POST",
        "/detect",
        Answer(
            status=503,
            json={"error": {"code": "queue_full", "message": "clip queue is full"}},
            headers={"Retry-After": "2"},
        ),
    )
    with pytest.raises(HsiResponseError) as caught:
        await api.detect(JPEG)
    assert caught.value.retry_after == 2.0
    assert caught.value.transient


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("0.5", 0.5), ("0", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("-1", None)],
)
async def test_retry_after(
    api: HsiClient, fake_server: FakeServer, retry_after: str, expected: float | None
) -> None:
    """Retry-After in seconds is kept; a date or a negative number is no hint."""
    fake_server.answer(
        "POST",
        "/detect",
        Answer(
            status=429,
            json={"error": {"code": "rate_limited", "message": "slow down"}},
            headers={"Retry-After": retry_after},
        ),
    )
    with pytest.raises(HsiResponseError) as caught:
        await api.detect(JPEG)
    assert caught.value.retry_after == expected
    assert caught.value.transient


async def test_bad_shapes(api: HsiClient, fake_server: FakeServer) -> None:
    """Unexpected shapes of /detect, /analyze and /models are invalid responses."""
    fake_server.answer("POST", "/detect", Answer(json={"detections": [{"confidence": 1}]}))
    fake_server.answer("POST", "/analyze", Answer(json={"objects": []}))
    fake_server.answer("GET", "/models", Answer(json=[1, 2]))
    fake_server.answer("POST", "/embed", Answer(json={"image_embeddings": [["x"]]}))
    with pytest.raises(HsiInvalidResponseError, match="/detect"):
        await api.detect(JPEG)
    with pytest.raises(HsiInvalidResponseError, match="/analyze"):
        await api.analyze([JPEG], EventMetadata())
    with pytest.raises(HsiInvalidResponseError, match="/models"):
        await api.models()
    with pytest.raises(HsiInvalidResponseError, match="/embed"):
        await api.embed(texts=["x"])


async def test_validate_proves_the_key_through_models(
    api: HsiClient, fake_server: FakeServer
) -> None:
    """/health needs no key: validate also asks /models, which does."""
    fake_server.answer("GET", "/models", Answer(status=401, json={"error": {"code": "x"}}))
    with pytest.raises(HsiAuthError):
        await api.validate()
    assert [r.path for r in fake_server.requests] == ["/health", "/models"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"models": [{"name": "clip", "loaded": True, "device": "cuda"}, 3, {"loaded": True}]},
            {"clip": ("cuda", True)},
        ),
        (
            {"models": {"clip": {"loaded": True, "device": "cuda", "batch": 8}, "llm": "off"}},
            {"clip": ("cuda", True)},
        ),
        ({"detector": {"loaded": False}, "device": "cpu"}, {"detector": (None, False)}),
        ({"models": "none"}, {}),
    ],
)
async def test_models_shapes(
    api: HsiClient, fake_server: FakeServer, payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    """/models may list models, map them, or be the map itself; entries that are no model go."""
    fake_server.answer("GET", "/models", Answer(json=payload))
    models = await api.models()
    assert {name: (m.device, m.loaded) for name, m in models.items()} == expected


async def test_model_details_are_kept(api: HsiClient, fake_server: FakeServer) -> None:
    """What a model reports beyond name, loaded and device stays in `details`."""
    fake_server.answer(
        "GET", "/models", Answer(json={"models": {"clip": {"loaded": True, "batch": 8}}})
    )
    assert (await api.models())["clip"].details == {"batch": 8}


def test_content_type_sniffing() -> None:
    """PNG and WebP are recognised; anything else goes as JPEG."""
    assert image_content_type(PNG) == "image/png"
    assert image_content_type(WEBP) == "image/webp"
    assert image_content_type(b"RIFF\x00\x00\x00\x00WAVE") == "image/jpeg"
    assert image_content_type(JPEG) == "image/jpeg"
    assert image_content_type(b"") == "image/jpeg"


DETECTED = {
    "detections": [detection("person", 0.9)],
    "inference_time_ms": 5.0,
    "image_width": 640,
    "image_height": 480,
}


@pytest.mark.parametrize("content_type", ["text/plain", "text/html"])
async def test_mislabelled_json_of_the_right_shape_is_used_with_one_warning(
    api: HsiClient,
    fake_server: FakeServer,
    caplog: pytest.LogCaptureFixture,
    content_type: str,
) -> None:
    """A proxy labels the server's answer wrongly: the body parses and validates as the typed
    result, so it is used; a warning (once per path and label) names the label."""
    answer = Answer(text=json.dumps(DETECTED), content_type=content_type)
    fake_server.answer("POST", "/detect", answer)
    for _ in range(2):
        result = await api.detect(JPEG)
        assert [d.label for d in result.detections] == ["person"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "/detect" in warnings[0]
    assert f"content type {content_type}; charset=utf-8" in warnings[0]


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        # A proxy's page: never JSON, whatever its label.
        (
            Answer(text="<html><body>Please log in to the portal</body></html>"),
            "/detect did not answer JSON: content type text/html; charset=utf-8, body starts "
            "'<html><body>Please log in to the portal</body></html>'",
        ),
        # JSON, mislabelled, of the wrong shape (a proxy's own JSON error, say).
        (
            Answer(text=json.dumps({"message": "upstream down"}), content_type="text/plain"),
            "/detect: unexpected answer (KeyError('detections')); content type "
            'text/plain; charset=utf-8, body starts \'{"message": "upstream down"}\'',
        ),
        (
            Answer(text="", content_type="text/plain"),
            "/detect: expected a JSON object; content type text/plain; charset=utf-8, empty body",
        ),
        (
            Answer(text="x" * 200, content_type="text/plain"),
            f"/detect did not answer JSON: content type text/plain; charset=utf-8, body starts "
            f"'{'x' * 80}'...",
        ),
    ],
)
async def test_an_unusable_answer_names_its_content_type_and_first_bytes(
    api: HsiClient, fake_server: FakeServer, answer: Answer, says: str
) -> None:
    fake_server.answer("POST", "/detect", answer)
    with pytest.raises(HsiInvalidResponseError) as caught:
        await api.detect(JPEG)
    assert str(caught.value) == says


async def test_a_json_type_with_parameters_or_a_suffix_is_json(
    api: HsiClient, fake_server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """application/json with parameters and application/*+json are JSON labels: a wrong shape
    is reported without a content type, and a right one without a warning."""
    fake_server.answer(
        "POST",
        "/detect",
        Answer(text=json.dumps(DETECTED), content_type="application/problem+json"),
    )
    assert (await api.detect(JPEG)).detections
    fake_server.answer("POST", "/detect", Answer(text="[]", content_type="application/json"))
    with pytest.raises(HsiInvalidResponseError) as caught:
        await api.detect(JPEG)
    assert str(caught.value) == "/detect: expected a JSON object"
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


async def test_an_answer_without_a_content_type(session: aiohttp.ClientSession) -> None:
    """A bare HTTP server that sends no Content-Type at all (aiohttp always adds one, so this
    one writes its answers by hand): good JSON is used, anything else says "no content type"."""
    bodies = [json.dumps(DETECTED).encode(), b"not json"]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        body = bodies.pop(0)
        writer.write(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        api = HsiClient(f"http://127.0.0.1:{port}", session)
        assert (await api.detect(JPEG)).detections
        with pytest.raises(HsiInvalidResponseError) as caught:
            await api.detect(JPEG)
        assert str(caught.value) == (
            "/detect did not answer JSON: no content type, body starts 'not json'"
        )
    finally:
        server.close()
        await server.wait_closed()
