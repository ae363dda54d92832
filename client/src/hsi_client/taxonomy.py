"""The object taxonomy: which detector (COCO) classes are people, vehicles and animals.

The one list of classes the server's rules, the integration's relevance filter, the gallery's
matching, the snapshot colours and the camera settings all read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final, Literal

ObjectGroup = Literal["person", "vehicle", "animal", "other"]

PERSON_CLASSES: Final = frozenset({"person"})
# Ground vehicles and boats: what stops at, or passes, a home. An aeroplane overhead is no visitor.
VEHICLE_CLASSES: Final = frozenset(
    {"car", "truck", "bus", "motorcycle", "bicycle", "boat", "train"}
)
ANIMAL_CLASSES: Final = frozenset(
    {"dog", "cat", "bird", "horse", "sheep", "cow", "bear", "elephant", "zebra", "giraffe"}
)
# Vehicles that carry a licence plate worth reading.
PLATE_CLASSES: Final = frozenset({"car", "truck", "bus", "motorcycle"})
# Objects that change how a person's presence reads (COCO classes the detector reports).
WEAPON_LIKE_CLASSES: Final = frozenset({"knife", "baseball bat", "scissors"})

# The groups a camera counts and reports (entities, bus events), in display order.
GROUPS: Final[tuple[ObjectGroup, ...]] = ("person", "vehicle", "animal")
OBJECT_GROUPS: Final[Mapping[ObjectGroup, frozenset[str]]] = {
    "person": PERSON_CLASSES,
    "vehicle": VEHICLE_CLASSES,
    "animal": ANIMAL_CLASSES,
}

# What the server's detector reports unless configured otherwise.
DETECTOR_DEFAULT_CLASSES: Final = (
    "person",
    "car",
    "truck",
    "bus",
    "motorcycle",
    "bicycle",
    "dog",
    "cat",
    "bird",
)
# What a camera may watch for (groups or single classes), and what it watches by default.
CAMERA_CLASS_CHOICES: Final = (
    *GROUPS,
    "car",
    "truck",
    "bicycle",
    "motorcycle",
    "dog",
    "cat",
    "backpack",
    "handbag",
    "suitcase",
)
CAMERA_DEFAULT_CLASSES: Final = GROUPS


def group_of(label: str) -> ObjectGroup:
    """person / vehicle / animal / other for a detector class."""
    label = label.lower()
    for group, classes in OBJECT_GROUPS.items():
        if label in classes:
            return group
    return "other"


def is_wanted(label: str, wanted: Collection[str]) -> bool:
    """Whether a camera that watches `wanted` (classes or groups) cares about `label`."""
    group = group_of(label)
    return label in wanted or (group != "other" and group in wanted)
