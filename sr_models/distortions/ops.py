"""Pixel operations shared by several families (noise, codecs, denoisers, down-up).

Images are RGB uint8 HxWx3 in and out unless a name says otherwise; float work is
done on the 0-255 scale in float64.
"""

from __future__ import annotations

import io
from math import ceil, log2

import cv2
import numpy as np
from PIL import Image

from sr_models.imresize import imresize

# Reflect without repeating the edge pixel: OpenCV's default and what MATLAB's
# imfilter(..., 'symmetric') approximates; avoids dark or bright frames.
BORDER = cv2.BORDER_REFLECT_101

UPSCALE_METHODS = ("nearest", "bilinear", "bicubic", "lanczos")
DENOISERS = ("mean", "nlm", "bm3d")


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half up and saturate: the one float -> uint8 conversion used everywhere."""
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def add_gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """i.i.d. N(0, sigma^2) per pixel and channel on the 0-255 scale, stored back as 8-bit
    (a noisy photograph is an 8-bit file, so every denoiser sees quantised noise)."""
    return to_uint8(image.astype(np.float64) + rng.normal(0.0, sigma, image.shape))


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Pillow (libjpeg) encode + decode, baseline, 4:2:0 chroma subsampling as most cameras and the web use."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=2, optimize=False)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB")).copy()


def jpeg2000_roundtrip(image: np.ndarray, ratio: float) -> np.ndarray:
    """Pillow (OpenJPEG) encode at a fixed compression ratio (irreversible 9/7 wavelet), then decode."""
    # OpenJPEG refuses more decomposition levels than the smallest side allows.
    levels = max(1, min(6, int(log2(min(image.shape[:2]))) - 1))
    buffer = io.BytesIO()
    Image.fromarray(image).save(
        buffer,
        format="JPEG2000",
        quality_mode="rates",
        quality_layers=[ratio],
        irreversible=True,
        num_resolutions=levels,
    )
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB")).copy()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    # Kernel out to 3 sigma each side holds >99.7% of the mass.
    size = 2 * ceil(3 * sigma) + 1
    return cv2.GaussianBlur(image, (size, size), sigmaX=sigma, sigmaY=sigma, borderType=BORDER)


def mean_filter(image: np.ndarray, ksize: int) -> np.ndarray:
    return cv2.blur(image, (ksize, ksize), borderType=BORDER)


def nlm(image: np.ndarray, h: float) -> np.ndarray:
    """OpenCV non-local means (Buades et al. 2005) with its recommended 7x7 patches and 21x21 search."""
    # fastNlMeansDenoisingColored converts BGR to CIELAB internally: hand it BGR.
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    out = cv2.fastNlMeansDenoisingColored(bgr, None, h=h, hColor=h, templateWindowSize=7, searchWindowSize=21)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def bm3d_denoise(image: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D (Dabov et al. 2007; the ``bm3d`` package of Tampere University) on RGB via its
    opponent colour transform, told the true noise sigma."""
    import bm3d  # imported lazily: ~0.3 s and only the BM3D families need it

    # One thread: the library documents that num_threads != 1 may change the output slightly
    # from run to run, and a distortion must give the same bytes for the same seed.
    profile = bm3d.BM3DProfile()
    profile.num_threads = 1
    out = bm3d.bm3d_rgb(image.astype(np.float64) / 255.0, sigma / 255.0, profile=profile)
    return to_uint8(out * 255.0)


def denoise(image: np.ndarray, method: str, noise_sigma: float) -> np.ndarray:
    """Denoise with strengths tied to the (known) noise level, for the mixture families.

    mean: 3x3 box below sigma 20, else 5x5; nlm: h = 0.8 sigma (close to OpenCV's
    h ~ sigma advice, a little weaker to keep texture); bm3d: the true sigma.
    """
    if method == "mean":
        return mean_filter(image, 3 if noise_sigma < 20 else 5)
    if method == "nlm":
        return nlm(image, 0.8 * noise_sigma)
    if method == "bm3d":
        return bm3d_denoise(image, noise_sigma)
    raise ValueError(f"unknown denoiser {method!r}")


def lr_shape(shape: tuple[int, ...], scale: int) -> tuple[int, int]:
    """LR size for an xscale SR task: the HR size divided by the scale, rounded, at least 1 pixel."""
    return max(1, round(shape[0] / scale)), max(1, round(shape[1] / scale))


def downscale(image: np.ndarray, scale: int) -> np.ndarray:
    """The standard SR degradation: MATLAB-style antialiased bicubic (SPEC §6)."""
    return imresize(image, output_shape=lr_shape(image.shape, scale), method="bicubic")


def upscale(image: np.ndarray, shape: tuple[int, ...], method: str) -> np.ndarray:
    """Interpolate back to exactly ``shape[:2]`` with MATLAB's kernels (Lanczos = lanczos3)."""
    kernel = "lanczos3" if method == "lanczos" else method
    return imresize(image, output_shape=(shape[0], shape[1]), method=kernel)
