"""The enrichment zoo: attributes per detected object and quality signals per frame.

For each object (a class and a box on one image) it asks CLIP the zero-shot questions that the
label file (`ai_server/data/labels.yaml`, or `HSI_LABELS_PATH`) lists for that class: vehicle type
and colour, clothing and uniforms, what a person carries, whether a face is visible, which animal.
Vehicles get their plate read by Florence-2 OCR on the crop, normalised. The frame gets blur
(variance of the Laplacian), brightness, and a scene-change score against a reference embedding
the caller keeps (the server stays stateless).

Every model call goes through that model's dynamic batcher, so enrichment shares batches with
/embed, /describe and other requests. A missing optional model degrades the answer (its
attributes are absent and `warnings` says why) instead of failing it.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml
from hsi_client.taxonomy import PLATE_CLASSES
from PIL import Image

from ..config import ConfigError
from ..imaging import Box, crop
from ..runtime.batcher import DynamicBatcher
from ..runtime.registry import ModelRegistry, ModelUnavailableError
from ..runtime.tasks import cancel_and_wait
from .clip import Clip, ClipItem, Vector, ensemble, prompts, zero_shot
from .vlm import DescribeRequest, DescribeResult, Florence

ClipBatcher = DynamicBatcher[ClipItem, Vector]
FlorenceBatcher = DynamicBatcher[DescribeRequest, DescribeResult]

_QUALITY_SIDE = 640  # blur is measured at this longest side, so values compare across cameras


# --- the label file ------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeSet:
    """One zero-shot question: asked of objects of `classes`, answered with one of `keys`."""

    name: str
    classes: frozenset[str]
    keys: tuple[str | bool, ...]
    phrases: tuple[str, ...]
    templates: tuple[str, ...]
    min_confidence: float = 0.0

    @property
    def prompts(self) -> list[str]:
        return prompts(self.phrases, self.templates)


@dataclass(frozen=True)
class PlateRules:
    classes: frozenset[str] = PLATE_CLASSES
    min_width: int = 40
    min_length: int = 4
    max_length: int = 10


@dataclass(frozen=True)
class QualityRules:
    blur_threshold: float = 60.0
    dark_threshold: float = 0.12
    scene_change_threshold: float = 0.8


@dataclass(frozen=True)
class Labels:
    attributes: tuple[AttributeSet, ...]
    templates: tuple[str, ...] = ("a photo of a {}.",)  # the default prompt ensemble
    plates: PlateRules = field(default_factory=PlateRules)
    quality: QualityRules = field(default_factory=QualityRules)

    def for_class(self, label: str) -> list[AttributeSet]:
        return [a for a in self.attributes if label.lower() in a.classes]


def load_labels(path: Path | None = None) -> Labels:
    """The label file (the packaged one unless `path`), validated; ConfigError names the spot."""
    where = str(path) if path else "ai_server/data/labels.yaml"
    try:
        text = (
            path.read_text()
            if path
            else resources.files("ai_server").joinpath("data/labels.yaml").read_text()
        )
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"Invalid label file {where} (HSI_LABELS_PATH): {err}") from None
    try:
        return _parse_labels(data)
    except (TypeError, ValueError, KeyError) as err:
        raise ConfigError(f"Invalid label file {where} (HSI_LABELS_PATH): {err}") from None


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a non-empty list of strings")
    return tuple(value)


def _parse_labels(data: Any) -> Labels:
    if not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
        raise ValueError("needs a mapping `attributes: {name: {classes, labels}}`")
    default_templates = _strings(data.get("templates", ["a photo of a {}."]), "templates")
    attributes = []
    for name, spec in data["attributes"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("labels"), dict):
            raise ValueError(f"attributes.{name} needs `classes` and a `labels` mapping")
        templates = _strings(spec.get("templates", list(default_templates)), f"{name}.templates")
        if not all("{}" in t for t in templates):
            raise ValueError(f"attributes.{name}.templates: every template needs a {{}}")
        keys: list[str | bool] = []
        for key in spec["labels"]:
            if spec.get("type") == "boolean":
                keys.append(str(key).lower() in {"true", "yes"})
            else:
                keys.append(str(key))
        if spec.get("type") == "boolean" and sorted(keys) != [False, True]:
            raise ValueError(f"attributes.{name}: a boolean attribute has labels true and false")
        phrases = tuple(str(p) for p in spec["labels"].values())
        attributes.append(
            AttributeSet(
                name=str(name),
                classes=frozenset(
                    c.lower() for c in _strings(spec.get("classes"), f"{name}.classes")
                ),
                keys=tuple(keys),
                phrases=phrases,
                templates=templates,
                min_confidence=float(spec.get("min_confidence", 0.0)),
            )
        )
    plates = data.get("plates") or {}
    image = data.get("image") or {}
    return Labels(
        attributes=tuple(attributes),
        templates=default_templates,
        plates=PlateRules(
            classes=frozenset(
                c.lower()
                for c in _strings(plates.get("classes", sorted(PLATE_CLASSES)), "plates.classes")
            ),
            min_width=int(plates.get("min_width", 40)),
            min_length=int(plates.get("min_length", 4)),
            max_length=int(plates.get("max_length", 10)),
        ),
        quality=QualityRules(
            blur_threshold=float(image.get("blur_threshold", 60.0)),
            dark_threshold=float(image.get("dark_threshold", 0.12)),
            scene_change_threshold=float(image.get("scene_change_threshold", 0.8)),
        ),
    )


# --- pure measurements ---------------------------------------------------------------------

_SPECIAL = re.compile(r"<[^>]*>")
_ALNUM = re.compile(r"[A-Z0-9]+")


def normalise_plate(text: str, *, min_length: int = 4, max_length: int = 10) -> str | None:
    """The most plate-like run of letters and digits in OCR text, upper-case, no separators.

    Neighbouring groups are joined ("ab-123 cd" reads as AB123CD), a plate has at least one
    digit, and among candidates mixed letters+digits beat digits only, then longer beats shorter.
    """
    tokens = _ALNUM.findall(_SPECIAL.sub(" ", text).upper())
    best: tuple[tuple[bool, int], str] | None = None
    for start in range(len(tokens)):
        joined = ""
        for token in tokens[start:]:
            joined += token
            if len(joined) > max_length:
                break
            if len(joined) >= min_length and any(c.isdigit() for c in joined):
                score = (any(c.isalpha() for c in joined), len(joined))
                if best is None or score > best[0]:
                    best = (score, joined)
    return best[1] if best else None


@dataclass(frozen=True)
class Quality:
    blur: float  # variance of the Laplacian: lower is blurrier
    brightness: float  # mean luma, 0..1


def measure_quality(image: Image.Image) -> Quality:
    """Sharpness (variance of the Laplacian) and brightness of a frame."""
    grey = image.convert("L")
    scale = _QUALITY_SIDE / max(grey.size)
    if scale < 1:
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    pixels = np.asarray(grey, dtype=np.float32)
    brightness = float(pixels.mean()) / 255.0
    if min(pixels.shape) < 3:
        return Quality(0.0, brightness)
    laplacian = (
        pixels[:-2, 1:-1]
        + pixels[2:, 1:-1]
        + pixels[1:-1, :-2]
        + pixels[1:-1, 2:]
        - 4.0 * pixels[1:-1, 1:-1]
    )
    return Quality(float(laplacian.var()), brightness)


def cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator > 0 else 0.0


# --- the zoo -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrichObject:
    """One object to enrich: its detected class and its box on the image."""

    label: str
    box: Box
    confidence: float | None = None
    read_plate: bool = True  # False: a plate candidate left unread (the event's limit)


@dataclass
class EnrichResult:
    objects: list[dict[str, Any]]
    image: dict[str, Any]
    warnings: list[str]
    seconds: float
    embeddings: list[Vector] = field(default_factory=list)  # per object, when CLIP ran

    def as_dict(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "image": self.image,
            "warnings": self.warnings,
            "inference_time_ms": round(self.seconds * 1000, 2),
        }


class Enricher:
    """Runs the zoo on one image through the CLIP and Florence-2 batchers."""

    def __init__(
        self,
        registry: ModelRegistry,
        clip_batcher: ClipBatcher,
        florence_batcher: FlorenceBatcher,
        labels: Labels,
    ) -> None:
        self.registry = registry
        self.clip_batcher = clip_batcher
        self.florence_batcher = florence_batcher
        self.labels = labels
        self._label_matrices: dict[str, npt.NDArray[np.float32]] = {}

    async def label_matrix(self, attribute: AttributeSet) -> npt.NDArray[np.float32]:
        """The attribute's label embeddings (prompt ensembles), computed once."""
        cached = self._label_matrices.get(attribute.name)
        if cached is None:
            vectors = await self.clip_batcher.submit_many(
                [ClipItem(text=p) for p in attribute.prompts]
            )
            cached = ensemble(vectors, len(attribute.keys))
            self._label_matrices[attribute.name] = cached
        return cached

    async def enrich(
        self,
        image: Image.Image,
        objects: Sequence[EnrichObject],
        *,
        reference: Vector | None = None,
        embed: bool = False,
        plates: bool = True,
    ) -> EnrichResult:
        started = time.perf_counter()
        crops = await asyncio.to_thread(lambda: [crop(image, o.box) for o in objects])
        results: list[dict[str, Any]] = [
            {"class": o.label, "bbox": o.box.as_dict(), "attributes": {}} for o in objects
        ]
        if any(o.confidence is not None for o in objects):
            for entry, obj in zip(results, objects, strict=True):
                if obj.confidence is not None:
                    entry["confidence"] = obj.confidence
        warnings: list[str] = []
        quality_task = asyncio.create_task(asyncio.to_thread(measure_quality, image))
        clip_task = asyncio.create_task(
            self._clip_part(image, objects, crops, results, reference, embed, warnings)
        )
        parts: list[asyncio.Task[Any]] = [quality_task, clip_task]
        if plates:
            parts.append(asyncio.create_task(self._plates(objects, crops, results, warnings)))
        try:
            await asyncio.gather(*parts)
        finally:  # one part failed, or the caller went away: none of the others keeps running
            await cancel_and_wait(*parts)
        quality = quality_task.result()
        image_vector, embeddings = clip_task.result()
        rules = self.labels.quality
        frame: dict[str, Any] = {
            "width": image.width,
            "height": image.height,
            "blur": round(quality.blur, 2),
            "blurry": quality.blur < rules.blur_threshold,
            "brightness": round(quality.brightness, 4),
            "dark": quality.brightness < rules.dark_threshold,
        }
        if reference is not None and image_vector is not None:
            similarity = cosine(image_vector, reference)
            frame["scene_change"] = {
                "similarity": round(similarity, 4),
                "changed": similarity < rules.scene_change_threshold,
            }
        if embed and image_vector is not None:
            frame["embedding"] = _floats(image_vector)
        return EnrichResult(
            results, frame, warnings, time.perf_counter() - started, embeddings=embeddings
        )

    async def _clip_part(
        self,
        image: Image.Image,
        objects: Sequence[EnrichObject],
        crops: list[Image.Image],
        results: list[dict[str, Any]],
        reference: Vector | None,
        embed: bool,
        warnings: list[str],
    ) -> tuple[Vector | None, list[Vector]]:
        asked = [self.labels.for_class(o.label) for o in objects]
        whole = reference is not None or embed
        if not whole and not any(asked) and not embed:
            return None, []
        try:
            async with self.registry.use(Clip.name, Clip) as clip:
                items = [ClipItem(image=c) for c in crops]
                if whole:
                    items.append(ClipItem(image=image))
                vectors = await self.clip_batcher.submit_many(items)
                scale = clip.logit_scale
                if reference is not None and reference.shape[0] != clip.dim:
                    raise ReferenceDimError(reference.shape[0], clip.dim)
                needed = {a.name: a for sets in asked for a in sets}
                matrices = {name: await self.label_matrix(a) for name, a in needed.items()}
        except ModelUnavailableError as err:
            warnings.append(f"no zero-shot attributes or embeddings: {err}")
            return None, []
        image_vector = vectors.pop() if whole else None
        for entry, vector, sets in zip(results, vectors, asked, strict=True):
            for attribute in sets:
                probs = zero_shot(vector[None, :], matrices[attribute.name], scale)[0]
                best = int(np.argmax(probs))
                confidence = float(probs[best])
                value = attribute.keys[best] if confidence >= attribute.min_confidence else None
                entry["attributes"][attribute.name] = {
                    "value": value,
                    "confidence": round(confidence, 4),
                }
            if embed:
                entry["embedding"] = _floats(vector)
        return image_vector, vectors

    def plate_candidate(self, obj: EnrichObject) -> bool:
        """A vehicle wide enough for Florence-2 OCR to have a chance at its plate."""
        rules = self.labels.plates
        return obj.label.lower() in rules.classes and obj.box.width >= rules.min_width

    def limit_plate_reads(
        self, frames: Sequence[Sequence[EnrichObject]], limit: int
    ) -> list[list[EnrichObject]]:
        """The same objects with only the `limit` widest plate candidates of the whole event
        still read (an OCR pass is seconds on a CPU; the widest crop is the likeliest read)."""
        ranked = sorted(
            (
                (-obj.box.width, frame, index)
                for frame, objects in enumerate(frames)
                for index, obj in enumerate(objects)
                if self.plate_candidate(obj)
            )
        )
        keep = {(frame, index) for _, frame, index in ranked[:limit]}
        return [
            [
                obj if (frame, index) in keep else replace(obj, read_plate=False)
                for index, obj in enumerate(objects)
            ]
            for frame, objects in enumerate(frames)
        ]

    async def _plates(
        self,
        objects: Sequence[EnrichObject],
        crops: list[Image.Image],
        results: list[dict[str, Any]],
        warnings: list[str],
    ) -> None:
        rules = self.labels.plates
        wanted = [i for i, o in enumerate(objects) if o.read_plate and self.plate_candidate(o)]
        if not wanted:
            return
        try:
            async with self.registry.use(Florence.name, Florence):
                texts = await self.florence_batcher.submit_many(
                    [DescribeRequest(crops[i], "ocr") for i in wanted]
                )
        except ModelUnavailableError as err:
            warnings.append(f"no plate reading: {err}")
            return
        for index, raw in zip(wanted, texts, strict=True):
            text = raw if isinstance(raw, str) else ""
            plate = normalise_plate(text, min_length=rules.min_length, max_length=rules.max_length)
            results[index]["attributes"]["plate"] = (
                {"text": plate, "raw": text[:200]} if plate else None
            )


class ReferenceDimError(ValueError):
    """The caller's reference embedding does not match this CLIP model."""

    def __init__(self, got: int, want: int) -> None:
        super().__init__(
            f"reference_embedding has {got} dimensions; this server's CLIP model produces {want} "
            "(take the reference from /embed or /enrich of this server)"
        )


def _floats(vector: Vector) -> list[float]:
    return [round(float(v), 6) for v in vector]


def parse_reference(value: Any, field: str = "reference_embedding") -> Vector:
    """A caller's reference embedding: a non-empty list of finite numbers, L2-normalised."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{field} must be a non-empty list of numbers")
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise ValueError(f"{field} must contain only finite numbers")
    vector = np.asarray(value, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if norm == 0:
        raise ValueError(f"{field} must not be all zeros")
    normalised: Vector = vector / norm
    return normalised
