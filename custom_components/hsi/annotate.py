"""Snapshots with boxes and labels drawn on them (pure Pillow; runs in the executor)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
import io

from hsi_client import AnalyzedObject, group_of
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from .const import LOGGER

COLOURS = {"person": "#ff3b30", "vehicle": "#0a84ff", "animal": "#34c759", "other": "#ffcc00"}


@cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's default font, loaded once (loading it costs more than drawing a label)."""
    return ImageFont.load_default()


def _distinct(objects: Sequence[AnalyzedObject]) -> list[AnalyzedObject]:
    """One object per class and box (the most confident): a duplicate draws the same pixels."""
    best: dict[tuple[str, tuple[int, ...]], AnalyzedObject] = {}
    for obj in objects:
        box = obj.bbox
        key = (obj.label, (round(box.x), round(box.y), round(box.width), round(box.height)))
        if key not in best or obj.confidence > best[key].confidence:
            best[key] = obj
    return list(best.values())


def annotate(image: bytes, objects: Sequence[AnalyzedObject]) -> bytes:
    """Draw boxes and labels on a snapshot (runs in the executor)."""

    try:
        picture: Image.Image = Image.open(io.BytesIO(image))
        picture.load()  # decode once; a broken picture fails here
    except (UnidentifiedImageError, OSError) as err:
        LOGGER.debug("Cannot annotate snapshot: %s", err)
        return image
    if picture.mode != "RGB":  # camera JPEGs are RGB already: no copy for them
        picture = picture.convert("RGB")
    draw = ImageDraw.Draw(picture)
    draw.font = _font()
    width = max(2, picture.width // 320)
    for obj in _distinct(objects):
        box = obj.bbox
        colour = COLOURS[group_of(obj.label)]
        x0, y0 = box.x, box.y
        x1, y1 = box.x + box.width, box.y + box.height
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
        text = f"{obj.label} {obj.confidence:.0%}"
        left, top, right, bottom = draw.textbbox((x0, y0), text)
        lift = bottom - top + 2
        draw.rectangle((left, top - lift, right + 2, bottom - lift), fill=colour)
        draw.text((x0 + 1, y0 - lift), text, fill="black")
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=85)
    return out.getvalue()
