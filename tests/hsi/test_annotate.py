"""Snapshot annotation: boxes and labels drawn on the event's key frame."""

from __future__ import annotations

import io

from hsi_client import AnalyzedObject, BoundingBox
from PIL import Image

from custom_components.hsi.annotate import annotate

from .conftest import jpeg

PERSON = AnalyzedObject("person", 0.8, 0, BoundingBox(40, 30, 100, 150))


def test_annotate_draws_once_per_box() -> None:
    """Duplicate boxes draw the same pixels once; other modes become RGB; junk passes through."""
    picture = jpeg()
    single = annotate(picture, [PERSON])
    assert single[:2] == b"\xff\xd8"
    assert single != picture
    assert annotate(picture, [PERSON] * 20) == single
    weaker = AnalyzedObject("person", 0.3, 0, PERSON.bbox)
    assert annotate(picture, [weaker, PERSON]) == single  # the most confident label is drawn

    grey = io.BytesIO()
    Image.new("L", (64, 48), 128).save(grey, format="PNG")
    with Image.open(io.BytesIO(annotate(grey.getvalue(), [PERSON]))) as result:
        assert (result.format, result.mode) == ("JPEG", "RGB")
    assert annotate(b"not an image", [PERSON]) == b"not an image"
