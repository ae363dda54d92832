"""Scene frames (hsi_client.testing): the pictures of scripted scenes and their hsi-scene chunk."""

from __future__ import annotations

import io
import itertools
import json
from typing import Any

import pytest
from hsi_client.testing import (
    DEFAULT_SCENE_CONFIDENCE,
    SCENE_BACKGROUND,
    SCENE_CHUNK,
    SCENE_COLOUR_STEP,
    SceneObject,
    identity_colour,
    read_scene_frame,
    scene_frame,
)
from PIL import Image


def decode(png: bytes) -> tuple[Image.Image, list[SceneObject]]:
    """The picture and the objects of its chunk."""
    image = Image.open(io.BytesIO(png))
    image.load()
    return image, read_scene_frame(image.info[SCENE_CHUNK])


def pixel(image: Image.Image, x: float, y: float) -> Any:
    return image.getpixel((int(x), int(y)))


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_round_trip_with_boxes_and_colours() -> None:
    """The chunk holds every object as given; each box is filled with its identity's colour."""
    png = scene_frame(
        [
            SceneObject("person", "alice", 0.95, (40, 60, 80, 200)),
            {"class": "car", "identity": "car-1", "confidence": 0.7, "box": [300, 250, 200, 100]},
        ],
        width=640,
        height=480,
    )
    image, objects = decode(png)
    assert png.startswith(b"\x89PNG")
    assert image.format == "PNG"
    assert (image.size, image.mode) == ((640, 480), "RGB")
    assert objects == [
        SceneObject("person", "alice", 0.95, (40, 60, 80, 200)),
        SceneObject("car", "car-1", 0.7, (300, 250, 200, 100)),
    ]
    assert json.loads(image.info[SCENE_CHUNK]) == {
        "objects": [
            {"class": "person", "identity": "alice", "confidence": 0.95, "box": [40, 60, 80, 200]},
            {"class": "car", "identity": "car-1", "confidence": 0.7, "box": [300, 250, 200, 100]},
        ]
    }
    for obj in objects:
        assert obj.box is not None
        x, y, w, h = obj.box
        colour = identity_colour(obj.identity)
        for px, py in itertools.product((x, x + w - 1, x + w / 2), (y, y + h - 1, y + h / 2)):
            assert pixel(image, px, py) == colour
        assert pixel(image, x - 1, y - 1) != colour  # the box ends where it says
        assert pixel(image, x + w, y + h) != colour
    assert pixel(image, 0, 0) == SCENE_BACKGROUND


def test_background_is_plain_grey_with_a_faint_grid() -> None:
    """Mostly the background grey (a grid keeps it from measuring as a blurred picture)."""
    image, objects = decode(scene_frame([]))
    assert objects == []
    colours = sorted(image.getcolors() or [], reverse=True)
    assert [colour for _, colour in colours] == [SCENE_BACKGROUND, (152, 152, 152)]  # grid lines
    assert colours[0][0] > 0.8 * 640 * 480


def test_identity_colours_are_stable_distinct_and_saturated() -> None:
    names = [f"visitor-{i}" for i in range(12)] + ["alice", "bob", "car1", "cat", "p3"]
    colours = [identity_colour(name) for name in names]
    assert colours == [identity_colour(name) for name in names]  # stable
    assert len(set(colours)) == len(names)
    for colour in colours:
        assert all(v % SCENE_COLOUR_STEP == SCENE_COLOUR_STEP // 2 for v in colour)  # cell centres
        assert max(colour) - min(colour) >= 4 * SCENE_COLOUR_STEP  # never a grey
    # Distinct identities differ by at least one cell in some channel: clearly apart for a reader
    # that quantises to cells, and by at least 16 levels in one channel to the eye.
    for a, b in itertools.combinations(colours, 2):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) >= SCENE_COLOUR_STEP


