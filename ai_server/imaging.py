"""Turning request bodies into images safely: formats, pixel limits, EXIF orientation.

Images arrive three ways (see openapi.yaml): a raw `image/*` body, multipart file parts with any
part name, or JSON with base64 strings. Every path ends in `decode_image`, which checks the
format by its magic bytes, the pixel count before decoding (decompression bombs), and applies
the EXIF orientation so boxes refer to the image as a person sees it.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from hsi_client import BoundingBox
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ApiError, bad_request, too_large, unprocessable, unsupported_media

IMAGE_CONTENT_TYPES = frozenset({"image/jpeg", "image/jpg", "image/png", "image/webp"})
_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}


@dataclass(frozen=True)
class RawImage:
    """Undecoded image bytes and the name the client gave them."""

    data: bytes
    filename: str | None = None


def sniff_format(data: bytes) -> str | None:
    """The image format from magic bytes: JPEG, PNG, WEBP, or a name for a refused one."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Decode JPEG/PNG/WebP bytes into an RGB image, refusing anything unsafe or unreadable."""
    if not data:
        raise unprocessable("image is empty")
    kind = sniff_format(data)
    if kind not in _FORMATS:
        got = f" (got {kind})" if kind else ""
        raise unsupported_media(f"unsupported image format{got}: send JPEG, PNG or WebP")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind])
            width, height = image.size
            if width * height > max_pixels:
                raise too_large(
                    "image_too_large",
                    f"image is {width}x{height} = {width * height} pixels; "
                    f"the limit is {max_pixels}",
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own bomb check can fire before ours, with its own (2x larger) limit.
        raise too_large(
            "image_too_large", f"image exceeds the limit of {max_pixels} pixels"
        ) from None
    except UnidentifiedImageError:
        raise bad_request(
            "invalid_image",
            f"could not decode {_FORMATS[kind]} image: not a valid {_FORMATS[kind]} file "
            "(truncated or corrupt header)",
        ) from None
    except (OSError, SyntaxError, ValueError, MemoryError) as err:
        raise bad_request(
            "invalid_image", f"could not decode {_FORMATS[kind]} image: {_printable(str(err))}"
        ) from None
    oriented = ImageOps.exif_transpose(image)
    return oriented.convert("RGB") if oriented.mode != "RGB" else oriented


def decode_base64(value: Any, field: str) -> bytes:
    """Base64 (optionally a `data:` URL) from a JSON field."""
    if not isinstance(value, str) or not value:
        raise unprocessable(f"{field} must be a non-empty base64 string")
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("invalid_base64", f"{field} is not valid base64") from None


def loads_json(data: str | bytes, what: str) -> Any:
    """JSON text to a value; 400 naming `what` when it is not JSON, not UTF-8 or nested
    deeper than Python's recursion limit (which json.loads meets as RecursionError)."""
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise bad_request("invalid_json", f"{what} is not valid JSON: {err}") from None
    except RecursionError:
        raise bad_request("invalid_json", f"{what} is nested too deeply") from None


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        text = await request.text()
    except UnicodeDecodeError as err:
        raise bad_request("invalid_json", f"request body is not valid JSON: {err}") from None
    body = loads_json(text, "request body")
    if not isinstance(body, dict):
        raise unprocessable("JSON body must be an object")
    return body


async def read_images(
    request: web.Request, *, json_field: str, json_list_field: str, max_bytes: int
) -> list[RawImage]:
    """Every image in the request body, in order, whatever way it was sent."""
    content_type = request.content_type.lower()
    if content_type in IMAGE_CONTENT_TYPES or content_type == "application/octet-stream":
        data = await request.read()
        if not data:
            raise unprocessable("request has no body: send an image")
        return [RawImage(data)]
    if content_type.startswith("multipart/"):
        return await _read_multipart(request, max_bytes)
    if content_type == "application/json":
        body = await read_json(request)
        if json_field in body:
            return [RawImage(decode_base64(body[json_field], json_field))]
        if json_list_field in body:
            items = body[json_list_field]
            if not isinstance(items, list):
                raise unprocessable(f"{json_list_field} must be a list of base64 strings")
            return [
                RawImage(decode_base64(item, f"{json_list_field}[{i}]"), f"image_{i}")
                for i, item in enumerate(items)
            ]
        raise unprocessable(f"JSON body needs {json_field} (or {json_list_field})")
    if not request.body_exists:
        raise unprocessable("request has no body: send an image")
    raise unsupported_media(
        f"unsupported content type {content_type!r}: send image/jpeg, image/png, image/webp, "
        "multipart/form-data or application/json"
    )


async def read_multipart(
    request: web.Request, *, max_bytes: int, fields: Collection[str]
) -> tuple[list[RawImage], dict[str, bytes]]:
    """Images of a multipart body, and the parts named in `fields` (e.g. a `metadata` JSON)."""
    named: dict[str, bytes] = {}
    images = await _read_multipart(request, max_bytes, fields=frozenset(fields), named=named)
    return images, named


async def _read_multipart(
    request: web.Request,
    max_bytes: int,
    *,
    fields: frozenset[str] = frozenset(),
    named: dict[str, bytes] | None = None,
) -> list[RawImage]:
    # aiohttp enforces client_max_size for read()/post() but not for streamed parts, and a
    # chunked upload has no Content-Length to check up front: count as we go.
    total = 0
    try:
        reader = await request.multipart()
        images: list[RawImage] = []
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            is_field = part.name in fields and part.filename is None
            if (
                not is_field
                and part.filename is None
                and part.headers.get("Content-Type", "").startswith("text/")
            ):
                continue  # form fields (metadata and the like) are not images
            chunks = bytearray()
            while chunk := await part.read_chunk():
                total += len(chunk)
                if total > max_bytes:
                    raise too_large(
                        "payload_too_large", f"request body exceeds the limit of {max_bytes} bytes"
                    )
                chunks.extend(chunk)
            if is_field and named is not None and part.name is not None:
                named[part.name] = bytes(chunks)
                continue
            images.append(RawImage(bytes(chunks), part.filename or part.name))
    except ApiError:
        raise
    except (ValueError, AssertionError, LookupError, HttpProcessingError) as err:
        # ValueError covers UnicodeDecodeError (a part name that is not UTF-8); LookupError an
        # unknown charset; HttpProcessingError a part header aiohttp refuses.
        message = getattr(err, "message", None) or str(err)
        raise bad_request(
            "invalid_multipart", f"malformed multipart body: {_printable(message)}"
        ) from None
    return images


def _printable(text: str, limit: int = 200) -> str:
    """`text` for an error message: control characters escaped, cut to `limit` characters."""
    shown = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# --- boxes and crops -----------------------------------------------------------------------


# Boxes are the contract's type: the same class the integration parses.
Box = BoundingBox


def parse_box(value: Any, field: str, size: tuple[int, int]) -> Box:
    """A box from JSON, clipped to the image; 422 naming `field` when empty or outside.

    A box that only partly leaves the image (detectors round outwards) is clipped to it; one
    with no area, or none inside the image, is refused.
    """
    if not isinstance(value, dict):
        raise unprocessable(f"{field} must be an object {{x, y, width, height}} in pixels")
    numbers: list[float] = []
    for key in ("x", "y", "width", "height"):
        item = value.get(key)
        if isinstance(item, bool) or not isinstance(item, int | float) or item != item:
            raise unprocessable(f"{field}.{key} must be a number (pixels), got {item!r}")
        numbers.append(float(item))
    x, y, width, height = numbers
    if width <= 0 or height <= 0:
        raise unprocessable(f"{field} is empty: width and height must be > 0, got {width}x{height}")
    image_w, image_h = size
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(float(image_w), x + width), min(float(image_h), y + height)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise unprocessable(
            f"{field} ({x:g}, {y:g}, {width:g}x{height:g}) lies outside the "
            f"{image_w}x{image_h} image"
        )
    return Box(x1, y1, x2 - x1, y2 - y1)


def crop(image: Image.Image, box: Box) -> Image.Image:
    """The pixels of `box` (at least 1x1), as a new image."""
    left, top = int(box.x), int(box.y)
    right = max(left + 1, round(box.x + box.width))
    bottom = max(top + 1, round(box.y + box.height))
    return image.crop((left, top, right, bottom))
