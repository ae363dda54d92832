"""The HTTP client: contract parsing and every failure mode."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from custom_components.hsi.api import (
    AnalysisResult,
    Health,
    HsiAuthError,
    HsiClient,
    HsiConnectionError,
    HsiInvalidResponseError,
    HsiNotSupportedError,
    HsiResponseError,
    RiskAssessment,
    image_content_type,
    risk_level_for,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .conftest import FakeServer, detection, jpeg, unit

URL = "http://hsi.local:8090"


def client(hass: HomeAssistant, url: str = URL, key: str | None = None) -> HsiClient:
    """A client on HA's session."""
    return HsiClient(url, async_get_clientsession(hass), key)


async def test_health_and_models(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """Health and models parse into dataclasses."""
    api = client(hass, fake_server.url)
    health = await api.validate()
    assert isinstance(health, Health)
    assert health.status == "healthy"
    assert health.models_loaded == ["detector"]
    assert health.models["llm"].loaded is False
    assert api.last_latency_ms is not None
    assert api.last_latency_ms >= 0
    models = await api.models()
    assert models["detector"].device == "cpu"


async def test_detect_sends_raw_image_with_params(
    hass: HomeAssistant, fake_server: FakeServer
) -> None:
    """Raw body, confidence and embed parameters; embeddings parse."""
    fake_server.detections = [[detection("person", 0.91, unit(0)), detection("car", 0.6)]]
    result = await client(hass, fake_server.url).detect(jpeg(), confidence=0.4, embed=True)
    assert fake_server.requests[-1] == ("/detect", {"confidence": "0.4", "embed": "1"})
    assert [d.label for d in result.detections] == ["person", "car"]
    assert result.detections[0].embedding == tuple(unit(0))
    assert result.detections[1].embedding is None
    assert result.detections[0].bbox.width == 100
    assert result.image_width == 320
    assert result.inference_time_ms == 12.5


async def test_analyze_multipart(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """Frames go as repeated parts, metadata as JSON; the result parses."""
    result = await client(hass, fake_server.url).analyze(
        [jpeg(), jpeg()], {"camera": {"id": "c", "name": "Door", "description": ""}}
    )
    assert isinstance(result, AnalysisResult)
    assert fake_server.analyze_calls[-1]["frames"] == 2
    assert fake_server.analyze_calls[-1]["metadata"]["camera"]["name"] == "Door"
    assert result.risk.risk_level == "high"
    assert result.objects[0].attributes == {"clothing": "dark jacket"}
    assert result.timings_ms == {"total": 321.0}
    with pytest.raises(ValueError):
        await client(hass, fake_server.url).analyze([], {})


async def test_embed(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """/embed sends base64 images; a server without it is 'not supported'."""
    api = client(hass, fake_server.url)
    with pytest.raises(HsiNotSupportedError):
        await api.embed(images=[jpeg()])
    fake_server.embed_vector = unit(2)
    result = await api.embed(images=[jpeg()], texts=["a person"])
    assert result.image_embeddings == [tuple(unit(2))]
    assert result.dim == 8


async def test_api_key_header(hass: HomeAssistant, fake_server: FakeServer) -> None:
    """The key goes as a Bearer token; a wrong key is an auth error."""
    fake_server.api_key = "k"
    await client(hass, fake_server.url, "k").validate()
    with pytest.raises(HsiAuthError):
        await client(hass, fake_server.url, "wrong").validate()
    with pytest.raises(HsiAuthError):
        await client(hass, fake_server.url).detect(jpeg())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"exc": aiohttp.ClientConnectionError()}, HsiConnectionError),
        ({"exc": TimeoutError()}, HsiConnectionError),
        ({"text": "<html>router</html>"}, HsiInvalidResponseError),
        ({"json": ["not", "an", "object"]}, HsiInvalidResponseError),
        ({"json": {"no": "status"}}, HsiInvalidResponseError),
        ({"status": 500, "text": "Internal Server Error"}, HsiResponseError),
        (
            {"status": 503, "json": {"error": {"code": "loading", "message": "warming"}}},
            HsiResponseError,
        ),
        ({"status": 404, "json": {"error": {"code": "not_found"}}}, HsiNotSupportedError),
        ({"status": 401, "json": {"error": {"code": "unauthorized"}}}, HsiAuthError),
    ],
)
async def test_health_failures(
    hass: HomeAssistant,
    aioclient_mock: AiohttpClientMocker,
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    """Each bad answer maps to one typed error."""
    aioclient_mock.get(f"{URL}/health", **kwargs)
    with pytest.raises(error):
        await client(hass).health()


async def test_error_document_is_kept(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    """The server's code and message survive."""
    aioclient_mock.post(
        f"{URL}/detect",
        status=413,
        json={"error": {"code": "too_large", "message": "image too large"}},
    )
    with pytest.raises(HsiResponseError) as caught:
        await client(hass).detect(jpeg())
    assert caught.value.status == 413
    assert caught.value.code == "too_large"
    assert caught.value.message == "image too large"
    assert caught.value.retry_after is None
    assert not caught.value.transient

    aioclient_mock.clear_requests()
    aioclient_mock.post(
        f"{URL}/detect",
        status=503,
        json={"error": {"code": "queue_full", "message": "clip queue is full"}},
        headers={"Retry-After": "2"},
    )
    with pytest.raises(HsiResponseError) as caught:
        await client(hass).detect(jpeg())
    assert caught.value.retry_after == 2.0
    assert caught.value.transient


async def test_bad_shapes(hass: HomeAssistant, aioclient_mock: AiohttpClientMocker) -> None:
    """Unexpected shapes of /detect, /analyze and /models are invalid responses."""
    aioclient_mock.post(f"{URL}/detect", json={"detections": [{"confidence": 1}]})
    aioclient_mock.post(f"{URL}/analyze", json={"objects": []})
    aioclient_mock.get(f"{URL}/models", json=[1, 2])
    api = client(hass)
    with pytest.raises(HsiInvalidResponseError):
        await api.detect(jpeg())
    with pytest.raises(HsiInvalidResponseError):
        await api.analyze([jpeg()], {})
    with pytest.raises(HsiInvalidResponseError):
        await api.models()


async def test_models_list_shape(hass: HomeAssistant, aioclient_mock: AiohttpClientMocker) -> None:
    """/models may also list models."""
    aioclient_mock.get(
        f"{URL}/models", json={"models": [{"name": "clip", "loaded": True, "device": "cuda"}, 3]}
    )
    models = await client(hass).models()
    assert list(models) == ["clip"]
    assert models["clip"].device == "cuda"


def test_risk_contract() -> None:
    """Scores are clamped and the level follows the score."""
    assert [risk_level_for(s) for s in (0, 29, 30, 59, 60, 84, 85, 100)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]
    risk = RiskAssessment.from_dict(
        {"risk_score": 140, "risk_level": "low", "summary": "s", "reasoning": "r"}
    )
    assert (risk.risk_score, risk.risk_level, risk.source) == (100, "critical", "llm")
    assert (
        RiskAssessment.from_dict({"risk_score": -5, "summary": "", "reasoning": ""}).risk_score == 0
    )


def test_content_type_sniffing() -> None:
    """PNG and WebP are recognised; anything else goes as JPEG."""
    assert image_content_type(b"\x89PNG\r\n") == "image/png"
    assert image_content_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert image_content_type(jpeg()) == "image/jpeg"
