"""Pictures for control trials (no Django models here).

A control pair shows the reference's own pixels against a heavily degraded
copy (strong Gaussian blur plus strong noise), so the answer is obvious to
anyone looking: ITU-T P.808's gold questions. PNG-encoded afresh, so the
copy's bytes differ from the stored reference and its URL gives nothing away.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image, ImageFilter

from .imaging import png_bytes

DECOY_BLUR_RADIUS = 4.0
DECOY_NOISE_SIGMA = 40.0  # on 0-255


def control_pictures(reference_bytes: bytes) -> tuple[bytes, bytes]:
    """(copy, decoy) PNG bytes for a reference; deterministic for given bytes."""
    with Image.open(io.BytesIO(reference_bytes)) as image:
        rgb = image.convert("RGB")
    seed = int.from_bytes(hashlib.sha256(reference_bytes).digest()[:8], "little")
    blurred = np.asarray(rgb.filter(ImageFilter.GaussianBlur(DECOY_BLUR_RADIUS)), dtype=np.float64)
    noisy = blurred + np.random.default_rng(seed).normal(0.0, DECOY_NOISE_SIGMA, blurred.shape)
    decoy = Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    return png_bytes(rgb), png_bytes(decoy)


def thumbnail(image_bytes: bytes, size: int = 128) -> bytes:
    with Image.open(io.BytesIO(image_bytes)) as image:
        small = image.convert("RGB")
        small.thumbnail((size, size), Image.Resampling.LANCZOS)
    return png_bytes(small)
