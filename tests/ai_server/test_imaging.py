"""Image decoding: formats by magic bytes, pixel limits, EXIF orientation."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from ai_server.errors import ApiError
from ai_server.imaging import decode_base64, decode_image, sniff_format

from .conftest import image_bytes


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("JPEG", "JPEG"),
        ("PNG", "PNG"),
        ("WEBP", "WEBP"),
        ("GIF", "GIF"),
        ("BMP", "BMP"),
        ("TIFF", "TIFF"),
    ],
)
def test_sniff_format(fmt: str, name: str) -> None:
    image = Image.new("RGB", (8, 8))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    assert sniff_format(buffer.getvalue()) == name


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_decodes_supported_formats_to_rgb(fmt: str) -> None:
    image = decode_image(image_bytes(33, 21, fmt), max_pixels=10_000)
    assert image.size == (33, 21)
    assert image.mode == "RGB"


def test_rgba_png_is_converted() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (5, 5), (1, 2, 3, 4)).save(buffer, format="PNG")
    assert decode_image(buffer.getvalue(), max_pixels=100).mode == "RGB"


@pytest.mark.parametrize("fmt", ["GIF", "BMP"])
def test_other_formats_are_refused_by_name(fmt: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format=fmt)
    with pytest.raises(ApiError) as err:
        decode_image(buffer.getvalue(), max_pixels=100)
    assert err.value.status == 415
    assert f"got {fmt}" in err.value.message


def test_pixel_limit_checked_before_decoding() -> None:
    with pytest.raises(ApiError) as err:
        decode_image(image_bytes(101, 100, "PNG"), max_pixels=100 * 100)
    assert (err.value.status, err.value.code) == (413, "image_too_large")
    assert decode_image(image_bytes(100, 100, "PNG"), max_pixels=100 * 100).size == (100, 100)


def test_truncated_image_is_a_clear_400() -> None:
    data = image_bytes(200, 200, "PNG")
    with pytest.raises(ApiError) as err:
        decode_image(data[: len(data) // 2], max_pixels=10**6)
    assert (err.value.status, err.value.code) == (400, "invalid_image")
    assert "PNG" in err.value.message


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert decode_image(buffer.getvalue(), max_pixels=10**6).size == (20, 40)


def test_base64_variants() -> None:
    assert decode_base64("aGk=", "f") == b"hi"
    assert decode_base64("data:image/png;base64,aGk=", "f") == b"hi"
    for bad, status in (("***", 400), ("", 422), (None, 422), (3, 422)):
        with pytest.raises(ApiError) as err:
            decode_base64(bad, "image_base64")
        assert err.value.status == status
        assert "image_base64" in err.value.message
