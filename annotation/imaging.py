"""Checking image files before anything is stored (no Django models here).

An image is read from its header first: format allow-listed, byte and pixel
limits enforced before any pixel is decoded (decompression bombs), then fully
decoded so a truncated or corrupt file is refused up front. Bytes already in
memory (an admin upload) go through ``check_image``; a file on disk through
``check_image_file``, which takes the size from ``stat()`` before reading and
hashes in 1 MiB chunks, so a huge file is refused without being read.
"""

from __future__ import annotations

import hashlib
import io
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

EXTENSIONS = {"PNG": "png", "BMP": "bmp", "JPEG": "jpg", "TIFF": "tif", "WEBP": "webp"}
HASH_CHUNK = 1 << 20  # files are hashed 1 MiB at a time, never read whole


class ImageRejected(ValueError):
    """A file that is not an acceptable image; the message says why."""


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    format: str
    width: int
    height: int
    sha256: str

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def check_image(data: bytes, *, label: str, formats: tuple[str, ...], max_bytes: int, max_pixels: int) -> CheckedImage:
    """Validate image bytes already in memory (an admin upload); ``label`` names the file in error messages."""
    _check_byte_count(len(data), label=label, max_bytes=max_bytes)
    image_format, width, height = _check_stream(io.BytesIO(data), label=label, formats=formats, max_pixels=max_pixels)
    return CheckedImage(
        data=data, format=image_format, width=width, height=height, sha256=hashlib.sha256(data).hexdigest()
    )


@dataclass(frozen=True)
class CheckedImageFile:
    """What checking an image file found; the bytes stay on disk."""

    path: Path
    format: str
    width: int
    height: int
    sha256: str


def check_image_file(
    path: Path, *, label: str | None = None, formats: tuple[str, ...], max_bytes: int, max_pixels: int
) -> CheckedImageFile:
    """Validate an image file without holding it in memory: the same rules as ``check_image``, with
    the size from ``stat()`` before any read, the header and the decode from the open file, and the
    SHA-256 streamed. ``label`` (default: the path) names the file in error messages."""
    label = str(path) if label is None else label
    try:
        _check_byte_count(_regular_size(Path(path), label), label=label, max_bytes=max_bytes)
        with open(path, "rb") as handle:
            image_format, width, height = _check_stream(handle, label=label, formats=formats, max_pixels=max_pixels)
            handle.seek(0)
            sha256 = sha256_of(handle, label=label, max_bytes=max_bytes)
    except OSError as error:
        raise ImageRejected(f"{label}: cannot be read ({error})") from None
    return CheckedImageFile(path=Path(path), format=image_format, width=width, height=height, sha256=sha256)


def read_image_bytes(path: Path, *, label: str | None = None, max_bytes: int) -> bytes:
    """The whole file, refused when it is (or grows while read) over ``max_bytes``: sized by
    ``stat()`` first, and never more than ``max_bytes + 1`` bytes read."""
    label = str(path) if label is None else label
    try:
        _check_byte_count(_regular_size(Path(path), label), label=label, max_bytes=max_bytes)
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise ImageRejected(f"{label}: cannot be read ({error})") from None
    if len(data) > max_bytes:
        raise ImageRejected(f"{label}: over the limit of {max_bytes} bytes (it grew while being read)")
    return data


def sha256_of(stream: BinaryIO, *, label: str = "", max_bytes: int | None = None) -> str:
    """SHA-256 of a stream read in 1 MiB chunks; over ``max_bytes`` it is refused as it is read."""
    digest, total = hashlib.sha256(), 0
    while chunk := stream.read(HASH_CHUNK):
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise ImageRejected(f"{label}: over the limit of {max_bytes} bytes (it grew while being read)")
        digest.update(chunk)
    return digest.hexdigest()


def _regular_size(path: Path, label: str) -> int:
    status = path.stat()
    if not stat.S_ISREG(status.st_mode):
        raise ImageRejected(f"{label}: not a regular file")
    return status.st_size


def _check_byte_count(size: int, *, label: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise ImageRejected(f"{label}: {size} bytes is over the limit of {max_bytes}")
    if not size:
        raise ImageRejected(f"{label}: the file is empty")


def _check_stream(stream: BinaryIO, *, label: str, formats: tuple[str, ...], max_pixels: int) -> tuple[str, int, int]:
    """(format, width, height) of an image: format and pixel count from the header before a
    full decode, so a small file that claims a huge image is refused before its pixels exist."""
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89M pixels and refuses from twice that; below, ``max_pixels`` decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                image_format, (width, height) = image.format, image.size
                if image_format not in formats:
                    raise ImageRejected(
                        f"{label}: format {image_format} is not allowed (allowed: {', '.join(formats)})"
                    )
                if width * height > max_pixels:
                    raise ImageRejected(f"{label}: {width}x{height} pixels is over the limit of {max_pixels}")
                image.load()
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected(f"{label}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as error:
        raise ImageRejected(f"{label}: refused from its header as a decompression bomb ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageRejected(f"{label}: corrupt or truncated image ({error})") from None
    return image_format, width, height


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """Lossless PNG with no metadata: the same pixels always give the same bytes."""
    picture = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def checked_png(pixels: np.ndarray) -> CheckedImage:
    """Encode pixels the platform made itself (a crop, a generated distortion)
    as PNG; they need no checking beyond what made them."""
    data = png_bytes(pixels)
    height, width = pixels.shape[:2]
    return CheckedImage(data=data, format="PNG", width=width, height=height, sha256=hashlib.sha256(data).hexdigest())
