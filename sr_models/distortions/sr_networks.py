"""Outputs of the bundled SR networks as study distortions (PIPAL Table 2: PSNR-oriented and
GAN-based SR; Table 4's methods).

The reference is downscaled by the checkpoint's factor with MATLAB's
antialiased bicubic (or, for a kernel mismatch, a Gaussian), the network
super-resolves it back, and the output has the reference's size. A level
whose weight file is missing is refused before any job is planned, with the
file's name and the two commands that install it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sr_models.checkpoints import CHECKPOINTS, TRAINED_PREFIX
from sr_models.distortions import ops
from sr_models.distortions.base import DistortionError, DistortionFamily, Param, family
from sr_models.distortions.super_resolution import gaussian_downsample


def _check_checkpoint(name: str) -> None:
    from sr_models import runtime, weights  # a registered name, or trained:<name> in the weights directory

    try:
        weights.get_checkpoint(name, runtime.current().weights_dir)
    except KeyError as error:
        raise DistortionError(str(error.args[0])) from None


def _check_interpolation(name: str) -> None:
    _check_checkpoint(name)
    if name.startswith(TRAINED_PREFIX) or not CHECKPOINTS.get(name).parts:
        raise DistortionError(f"{name} is not an interpolation checkpoint (one that blends a PSNR and a GAN model)")


CHECKPOINT = Param(str, "registered SR checkpoint (python manage.py sr_infer --list)", check_value=_check_checkpoint)
KERNEL = Param(
    str,
    "how the LR input is made: MATLAB bicubic, or a Gaussian blur (kernel mismatch)",
    default="bicubic",
    choices=("bicubic", "gaussian"),
)
SIGMA = Param(float, "Gaussian kernel sigma in HR pixels (kernel=gaussian)", default=None, low=0.2, high=16.0)


def _lr(image: np.ndarray, scale: int, params: dict[str, Any]) -> np.ndarray:
    if params["kernel"] == "gaussian":
        if params["sigma"] is None:
            raise DistortionError("kernel=gaussian needs sigma")
        return gaussian_downsample(image, scale, params["sigma"])
    return ops.downscale(image, scale)


def _super_resolve(image: np.ndarray, params: dict[str, Any], alpha: float | None) -> np.ndarray:
    from sr_models import inference, runtime

    loaded = runtime.model(params["checkpoint"], alpha)
    settings = runtime.current()
    lr = _lr(image, loaded.checkpoint.scale, params)
    (output,) = inference.upscale(
        loaded, [lr], device=runtime.device(), dtype=settings.dtype, tile=settings.tile, overlap=settings.overlap
    )
    if output.shape != image.shape:  # sizes not divisible by the scale: back to the reference's size
        output = ops.upscale(output, image.shape, "bicubic")
    return output


def _preflight(params: dict[str, Any]) -> None:
    from sr_models import runtime, weights

    checkpoint = weights.get_checkpoint(params["checkpoint"], runtime.current().weights_dir)
    missing = weights.missing_files(checkpoint, runtime.current().weights_dir)
    if missing:
        raise DistortionError(
            " ".join(str(weights.WeightsMissing(part, runtime.current().weights_dir)) for part in missing)
        )


def _provenance(params: dict[str, Any]) -> dict[str, Any]:
    import torch

    from sr_models import runtime

    loaded = runtime.model(params["checkpoint"], params.get("alpha"))
    return {
        "sr_model": loaded.provenance,
        "device": runtime.device(),
        "dtype": runtime.current().dtype,
        "tile": runtime.current().tile,
        "torch": torch.__version__,
        "lr_kernel": params["kernel"],
    }


def _network_family(name: str, subtype: str, summary: str) -> DistortionFamily:
    @family(
        name,
        category="super_resolution",
        subtype=subtype,
        summary=summary,
        params={"checkpoint": CHECKPOINT, "kernel": KERNEL, "sigma": SIGMA},
        preflight=_preflight,
        provenance=_provenance,
        accelerated=True,
    )
    def generate(image, params, rng):
        return _super_resolve(image, params, None)

    return generate


sr_network = _network_family(
    "sr_network", "psnr_sr", "A bundled PSNR-oriented SR network (SRCNN ... RCAN) on the bicubic LR image."
)
gan_sr_network = _network_family(
    "gan_sr_network", "gan_sr", "A bundled perceptual SR network (SRGAN, ESRGAN, RankSRGAN, 4PP-EUSR)."
)


@family(
    "esrgan_interpolation",
    category="super_resolution",
    subtype="gan_sr",
    summary=(
        "ESRGAN network interpolation (Wang et al. 2018, Sec. 3.4): weights (1 - alpha) * PSNR model + "
        "alpha * GAN model; the level's alpha sets how far towards the GAN output."
    ),
    params={
        "checkpoint": Param(
            str, "an interpolation checkpoint, e.g. esrgan_interp_x4", check_value=_check_interpolation
        ),
        "alpha": Param(float, "0 = the PSNR model, 1 = the GAN model", low=0.0, high=1.0),
        "kernel": KERNEL,
        "sigma": SIGMA,
    },
    preflight=_preflight,
    provenance=_provenance,
    accelerated=True,
)
def esrgan_interpolation(image, params, rng):
    return _super_resolve(image, params, params["alpha"])


FAMILIES = (sr_network, gan_sr_network, esrgan_interpolation)
