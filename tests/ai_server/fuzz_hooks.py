"""Schemathesis hooks for tests/ai_server/test_fuzz_contract.py (loaded with SCHEMATHESIS_HOOKS).

`format: byte` (the contract's `ImageBase64`) is generated as a real JPEG, PNG or WebP image in
base64, so the fuzzer's valid requests reach the models and their answers are checked against the
response schemas, instead of all stopping at the image decoder. Invalid data is still generated
by schemathesis' negative mode.
"""

from __future__ import annotations

import base64
import io

import schemathesis
from hypothesis import strategies as st
from PIL import Image


def _image(width: int, height: int, fmt: str, colour: tuple[int, int, int]) -> str:
    image = Image.new("RGB", (width, height), colour)
    image.paste((250, 250, 250), (width // 4, height // 4, width // 2, height // 2))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


IMAGES = [
    _image(w, h, fmt, colour)
    for (w, h) in ((64, 48), (320, 240), (17, 300))
    for fmt in ("JPEG", "PNG", "WEBP")
    for colour in ((90, 140, 60),)
]

schemathesis.openapi.format("byte", st.sampled_from(IMAGES))
