"""Denoising outputs (PIPAL Table 2, third row): a denoiser applied to a noisy copy of
the reference, so the distortion is the residual noise plus what the denoiser lost.
Also JPEG-artifact removal ("JPEG noise removal" in PIPAL §3.1).
"""

from __future__ import annotations

import cv2

from sr_models.distortions import ops
from sr_models.distortions.base import Param, family

NOISE_SIGMA = Param(float, "std of the added Gaussian noise on the 0-255 scale", low=0.0, high=100.0)


@family(
    "mean_filter_denoising",
    category="denoising",
    subtype="mean_filter",
    summary="Box (mean) filter of 'ksize' x 'ksize' on the noisy image.",
    params={
        "noise_sigma": NOISE_SIGMA,
        "ksize": Param(int, "box side in pixels (odd, so the box stays centred)", choices=(3, 5, 7, 9, 11)),
    },
)
def mean_filter_denoising(image, params, rng):
    return ops.mean_filter(ops.add_gaussian_noise(image, params["noise_sigma"], rng), params["ksize"])


@family(
    "nlm_denoising",
    category="denoising",
    subtype="model_based_denoising",
    summary="OpenCV non-local means (7x7 patches, 21x21 search) on the noisy image; h defaults to 0.8 noise_sigma.",
    params={
        "noise_sigma": NOISE_SIGMA,
        "h": Param(float, "filter strength; omitted: 0.8 x noise_sigma", default=None, low=0.5, high=100.0),
    },
)
def nlm_denoising(image, params, rng):
    noisy = ops.add_gaussian_noise(image, params["noise_sigma"], rng)
    h = params["h"] if params["h"] is not None else max(0.5, 0.8 * params["noise_sigma"])
    return ops.nlm(noisy, h)


@family(
    "bm3d_denoising",
    category="denoising",
    subtype="model_based_denoising",
    summary="BM3D (Dabov et al. 2007, 'bm3d' package, RGB profile 'np') on the noisy image, given the true sigma.",
    params={"noise_sigma": Param(float, "std of the added Gaussian noise on the 0-255 scale", low=1.0, high=100.0)},
)
def bm3d_denoising(image, params, rng):
    return ops.bm3d_denoise(ops.add_gaussian_noise(image, params["noise_sigma"], rng), params["noise_sigma"])


@family(
    "jpeg_artifact_removal",
    category="denoising",
    subtype="model_based_denoising",
    summary=(
        "JPEG at 'quality', then a deblocking pass: non-local means (h = strength) "
        "or bilateral (sigma_color = strength, sigma_space 3 px)."
    ),
    params={
        "quality": Param(int, "JPEG quality factor (lower = stronger)", low=1, high=95),
        "method": Param(str, "deblocking filter", default="nlm", choices=("nlm", "bilateral")),
        "strength": Param(float, "NLM h or bilateral sigma_color on the 0-255 scale", low=0.5, high=100.0),
    },
)
def jpeg_artifact_removal(image, params, rng):
    compressed = ops.jpeg_roundtrip(image, params["quality"])
    if params["method"] == "nlm":
        return ops.nlm(compressed, params["strength"])
    return cv2.bilateralFilter(compressed, d=-1, sigmaColor=params["strength"], sigmaSpace=3.0)


FAMILIES = (mean_filter_denoising, nlm_denoising, bm3d_denoising, jpeg_artifact_removal)
