"""POST /detect and /detect/batch over HTTP with the tiny RT-DETRv2."""

from __future__ import annotations

import asyncio
import base64
import io
import threading

import pytest
from aiohttp import FormData
from PIL import Image

from ai_server.keys import BATCHERS, REGISTRY
from ai_server.models.detector import Detector, DetectRequest

from .conftest import MakeClient, image_bytes
from .spec import assert_schema

ALL = {"confidence": "0", "classes": "all"}  # random weights: low scores, any class


async def test_detect_raw_jpeg_matches_contract(client) -> None:
    response = await client.post(
        "/detect", data=image_bytes(320, 240), params=ALL, headers={"Content-Type": "image/jpeg"}
    )
    assert response.status == 200
    body = await response.json()
    assert_schema("DetectResponse", body)
    assert (body["image_width"], body["image_height"]) == (320, 240)
    # confidence=0 keeps every query of the tiny model (num_queries=20).
    assert len(body["detections"]) == 20
    for det in body["detections"]:
        box = det["bbox"]
        assert box["x"] + box["width"] <= 320.0 + 0.1
        assert box["y"] + box["height"] <= 240.0 + 0.1
    scores = [d["confidence"] for d in body["detections"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
async def test_detect_multipart_any_part_name(client, fmt: str) -> None:
    form = FormData()
    form.add_field(
        "image",
        image_bytes(200, 100, fmt),
        filename=f"x.{fmt.lower()}",
        content_type=f"image/{fmt.lower()}",
    )
    response = await client.post("/detect", data=form, params=ALL)
    assert response.status == 200
    body = await response.json()
    assert (body["image_width"], body["image_height"]) == (200, 100)


async def test_detect_json_base64_and_data_url(client) -> None:
    encoded = base64.b64encode(image_bytes(64, 48)).decode()
    for value in (encoded, f"data:image/jpeg;base64,{encoded}"):
        response = await client.post("/detect", json={"image_base64": value}, params=ALL)
        assert response.status == 200
        assert (await response.json())["image_width"] == 64


async def test_confidence_and_class_filter(client) -> None:
    data = image_bytes()
    headers = {"Content-Type": "image/jpeg"}
    everything = await (await client.post("/detect", data=data, params=ALL, headers=headers)).json()
    labels = {d["class"] for d in everything["detections"]}
    assert labels, "tiny model returned no detections at confidence 0"
    one = sorted(labels)[0]
    only = await (
        await client.post(
            "/detect", data=data, headers=headers, params={"confidence": "0", "classes": one}
        )
    ).json()
    assert only["detections"] and {d["class"] for d in only["detections"]} == {one}
    # Random weights score far below 0.99: a high threshold removes everything.
    strict = await (
        await client.post(
            "/detect", data=data, headers=headers, params={"confidence": "0.99", "classes": "all"}
        )
    ).json()
    assert strict["detections"] == []


async def test_default_class_filter_is_security_relevant(make_client: MakeClient) -> None:
    client = await make_client(classes=("person",))
    body = await (
        await client.post(
            "/detect",
            data=image_bytes(),
            params={"confidence": "0"},
            headers={"Content-Type": "image/jpeg"},
        )
    ).json()
    assert {d["class"] for d in body["detections"]} <= {"person"}


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"data": b"GIF89a" + b"\0" * 20, "headers": {"Content-Type": "image/jpeg"}},
            415,
            "unsupported_media_type",
        ),
        (
            {"data": b"not an image at all", "headers": {"Content-Type": "image/jpeg"}},
            415,
            "unsupported_media_type",
        ),
        (
            {"data": b"\xff\xd8\xff\xe0broken jpeg", "headers": {"Content-Type": "image/jpeg"}},
            400,
            "invalid_image",
        ),
        ({"data": b"", "headers": {"Content-Type": "image/jpeg"}}, 422, "validation_error"),
        (
            {"data": b"hello", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        (
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_json",
        ),
        ({"json": {"image": "x"}}, 422, "validation_error"),
        ({"json": {"image_base64": "%%%"}}, 400, "invalid_base64"),
        ({"json": {"image_base64": 5}}, 422, "validation_error"),
        ({"json": [1, 2]}, 422, "validation_error"),
    ],
)
async def test_detect_bad_input(client, kwargs, status: int, code: str) -> None:
    response = await client.post("/detect", **kwargs)
    assert response.status == status
    body = await response.json()
    assert_schema("Error", body)
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.mark.parametrize("query", [{"confidence": "1.5"}, {"confidence": "abc"}, {"classes": ","}])
async def test_detect_bad_query(client, query) -> None:
    response = await client.post(
        "/detect", data=image_bytes(), headers={"Content-Type": "image/jpeg"}, params=query
    )
    assert response.status == 422
    assert "confidence" in (await response.text()) or "classes" in (await response.text())