def test_objects_without_a_box_are_laid_out_side_by_side() -> None:
    """Left to right in order, inside the frame, without overlap; people tall, cars wide."""
    _, objects = decode(
        scene_frame(
            [
                {"class": "person", "identity": "a"},
                SceneObject("car", "b"),
                {"class": "cat", "identity": "c"},
                {"class": "backpack", "identity": "d"},
                {"class": "person", "identity": "e", "box": [5, 5, 20, 20]},  # kept as given
            ],
            width=800,
            height=600,
        )
    )
    boxes = [obj.box for obj in objects]
    assert all(box is not None for box in boxes)
    placed = [box for box in boxes[:4] if box is not None]
    assert boxes[4] == (5, 5, 20, 20)
    for box in placed:
        x, y, w, h = box
        assert min(x, y) >= 0
        assert min(w, h) >= 1
        assert x + w <= 800
        assert y + h <= 600
    assert all(not overlap(a, b) for a, b in itertools.combinations(placed, 2))
    assert [box[0] for box in placed] == sorted(box[0] for box in placed)
    person, car = placed[0], placed[1]
    assert person[3] > person[2]  # tall
    assert car[2] > car[3]  # wide


def test_many_objects_still_fit_and_too_many_are_refused() -> None:
    crowd = [{"class": "person", "identity": f"p{i}"} for i in range(160)]
    image, objects = decode(scene_frame(crowd))
    placed = [obj.box for obj in objects if obj.box is not None]
    assert len(placed) == 160
    assert all(not overlap(a, b) for a, b in itertools.pairwise(placed))
    for obj in objects[:3]:
        assert obj.box is not None
        assert pixel(image, obj.box[0], obj.box[1] + obj.box[3] / 2) == identity_colour(
            obj.identity
        )
    with pytest.raises(ValueError, match="161 objects without a box do not fit"):
        scene_frame([*crowd, {"class": "person", "identity": "one-more"}])


def test_fractional_and_partly_outside_boxes_are_drawn() -> None:
    image, objects = decode(
        scene_frame(
            [
                SceneObject("dog", "rex", 0.5, (10.5, 20.25, 0.5, 0.75)),
                SceneObject("car", "x", 0.6, (-50, 400, 100, 200)),
            ]
        )
    )
    assert objects[0].box == (10.5, 20.25, 0.5, 0.75)
    assert pixel(image, 10, 20) == identity_colour("rex")
    assert pixel(image, 0, 479) == identity_colour("x")


