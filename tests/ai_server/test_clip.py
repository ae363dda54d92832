"""CLIP through open_clip with the tiny random-weight model: /embed, zero-shot, /detect?embed=1."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from aiohttp import FormData

from ai_server.models import tiny
from ai_server.models.base import ModelLoadError
from ai_server.models.clip import Clip, ClipItem, ensemble, open_clip_name, prompts, zero_shot
from ai_server.runtime.devices import resolve_device

from .conftest import MakeClient, image_bytes
from .spec import assert_schema

DIM = 32  # the tiny model's embed_dim


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    root = tmp_path_factory.mktemp("clip")
    path = tiny.make_tiny_models(root, ["clip"])["clip"]
    model = Clip(str(path), resolve_device("cpu"))
    model.load()
    return model


def test_embeddings_are_normalised_and_in_order(clip: Clip) -> None:
    from PIL import Image

    red, blue = Image.new("RGB", (80, 60), (200, 0, 0)), Image.new("RGB", (30, 90), (0, 0, 200))
    vectors = clip.embed(
        [ClipItem(image=red), ClipItem(text="a red car"), ClipItem(image=blue), ClipItem(text="x")]
    )
    assert [v.shape for v in vectors] == [(DIM,)] * 4
    assert all(v.dtype == np.float32 for v in vectors)
    np.testing.assert_allclose([np.linalg.norm(v) for v in vectors], 1.0, rtol=1e-5)
    # The same input gives the same vector wherever it sits in a batch.
    alone = clip.embed([ClipItem(image=blue)])[0]
    np.testing.assert_allclose(alone, vectors[2], atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
    assert clip.dim == DIM and clip.memory_bytes() > 0
    assert clip.info()["dim"] == DIM


def test_clip_item_holds_exactly_one_thing() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ClipItem()


def test_source_names(tmp_path: Path) -> None:
    assert open_clip_name(str(tmp_path)) == f"local-dir:{tmp_path.resolve()}"
    assert open_clip_name("laion/CLIP-ViT-B-32-laion2B-s34B-b79K") == (
        "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    )
    assert open_clip_name("hf-hub:org/name") == "hf-hub:org/name"
    with pytest.raises(ModelLoadError, match="does not exist"):
        open_clip_name(str(tmp_path / "missing"))


def test_broken_folder_is_a_clear_load_error(tmp_path: Path) -> None:
    (tmp_path / "open_clip_config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="could not load CLIP model"):
        Clip(str(tmp_path), resolve_device("cpu")).load()


def test_prompt_ensemble_and_zero_shot_math() -> None:
    texts = prompts(["car", "dog"], ["a photo of a {}.", "a {} outside."])
    assert texts == ["a photo of a car.", "a car outside.", "a photo of a dog.", "a dog outside."]
    rng = np.random.default_rng(0)
    vectors = [v / np.linalg.norm(v) for v in rng.normal(size=(4, 8)).astype(np.float32)]
    matrix = ensemble(vectors, 2)
    assert matrix.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, rtol=1e-5)
    expected = (vectors[0] + vectors[1]) / np.linalg.norm(vectors[0] + vectors[1])
    np.testing.assert_allclose(matrix[0], expected, rtol=1e-5)
    probs = zero_shot(np.stack([matrix[1], matrix[0], vectors[2]]), matrix, 100.0)
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert probs[0].argmax() == 1 and probs[1].argmax() == 0  # each label matches itself
    with pytest.raises(ValueError, match="do not split"):
        ensemble(vectors[:3], 2)


async def test_embed_images_and_texts(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    response = await client.post(
        "/embed",
        json={
            "images_base64": [b64(image_bytes(64, 48)), b64(image_bytes(200, 100, "PNG"))],
            "texts": ["a person at the door", "a parked car", "a cat"],
        },
    )
    assert response.status == 200
    body = await response.json()
    assert_schema("EmbedResponse", body)
    assert body["dim"] == DIM
    assert len(body["image_embeddings"]) == 2 and len(body["text_embeddings"]) == 3
    for vector in body["image_embeddings"] + body["text_embeddings"]:
        assert len(vector) == DIM
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
    assert "zero_shot" not in body
    assert body["model"].endswith("clip")


async def test_zero_shot_shape(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    labels = ["person", "car", "dog", "empty driveway"]
    response = await client.post(
        "/embed",
        json={
            "images_base64": [b64(image_bytes()), b64(image_bytes(90, 90))],
            "labels": labels,
            "templates": ["a photo of a {}.", "a security camera photo of a {}."],
        },
    )
    body = await response.json()
    assert response.status == 200, body
    assert_schema("EmbedResponse", body)
    assert len(body["zero_shot"]) == 2
    for entry in body["zero_shot"]:
        assert list(entry["scores"]) == labels
        assert sum(entry["scores"].values()) == pytest.approx(1.0, abs=1e-3)
        assert entry["label"] == max(entry["scores"], key=entry["scores"].get)
        assert entry["confidence"] == max(entry["scores"].values())


async def test_embed_multipart_and_raw_images(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    form = FormData()
    for i in range(3):
        form.add_field("files", image_bytes(50 + i, 40), filename=f"{i}.jpg",
                       content_type="image/jpeg")  # fmt: skip
    body = await (await client.post("/embed", data=form)).json()
    assert len(body["image_embeddings"]) == 3 and body["text_embeddings"] == []
    raw = await client.post("/embed", data=image_bytes(), headers={"Content-Type": "image/jpeg"})
    assert len((await raw.json())["image_embeddings"]) == 1


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ({}, 422, "nothing to embed"),
        ({"texts": "a car"}, 422, "texts must be a list"),
        ({"texts": [""]}, 422, "non-empty strings"),
        ({"texts": ["x"] * 257}, 422, "the limit is 256"),
        ({"texts": ["a"], "labels": ["car"]}, 422, "need at least one image"),
        ({"image_base64": "bm90IGFuIGltYWdl", "labels": ["car"], "templates": ["car"]}, 422,
         "template needs"),
        ({"images_base64": ["%%%"]}, 400, "not valid base64"),
        ({"images_base64": [base64.b64encode(b"GIF89a....").decode()]}, 415, "GIF"),
    ],
)  # fmt: skip
async def test_embed_bad_requests(
    make_client: MakeClient, payload: dict[str, object], status: int, fragment: str
) -> None:
    client = await make_client(preload=())
    response = await client.post("/embed", json=payload)
    assert response.status == status
    body = await response.json()
    assert_schema("Error", body)
    assert fragment in body["error"]["message"]


async def test_detect_embed_adds_one_embedding_per_detection(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post(
        "/detect",
        data=image_bytes(320, 240),
        params={"confidence": "0", "classes": "all", "embed": "1"},
        headers={"Content-Type": "image/jpeg"},
    )
    body = await response.json()
    assert response.status == 200, body
    assert_schema("DetectResponse", body)
    assert body["detections"]
    for detection in body["detections"]:
        assert len(detection["embedding"]) == DIM
        assert np.linalg.norm(detection["embedding"]) == pytest.approx(1.0, abs=1e-4)
    plain = await client.post(
        "/detect", data=image_bytes(320, 240), params={"confidence": "0", "classes": "all"},
        headers={"Content-Type": "image/jpeg"},
    )  # fmt: skip
    assert all("embedding" not in d for d in (await plain.json())["detections"])


async def test_detect_batch_embed(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post(
        "/detect/batch",
        json={"images_base64": [b64(image_bytes(160, 120)), b64(image_bytes(100, 100))]},
        params={"confidence": "0", "classes": "all", "embed": "true"},
    )
    body = await response.json()
    assert response.status == 200, body
    for result in body["results"]:
        assert all(len(d["embedding"]) == DIM for d in result["detections"])


async def test_detect_embed_flag_is_validated(make_client: MakeClient) -> None:
    client = await make_client(preload=())
    response = await client.post("/detect", data=image_bytes(), params={"embed": "maybe"},
                                 headers={"Content-Type": "image/jpeg"})  # fmt: skip
    assert response.status == 422
    assert "embed" in (await response.json())["error"]["message"]
