"""The scripted profile (tests only): scene frames through the real app and the real process."""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hsi_client import AnalyzeOptions, CameraInfo, EventContext, EventMetadata, HsiClient
from hsi_client.testing import SCENE_CHUNK, SceneObject, identity_colour, scene_frame
from PIL import Image, PngImagePlugin

from ai_server.config import SCRIPTED_PRELOAD, load_settings
from ai_server.imaging import Box, crop, decode_image
from ai_server.models import scripted
from ai_server.models.scripted import EMBED_DIM, scene_objects

from .conftest import MakeClient, image_bytes
from .spec import assert_schema
from .test_server_process import free_port, server_log, wait_healthy

Client = TestClient[web.Request, web.Application]

ALICE, BOB, CAR = "alice", "bob", "car-1"


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    """An app in the scripted profile, its models loaded."""
    return await make_client(profile="scripted")


def cosine(a: Any, b: Any) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


async def detect(client: Client, frame: bytes, **query: str) -> dict[str, Any]:
    answer = await client.post("/detect", data=frame, params=query)
    assert answer.status == 200, await answer.text()
    body: dict[str, Any] = await answer.json()
    assert_schema("DetectResponse", body)
    return body


def boxes(body: dict[str, Any]) -> list[tuple[str, float, list[float]]]:
    return [
        (d["class"], d["confidence"], [d["bbox"][k] for k in ("x", "y", "width", "height")])
        for d in body["detections"]
    ]


# --- the chunk through decoding ----------------------------------------------------------------


def _png(image: Image.Image, text: str, exif: Image.Exif | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text(SCENE_CHUNK, text)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, **({"exif": exif} if exif else {}))
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L"])
def test_the_chunk_survives_decoding(mode: str) -> None:
    """decode_image's EXIF transpose and RGB conversion keep Pillow's `info`, so the scripted
    models read the chunk from the very image the real path hands them (crops too)."""
    text = json.dumps({"objects": [SceneObject("car", "c", 0.8, (1, 2, 30, 20)).as_dict()]})
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: exif_transpose makes a new image
    for orientation in (None, exif):
        image = decode_image(_png(Image.new(mode, (64, 48)), text, orientation), max_pixels=10**6)
        assert image.mode == "RGB"
        assert image.size == ((48, 64) if orientation else (64, 48))
        assert scene_objects(image) == [SceneObject("car", "c", 0.8, (1, 2, 30, 20))]
        assert scene_objects(crop(image, Box(1, 2, 10, 10))) == scene_objects(image)


