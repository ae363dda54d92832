"""The `scripted` profile, for tests only: models that answer what a scene frame says.

A scene frame (`hsi_client.testing.scene_frame`) is a PNG whose `hsi-scene` text chunk lists the
objects it shows (class, identity, confidence, box) and whose pixels show each object as a box
filled with its identity's colour. The scene harness puts scripted objects into pictures that
way, so that the real server runs unchanged around these models: HTTP, decoding, the dynamic
batchers, /detect?embed=1 crops, the enrichment zoo and /analyze's stages.

- Detector: exactly the chunk's objects, with the request's threshold and class filter applied
  as the real detector applies them; a picture without the chunk has no detections.
- CLIP: an image's embedding is a stable unit vector for its dominant colour (a box's colour is
  its identity's), plus a little noise seeded by the pixels, so one identity's crops match at
  ~0.97 cosine and different identities at ~0; a text's embedding is a stable vector per text,
  orthogonal to every image's, so the enrichment zoo's zero-shot attributes carry no information
  (uniform: the first label of each set with confidence 1/n).
- Florence-2: captions from a template of the chunk's objects ("a person and 2 cars"), no text
  for OCR, the chunk's objects for `od`.
- No LLM: /analyze scores risk with the rules (`source: "rules"`).

The chunk survives decoding: Pillow keeps PNG text chunks in `Image.info`, and EXIF transposing,
RGB conversion and crops copy `info` to the new image (a test checks it). Never use this profile
for a camera: a real picture has no chunk, so nothing is ever detected.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from hsi_client.testing import SCENE_CHUNK, SCENE_COLOUR_STEP, SceneObject, read_scene_frame
from PIL import Image

from ..errors import unprocessable
from ..imaging import Box
from ..runtime.devices import DeviceInfo
from ..runtime.registry import ModelSpec
from .base import ModelLoadError
from .clip import Clip, ClipItem, Vector
from .detector import Detection, Detector, DetectRequest
from .vlm import DescribeRequest, DescribeResult, Florence

_LOGGER = logging.getLogger(__name__)

SOURCE = "scripted"
CPU = DeviceInfo("cpu", torch.float32)  # nothing here touches an accelerator

# The embedding size of the default CLIP (ViT-B/32), so clients see the real shape. Images use
# the first half of the dimensions, texts the second: an image and a text are orthogonal, so
# zero-shot answers are uniform (every label 1/n) instead of confidently random attributes.
EMBED_DIM = 512
_HALF = EMBED_DIM // 2
# Length of the per-crop noise added to an identity's unit vector: cosine between two crops of
# one identity ~ 1 / (1 + NOISE**2) = 0.97; between identities ~ 0 +- 0.06 (random directions).
NOISE = 0.18
_SEED = 0x5C1E7E  # the embedding family; another value gives other vectors
_CELLS = 256 // SCENE_COLOUR_STEP  # colour cells per channel
_SAMPLE_PIXELS = 256 * 256  # larger images are sampled (nearest neighbour) for their colour


# --- the chunk -------------------------------------------------------------------------------


def scene_objects(image: Image.Image) -> list[SceneObject]:
    """The objects of the picture's `hsi-scene` chunk; none without one; 422 when malformed."""
    text = image.info.get(SCENE_CHUNK)
    if text is None:
        return []
    try:
        return read_scene_frame(str(text))
    except ValueError as err:
        raise unprocessable(f"scripted profile: invalid scene frame: {err}") from None


def _clipped(obj: SceneObject, size: tuple[int, int]) -> Box | None:
    """The object's box clipped to the picture, None when nothing of it is inside."""
    x, y, width, height = obj.box or (0.0, 0.0, 0.0, 0.0)  # the chunk always has boxes
    x1, y1 = max(0.0, float(x)), max(0.0, float(y))
    x2, y2 = min(float(size[0]), float(x + width)), min(float(size[1]), float(y + height))
    if x2 <= x1 or y2 <= y1:
        return None
    return Box(x1, y1, x2 - x1, y2 - y1)


# --- detector --------------------------------------------------------------------------------


def scripted_detections(item: DetectRequest) -> list[Detection]:
    """The chunk's objects as the real detector reports them: at or above the threshold, of
    the wanted classes, clipped to the picture, most confident first."""
    found: list[Detection] = []
    for obj in scene_objects(item.image):
        if obj.confidence < item.threshold:
            continue
        if item.classes is not None and obj.label.lower() not in item.classes:
            continue
        box = _clipped(obj, item.image.size)
        if box is not None:
            found.append(
                Detection(obj.label, float(obj.confidence), box.x, box.y, box.width, box.height)
            )
    found.sort(key=lambda d: d.confidence, reverse=True)
    return found


class _Scripted:
    """Load, unload and size of a scripted model: nothing to load, no memory, CPU only."""

    name: str

    def __init__(self) -> None:
        super().__init__(SOURCE, CPU)  # type: ignore[call-arg]  # the model class beside it
        self._ready = False

    @property
    def loaded(self) -> bool:
        return self._ready

    def load(self) -> None:
        self._ready = True

    def unload(self) -> None:
        self._ready = False

    def memory_bytes(self) -> int:
        return 0

    def _check_loaded(self) -> None:
        if not self._ready:
            raise ModelLoadError(f"{self.name} is not loaded")


class ScriptedDetector(_Scripted, Detector):
    """The detector of the scripted profile: reports the objects the scene frame lists."""

    def info(self) -> dict[str, Any]:
        return {"source": SOURCE, "device": CPU.device, "profile": "scripted (tests only)"}

    @property
    def labels(self) -> list[str]:
        return []  # any class a scene names

    def detect(self, batch: list[DetectRequest]) -> list[list[Detection]]:
        self._check_loaded()
        return [scripted_detections(item) for item in batch]


