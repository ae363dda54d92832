"""The `tiny` profile: random-weight models of the real architectures, built locally.

Weights cannot always be downloaded (tests, CI, offline smoke runs), so this module writes small
models in the same on-disk formats as the real checkpoints; the server then loads them through
exactly the same code path (`from_pretrained` on a folder). Their outputs are meaningless but
have the real shapes and types.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

_LOGGER = logging.getLogger(__name__)

# Bump when a recipe changes, so cached builds are rebuilt.
TINY_VERSION = 1

COCO_LABELS = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic_light",
    "fire_hydrant",
    "stop_sign",
    "parking_meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports_ball",
    "kite",
    "baseball_bat",
    "baseball_glove",
    "skateboard",
    "surfboard",
    "tennis_racket",
    "bottle",
    "wine_glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot_dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted_plant",
    "bed",
    "dining_table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell_phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy_bear",
    "hair_drier",
    "toothbrush",
)
COCO_ID2LABEL = {i: name.replace("_", " ") for i, name in enumerate(COCO_LABELS)}


def build_detector(target: Path, *, image_size: int = 640, seed: int = 0) -> None:
    """A ~2 MB RT-DETRv2 (ResNet backbone, 2 decoder layers, COCO labels) with random weights."""
    from transformers import (
        RTDetrImageProcessor,
        RTDetrResNetConfig,
        RTDetrV2Config,
        RTDetrV2ForObjectDetection,
    )

    torch.manual_seed(seed)
    backbone = RTDetrResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32, 64, 128],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],  # type: ignore[call-arg]
    )
    config = RTDetrV2Config(
        backbone_config=backbone,
        encoder_in_channels=[32, 64, 128],
        encoder_hidden_dim=32,
        encoder_ffn_dim=64,
        encoder_attention_heads=2,
        d_model=32,
        decoder_in_channels=[32, 32, 32],
        decoder_ffn_dim=64,
        decoder_layers=2,  # 1 fails on tied weights
        decoder_attention_heads=2,
        num_queries=20,
        num_denoising=0,
        id2label=COCO_ID2LABEL,
        label2id={v: k for k, v in COCO_ID2LABEL.items()},
    )
    model = RTDetrV2ForObjectDetection(config).eval()
    model.save_pretrained(target)
    RTDetrImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(target)


def build_detector_r50vd(target: Path, *, seed: int = 0) -> None:
    """The real-size RT-DETRv2 r50vd architecture with random weights (benchmarks only)."""
    from transformers import RTDetrImageProcessor, RTDetrV2Config, RTDetrV2ForObjectDetection

    torch.manual_seed(seed)
    config = RTDetrV2Config(
        id2label=COCO_ID2LABEL, label2id={v: k for k, v in COCO_ID2LABEL.items()}
    )
    RTDetrV2ForObjectDetection(config).eval().save_pretrained(target)
    RTDetrImageProcessor(size={"height": 640, "width": 640}).save_pretrained(target)


# name -> (folder name, builder); later families (florence, clip, llm) add themselves here.
BUILDERS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "detector": ("detector", build_detector),
}


def make_tiny_models(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build (or reuse) the tiny models under `root`; returns name -> path.

    Each model is written to a temporary folder and renamed into place, so a crash midway
    never leaves a half-written model that a later run would trust.
    """
    root.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in names or list(BUILDERS):
        folder, builder = BUILDERS[name]
        target = root / folder
        stamp = target / ".hsi-tiny.json"
        if _stamp_ok(stamp):
            paths[name] = target
            continue
        _LOGGER.info("building tiny %s model in %s", name, target)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder}-", dir=root))
        try:
            builder(scratch)
            (scratch / stamp.name).write_text(json.dumps({"version": TINY_VERSION}))
            if target.exists():
                shutil.rmtree(target)
            scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        paths[name] = target
    return paths


def _stamp_ok(stamp: Path) -> bool:
    try:
        return bool(json.loads(stamp.read_text()).get("version") == TINY_VERSION)
    except (OSError, ValueError):
        return False
