"""Traditional distortions (PIPAL Table 2, first row): blur, compression, noise,
warping, filtering, plus the TID2013 colour and contrast changes.

PIPAL keeps these mild ("comparable to the IR results", §3.1); the catalogue's
levels are chosen in that spirit.
"""

from __future__ import annotations

from math import ceil, cos, radians, sin

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from sr_models.distortions import ops
from sr_models.distortions.base import Param, family

SIGMA_PX = Param(float, "Gaussian standard deviation in pixels", low=0.1, high=20.0)


@family(
    "gaussian_blur",
    category="traditional",
    subtype="gaussian_blur",
    summary="Isotropic Gaussian blur (kernel to 3 sigma, reflect-101 borders).",
    params={"sigma": SIGMA_PX},
)
def gaussian_blur(image, params, rng):
    return ops.gaussian_blur(image, params["sigma"])


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised line of ``length`` pixels at ``angle_deg``, anti-aliased by splatting
    16 samples per pixel bilinearly, so non-integer lengths and any angle are smooth."""
    half = (length - 1) / 2.0
    size = 2 * ceil(half) + 3  # one spare pixel each side for the bilinear splat
    centre = size // 2
    t = np.linspace(-half, half, max(2, int(16 * length)))
    xs = centre + t * cos(radians(angle_deg))
    ys = centre - t * sin(radians(angle_deg))  # image rows grow downwards
    kernel = np.zeros((size, size), dtype=np.float64)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), w)
    return kernel / kernel.sum()


@family(
    "motion_blur",
    category="traditional",
    subtype="motion_blur",
    summary="Linear camera-shake blur along a straight path; random direction from the seed unless given.",
    params={
        "length": Param(float, "path length in pixels", low=1.0, high=64.0),
        "angle": Param(
            float,
            "direction in degrees, counter-clockwise from +x; omitted: drawn from the seed",
            default=None,
            low=0.0,
            high=360.0,
        ),
    },
)
def motion_blur(image, params, rng):
    # Drawn even when an angle is given, so the rng stream is the same either way.
    random_angle = float(rng.uniform(0.0, 180.0))
    angle = random_angle if params["angle"] is None else params["angle"]
    return cv2.filter2D(image, -1, motion_kernel(params["length"], angle), borderType=ops.BORDER)


@family(
    "jpeg",
    category="traditional",
    subtype="compression",
    summary="JPEG encode + decode with Pillow/libjpeg, 4:2:0 chroma subsampling.",
    params={"quality": Param(int, "JPEG quality factor 1-95 (lower = stronger)", low=1, high=95)},
)
def jpeg(image, params, rng):
    return ops.jpeg_roundtrip(image, params["quality"])


@family(
    "jpeg2000",
    category="traditional",
    subtype="compression",
    summary="JPEG 2000 encode + decode with Pillow/OpenJPEG at a fixed compression ratio (9/7 wavelet).",
    params={
        "ratio": Param(
            float, "compression ratio, uncompressed size / coded size (higher = stronger)", low=2.0, high=1000.0
        )
    },
)
def jpeg2000(image, params, rng):
    return ops.jpeg2000_roundtrip(image, params["ratio"])


@family(
    "gaussian_noise",
    category="traditional",
    subtype="gaussian_noise",
    summary="Additive white Gaussian noise, independent per pixel and channel.",
    params={"sigma": Param(float, "noise standard deviation on the 0-255 scale", low=0.0, high=100.0)},
)
def gaussian_noise(image, params, rng):
    return ops.add_gaussian_noise(image, params["sigma"], rng)


@family(
    "spatial_warping",
    category="traditional",
    subtype="spatial_warping",
    summary=(
        "Resampling through a smooth random displacement field: white noise low-passed by a Gaussian of "
        "'smoothness' px, scaled to an RMS displacement of 'amplitude' px, bicubic remap. Small misalignments "
        "like these are what PIPAL (§4.3) finds IQA methods confuse with GAN textures."
    ),
    params={
        "amplitude": Param(float, "RMS displacement in pixels", low=0.0, high=16.0),
        "smoothness": Param(
            float, "correlation length (Gaussian sigma) of the field in pixels", default=8.0, low=1.0, high=64.0
        ),
    },
)
def spatial_warping(image, params, rng):
    h, w = image.shape[:2]
    field = gaussian_filter(
        rng.standard_normal((2, h, w)), sigma=(0, params["smoothness"], params["smoothness"]), mode="reflect"
    )
    rms = np.sqrt(np.mean(np.sum(field**2, axis=0)))
    field *= params["amplitude"] / rms if rms > 0 else 0.0
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = xs + field[0].astype(np.float32)
    map_y = ys + field[1].astype(np.float32)
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_CUBIC, borderMode=ops.BORDER)


@family(
    "bilateral_filter",
    category="traditional",
    subtype="bilateral_filter",
    summary="Edge-preserving bilateral filter (Tomasi & Manduchi 1998) on the clean image: flattens texture.",
    params={
        "sigma_color": Param(float, "range sigma on the 0-255 scale", low=1.0, high=255.0),
        "sigma_space": Param(float, "spatial sigma in pixels (window diameter follows from it)", low=0.5, high=20.0),
    },
)
def bilateral_filter(image, params, rng):
    return cv2.bilateralFilter(image, d=-1, sigmaColor=params["sigma_color"], sigmaSpace=params["sigma_space"])


@family(
    "comfort_noise",
    category="traditional",
    subtype="comfort_noise",
    summary=(
        "Fine texture replaced by noise of the same local energy, as codecs do to hide lost detail "
        "('comfort noise', TID2013 #20; PIPAL lists it without a definition): Gaussian low-pass of 'sigma', "
        "then grey noise whose local std follows that of the removed detail, times 'gain'."
    ),
    params={
        "sigma": Param(float, "low-pass sigma in pixels: how much detail is replaced", low=0.3, high=10.0),
        "gain": Param(float, "noise std relative to the removed detail's local std", default=1.0, low=0.0, high=4.0),
    },
)
def comfort_noise(image, params, rng):
    x = image.astype(np.float64)
    smooth = cv2.GaussianBlur(x, (0, 0), params["sigma"], borderType=ops.BORDER)
    detail = (x - smooth).mean(axis=2)
    # Local energy over a window a few times wider than the removed detail.
    local_std = np.sqrt(cv2.GaussianBlur(detail**2, (0, 0), 2.0 * params["sigma"] + 1.0, borderType=ops.BORDER))
    grain = cv2.GaussianBlur(rng.standard_normal(detail.shape), (0, 0), 0.5, borderType=ops.BORDER)
    grain /= grain.std() or 1.0
    return ops.to_uint8(smooth + (params["gain"] * local_std * grain)[..., None])


@family(
    "colour_quantisation",
    category="traditional",
    subtype="colour_quantisation",
    summary="Palette reduction with Pillow's median cut (TID2013 #22), optionally Floyd-Steinberg dithered.",
    params={
        "colours": Param(int, "palette size (lower = stronger)", low=2, high=256),
        "dither": Param(bool, "Floyd-Steinberg error diffusion", default=False),
    },
)
def colour_quantisation(image, params, rng):
    source = Image.fromarray(image)
    paletted = source.quantize(colors=params["colours"], method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    if params["dither"]:
        # Pillow dithers only when mapping onto a given palette, so map again onto the median-cut one.
        paletted = source.quantize(palette=paletted, dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(paletted.convert("RGB")).copy()


@family(
    "contrast_change",
    category="traditional",
    subtype="contrast_change",
    summary="Contrast scaled about the image mean, then a brightness offset (TID2013 #16-17), clipped to 0-255.",
    params={
        "contrast": Param(float, "gain about the mean grey level (1 = unchanged)", default=1.0, low=0.0, high=4.0),
        "brightness": Param(float, "offset added on the 0-255 scale", default=0.0, low=-255.0, high=255.0),
    },
)
def contrast_change(image, params, rng):
    x = image.astype(np.float64)
    mean = x.mean()
    return ops.to_uint8(mean + params["contrast"] * (x - mean) + params["brightness"])


FAMILIES = (
    gaussian_blur,
    motion_blur,
    jpeg,
    jpeg2000,
    gaussian_noise,
    spatial_warping,
    bilateral_filter,
    comfort_noise,
    colour_quantisation,
    contrast_change,
)
