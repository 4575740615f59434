"""Pictures for practice and gold pairs (no Django models here).

Every control pair is made of pictures a real pair could hold, so nothing but the
answer sets it apart (issue 16):

* gold (ITU-T P.808's gold questions): one of the study's own images against a decoy,
  that same image heavily blurred and noised further, so the image itself is the clear
  answer whatever its distortion;
* practice: "sharp but different" (over-sharpened, with invented fine texture: crisp,
  yet further from the reference) against a barely softened copy, the case the
  instructions warn about; and pairs of the study's images with a clear answer.

Each picture is deterministic for its input (the noise is seeded from its bytes).
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image, ImageFilter

from annotation.imaging import png_bytes

DECOY_BLUR_RADIUS = 4.0
DECOY_NOISE_SIGMA = 40.0  # on 0-255
# Practice: "mild" is a barely visible softening; "sharp" an unsharp mask strong enough to
# halo edges plus high-pass noise that reads as invented texture (GAN-like detail).
MILD_BLUR_RADIUS = 0.7
SHARP_UNSHARP = {"radius": 2.0, "percent": 200, "threshold": 0}
SHARP_TEXTURE_SIGMA = 22.0
SHARP_TEXTURE_SMOOTH = 1.0  # the invented texture keeps frequencies above this blur


def _rgb(image_bytes: bytes) -> Image.Image:
    with Image.open(io.BytesIO(image_bytes)) as image:
        return image.convert("RGB")


def _rng(image_bytes: bytes, salt: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(salt.encode() + image_bytes).digest()[:8], "little"))


def decoy_picture(image_bytes: bytes) -> bytes:
    """The image blurred and noised far past any level a study uses: PNG bytes."""
    rgb = _rgb(image_bytes)
    blurred = np.asarray(rgb.filter(ImageFilter.GaussianBlur(DECOY_BLUR_RADIUS)), dtype=np.float64)
    noisy = blurred + _rng(image_bytes, "decoy").normal(0.0, DECOY_NOISE_SIGMA, blurred.shape)
    return png_bytes(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def mild_picture(reference_bytes: bytes) -> bytes:
    """Practice: the reference barely softened (the answer of a sharp-versus-mild pair)."""
    return png_bytes(_rgb(reference_bytes).filter(ImageFilter.GaussianBlur(MILD_BLUR_RADIUS)))


def sharp_picture(reference_bytes: bytes) -> bytes:
    """Practice: crisp but different from the reference: over-sharpened, with invented texture."""
    rgb = _rgb(reference_bytes)
    sharpened = np.asarray(rgb.filter(ImageFilter.UnsharpMask(**SHARP_UNSHARP)), dtype=np.float64)
    noise = _rng(reference_bytes, "sharp").normal(0.0, SHARP_TEXTURE_SIGMA, sharpened.shape)
    smooth = np.asarray(
        Image.fromarray(np.clip(noise + 128, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(SHARP_TEXTURE_SMOOTH)
        ),
        dtype=np.float64,
    )
    texture = noise - (smooth - 128)  # high-pass: fine grain that looks like detail
    return png_bytes(np.clip(np.rint(sharpened + texture), 0, 255).astype(np.uint8))


# rank-k checks: step s of the ladder blurs by LADDER_BLUR_STEP * s and adds noise of
# LADDER_NOISE_STEP * s, so each step is clearly worse than the one before it (step 5 is about
# the decoy's strength).
LADDER_BLUR_STEP = 0.8
LADDER_NOISE_STEP = 8.0


def ladder_picture(reference_bytes: bytes, step: int) -> bytes:
    """A rank-k check picture: the reference degraded by ``step`` (1-5) equal steps: PNG bytes."""
    if not 1 <= step <= 5:
        raise ValueError(f"ladder steps run from 1 to 5, not {step}")
    blurred = np.asarray(
        _rgb(reference_bytes).filter(ImageFilter.GaussianBlur(LADDER_BLUR_STEP * step)), dtype=np.float64
    )
    noisy = blurred + _rng(reference_bytes, f"ladder{step}").normal(0.0, LADDER_NOISE_STEP * step, blurred.shape)
    return png_bytes(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def thumbnail(image_bytes: bytes, size: int = 128) -> bytes:
    with Image.open(io.BytesIO(image_bytes)) as image:
        small = image.convert("RGB")
        small.thumbnail((size, size), Image.Resampling.LANCZOS)
    return png_bytes(small)
