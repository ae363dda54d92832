"""The enrichment zoo: label file, plate normalisation, image quality, POST /enrich."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

from ai_server.config import ConfigError
from ai_server.imaging import Box
from ai_server.models.enrich import (
    Enricher,
    EnrichObject,
    ReferenceDimError,
    cosine,
    load_labels,
    measure_quality,
    normalise_plate,
    parse_reference,
)
from ai_server.runtime.batcher import DynamicBatcher
from ai_server.runtime.registry import ModelRegistry

from .conftest import MakeClient, image_bytes
from .spec import assert_schema

DIM = 32
IMAGE = base64.b64encode(image_bytes(320, 240)).decode()
EIGHT = [
    {"class": "person", "bbox": {"x": 10, "y": 10, "width": 60, "height": 150}, "confidence": 0.9},
    {"class": "person", "bbox": {"x": 80, "y": 20, "width": 50, "height": 140}},
    {"class": "car", "bbox": {"x": 140, "y": 100, "width": 170, "height": 120}},
    {"class": "truck", "bbox": {"x": 0, "y": 150, "width": 120, "height": 90}},
    {"class": "motorcycle", "bbox": {"x": 200, "y": 10, "width": 30, "height": 30}},  # too small
    {"class": "dog", "bbox": {"x": 250, "y": 180, "width": 40, "height": 40}},
    {"class": "cat", "bbox": {"x": 290, "y": 200, "width": 40, "height": 60}},  # clipped
    {"class": "umbrella", "bbox": {"x": 100, "y": 100, "width": 20, "height": 20}},  # no sets
]


def jpeg(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


# --- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "plate"),
    [
        ("ABC 1234", "ABC1234"),
        ("  ab-123-cd ", "AB123CD"),
        ("licence plate: xyz 789", "XYZ789"),
        ("<s>KA 01 AB 1234</s>", "KA01AB1234"),
        ("7 123", "7123"),  # digits only still reads, but mixed beats it below
        ("4821 RT 55", "4821RT55"),
        ("STOP", None),  # no digit
        ("12", None),  # too short
        ("", None),
        ("<loc_772><loc_772>", None),  # location tokens are not text
        ("ABCDEFGH123456789", None),  # one run longer than any plate
    ],
)
def test_normalise_plate(text: str, plate: str | None) -> None:
    assert normalise_plate(text) == plate


def test_plate_prefers_letters_and_digits_then_length() -> None:
    assert normalise_plate("9999 ZX81") == "9999ZX81"
    assert normalise_plate("call 5551234 ab12") == "AB12"  # mixed beats the longer 5551234
    assert normalise_plate("TEL 5551234 AB12", max_length=6) == "AB12"


def test_quality_blur_and_brightness() -> None:
    rng = np.random.default_rng(0)
    sharp = Image.fromarray((rng.random((240, 320)) > 0.5).astype(np.uint8) * 255).convert("RGB")
    blurred = sharp.filter(ImageFilter.GaussianBlur(4))
    sharp_q, blurred_q = measure_quality(sharp), measure_quality(blurred)
    assert sharp_q.blur > 10 * blurred_q.blur
    assert 0.4 < sharp_q.brightness < 0.6
    dark = measure_quality(Image.new("RGB", (100, 100), (5, 5, 5)))
    assert dark.blur == 0 and dark.brightness == pytest.approx(5 / 255, abs=1e-3)
    assert measure_quality(Image.new("RGB", (2, 2))).blur == 0  # too small for a Laplacian
    # Scaled to 640 px first, so a large frame and its half-size copy read alike.
    big = Image.new("RGB", (1280, 960), (128, 128, 128))
    assert measure_quality(big).brightness == pytest.approx(128 / 255, abs=1e-3)


def test_reference_parsing_and_cosine() -> None:
    vector = parse_reference([3, 4])
    np.testing.assert_allclose(vector, [0.6, 0.8])
    assert cosine(vector, np.asarray([0.6, 0.8], dtype=np.float32)) == pytest.approx(1.0)
    for bad, fragment in (([], "non-empty"), ([1, "a"], "finite"), ([0, 0], "all zeros"),
                          ([1, float("nan")], "finite"), ("abc", "non-empty")):  # fmt: skip
        with pytest.raises(ValueError, match=fragment):
            parse_reference(bad)


def test_packaged_label_file() -> None:
    labels = load_labels()
    names = {a.name for a in labels.attributes}
    assert {"vehicle_type", "vehicle_color", "clothing", "carrying", "face_visible",
            "animal_type"} <= names  # fmt: skip
    assert {a.name for a in labels.for_class("person")} == {"clothing", "carrying", "face_visible"}
    assert {a.name for a in labels.for_class("Car")} == {"vehicle_type", "vehicle_color"}
    face = next(a for a in labels.attributes if a.name == "face_visible")
    assert sorted(face.keys) == [False, True]
    for attribute in labels.attributes:
        assert len(attribute.keys) == len(attribute.phrases) >= 2
        assert len(attribute.prompts) == len(attribute.keys) * len(attribute.templates)
    assert "car" in labels.plates.classes
    assert len(labels.templates) >= 3


def test_bad_label_files_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    for text, fragment in (
        ("attributes: [1, 2]", "needs a mapping"),
        ("attributes:\n  colour:\n    classes: [car]\n", "needs `classes` and a `labels`"),
        ("attributes:\n  c:\n    classes: [car]\n    templates: ['no slot']\n    labels: {a: b}",
         "needs a {}"),
        ("attributes:\n  f:\n    classes: [person]\n    type: boolean\n    labels: {a: b, c: d}",
         "labels true and false"),
        ("attributes: {a: {classes: car, labels: {x: y}}}", "a.classes must be"),
        ("attributes: [", "Invalid label file"),
    ):  # fmt: skip
        path.write_text(text)
        with pytest.raises(ConfigError, match="Invalid label file") as info:
            load_labels(path)
        assert str(path) in str(info.value) and fragment in str(info.value)
    with pytest.raises(ConfigError, match="HSI_LABELS_PATH"):
        load_labels(tmp_path / "missing.yaml")


# --- over HTTP ----------------------------------------------------------------------------


async def test_enrich_eight_objects(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    response = await client.post("/enrich", json={"image_base64": IMAGE, "objects": EIGHT})
    body = await response.json()
    assert response.status == 200, body
    assert_schema("EnrichResponse", body)
    assert body["warnings"] == []
    labels = load_labels()
    objects = body["objects"]
    assert [o["class"] for o in objects] == [o["class"] for o in EIGHT]
    assert objects[0]["confidence"] == 0.9 and "confidence" not in objects[1]
    assert objects[6]["bbox"] == {"x": 290, "y": 200, "width": 30, "height": 40}
    for obj in objects:
        expected = {a.name for a in labels.for_class(obj["class"])}
        if obj["class"] in ("car", "truck"):
            expected.add("plate")  # wide enough to read
        assert set(obj["attributes"]) == expected, obj["class"]
        for name, attribute in obj["attributes"].items():
            if name == "plate":
                assert attribute is None or attribute["text"].isalnum()
                continue
            keys = next(a.keys for a in labels.attributes if a.name == name)
            assert attribute["value"] in keys
            assert 0 < attribute["confidence"] <= 1
        assert "embedding" not in obj
    assert isinstance(objects[0]["attributes"]["face_visible"]["value"], bool)
    image = body["image"]
    assert (image["width"], image["height"]) == (320, 240)
    assert image["blur"] > 0 and 0 < image["brightness"] < 1
    assert image["dark"] is False
    assert "scene_change" not in image and "embedding" not in image


async def test_enrich_embeddings_and_scene_change(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    first = await client.post(
        "/enrich", json={"image_base64": IMAGE, "objects": EIGHT[:2], "embed": True}
    )
    body = await first.json()
    assert first.status == 200, body
    reference = body["image"]["embedding"]
    assert len(reference) == DIM and np.linalg.norm(reference) == pytest.approx(1, abs=1e-4)
    assert all(len(o["embedding"]) == DIM for o in body["objects"])
    same = await client.post(
        "/enrich", json={"image_base64": IMAGE, "objects": [], "reference_embedding": reference}
    )
    change = (await same.json())["image"]["scene_change"]
    assert change == {"similarity": pytest.approx(1.0, abs=1e-3), "changed": False}
    opposite = [-v for v in reference]
    moved = await client.post(
        "/enrich", json={"image_base64": IMAGE, "objects": [], "reference_embedding": opposite}
    )
    change = (await moved.json())["image"]["scene_change"]
    assert change["similarity"] == pytest.approx(-1.0, abs=1e-3) and change["changed"] is True


async def test_enrich_dark_frame(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    dark = jpeg(Image.new("RGB", (160, 120), (4, 4, 4)))
    body = await (await client.post("/enrich", json={"image_base64": dark})).json()
    assert body["image"]["dark"] is True and body["image"]["blurry"] is True
    assert body["objects"] == []


async def test_enrich_without_florence_still_answers(make_client: MakeClient, tmp_path) -> None:
    client = await make_client(preload=(), florence_path=str(tmp_path / "gone"))
    response = await client.post("/enrich", json={"image_base64": IMAGE, "objects": EIGHT[2:3]})
    body = await response.json()
    assert response.status == 200, body
    car = body["objects"][0]["attributes"]
    assert "plate" not in car and "vehicle_type" in car
    assert len(body["warnings"]) == 1 and "florence" in body["warnings"][0]
    health = await (await client.get("/health")).json()
    assert health["status"] == "degraded" and health["failed_models"] == ["florence"]


async def test_enrich_plates_off(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    body = await (
        await client.post(
            "/enrich", json={"image_base64": IMAGE, "objects": EIGHT[2:3], "plates": False}
        )
    ).json()
    assert "plate" not in body["objects"][0]["attributes"]
    models = (await (await client.get("/models")).json())["models"]
    assert not models["florence"]["loaded"]  # never needed


async def test_custom_label_file(make_client: MakeClient, tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text(
        "attributes:\n"
        "  mood:\n"
        "    classes: [person]\n"
        "    templates: ['a photo of a {} person.']\n"
        "    labels: {calm: calm, hurried: hurried, lost: lost}\n"
    )
    client = await make_client(preload=(), labels_path=path)
    body = await (
        await client.post("/enrich", json={"image_base64": IMAGE, "objects": EIGHT[:1]})
    ).json()
    assert set(body["objects"][0]["attributes"]) == {"mood"}
    assert body["objects"][0]["attributes"]["mood"]["value"] in {"calm", "hurried", "lost"}


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"objects": []}, "needs image_base64"),
        ({"image_base64": IMAGE, "objects": {}}, "objects must be a list"),
        ({"image_base64": IMAGE, "objects": [{"bbox": EIGHT[0]["bbox"]}]},
         "objects[0].class must be"),
        ({"image_base64": IMAGE, "objects": [{"class": "car"}]}, "objects[0].bbox must be"),
        ({"image_base64": IMAGE,
          "objects": [EIGHT[0], {"class": "car", "bbox": {"x": 500, "y": 0, "width": 10,
                                                          "height": 10}}]},
         "objects[1].bbox (500, 0, 10x10) lies outside the 320x240 image"),
        ({"image_base64": IMAGE,
          "objects": [{"class": "car", "bbox": {"x": 5, "y": 5, "width": 10, "height": -3}}]},
         "objects[0].bbox is empty"),
        ({"image_base64": IMAGE, "objects": [EIGHT[0]] * 65}, "the limit is 64"),
        ({"image_base64": IMAGE, "reference_embedding": [0, 0]}, "all zeros"),
        ({"image_base64": IMAGE, "reference_embedding": [0.5] * 7},
         "has 7 dimensions; this server's CLIP model produces 32"),
        ({"image_base64": IMAGE, "embed": "yes"}, "embed must be true or false"),
    ],
)  # fmt: skip
async def test_enrich_bad_requests_are_422(
    make_client: MakeClient, payload: dict[str, object], fragment: str
) -> None:
    client = await make_client(preload=())
    response = await client.post("/enrich", json=payload)
    body = await response.json()
    assert response.status == 422, body
    assert_schema("Error", body)
    assert fragment in body["error"]["message"]


async def test_enrich_takes_json_only(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    response = await client.post("/enrich", data=image_bytes(),
                                 headers={"Content-Type": "image/jpeg"})  # fmt: skip
    assert response.status == 422
    assert "JSON body" in (await response.json())["error"]["message"]


async def test_analyze_uses_the_zoo(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    metadata = {
        "camera": {"id": "cam1", "name": "Drive"},
        "detections": [[EIGHT[0], EIGHT[2]]],
        "options": {"enrich": True, "describe": False, "llm": False},
    }
    response = await client.post("/analyze", json={"frames_base64": [IMAGE], "metadata": metadata})
    body = await response.json()
    assert response.status == 200, body
    assert body["models"]["enrich"]["status"] == "used"
    by_class = {o["class"]: o["attributes"] for o in body["objects"]}
    assert {"clothing", "carrying", "face_visible"} <= set(by_class["person"])
    assert {"vehicle_type", "vehicle_color", "plate"} <= set(by_class["car"])


def _objects(*boxes: tuple[str, int]) -> list[EnrichObject]:
    return [EnrichObject(label, Box(0, 0, width, 50)) for label, width in boxes]


def test_plate_reads_go_to_the_widest_vehicles_of_the_event() -> None:
    enricher = Enricher(ModelRegistry([]), *([None] * 2), load_labels())  # type: ignore[arg-type]
    frames = [
        _objects(("car", 170), ("person", 300), ("motorcycle", 30)),  # too narrow to read
        _objects(("truck", 200)),
        _objects(("car", 170), ("car", 90)),
    ]
    limited = enricher.limit_plate_reads(frames, 2)
    read = [[o.read_plate and enricher.plate_candidate(o) for o in objects] for objects in limited]
    assert read == [[True, False, False], [True], [False, False]]  # a tie goes to the earlier
    assert [[o.label for o in objects] for objects in limited] == [
        [o.label for o in objects] for objects in frames
    ]
    unread = enricher.limit_plate_reads(frames, 0)
    assert not any(o.read_plate and enricher.plate_candidate(o) for f in unread for o in f)


@pytest.mark.parametrize("plate_reads", [2, 0])
async def test_analyze_reads_plates_of_the_widest_vehicles_only(
    make_client: MakeClient, plate_reads: int
) -> None:
    """Four frames with a car and a truck each: HSI_PLATE_READS OCR passes, not eight."""
    client = await make_client(preload=(), plate_reads=plate_reads)
    metadata = {
        "camera": {"id": "cam1", "name": "Drive"},
        "detections": [[EIGHT[2], EIGHT[3]]] * 4,
        "options": {"enrich": True, "describe": False, "llm": False},
    }
    body = {"frames_base64": [IMAGE] * 4, "metadata": metadata}
    response = await client.post("/analyze", json=body)
    answer = await response.json()
    assert response.status == 200, answer
    read = [(o["frame"], o["class"]) for o in answer["objects"] if "plate" in o["attributes"]]
    assert read == [(0, "car"), (1, "car")][:plate_reads]  # the 170 px cars, not the trucks
    assert all("vehicle_type" in o["attributes"] for o in answer["objects"])


# --- tasks --------------------------------------------------------------------------------


async def test_a_failing_part_leaves_no_other_part_running(monkeypatch) -> None:
    """CLIP's part fails while plate OCR still runs: OCR is cancelled and awaited, not left."""

    def idle(name: str) -> DynamicBatcher[Any, Any]:
        return DynamicBatcher(name, list, max_batch_size=1, max_wait_ms=0, max_queue=1)

    enricher = Enricher(ModelRegistry([]), idle("clip"), idle("florence"), load_labels())
    plate_tasks: list[asyncio.Task[Any]] = []

    async def clip_part(*_: Any) -> None:
        await asyncio.sleep(0)
        raise ReferenceDimError(3, DIM)

    async def plates(*_: Any) -> None:
        plate_tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        await asyncio.sleep(3600)

    monkeypatch.setattr(enricher, "_clip_part", clip_part)
    monkeypatch.setattr(enricher, "_plates", plates)
    with pytest.raises(ReferenceDimError):
        await enricher.enrich(Image.new("RGB", (96, 64)), [EnrichObject("car", Box(0, 0, 80, 60))])
    assert plate_tasks and plate_tasks[0].cancelled()