# --- CLIP ------------------------------------------------------------------------------------


def _unit(vector: npt.NDArray[np.float64]) -> Vector:
    unit: Vector = (vector / np.linalg.norm(vector)).astype(np.float32)
    return unit


def _random_vector(offset: int, *seed: int) -> npt.NDArray[np.float64]:
    """A random direction (seeded) in the half of the space that starts at `offset`."""
    vector = np.zeros(EMBED_DIM)
    vector[offset : offset + _HALF] = np.random.default_rng([_SEED, *seed]).standard_normal(_HALF)
    return vector


def _digest_seed(data: bytes) -> int:
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def dominant_cell(image: Image.Image) -> int:
    """The most frequent colour cell of the picture (`SCENE_COLOUR_STEP` levels per channel):
    a box's identity colour for a crop of it, the background's for a whole scene frame."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if rgb.width * rgb.height > _SAMPLE_PIXELS:
        scale = (_SAMPLE_PIXELS / (rgb.width * rgb.height)) ** 0.5
        size = (max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.NEAREST)  # exact colours, no blending
    cells = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3) // SCENE_COLOUR_STEP
    codes = (cells[:, 0].astype(np.int64) * _CELLS + cells[:, 1]) * _CELLS + cells[:, 2]
    return int(np.bincount(codes, minlength=_CELLS**3).argmax())


@lru_cache(maxsize=4096)
def _cell_vector(cell: int) -> Vector:
    vector = _unit(_random_vector(0, 0, cell))
    vector.flags.writeable = False  # cached: shared by every caller
    return vector


def image_embedding(image: Image.Image) -> Vector:
    """Its dominant colour's vector plus noise seeded by its size and pixels, normalised."""
    seed = _digest_seed(f"{image.size}{image.mode}".encode() + image.tobytes())
    noise = _random_vector(0, 1, seed)
    noise *= NOISE / np.linalg.norm(noise)
    return _unit(_cell_vector(dominant_cell(image)) + noise)


def text_embedding(text: str) -> Vector:
    """A stable unit vector per text (orthogonal to every image's)."""
    return _unit(_random_vector(_HALF, 2, _digest_seed(text.encode())))


class ScriptedClip(_Scripted, Clip):
    """CLIP of the scripted profile: one direction per identity colour, one per text."""

    def load(self) -> None:
        self._dim = EMBED_DIM
        super().load()

    def info(self) -> dict[str, Any]:
        return {"source": SOURCE, "device": CPU.device, "dim": EMBED_DIM}

    def embed(self, batch: Sequence[ClipItem]) -> list[Vector]:
        self._check_loaded()
        return [
            image_embedding(item.image)
            if item.image is not None
            else text_embedding(item.text or "")
            for item in batch
        ]


# --- Florence-2 ------------------------------------------------------------------------------

_PLURALS = {"person": "people", "bus": "buses", "knife": "knives"}


def caption(objects: Sequence[SceneObject]) -> str:
    """'a person and 2 cars': each class once, in order of appearance, with its count."""
    counts = Counter(obj.label.replace("_", " ") for obj in objects)
    if not counts:
        return "an empty scene"
    parts = [
        f"{'an' if label[0] in 'aeiou' else 'a'} {label}"
        if count == 1
        else f"{count} {_PLURALS.get(label, label + 's')}"
        for label, count in counts.items()
    ]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _overlap(a: Box, b: Box) -> float:
    width = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    height = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    return max(0.0, width) * max(0.0, height)


def scripted_answer(request: DescribeRequest) -> DescribeResult:
    """One Florence-2 task answered from the chunk, in the real model's result shapes."""
    objects = scene_objects(request.image)
    size = request.image.size
    if request.task == "caption":
        return caption(objects)
    if request.task == "detailed_caption":
        return f"The image shows {caption(objects)}."
    if request.task == "ocr":
        return ""
    if request.task == "ocr_regions":
        return []
    boxes = [(obj, _clipped(obj, size)) for obj in objects]
    inside = [(obj, box) for obj, box in boxes if box is not None]
    if request.task == "od":
        return [{"label": obj.label, "bbox": box.as_dict()} for obj, box in inside]
    region = request.region or Box(0, 0, *size)  # region_caption always has one
    best = max(inside, key=lambda pair: _overlap(pair[1], region), default=None)
    if best is None or _overlap(best[1], region) == 0:
        return "background"
    return caption([best[0]])


class ScriptedFlorence(_Scripted, Florence):
    """Florence-2 of the scripted profile: template captions from the scene, no text."""

    def info(self) -> dict[str, Any]:
        return {"source": SOURCE, "device": CPU.device}

    def describe(self, batch: Sequence[DescribeRequest]) -> list[DescribeResult]:
        self._check_loaded()
        return [scripted_answer(item) for item in batch]


# --- the profile's models --------------------------------------------------------------------


def build_specs() -> list[ModelSpec]:
    """The scripted detector, CLIP and Florence-2; no LLM. Model settings are ignored."""
    _LOGGER.warning(
        "profile scripted: the models answer what scene frames (PNG chunk %r) say, for tests "
        "only; a real camera's pictures get no detections",
        SCENE_CHUNK,
    )
    return [
        ModelSpec(Detector.name, ScriptedDetector, priority=100, optional=False),
        ModelSpec(Clip.name, ScriptedClip, priority=80),
        ModelSpec(Florence.name, ScriptedFlorence, priority=60),
    ]
