"""Patch features of the example-based SR methods (Zeyde et al. 2010; Timofte et al. ANR 2013 and A+ 2014).

ANR and A+ reuse Zeyde et al.'s feature code unchanged (Timofte's code ships it: ``learn_dict.m``,
``collect.m``, ``extract.m``, ``sampling_grid.m``, ``overlap_add.m``; SPEC §7.4). What it does, and so
what this module does, on the Y channel of an image (values in [0, 1]):

* the LR image is upscaled by bicubic interpolation to the HR size ("midres"; MATLAB ``imresize``,
  here ``sr_models.imresize``);
* four filters are applied to it (``conv2(..., 'same')``, zero padding): first and second derivatives
  horizontally and vertically, stretched by the scale: ``G = [1, 0 x (s-1), -1]``,
  ``L = [1, 0 x (s-1), -2, 0 x (s-1), 1] / 2`` and their transposes (``conf.filters = {G, G.', L, L.'}``);
* patches are taken on a grid of windows of 3 x 3 LR pixels, i.e. ``3s x 3s`` HR pixels
  (``conf.window = [3 3]``), ``s`` HR pixels from each border (``conf.border = [1 1]`` LR pixels), one LR
  pixel of overlap when training (``conf.overlap = [1 1]``) and full overlap, ``window - 1`` = 2 LR pixels,
  at test time (``conf.overlap = conf.window - [1 1]``);
* a feature is the four filtered windows side by side, ``4 (3s)^2`` values; its HR counterpart is the
  ``(3s)^2`` window of HR minus bicubic (the "high frequencies" the methods predict);
* features are projected by PCA (eigenvectors of the uncentred ``F F^T``), dropping the directions that
  hold the last 0.1 % of the energy (``learn_dict.m``: ``k = find(cumsum(D) / sum(D) >= 1e-3, 1)``);
* the HR image is rebuilt by adding the predicted patches where they overlap and dividing by how many
  patches cover each pixel (``overlap_add.m``).

Layout: here a feature is a row (samples x dimensions), where the MATLAB code stores columns.
Pixels that no window covers (the ``s``-pixel frame) keep the bicubic value: the MATLAB code leaves them
at 0 and its evaluation shaves them off; an upscaler has to return a whole image.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sr_models.imresize import imresize
from sr_models.inference import rgb_to_ycbcr, ycbcr_to_rgb

WINDOW_LR = 3  # conf.window = [3 3], in LR pixels (Zeyde et al. 2010, §4; learn_dict.m)
BORDER_LR = 1  # conf.border = [1 1]
TRAIN_OVERLAP_LR = 1  # conf.overlap = [1 1] while learning the dictionary ("partial overlap, faster training")
TEST_OVERLAP_LR = WINDOW_LR - 1  # conf.overlap = conf.window - [1 1] at test time (full overlap)
PCA_DROPPED_ENERGY = 1e-3  # learn_dict.m: ignore the last 0.1 % of the feature energy
FILTER_COUNT = 4  # {G, G.', L, L.'}


def window(scale: int) -> int:
    """Side of a patch in HR pixels (3 LR pixels)."""
    return WINDOW_LR * scale


def feature_size(scale: int) -> int:
    return FILTER_COUNT * window(scale) ** 2


def patch_size(scale: int) -> int:
    return window(scale) ** 2


def min_hr_side(scale: int) -> int:
    """The smallest HR side that holds one window inside the border: (3 + 2) LR pixels."""
    return (WINDOW_LR + 2 * BORDER_LR) * scale


def grid_starts(length: int, scale: int, overlap_lr: int) -> np.ndarray:
    """0-based first rows (or columns) of the windows along one side (``sampling_grid.m``)."""
    size, border, step = window(scale), BORDER_LR * scale, (WINDOW_LR - overlap_lr) * scale
    return np.arange(border, length - size - border + 1, step)


def grid_count(shape: tuple[int, int], scale: int, overlap_lr: int) -> int:
    return len(grid_starts(shape[0], scale, overlap_lr)) * len(grid_starts(shape[1], scale, overlap_lr))


def _conv_same(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """MATLAB ``conv2(image, kernel, 'same')`` for a 1-D kernel along ``axis`` (zero padding).

    conv2 flips the kernel and 'same' keeps the central part, starting at ``floor(m / 2)`` of the full
    result, so tap ``k`` (0-based) reads ``image[i + floor(m / 2) - k]``."""
    length, centre = len(kernel), len(kernel) // 2
    n = image.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (length, length)
    padded = np.pad(image, pad)
    out = np.zeros_like(image, dtype=np.float64)
    for tap, weight in enumerate(kernel):
        if weight:
            start = length + centre - tap
            out += weight * (padded[start : start + n] if axis == 0 else padded[:, start : start + n])
    return out


def filters(scale: int) -> list[tuple[np.ndarray, int]]:
    """(kernel, axis) for G, G.', L, L.' — axis 1 filters along a row (horizontal)."""
    zeros = [0.0] * (scale - 1)  # O = zeros(1, conf.upsample_factor - 1)
    gradient = np.array([1.0, *zeros, -1.0])  # G = [1 O -1]
    laplacian = np.array([1.0, *zeros, -2.0, *zeros, 1.0]) / 2  # L = [1 O -2 O 1] / 2
    return [(gradient, 1), (gradient, 0), (laplacian, 1), (laplacian, 0)]


def _windows(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """(len(rows), size * size) windows whose top-left corners are (rows[i], cols[i])."""
    view = sliding_window_view(image, (size, size))
    return view[rows, cols].reshape(len(rows), size * size)


def grid_positions(shape: tuple[int, int], scale: int, overlap_lr: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners of every window of the grid, row-major."""
    rows, cols = np.meshgrid(
        grid_starts(shape[0], scale, overlap_lr), grid_starts(shape[1], scale, overlap_lr), indexing="ij"
    )
    return rows.ravel(), cols.ravel()