@pytest.mark.parametrize(
    ("objects", "size", "message"),
    [
        ([], (0, 480), "width must be an integer"),
        ([], (640, True), "height must be an integer"),
        ([], (640, 48.0), "height must be an integer"),
        (["person"], (640, 480), r"objects\[0\] must be a mapping or a SceneObject, got str"),
        ([{"class": "person"}], (640, 480), r"objects\[0\] needs identity"),
        ([{"identity": "a"}], (640, 480), r"objects\[0\] needs class"),
        (
            [{"class": "person", "identity": "a", "colour": "red"}],
            (640, 480),
            r"objects\[0\] has unknown key\(s\) colour",
        ),
        ([{"class": " ", "identity": "a"}], (640, 480), "class must be a non-empty string"),
        ([{"class": "person", "identity": 7}], (640, 480), "identity must be a non-empty string"),
        (
            [{"class": "person", "identity": "a", "confidence": 1.5}],
            (640, 480),
            "confidence must be a number from 0 to 1",
        ),
        (
            [{"class": "person", "identity": "a", "confidence": True}],
            (640, 480),
            "confidence must be a number",
        ),
        (
            [{"class": "person", "identity": "a", "box": [1, 2, 3]}],
            (640, 480),
            r"box must be \[x, y, width, height\]",
        ),
        (
            [{"class": "person", "identity": "a", "box": "1,2,3,4"}],
            (640, 480),
            r"box must be \[x, y, width, height\]",
        ),
        (
            [{"class": "person", "identity": "a", "box": [1, 2, float("nan"), 4]}],
            (640, 480),
            r"box must be \[x, y, width, height\]",
        ),
        (
            [{"class": "person", "identity": "a", "box": [1, 2, 0, 4]}],
            (640, 480),
            "box width and height must be > 0",
        ),
        (
            [{"class": "person", "identity": "a", "box": [1, 2, 3, -4]}],
            (640, 480),
            "box width and height must be > 0",
        ),
        (
            [{"class": "person", "identity": "a", "box": [640, 0, 10, 10]}],
            (640, 480),
            r"objects\[0\].box \[640, 0, 10, 10\] lies outside the 640x480 frame",
        ),
        (
            [{"class": "person", "identity": "a", "box": [-20, 0, 20, 10]}],
            (640, 480),
            "lies outside",
        ),
        ([{"class": "person", "identity": "a", "box": [0, 480, 5, 5]}], (640, 480), "outside"),
        ([{"class": "person", "identity": "a", "box": [0, -5, 5, 5]}], (640, 480), "outside"),
    ],
)
def test_scene_frame_refuses_bad_input(
    objects: list[Any], size: tuple[Any, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        scene_frame(objects, *size)


def test_null_confidence_and_box_mean_the_defaults() -> None:
    """As a scene's objects come (optional keys present with null values)."""
    _, objects = decode(
        scene_frame([{"class": "person", "identity": "a", "confidence": None, "box": None}])
    )
    assert objects[0].confidence == DEFAULT_SCENE_CONFIDENCE == 0.9
    assert objects[0].box is not None


def test_scene_object_checks_itself() -> None:
    assert SceneObject("car", "c").as_dict() == {
        "class": "car",
        "identity": "c",
        "confidence": 0.9,
        "box": None,
    }
    listed: Any = [1, 2, 3, 4]
    assert SceneObject("car", "c", 1, listed).box == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="confidence"):
        SceneObject("car", "c", -0.1)


def _chunk(*objects: Any, **extra: Any) -> str:
    return json.dumps({"objects": list(objects), **extra})


GOOD = {"class": "person", "identity": "a", "confidence": 0.8, "box": [1, 2, 3, 4]}


def test_read_scene_frame_reads_the_chunk() -> None:
    assert read_scene_frame(_chunk(GOOD, {**GOOD, "class": "cat", "box": [0.5, 0, 2, 2]})) == [
        SceneObject("person", "a", 0.8, (1, 2, 3, 4)),
        SceneObject("cat", "a", 0.8, (0.5, 0, 2, 2)),
    ]
    assert read_scene_frame(_chunk()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "hsi-scene chunk is not valid JSON"),
        ("{objects: []}", "hsi-scene chunk is not valid JSON"),
        ("[]", r'hsi-scene chunk must be \{"objects": \[...\]\}'),
        ('{"objects": {}}', "hsi-scene chunk must be"),
        (_chunk(GOOD, extra=1), "hsi-scene chunk must be"),
        ('{"things": []}', "hsi-scene chunk must be"),
        (_chunk("person"), r"hsi-scene objects\[0\] must be a mapping"),
        (_chunk(GOOD, {k: v for k, v in GOOD.items() if k != "box"}), r"objects\[1\] needs box"),
        (_chunk({**GOOD, "box": None}), r"objects\[0\] needs box"),
        (
            _chunk({k: v for k, v in GOOD.items() if k not in ("confidence", "box")}),
            r"objects\[0\] needs confidence, box",
        ),
        (_chunk({**GOOD, "label": "x"}), "unknown key"),
        (_chunk({**GOOD, "confidence": "high"}), r"objects\[0\]: confidence must be a number"),
        (_chunk({**GOOD, "box": [1, 2, 3, 0]}), r"objects\[0\]: box width and height"),
    ],
)
def test_read_scene_frame_is_strict(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_scene_frame(text)