def test_scene_frames_have_the_colour_of_each_identity() -> None:
    image = decode_image(scene_frame([SceneObject("person", ALICE)]), max_pixels=10**6)
    (obj,) = scene_objects(image)
    assert obj.box is not None
    x, y, w, h = obj.box
    assert image.getpixel((x + w // 2, y + h // 2)) == identity_colour(ALICE)


# --- /detect -----------------------------------------------------------------------------------


async def test_detect_returns_the_scripted_objects(client: Client) -> None:
    frame = scene_frame(
        [
            SceneObject("person", ALICE, 0.93, (40, 60, 80, 200)),
            SceneObject("car", CAR, 0.71, (300, 250, 200, 100)),
            SceneObject("dog", "rex", 0.6, (560, 400, 120, 100)),  # partly outside: clipped
        ]
    )
    body = await detect(client, frame)
    assert (body["image_width"], body["image_height"]) == (640, 480)
    assert boxes(body) == [
        ("person", 0.93, [40, 60, 80, 200]),
        ("car", 0.71, [300, 250, 200, 100]),
        ("dog", 0.6, [560, 400, 80, 80]),
    ]
    # The same frame as a multipart file part and as JSON base64, and in /detect/batch.
    form = aiohttp.FormData()
    form.add_field("file", frame, filename="scene.png", content_type="image/png")
    answer = await client.post("/detect", data=form)
    assert boxes(await answer.json()) == boxes(body)
    form = aiohttp.FormData()
    for name, data in (("a.png", frame), ("b.jpg", image_bytes())):
        form.add_field("files", data, filename=name, content_type="image/png")
    answer = await client.post("/detect/batch", data=form)
    results = (await answer.json())["results"]
    assert boxes(results[0]) == boxes(body)
    assert results[1]["detections"] == []


async def test_threshold_and_classes_apply(client: Client) -> None:
    frame = scene_frame(
        [
            SceneObject("person", ALICE, 0.95),
            SceneObject("person", BOB, 0.55),
            SceneObject("person", "faint", 0.3),  # under the server's 0.5
            SceneObject("car", CAR, 0.8),
            SceneObject("backpack", "bag", 0.9),  # not a default class
        ]
    )
    found = [(label, conf) for label, conf, _ in boxes(await detect(client, frame))]
    assert found == [("person", 0.95), ("car", 0.8), ("person", 0.55)]
    found = [
        (label, conf) for label, conf, _ in boxes(await detect(client, frame, confidence="0.6"))
    ]
    assert found == [("person", 0.95), ("car", 0.8)]
    found = [label for label, _, _ in boxes(await detect(client, frame, classes="all"))]
    assert found == ["person", "backpack", "car", "person"]
    found = [
        label for label, _, _ in boxes(await detect(client, frame, classes="car", confidence="0"))
    ]
    assert found == ["car"]


async def test_pictures_without_the_chunk_show_nothing(client: Client) -> None:
    for picture in (image_bytes(), image_bytes(fmt="PNG"), image_bytes(fmt="WEBP")):
        assert (await detect(client, picture, embed="1"))["detections"] == []


async def test_a_malformed_chunk_is_a_clear_422(client: Client) -> None:
    frame = _png(Image.new("RGB", (64, 48)), '{"objects": [{"class": "person"}]}')
    answer = await client.post("/detect", data=frame)
    assert answer.status == 422
    message = (await answer.json())["error"]["message"]
    assert "invalid scene frame" in message
    assert "objects[0] needs identity" in message


# --- embeddings re-identify --------------------------------------------------------------------


def scene_frames() -> list[bytes]:
    """Alice, Bob and a car at other places and sizes in each frame, in other company."""
    return [
        scene_frame([SceneObject("person", ALICE), SceneObject("car", CAR)]),
        scene_frame(
            [
                SceneObject("person", BOB, 0.9, (20, 100, 60, 150)),
                SceneObject("person", ALICE, 0.9, (400, 50, 150, 380)),
            ]
        ),
        scene_frame(
            [
                SceneObject("car", CAR, 0.9, (10, 600, 200, 100)),  # clear of the people
                SceneObject("person", BOB),
                SceneObject("person", ALICE),
            ],
            width=1280,
            height=720,
        ),
        scene_frame([SceneObject("person", ALICE, 0.9, (5, 5, 24, 60))], width=320, height=240),
    ]


async def embedded(client: Client) -> dict[str, list[list[float]]]:
    """Every detection's embedding by identity, through /detect?embed=1."""
    by_identity: dict[str, list[list[float]]] = {}
    for frame in scene_frames():
        body = await detect(client, frame, embed="1")
        truth = scene_objects(Image.open(io.BytesIO(frame)))
        for detection in body["detections"]:
            (obj,) = [
                o
                for o in truth
                if o.box is not None
                and [detection["bbox"][k] for k in ("x", "y", "width", "height")] == list(o.box)
            ]
            assert len(detection["embedding"]) == EMBED_DIM
            by_identity.setdefault(obj.identity, []).append(detection["embedding"])
    return by_identity


async def test_embeddings_re_identify(client: Client) -> None:
    """Same identity across frames, positions and sizes: >= 0.9; different ones: <= 0.5."""
    by_identity = await embedded(client)
    assert {name: len(v) for name, v in by_identity.items()} == {ALICE: 4, BOB: 2, CAR: 2}
    same = [
        cosine(a, b)
        for vectors in by_identity.values()
        for a, b in itertools.combinations(vectors, 2)
    ]
    different = [
        cosine(a, b)
        for (_, va), (_, vb) in itertools.combinations(by_identity.items(), 2)
        for a in va
        for b in vb
    ]
    for vectors in by_identity.values():
        for vector in vectors:
            assert abs(np.linalg.norm(vector) - 1) < 1e-4
    print(  # the figures docs/server.md quotes (pytest -s)
        f"same identity: {min(same):.3f}-{max(same):.3f} (n={len(same)}); "
        f"different: {min(different):.3f}-{max(different):.3f} (n={len(different)})"
    )
    assert min(same) >= 0.9
    assert max(same) < 0.999  # a little noise per crop
    assert max(abs(c) for c in different) <= 0.5


async def test_embeddings_are_deterministic(client: Client) -> None:
    first, second = await embedded(client), await embedded(client)
    assert first == second


async def test_embed_endpoint(client: Client) -> None:
    frame = scene_frame([SceneObject("person", ALICE, 0.9, (100, 100, 50, 120))])
    body = {"texts": ["a person", "a car", "a person"]}
    answer = await client.post("/embed", json=body)
    assert answer.status == 200, await answer.text()
    result = await answer.json()
    assert result["dim"] == EMBED_DIM
    texts = result["text_embeddings"]
    assert texts[0] == texts[2]
    assert abs(cosine(texts[0], texts[1])) < 0.5
    # A crop of Alice from /embed matches her /detect?embed=1 embedding.
    image = Image.open(io.BytesIO(frame)).crop((100, 100, 150, 220))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    form = aiohttp.FormData()
    form.add_field("image", buffer.getvalue(), filename="alice.png", content_type="image/png")
    answer = await client.post("/embed", data=form)
    (crop_vector,) = (await answer.json())["image_embeddings"]
    (found,) = (await detect(client, frame, embed="1"))["detections"]
    assert cosine(crop_vector, found["embedding"]) >= 0.9
    # Images and texts are orthogonal: zero-shot answers are uniform, never confidently random.
    assert all(abs(cosine(crop_vector, text)) < 1e-6 for text in texts)


# --- Florence-2 and /analyze -------------------------------------------------------------------


async def describe(client: Client, frame: bytes, task: str, **extra: Any) -> Any:
    body = {"image_base64": base64.b64encode(frame).decode(), "task": task, **extra}
    answer = await client.post("/describe", json=body)
    assert answer.status == 200, await answer.text()
    return (await answer.json())["result"]


async def test_describe_uses_a_template(client: Client) -> None:
    frame = scene_frame(
        [
            SceneObject("person", ALICE, 0.9, (10, 10, 50, 150)),
            SceneObject("car", CAR, 0.9, (200, 200, 200, 100)),
            SceneObject("car", "car-2", 0.9, (420, 200, 200, 100)),
        ]
    )
    assert await describe(client, frame, "caption") == "a person and 2 cars"
    assert (
        await describe(client, frame, "detailed_caption") == "The image shows a person and 2 cars."
    )
    assert await describe(client, frame, "ocr") == ""
    assert await describe(client, frame, "ocr_regions") == []
    assert [o["label"] for o in await describe(client, frame, "od")] == ["person", "car", "car"]
    region = {"x": 190, "y": 190, "width": 100, "height": 50}
    empty = {"x": 100, "y": 400, "width": 20, "height": 20}
    regions = await describe(client, frame, "region_caption", boxes=[region, empty])
    assert [r["caption"] for r in regions] == ["a car", "background"]
    assert await describe(client, scene_frame([]), "caption") == "an empty scene"
    objects = [SceneObject("person", f"p{i}") for i in range(3)] + [SceneObject("bus", "b")]
    assert await describe(client, scene_frame(objects), "caption") == "3 people and a bus"
    assert await describe(client, image_bytes(), "caption") == "an empty scene"


def metadata(**options: bool) -> EventMetadata:
    return EventMetadata(
        camera=CameraInfo("front_door", "Front door", "faces the street"),
        started_at=datetime.fromisoformat("2026-11-27T14:00:00+00:00"),
        ended_at=datetime.fromisoformat("2026-11-27T14:00:30+00:00"),
        context=EventContext(time_of_day="day", home_mode="disarmed"),
        options=AnalyzeOptions(**options),
    )


async def test_analyze_scores_the_scripted_objects_by_rules(client: Client) -> None:
    frames = scene_frames()[:2]
    form = aiohttp.FormData()
    for index, frame in enumerate(frames):
        form.add_field("frame", frame, filename=f"f{index}.png", content_type="image/png")
    form.add_field("metadata", json.dumps(metadata().as_dict()), content_type="application/json")
    answer = await client.post("/analyze", data=form)
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert_schema("AnalyzeResponse", body)
    assert body["risk"]["source"] == "rules"
    assert body["models"]["llm"]["status"] == "unavailable"
    assert {
        name: body["models"][name]["status"] for name in ("detector", "enrich", "florence")
    } == {
        "detector": "used",
        "enrich": "used",
        "florence": "used",
    }
    assert sorted((o["frame"], o["class"]) for o in body["objects"]) == [
        (0, "car"),
        (0, "person"),
        (1, "person"),
        (1, "person"),
    ]
    assert body["description"] in ("a person and a car", "2 people")  # the key frame's
    assert not body["risk"].get("flags")  # scene frames are neither dark nor blurred
    for obj in body["objects"]:  # zero-shot attributes: uniform, so no confident answer
        answers = [a for a in obj["attributes"].values() if a and "confidence" in a]
        assert answers
        assert all(a["confidence"] <= 0.5 for a in answers)
    assert body["risk"]["summary"].startswith("2 persons, 1 car at Front door")


async def test_analyze_is_fast(client: Client) -> None:
    """The scene harness sends hundreds of frames: an event of 4 frames with every stage on
    answers in well under a second on 2 CPU cores."""
    frames = scene_frames()
    form_parts = [(f"f{i}.png", frame) for i, frame in enumerate(frames)]

    async def once() -> float:
        form = aiohttp.FormData()
        for name, frame in form_parts:
            form.add_field("frame", frame, filename=name, content_type="image/png")
        form.add_field(
            "metadata", json.dumps(metadata().as_dict()), content_type="application/json"
        )
        started = time.perf_counter()
        answer = await client.post("/analyze", data=form)
        assert answer.status == 200, await answer.text()
        assert (await answer.json())["risk"]["source"] == "rules"
        return time.perf_counter() - started

    await once()  # label matrices of the zoo are computed once
    seconds = sorted([await once() for _ in range(10)])
    print(f"/analyze of 4 scene frames: median {1000 * seconds[5]:.0f} ms")
    assert seconds[5] < 1.0


async def test_health_and_models(client: Client) -> None:
    health = await (await client.get("/health")).json()
    assert health["status"] == "healthy"
    assert health["model_loaded"] is True
    models = (await (await client.get("/models")).json())["models"]
    assert sorted(models) == sorted(SCRIPTED_PRELOAD)
    assert all(m["loaded"] and m["source"] == "scripted" for m in models.values())
    answer = await client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert answer.status == 503  # no LLM in this profile


def test_the_profile_registers_no_llm() -> None:
    assert [spec.name for spec in scripted.build_specs()] == ["detector", "clip", "florence"]


def test_the_profile_setting(tmp_path: Path) -> None:
    """HSI_PROFILE=scripted / --profile scripted; its preload is its own models unless set."""
    options = tmp_path / "no-options.json"
    settings = load_settings(env={"HSI_PROFILE": "Scripted"}, options_path=options)
    assert (settings.profile, settings.preload) == ("scripted", SCRIPTED_PRELOAD)
    settings = load_settings(
        env={"HSI_PRELOAD": "detector"}, cli={"--profile": "scripted"}, options_path=options
    )
    assert (settings.profile, settings.preload) == ("scripted", ("detector",))
    assert load_settings(env={}, options_path=options).preload == ("detector", "llm")


# --- the real process --------------------------------------------------------------------------


@pytest.fixture
def scripted_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    log = (tmp_path / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ai_server",
            "serve",
            "--profile",
            "scripted",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "HSI_CACHE_DIR": str(tmp_path / "cache"), "HSI_DEVICE": "cpu"},
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


async def test_the_real_server_process(
    scripted_server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """`python -m ai_server serve --profile scripted`, spoken to as the integration does."""
    base, process = scripted_server
    await wait_healthy(base, process)
    async with aiohttp.ClientSession() as session:
        api = HsiClient(base, session)
        frames = [
            scene_frame([SceneObject("person", ALICE, 0.92, (50, 80, 100, 250))]),
            scene_frame([SceneObject("person", ALICE, 0.94, (300, 40, 140, 400))]),
            scene_frame([SceneObject("person", BOB, 0.9, (300, 40, 140, 400))]),
        ]
        found = [await api.detect(frame, embed=True) for frame in frames]
        assert [[(d.label, d.confidence) for d in r.detections] for r in found] == [
            [("person", 0.92)],
            [("person", 0.94)],
            [("person", 0.9)],
        ]
        first, again, other = (r.detections[0] for r in found)
        assert (first.bbox.x, first.bbox.y, first.bbox.width, first.bbox.height) == (
            50,
            80,
            100,
            250,
        )
        assert cosine(first.embedding, again.embedding) >= 0.9
        assert abs(cosine(first.embedding, other.embedding)) <= 0.5
        result = await api.analyze(frames[:2], metadata())
        assert result.risk.source == "rules"
        assert [(o.label, o.frame) for o in result.objects] == [("person", 0), ("person", 1)]
        assert result.description == "a person"
    log = server_log(tmp_path)
    assert "profile scripted" in log
    assert "unknown model" not in log  # the profile's preload names only its own models
