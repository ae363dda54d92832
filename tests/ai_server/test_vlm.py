"""Florence-2 with the tiny random-weight model: every /describe task, boxes, errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from aiohttp import FormData
from PIL import Image

from ai_server.imaging import Box
from ai_server.models import tiny
from ai_server.models.base import ModelLoadError
from ai_server.models.vlm import TASKS, DescribeRequest, Florence, _prompt, parse_answer
from ai_server.runtime.devices import resolve_device

from .conftest import MakeClient, image_bytes
from .spec import assert_schema

IMAGE = base64.b64encode(image_bytes(320, 240)).decode()


@pytest.fixture(scope="module")
def florence(tmp_path_factory: pytest.TempPathFactory) -> Florence:
    path = tiny.make_tiny_models(tmp_path_factory.mktemp("florence"), ["florence"])["florence"]
    model = Florence(str(path), resolve_device("cpu"), max_new_tokens=16)
    model.load()
    return model


def test_every_task_in_one_batch(florence: Florence) -> None:
    image = Image.new("RGB", (200, 100), (20, 90, 160))
    batch = [
        DescribeRequest(image, task, Box(10, 10, 50, 40) if task == "region_caption" else None)
        for task in TASKS
    ]
    results = florence.describe(batch)
    assert len(results) == len(TASKS)
    for task, result in zip(TASKS, results, strict=True):
        if task in ("caption", "detailed_caption", "ocr", "region_caption"):
            assert isinstance(result, str)
        else:
            assert isinstance(result, list)
            for entry in result:
                box = entry["bbox"]
                assert 0 <= box["x"] <= 200 and 0 <= box["y"] <= 100
                assert box["x"] + box["width"] <= 200.1 and box["y"] + box["height"] <= 100.1
    assert florence.info()["tasks"] == list(TASKS)
    assert florence.memory_bytes() > 0


def test_answer_length_is_capped_by_the_decoder_positions(tmp_path: Path) -> None:
    path = tiny.make_tiny_models(tmp_path, ["florence"])["florence"]
    model = Florence(str(path), resolve_device("cpu"), max_new_tokens=4096)
    model.load()  # the tiny BART has 64 positions: asking for 4096 tokens must not crash
    assert isinstance(model.describe([DescribeRequest(Image.new("RGB", (64, 64)), "ocr")])[0], str)


def test_region_prompt_uses_florence_location_bins() -> None:
    image = Image.new("RGB", (200, 100))
    prompt = _prompt(DescribeRequest(image, "region_caption", Box(50, 25, 100, 50)))
    assert prompt == "<REGION_TO_DESCRIPTION><loc_250><loc_250><loc_750><loc_750>"
    with pytest.raises(ValueError, match="needs a region"):
        DescribeRequest(image, "region_caption")
    with pytest.raises(ValueError, match="needs a region"):
        DescribeRequest(image, "caption", Box(0, 0, 1, 1))


def test_parse_answer_shapes() -> None:
    size = (100, 50)
    assert parse_answer("caption", "  a  car <pad> ", size) == "a car"
    od = parse_answer("od", {"bboxes": [[10, 5, 300, 40]], "labels": ["car"]}, size)
    assert od == [{"label": "car", "bbox": {"x": 10, "y": 5, "width": 90, "height": 35}}]
    ocr = parse_answer(
        "ocr_regions",
        {"quad_boxes": [[10, 10, 40, 10, 40, 20, 10, 20]], "labels": ["AB 123"]},
        size,
    )
    assert ocr == [
        {
            "text": "AB 123",
            "quad_box": [10, 10, 40, 10, 40, 20, 10, 20],
            "bbox": {"x": 10, "y": 10, "width": 30, "height": 10},
        }
    ]


def test_wrong_checkpoint_is_a_clear_load_error(tmp_path: Path) -> None:
    detector = tiny.make_tiny_models(tmp_path, ["detector"])["detector"]
    with pytest.raises(ModelLoadError, match="Florence-2"):
        Florence(str(detector), resolve_device("cpu")).load()
    with pytest.raises(ModelLoadError, match="does not exist"):
        Florence(str(tmp_path / "nothing"), resolve_device("cpu")).load()


@pytest.mark.parametrize("task", [t for t in TASKS if t != "region_caption"])
async def test_describe_task(make_client: MakeClient, task: str) -> None:
    client = await make_client(preload=())
    response = await client.post("/describe", json={"image_base64": IMAGE, "task": task})
    body = await response.json()
    assert response.status == 200, body
    assert_schema("DescribeResponse", body)
    assert body["task"] == task
    assert (body["image_width"], body["image_height"]) == (320, 240)
    expected = str if task in ("caption", "detailed_caption", "ocr") else list
    assert isinstance(body["result"], expected)


async def test_region_caption_one_answer_per_box(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    boxes = [
        {"x": 10, "y": 20, "width": 100, "height": 50},
        {"x": 300, "y": 200, "width": 100, "height": 100},  # partly outside: clipped
    ]
    response = await client.post(
        "/describe", json={"image_base64": IMAGE, "task": "region_caption", "boxes": boxes}
    )
    body = await response.json()
    assert response.status == 200, body
    assert_schema("DescribeResponse", body)
    assert [entry["bbox"] for entry in body["result"]] == [
        {"x": 10, "y": 20, "width": 100, "height": 50},
        {"x": 300, "y": 200, "width": 20, "height": 40},
    ]
    assert all(isinstance(entry["caption"], str) for entry in body["result"])


async def test_describe_raw_and_multipart_with_query_task(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    raw = await client.post(
        "/describe", data=image_bytes(), params={"task": "ocr"},
        headers={"Content-Type": "image/jpeg"},
    )  # fmt: skip
    assert raw.status == 200 and (await raw.json())["task"] == "ocr"
    form = FormData()
    form.add_field("image", image_bytes(100, 80, "PNG"), filename="a.png",
                   content_type="image/png")  # fmt: skip
    boxes = json.dumps([{"x": 0, "y": 0, "width": 50, "height": 40}])
    multipart = await client.post(
        "/describe", data=form, params={"task": "region_caption", "boxes": boxes}
    )
    body = await multipart.json()
    assert multipart.status == 200, body
    assert len(body["result"]) == 1
    default = await client.post("/describe", data=image_bytes(),
                                headers={"Content-Type": "image/jpeg"})  # fmt: skip
    assert (await default.json())["task"] == "caption"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"task": "caption"}, "needs image_base64"),
        ({"image_base64": IMAGE, "task": "poem"}, "task must be one of"),
        ({"image_base64": IMAGE, "task": "region_caption"}, "needs boxes"),
        ({"image_base64": IMAGE, "task": "region_caption", "boxes": []}, "needs boxes"),
        ({"image_base64": IMAGE, "task": "caption", "boxes": [{}]}, "only for task"),
        ({"image_base64": IMAGE, "task": "region_caption",
          "boxes": [{"x": 400, "y": 10, "width": 20, "height": 20}]}, "lies outside the 320x240"),
        ({"image_base64": IMAGE, "task": "region_caption",
          "boxes": [{"x": 10, "y": 10, "width": 0, "height": 20}]}, "boxes[0] is empty"),
        ({"image_base64": IMAGE, "task": "region_caption",
          "boxes": [{"x": "a", "y": 10, "width": 5, "height": 20}]}, "boxes[0].x must be a number"),
        ({"image_base64": IMAGE, "task": "region_caption",
          "boxes": [{"x": 1, "y": 1, "width": 5, "height": 5}] * 33}, "the limit is 32"),
    ],
)  # fmt: skip
async def test_describe_bad_requests_are_422(
    make_client: MakeClient, payload: dict[str, object], fragment: str
) -> None:
    client = await make_client(preload=())
    response = await client.post("/describe", json=payload)
    body = await response.json()
    assert response.status == 422, body
    assert_schema("Error", body)
    assert fragment in body["error"]["message"]


async def test_describe_bad_boxes_query_is_400(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    response = await client.post(
        "/describe", data=image_bytes(), params={"task": "region_caption", "boxes": "[{"},
        headers={"Content-Type": "image/jpeg"},
    )  # fmt: skip
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_json"


async def test_describe_needs_the_api_key(make_client: MakeClient) -> None:
    client = await make_client(preload=(), api_key="s3cret")
    response = await client.post("/describe", json={"image_base64": IMAGE})
    assert response.status == 401
    ok = await client.post("/describe", json={"image_base64": IMAGE},
                           headers={"Authorization": "Bearer s3cret"})  # fmt: skip
    assert ok.status == 200


def test_text_answers_never_carry_location_or_control_tokens() -> None:
    from ai_server.models.vlm import parse_answer

    raw = "a red car<loc_12><loc_500> parked</s><pad>  outside"
    assert parse_answer("caption", raw, (100, 100)) == "a red car parked outside"
    assert parse_answer("ocr", "AB<loc_3>123", (100, 100)) == "AB 123"