async def test_detect_needs_exactly_one_image(client) -> None:
    form = FormData()
    for i in range(2):
        form.add_field("file", image_bytes(), filename=f"{i}.jpg", content_type="image/jpeg")
    response = await client.post("/detect", data=form)
    assert response.status == 422
    assert "/detect/batch" in (await response.json())["error"]["message"]


async def test_pixel_limit_refuses_decompression_bomb(make_client: MakeClient) -> None:
    client = await make_client(max_image_pixels=100 * 100)
    # A small file that declares a large canvas: refused before it is decoded.
    response = await client.post(
        "/detect", data=image_bytes(2000, 2000, "PNG"), headers={"Content-Type": "image/png"}
    )
    assert response.status == 413
    body = await response.json()
    assert body["error"]["code"] == "image_too_large"
    assert "2000x2000" in body["error"]["message"]


async def test_body_limit(make_client: MakeClient) -> None:
    client = await make_client(max_body_mb=0.05)  # ~52 KB
    big = b"\xff\xd8\xff" + b"\0" * 100_000
    response = await client.post("/detect", data=big, headers={"Content-Type": "image/jpeg"})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"

    async def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(10):
            yield b"\0" * 20_000

    form = FormData()
    form.add_field("file", chunks(), filename="big.jpg", content_type="image/jpeg")
    response = await client.post("/detect", data=form)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    # The server is still fine afterwards.
    ok = await client.post("/detect", data=image_bytes(), headers={"Content-Type": "image/jpeg"})
    assert ok.status == 200


async def test_batch_endpoint_orders_results_and_isolates_bad_images(client) -> None:
    form = FormData()
    form.add_field("files", image_bytes(100, 50), filename="a.jpg", content_type="image/jpeg")
    form.add_field("files", b"garbage", filename="b.jpg", content_type="image/jpeg")
    form.add_field("files", image_bytes(60, 80, "PNG"), filename="c.png", content_type="image/png")
    response = await client.post("/detect/batch", data=form, params=ALL)
    assert response.status == 200
    body = await response.json()
    assert_schema("DetectBatchResponse", body)
    assert body["num_images"] == 3
    a, b, c = body["results"]
    assert (a["index"], a["filename"], a["image_width"], a["image_height"]) == (0, "a.jpg", 100, 50)
    assert b["filename"] == "b.jpg" and b["error"]["code"] == "unsupported_media_type"
    assert "detections" not in b
    assert (c["index"], c["image_width"], c["image_height"]) == (2, 60, 80)
    assert len(a["detections"]) == len(c["detections"]) == 20


async def test_batch_endpoint_json_and_limits(make_client: MakeClient) -> None:
    client = await make_client(max_batch_images=2)
    encoded = base64.b64encode(image_bytes()).decode()
    ok = await client.post("/detect/batch", json={"images_base64": [encoded, encoded]})
    assert ok.status == 200
    assert [r["filename"] for r in (await ok.json())["results"]] == ["image_0", "image_1"]
    too_many = await client.post("/detect/batch", json={"images_base64": [encoded] * 3})
    assert too_many.status == 422
    assert "limit is 2" in (await too_many.json())["error"]["message"]
    empty = await client.post("/detect/batch", json={"images_base64": []})
    assert empty.status == 422
    wrong = await client.post("/detect/batch", json={"images_base64": "abc"})
    assert wrong.status == 422


