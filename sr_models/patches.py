"""Choosing reference patches (no Django here).

PIPAL cropped its 288x288 references from DIV2K/Flickr2K around textures that
are hard to restore (buildings, grass, fur, text). ``texture`` picks the window
with the most gradient energy (sum of squared finite differences of the BT.601
luminance), searched on a grid; ``center`` takes the middle.
"""

from __future__ import annotations

import numpy as np

SELECTIONS = ("texture", "center")


def _integral(values: np.ndarray) -> np.ndarray:
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1))
    table[1:, 1:] = values.cumsum(0).cumsum(1)
    return table


def select_patch(image: np.ndarray, size: int, method: str = "texture", stride: int = 16) -> tuple[int, int]:
    """Top-left corner (y, x) of the chosen ``size`` x ``size`` window of an HxWx3 image."""
    height, width = image.shape[:2]
    if height < size or width < size:
        raise ValueError(f"{width}x{height} is smaller than the {size}x{size} patch")
    if method == "center":
        return (height - size) // 2, (width - size) // 2
    if method != "texture":
        raise ValueError(f"unknown patch selection {method!r} (known: {', '.join(SELECTIONS)})")
    luma = image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    energy = np.zeros_like(luma)
    energy[:, 1:] += np.diff(luma, axis=1) ** 2
    energy[1:, :] += np.diff(luma, axis=0) ** 2
    table = _integral(energy)
    best, corner = -1.0, (0, 0)
    for y in range(0, height - size + 1, stride):
        for x in range(0, width - size + 1, stride):
            total = table[y + size, x + size] - table[y, x + size] - table[y + size, x] + table[y, x]
            if total > best:
                best, corner = total, (y, x)
    return corner
