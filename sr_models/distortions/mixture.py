"""Mixture restoration (PIPAL Table 2, fourth row): SR of a degraded LR image.

The degradation is applied to the LR image, because that is what an SR method
is given: HR -> antialiased bicubic LR -> noise or JPEG -> (denoise or deblock)
-> upscale to the HR size. Running denoising and SR in sequence leaves artifacts
of its own (PIPAL §3.1, citing [54, 38]).
"""

from __future__ import annotations

from sr_models.distortions import ops
from sr_models.distortions.base import Param, family
from sr_models.distortions.denoising import NOISE_SIGMA
from sr_models.distortions.super_resolution import SCALE

UPSCALE = Param(str, "upscaling interpolator", default="bicubic", choices=ops.UPSCALE_METHODS)


@family(
    "sr_of_noisy",
    category="mixture",
    subtype="sr_of_noisy",
    summary="Gaussian noise on the bicubic LR image, upscaled without denoising.",
    params={"scale": SCALE, "noise_sigma": NOISE_SIGMA, "upscale": UPSCALE},
)
def sr_of_noisy(image, params, rng):
    lr = ops.add_gaussian_noise(ops.downscale(image, params["scale"]), params["noise_sigma"], rng)
    return ops.upscale(lr, image.shape, params["upscale"])


@family(
    "sr_after_denoising",
    category="mixture",
    subtype="sr_after_denoising",
    summary="Gaussian noise on the bicubic LR image, denoised (strength set by the true sigma), upscaled.",
    params={
        "scale": SCALE,
        "noise_sigma": Param(float, "std of the added Gaussian noise on the 0-255 scale", low=1.0, high=100.0),
        "denoiser": Param(str, "denoiser applied to the LR image", choices=ops.DENOISERS),
        "upscale": UPSCALE,
    },
)
def sr_after_denoising(image, params, rng):
    lr = ops.add_gaussian_noise(ops.downscale(image, params["scale"]), params["noise_sigma"], rng)
    lr = ops.denoise(lr, params["denoiser"], params["noise_sigma"])
    return ops.upscale(lr, image.shape, params["upscale"])


@family(
    "sr_after_jpeg_removal",
    category="mixture",
    subtype="sr_after_jpeg_removal",
    summary="JPEG at 'quality' on the bicubic LR image, deblocked by non-local means (h = strength), upscaled.",
    params={
        "scale": SCALE,
        "quality": Param(int, "JPEG quality factor (lower = stronger)", low=1, high=95),
        "strength": Param(float, "NLM h on the 0-255 scale", low=0.5, high=100.0),
        "upscale": UPSCALE,
    },
)
def sr_after_jpeg_removal(image, params, rng):
    lr = ops.jpeg_roundtrip(ops.downscale(image, params["scale"]), params["quality"])
    return ops.upscale(ops.nlm(lr, params["strength"]), image.shape, params["upscale"])


FAMILIES = (sr_of_noisy, sr_after_denoising, sr_after_jpeg_removal)
