"""Super-resolution distortions without a learned model (PIPAL Table 2, second row):
interpolation methods and SR with a kernel mismatch.

Every LR image is made with the MATLAB-compatible antialiased bicubic
(SPEC §6), except where the kernel mismatch is the point.
"""

from __future__ import annotations

import numpy as np

from sr_models.distortions import ops
from sr_models.distortions.base import Param, family
from sr_models.imresize import resample

SCALE = Param(int, "SR factor: the LR image is the input divided by it", low=2, high=8)


@family(
    "interpolation_sr",
    category="super_resolution",
    subtype="interpolation",
    summary="Antialiased bicubic (MATLAB imresize) downscale by 'scale', upscale to the input size with 'method'.",
    params={
        "scale": SCALE,
        "method": Param(
            str, "upscaling interpolator (MATLAB kernels; lanczos = Lanczos-3)", choices=ops.UPSCALE_METHODS
        ),
    },
)
def interpolation_sr(image, params, rng):
    return ops.upscale(ops.downscale(image, params["scale"]), image.shape, params["method"])


def gaussian_downsample(image: np.ndarray, scale: int, sigma: float) -> np.ndarray:
    """Blur with a Gaussian of ``sigma`` HR pixels and sample at the LR pixel centres.

    Done as one resampling pass with the Gaussian as the kernel (in HR pixels, hence no
    antialias stretch), so the LR grid is aligned exactly like imresize's: a different
    kernel, not a different grid, is the only mismatch.
    """

    def kernel(x: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * (x / sigma) ** 2)

    return resample(image, ops.lr_shape(image.shape, scale), kernel, width=2 * 3 * sigma + 1, antialiasing=False)


@family(
    "kernel_mismatch_sr",
    category="super_resolution",
    subtype="kernel_mismatch_sr",
    summary=(
        "LR made with a Gaussian blur of 'sigma_true' HR pixels then subsampling; upscaled with bicubic, "
        "i.e. restored as if the standard bicubic kernel had made it. Small sigma aliases, large sigma over-blurs."
    ),
    params={"scale": SCALE, "sigma_true": Param(float, "true blur sigma in HR pixels", low=0.2, high=16.0)},
)
def kernel_mismatch_sr(image, params, rng):
    lr = gaussian_downsample(image, params["scale"], params["sigma_true"])
    return ops.upscale(lr, image.shape, "bicubic")


FAMILIES = (interpolation_sr, kernel_mismatch_sr)