async def test_concurrent_requests_are_batched_and_each_caller_gets_its_own(
    make_client: MakeClient,
) -> None:
    client = await make_client(batch_max_size=8, batch_max_wait_ms=200)
    app = client.server.app
    detector = app[REGISTRY].loaded("detector", Detector)
    sizes = [(100 + 20 * i, 80 + 10 * i) for i in range(8)]
    images = [
        image_bytes(w, h, color=(30 * i, 100, 200 - 20 * i)) for i, (w, h) in enumerate(sizes)
    ]
    batches_before = app[BATCHERS].detector.batches_run

    responses = await asyncio.gather(
        *(
            client.post("/detect", data=data, params=ALL, headers={"Content-Type": "image/jpeg"})
            for data in images
        )
    )
    bodies = [await r.json() for r in responses]
    model_calls = app[BATCHERS].detector.batches_run - batches_before
    assert model_calls < len(images)

    for (w, h), data, body in zip(sizes, images, bodies, strict=True):
        assert (body["image_width"], body["image_height"]) == (w, h)
        solo = detector.detect(
            [DetectRequest(Image.open(io.BytesIO(data)).convert("RGB"), 0.0, None)]
        )[0]
        assert len(body["detections"]) == len(solo)
        for got, want in zip(body["detections"], solo, strict=True):
            assert got["class"] == want.label
            assert got["bbox"]["x"] == pytest.approx(want.x, abs=1.0)
            assert got["bbox"]["width"] == pytest.approx(want.width, abs=1.0)


async def test_full_queue_answers_503_with_retry_after(make_client: MakeClient) -> None:
    client = await make_client(batch_max_size=1, batch_max_wait_ms=0, queue_max=1)
    app = client.server.app
    detector = app[REGISTRY].loaded("detector", Detector)
    gate = threading.Event()
    real_detect = detector.detect

    def gated(batch):
        gate.wait(10)
        return real_detect(batch)

    detector.detect = gated  # type: ignore[method-assign]
    headers = {"Content-Type": "image/jpeg"}
    try:
        running = asyncio.ensure_future(client.post("/detect", data=image_bytes(), headers=headers))
        while app[BATCHERS].detector.queue_depth or not app[BATCHERS].detector._inflight:
            await asyncio.sleep(0.01)  # first request is inside the model
        queued = asyncio.ensure_future(client.post("/detect", data=image_bytes(), headers=headers))
        while app[BATCHERS].detector.queue_depth < 1:
            await asyncio.sleep(0.01)
        refused = await client.post("/detect", data=image_bytes(), headers=headers)
        assert refused.status == 503
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await refused.json())["error"]["code"] == "queue_full"
    finally:
        gate.set()
    assert (await running).status == 200
    assert (await queued).status == 200
    metrics = await (await client.get("/metrics")).text()
    assert 'hsi_queue_rejected_total{model="detector"} 1.0' in metrics


async def test_one_request_takes_one_queue_slot_whatever_its_size(make_client: MakeClient) -> None:
    """20 detections to embed and 3 images in a batch fit a queue of 2 waiting callers."""
    client = await make_client(queue_max=2)
    params = {**ALL, "embed": "1"}
    headers = {"Content-Type": "image/jpeg"}
    responses = await asyncio.gather(
        *(
            client.post("/detect", data=image_bytes(), params=params, headers=headers)
            for _ in range(2)
        )
    )
    for response in responses:
        assert response.status == 200
        body = await response.json()
        assert len(body["detections"]) == 20
        assert all(len(d["embedding"]) > 0 for d in body["detections"])
    form = FormData()
    for i in range(3):
        form.add_field("files", image_bytes(), filename=f"{i}.jpg", content_type="image/jpeg")
    batch = await client.post("/detect/batch", data=form, params=ALL)
    assert batch.status == 200
    assert [len(r["detections"]) for r in (await batch.json())["results"]] == [20, 20, 20]
