"""The object taxonomy: groups of detector classes and what a camera watches."""

from __future__ import annotations

import pytest
from hsi_client import (
    CAMERA_CLASS_CHOICES,
    CAMERA_DEFAULT_CLASSES,
    DETECTOR_DEFAULT_CLASSES,
    GROUPS,
    group_of,
    is_wanted,
)
from hsi_client.taxonomy import WEAPON_LIKE_CLASSES


@pytest.mark.parametrize(
    ("label", "group"),
    [
        ("person", "person"),
        ("Person", "person"),
        ("car", "vehicle"),
        ("truck", "vehicle"),
        ("bicycle", "vehicle"),
        ("boat", "vehicle"),
        ("train", "vehicle"),
        ("airplane", "other"),
        ("cat", "animal"),
        ("DOG", "animal"),
        ("bird", "animal"),
        ("chair", "other"),
        ("knife", "other"),
        ("", "other"),
    ],
)
def test_group_of(label: str, group: str) -> None:
    """Detector classes fall into person / vehicle / animal / other, case-insensitively."""
    assert group_of(label) == group


@pytest.mark.parametrize(
    ("label", "wanted", "expected"),
    [
        ("person", ["person"], True),
        ("car", ["vehicle"], True),
        ("truck", ["vehicle"], True),
        ("truck", ["car"], False),
        ("car", ["car"], True),
        ("cat", ["animal"], True),
        ("cat", ["dog"], False),
        ("dog", ["person", "vehicle"], False),
        ("backpack", ["backpack"], True),
        ("backpack", ["person", "vehicle", "animal"], False),
        # "other" is no group a camera can watch.
        ("backpack", ["other"], False),
        ("person", [], False),
    ],
)
def test_is_wanted(label: str, wanted: list[str], expected: bool) -> None:
    """A camera watches groups, single classes, or both."""
    assert is_wanted(label, wanted) is expected
    assert is_wanted(label, frozenset(wanted)) is expected


def test_lists_agree() -> None:
    """Defaults and choices are made of known groups and classes."""
    assert GROUPS == ("person", "vehicle", "animal")
    assert CAMERA_DEFAULT_CLASSES == GROUPS
    assert set(GROUPS) <= set(CAMERA_CLASS_CHOICES)
    assert len(set(CAMERA_CLASS_CHOICES)) == len(CAMERA_CLASS_CHOICES)
    assert all(group_of(label) != "other" for label in DETECTOR_DEFAULT_CLASSES)
    assert all(group_of(label) == "other" for label in WEAPON_LIKE_CLASSES)
