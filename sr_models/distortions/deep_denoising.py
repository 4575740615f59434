"""Deep-learning denoising outputs (PIPAL Table 2's "deep-learning-based methods" of denoising;
Sec. 3.1 also names JPEG compression noise removal): DnCNN (Zhang et al., TIP 2017) and FFDNet
(Zhang et al., TIP 2018) from sr_models.denoisers, on a noisy or JPEG-compressed copy of the
reference.

A network is an official KAIR weight file (a weights record: fetch_weights/import_weights) or one
``train_denoiser`` trained on a study (labelled so in the images' provenance, never as official).
A level whose network cannot be loaded is refused before any job is planned, with how to get it.
"""

from __future__ import annotations

from typing import Any

from sr_models.distortions import ops
from sr_models.distortions.base import DistortionError, Param, family


def _network(name: str):
    from sr_models import denoisers, runtime

    try:
        return denoisers.cached_denoiser(name, weights_dir=runtime.current().weights_dir, device=runtime.device())
    except (denoisers.WeightsError, denoisers.DenoisingError, KeyError) as error:
        raise DistortionError(str(error)) from None


def _preflight(params: dict[str, Any]) -> None:
    from sr_models import denoisers, runtime

    unready = denoisers.unready(params["network"], runtime.current().weights_dir)
    if unready:
        raise DistortionError(unready)


def _provenance(params: dict[str, Any]) -> dict[str, Any]:
    import torch

    from sr_models import runtime

    return {"denoiser": _network(params["network"]).provenance, "device": runtime.device(), "torch": torch.__version__}


NETWORK_DOC = "a DnCNN or FFDNet weights record (fetch_weights --list) or a network train_denoiser wrote"


@family(
    "deep_denoising",
    category="denoising",
    subtype="deep_denoising",
    summary="A DnCNN or FFDNet network on the reference plus Gaussian noise of 'noise_sigma' (FFDNet is told sigma).",
    params={
        "network": Param(str, NETWORK_DOC),
        "noise_sigma": Param(float, "std of the added Gaussian noise on the 0-255 scale", low=1.0, high=75.0),
    },
    preflight=_preflight,
    provenance=_provenance,
    accelerated=True,
)
def deep_denoising(image, params, rng):
    from sr_models import denoisers

    noisy = ops.add_gaussian_noise(image, params["noise_sigma"], rng)
    return denoisers.denoise(_network(params["network"]), noisy, sigma=params["noise_sigma"], task="gaussian")


@family(
    "deep_jpeg_removal",
    category="denoising",
    subtype="deep_denoising",
    summary="JPEG at 'quality', then a deblocking network (DnCNN-3 on luminance, or one train_denoiser trained).",
    params={
        "network": Param(str, NETWORK_DOC, default="dncnn3"),
        "quality": Param(int, "JPEG quality factor (lower = stronger)", low=1, high=95),
    },
    preflight=_preflight,
    provenance=_provenance,
    accelerated=True,
)
def deep_jpeg_removal(image, params, rng):
    from sr_models import denoisers

    compressed = ops.jpeg_roundtrip(image, params["quality"])
    return denoisers.denoise(_network(params["network"]), compressed, sigma=None, task="jpeg")


FAMILIES = (deep_denoising, deep_jpeg_removal)