def filtered(midres: np.ndarray, scale: int) -> list[np.ndarray]:
    """The four filtered images of a bicubic-upscaled Y channel (G, G.', L, L.')."""
    return [_conv_same(midres, kernel, axis) for kernel, axis in filters(scale)]


def features(midres: np.ndarray | list[np.ndarray], scale: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(n, 4 (3s)^2) filtered windows of the bicubic-upscaled Y channel (``extract.m`` with filters);
    pass ``filtered(midres, scale)`` instead of ``midres`` to filter once for several calls."""
    images = filtered(midres, scale) if isinstance(midres, np.ndarray) else midres
    size = window(scale)
    return np.concatenate([_windows(image, rows, cols, size) for image in images], axis=1)


def patches(image: np.ndarray, scale: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(n, (3s)^2) raw windows (``extract.m`` without filters), e.g. of HR minus bicubic."""
    return _windows(image, rows, cols, window(scale))


def overlap_average(values: np.ndarray, shape: tuple[int, int], scale: int, overlap_lr: int) -> np.ndarray:
    """Add the (n, (3s)^2) patches of a whole grid (``grid_positions`` order) at their windows and divide by
    the cover count (``overlap_add.m``); uncovered pixels are 0. Vectorised over patches: within one offset
    (dy, dx) of the window the grid's pixels are distinct, so each offset is one strided slice add."""
    size, step = window(scale), (WINDOW_LR - overlap_lr) * scale
    row_starts, col_starts = grid_starts(shape[0], scale, overlap_lr), grid_starts(shape[1], scale, overlap_lr)
    total, weight = np.zeros(shape), np.zeros(shape)
    if not len(row_starts) or not len(col_starts):
        return total
    blocks = values.reshape(len(row_starts), len(col_starts), size, size)
    top, left = int(row_starts[0]), int(col_starts[0])
    bottom, right = int(row_starts[-1]) + 1, int(col_starts[-1]) + 1
    for dy in range(size):
        for dx in range(size):
            region = (slice(top + dy, bottom + dy, step), slice(left + dx, right + dx, step))
            total[region] += blocks[:, :, dy, dx]
            weight[region] += 1.0
    covered = weight > 0
    total[covered] /= weight[covered]
    return total


def pca_basis(gram: np.ndarray) -> np.ndarray:
    """(F, d) eigenvectors of the uncentred feature Gram matrix ``F^T F`` that keep all but the last
    0.1 % of the energy, smallest first as MATLAB's ``eig`` orders them (``learn_dict.m``)."""
    values, vectors = np.linalg.eigh(gram)
    if np.sum(values) <= 0:  # flat images only: nothing to rank (K-SVD refuses them next)
        return vectors
    energy = np.cumsum(values) / np.sum(values)
    first = int(np.argmax(energy >= PCA_DROPPED_ENERGY))
    return vectors[:, first:]


def luma(rgb: np.ndarray) -> np.ndarray:
    """Y of BT.601 YCbCr (MATLAB ``rgb2ycbcr``) in [0, 1] of a uint8 RGB image, not rounded."""
    return rgb_to_ycbcr(rgb.astype(np.float64) / 255.0)[..., 0]


def bicubic_ycbcr(lr: np.ndarray, scale: int) -> np.ndarray:
    """YCbCr in [0, 1] of a uint8 RGB LR image, upscaled by MATLAB bicubic to (sH, sW) in floating point."""
    ycbcr = rgb_to_ycbcr(lr.astype(np.float64) / 255.0)
    return imresize(ycbcr, output_shape=(lr.shape[0] * scale, lr.shape[1] * scale), method="bicubic")


def upscale_luma(y_lr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return imresize(y_lr, output_shape=shape, method="bicubic")


def to_rgb_uint8(ycbcr: np.ndarray) -> np.ndarray:
    """YCbCr in [0, 1] -> uint8 RGB, rounding half up and saturating (how an SR output is saved)."""
    return np.clip(np.floor(ycbcr_to_rgb(ycbcr) * 255.0 + 0.5), 0, 255).astype(np.uint8)
