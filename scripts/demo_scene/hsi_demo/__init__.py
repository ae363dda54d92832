"""The demo's scripted scene (scripts/demo.py only; never shipped with the integration).

Two cameras, "Demo camera" (watched by the demo) and "Demo garden" (not: there to try "Add
camera" with), whose snapshots are scene frames (`hsi_client.testing.scene_frame`):
PNGs whose `hsi-scene` chunk lists the objects they show, which the AI server's `scripted`
profile reads back as its detections. So the demo shows analyses that make sense (a visitor at
the door, a car on the drive, a cat) instead of what random-weight models make of HA's demo
camera. A motion sensor per camera ("Demo motion", "Demo garden motion") is on while its scene
shows anything: the camera's trigger, as a real motion sensor would be. Each frame carries a
caption saying it is a scripted demo scene. `hsi_demo: {live: true}` loops the scenes (`make
demo`); otherwise they stand still (tests): the visitor at the front door, no motion anywhere.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.discovery import async_load_platform
from homeassistant.helpers.typing import ConfigType
from hsi_client.testing import SCENE_CHUNK, scene_frame
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

DOMAIN = "hsi_demo"
FRONT_NAME = "Demo camera"  # camera.demo_camera, the camera the demo watches
WIDTH, HEIGHT = 640, 480


@dataclass(frozen=True, slots=True)
class Act:
    """Part of the loop: from `start` to `end` seconds, who is where (x moves from x0 to x1)."""

    start: float
    end: float
    caption: str
    objects: tuple[tuple[str, str, float, int, int, int, int, int], ...]
    # (class, identity, confidence, x0, x1, y, width, height)


# One loop of the scene; it starts when Home Assistant sets this integration up, and repeats.
PERIOD = 150.0
FRONT: tuple[Act, ...] = (
    Act(
        5,
        40,
        "a visitor walks up to the front door",
        (("person", "visitor", 0.93, 20, 380, 170, 90, 260),),
    ),
    Act(
        70,
        100,
        "a car pulls into the drive",
        (("car", "red-car", 0.91, 0, 300, 250, 260, 150),),
    ),
    Act(
        120,
        135,
        "the neighbour's cat crosses the lawn",
        (("cat", "cat", 0.88, 560, 120, 380, 70, 50),),
    ),
)
# A second camera the demo does not watch: there to try "Add camera" with.
GARDEN: tuple[Act, ...] = (
    Act(
        50,
        80,
        "someone walks along the fence",
        (("person", "gardener", 0.9, 600, 40, 150, 80, 240),),
    ),
    Act(
        130,
        145,
        "the neighbour's cat sits on the lawn",
        (("cat", "cat", 0.88, 300, 300, 380, 70, 50),),
    ),
)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's own font at a readable size (the bitmap default where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, TypeError):  # pragma: no cover - an old Pillow or no FreeType
        return ImageFont.load_default()


class Scene:
    """What the camera sees at each moment of the loop."""

    def __init__(self, name: str, acts: tuple[Act, ...], *, live: bool) -> None:
        self.name = name
        self.acts = acts
        self.live = live
        self.started = time.monotonic()

    def act(self) -> tuple[Act | None, float]:
        """The act on now (None between acts) and how far into it (0..1).

        A still scene (not live: tests) always shows its first act's last moment.
        """
        if not self.live:
            return (self.acts[0], 1.0) if self.acts and self.name == FRONT_NAME else (None, 0.0)
        now = (time.monotonic() - self.started) % PERIOD
        for act in self.acts:
            if act.start <= now < act.end:
                return act, (now - act.start) / (act.end - act.start)
        return None, 0.0

    def objects(self) -> list[dict[str, Any]]:
        """The scene frame's objects now."""
        act, progress = self.act()
        if act is None:
            return []
        return [
            {
                "class": label,
                "identity": identity,
                "confidence": confidence,
                "box": [int(x0 + (x1 - x0) * progress), y, width, height],
            }
            for label, identity, confidence, x0, x1, y, width, height in act.objects
        ]

    def frame(self) -> bytes:
        """A scene frame of this moment with a caption; the chunk is kept as it is."""
        act, _ = self.act()
        objects = self.objects()
        png = scene_frame(objects, WIDTH, HEIGHT)
        image = Image.open(io.BytesIO(png))
        image.load()
        draw = ImageDraw.Draw(image)
        caption = f"HSI demo scene (scripted): {act.caption if act else 'nobody around'}"
        draw.text((10, 8), caption, fill=(40, 40, 40), font=_font(18))
        for obj in objects:  # a label above each box (outside it: crops stay one colour)
            x, y = obj["box"][0], obj["box"][1]
            draw.text((x, max(0, y - 20)), obj["class"], fill=(40, 40, 40), font=_font(16))
        info = PngImagePlugin.PngInfo()
        info.add_text(SCENE_CHUNK, str(image.info[SCENE_CHUNK]))
        out = io.BytesIO()
        image.save(out, format="PNG", pnginfo=info)
        return out.getvalue()


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """The scenes, each shown by a camera and a motion sensor."""
    live = bool((config.get(DOMAIN) or {}).get("live", False))
    hass.data[DOMAIN] = [
        Scene(FRONT_NAME, FRONT, live=live),
        Scene("Demo garden", GARDEN, live=live),
    ]
    for platform in (Platform.CAMERA, Platform.BINARY_SENSOR):
        hass.async_create_task(async_load_platform(hass, platform, DOMAIN, {}, config))
    return True
