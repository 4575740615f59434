"""Checking image files before anything is stored (no Django models here).

An image is read from its header first: format allow-listed, byte and pixel
limits enforced before any pixel is decoded (decompression bombs), then fully
decoded so a truncated or corrupt file is refused up front.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

EXTENSIONS = {"PNG": "png", "BMP": "bmp", "JPEG": "jpg", "TIFF": "tif", "WEBP": "webp"}


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
    """Validate image bytes; ``label`` names the file in error messages."""
    if len(data) > max_bytes:
        raise ImageRejected(f"{label}: {len(data)} bytes is over the limit of {max_bytes}")
    if not data:
        raise ImageRejected(f"{label}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:
                image_format, (width, height) = header.format, header.size
            if image_format not in formats:
                raise ImageRejected(f"{label}: format {image_format} is not allowed (allowed: {', '.join(formats)})")
            if width * height > max_pixels:
                raise ImageRejected(f"{label}: {width}x{height} pixels is over the limit of {max_pixels}")
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected(f"{label}: not an image file (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"{label}: refused as a decompression bomb") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageRejected(f"{label}: corrupt or truncated image ({error})") from None
    return CheckedImage(
        data=data, format=image_format, width=width, height=height, sha256=hashlib.sha256(data).hexdigest()
    )


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
