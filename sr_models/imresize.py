"""MATLAB ``imresize``-compatible resampling, in numpy (no Django, no torch).

Why our own: SR papers make their LR inputs with MATLAB's ``imresize`` (bicubic,
a = -0.5, antialiased when shrinking; ESRGAN §4.1, the RankSRGAN and EUSR
repositories). OpenCV's and torch's bicubic do not widen the kernel when
shrinking, which silently adds a kernel mismatch (SPEC §6).

What MATLAB does (imresize.m / resizeAlongDim, as publicly described), and so
what this module does:

* Output size: with a scale factor ``s`` the output is ``ceil(s * in)`` per
  dimension; with an explicit output size the per-dimension scale is
  ``out / in``.
* Each dimension is resampled separately. For output pixel ``x`` (1-based) the
  source coordinate is ``u = x / s + 0.5 * (1 - 1 / s)`` (pixel centres aligned,
  not corners). Its window starts at ``floor(u - width / 2)`` and holds
  ``ceil(width) + 2`` taps whose weights are ``kernel(u - j)``, normalised to
  sum to one.
* Antialiasing: when shrinking (``s < 1``) the kernel is stretched,
  ``h(x) = s * kernel(s * x)``, and its width becomes ``width / s``. MATLAB does
  this for every method except ``nearest``.
* Borders: indices outside the image are mirrored *with* the edge pixel
  repeated (``[1..n, n..1]``, i.e. numpy's ``symmetric`` padding).
* Order: the dimension with the smaller scale factor goes first (a stable
  sort of the factors; rows first on a tie).
* Kernels: cubic with a = -0.5 (Keys 1981) over [-2, 2]; box over
  [-0.5, 0.5) for ``nearest``; triangle over [-1, 1] for ``bilinear``;
  Lanczos-2/-3 over [-2, 2] / [-3, 3].
* Classes: a float image stays float and is not clipped (cubic overshoot is
  kept); a uint8 image is rounded half away from zero and saturated to
  [0, 255] *after each dimension*, because each per-dimension pass
  (``imresizemex``) returns the class of its input.
"""

from __future__ import annotations

from collections.abc import Callable
from math import ceil

import numpy as np

Kernel = Callable[[np.ndarray], np.ndarray]


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's and Pillow's bicubic)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def box(x: np.ndarray) -> np.ndarray:
    # Half-open like MATLAB's, so a sample exactly between two pixels takes one, not both.
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


def triangle(x: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - np.abs(x), 0.0, None)


def _lanczos(lobes: int) -> Kernel:
    def kernel(x: np.ndarray) -> np.ndarray:
        # np.sinc(t) = sin(pi t) / (pi t), so this is the textbook sinc(x) sinc(x / a) window.
        return np.sinc(x) * np.sinc(x / lobes) * (np.abs(x) < lobes)

    return kernel


# name -> (kernel, width in pixels of the unstretched kernel)
KERNELS: dict[str, tuple[Kernel, float]] = {
    "nearest": (box, 1.0),
    "bilinear": (triangle, 2.0),
    "bicubic": (cubic, 4.0),
    "lanczos2": (_lanczos(2), 4.0),
    "lanczos3": (_lanczos(3), 6.0),
}


def output_size(in_shape: tuple[int, int], scale: float | tuple[float, float]) -> tuple[int, int]:
    """MATLAB's rule: ``ceil(scale * size)`` per dimension."""
    sy, sx = (scale, scale) if np.isscalar(scale) else scale
    return ceil(sy * in_shape[0]), ceil(sx * in_shape[1])


def resize_matrix(
    in_len: int, out_len: int, scale: float, kernel: Kernel, width: float, antialiasing: bool
) -> np.ndarray:
    """The (out_len, in_len) matrix of one dimension's pass (MATLAB's ``contributions``).

    Weights of mirrored taps that land on the same source pixel are summed, which
    equals MATLAB's weighted sum over its (repeated) index list.
    """
    if antialiasing and scale < 1:
        weight_fn: Kernel = lambda t: scale * kernel(scale * t)  # noqa: E731 - a one-line stretch
        width = width / scale
    else:
        weight_fn = kernel
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based source indices
    weights = weight_fn(u[:, None] - idx)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric mirror [1..n, n..1], taken modulo its period 2n, then back to 0-based.
    period = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = period[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_len), taps), src.ravel()), weights.ravel())
    return matrix


def _round_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB's double -> uint8: round half away from zero, saturate.
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def resample(
    image: np.ndarray,
    out_shape: tuple[int, int],
    kernel: Kernel,
    width: float,
    *,
    antialiasing: bool = True,
    scale: tuple[float, float] | None = None,
) -> np.ndarray:
    """Separable resampling of an HxW or HxWxC array with any kernel, MATLAB-style.

    ``kernel`` is in output-pixel units when ``antialiasing`` stretches it, and in
    input-pixel units otherwise (pass ``antialiasing=False`` for a kernel that is
    already the physical blur, e.g. a Gaussian of sigma in HR pixels).
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC array, got shape {image.shape}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"expected uint8 or float input, got {image.dtype}")
    in_shape = image.shape[:2]
    if min(out_shape) < 1:
        raise ValueError(f"output size must be positive, got {out_shape}")
    if scale is None:
        scale = (out_shape[0] / in_shape[0], out_shape[1] / in_shape[1])
    is_uint8 = image.dtype == np.uint8
    out = image
    for dim in sorted((0, 1), key=lambda d: scale[d]):  # stable: rows first on a tie
        matrix = resize_matrix(in_shape[dim], out_shape[dim], scale[dim], kernel, width, antialiasing)
        out = np.moveaxis(np.tensordot(matrix, out.astype(np.float64), axes=(1, dim)), 0, dim)
        if is_uint8:
            out = _round_uint8(out)
    return out if is_uint8 else out.astype(image.dtype)


def imresize(
    image: np.ndarray,
    scale: float | tuple[float, float] | None = None,
    *,
    output_shape: tuple[int, int] | None = None,
    method: str = "bicubic",
    antialiasing: bool | None = None,
) -> np.ndarray:
    """Resize like MATLAB's ``imresize(image, scale)`` or ``imresize(image, [h w])``.

    Give exactly one of ``scale`` or ``output_shape``. ``antialiasing`` defaults to
    MATLAB's: on for every method but ``nearest``.
    """
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale or output_shape")
    if method not in KERNELS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(KERNELS)}")
    kernel, width = KERNELS[method]
    if antialiasing is None:
        antialiasing = method != "nearest"
    in_shape = image.shape[:2]
    if output_shape is None:
        pair = (float(scale), float(scale)) if np.isscalar(scale) else (float(scale[0]), float(scale[1]))
        return resample(image, output_size(in_shape, pair), kernel, width, antialiasing=antialiasing, scale=pair)
    out_shape = (int(output_shape[0]), int(output_shape[1]))
    return resample(image, out_shape, kernel, width, antialiasing=antialiasing)
