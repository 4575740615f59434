"""Running an SR network on images: pre/post-processing, device, precision, tiling (no Django here).

Pre- and post-processing follow each architecture's declared convention
(``ArchSpec``): RGB or the Y channel of YCbCr (chroma upscaled by bicubic
interpolation), [0, 1] or [0, 255], and bicubic pre-upsampling for SRCNN and
VDSR. Every resize is MATLAB's imresize (SPEC §6). Large inputs run in tiles
with an overlap; each tile's output is cropped to its own core region, so the
stitched image equals whole-image inference wherever the overlap covers the
network's receptive field, and stays within a small tolerance elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from sr_models.imresize import imresize
from sr_models.weights import LoadedModel

DTYPES = ("fp32", "fp16", "bf16")


class InferenceError(ValueError):
    pass


# ITU-R BT.601 as MATLAB's rgb2ycbcr (the SR papers' Y channel): Y in [16, 235]/255.
_RGB_TO_YCBCR = (
    np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float64)
    / 255.0
)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)


def _apply_3x3(matrix: np.ndarray, image: np.ndarray) -> np.ndarray:
    # Element-wise on purpose: a matrix product hands this to BLAS, whose spinning threads then
    # compete with torch's for the cores (measured by bench/sr_models.py).
    return np.stack([sum(matrix[row, col] * image[..., col] for col in range(3)) for row in range(3)], axis=-1)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 float RGB in [0, 1] -> YCbCr in [0, 1] (MATLAB rgb2ycbcr / 255)."""
    return _apply_3x3(_RGB_TO_YCBCR, rgb) + _YCBCR_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    return _apply_3x3(_YCBCR_TO_RGB, ycbcr - _YCBCR_OFFSET)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device_dtype(device: str, dtype: str) -> None:
    import torch

    if device not in ("cpu", "cuda"):
        raise InferenceError(f"device must be cpu or cuda, not {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise InferenceError("device cuda was asked for but torch sees no CUDA GPU here; use --device cpu")
    if dtype not in DTYPES:
        raise InferenceError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if dtype == "fp16" and device != "cuda":
        raise InferenceError("fp16 needs CUDA (CPU half-precision convolutions are slow or missing); use fp32 or bf16")


def _autocast(device: str, dtype: str):
    import torch

    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.float16 if dtype == "fp16" else torch.bfloat16)


def _forward(model, batch, *, device: str, dtype: str, out_scale: int, tile: int | None, overlap: int):
    """Model output for an NCHW float batch, whole or in tiles of ``tile`` input pixels."""
    import torch

    height, width = batch.shape[-2:]
    with torch.inference_mode(), _autocast(device, dtype):
        if not tile or (height <= tile and width <= tile):
            return model(batch.to(device)).float().cpu()
        out = torch.zeros(batch.shape[0], 0, height * out_scale, width * out_scale)
        for top in range(0, height, tile):
            for left in range(0, width, tile):
                bottom, right = min(top + tile, height), min(left + tile, width)
                # the tile's core region grown by the overlap, clamped to the image
                y0, x0 = max(0, top - overlap), max(0, left - overlap)
                y1, x1 = min(height, bottom + overlap), min(width, right + overlap)
                piece = model(batch[..., y0:y1, x0:x1].to(device)).float().cpu()
                if out.shape[1] == 0:
                    out = torch.zeros(batch.shape[0], piece.shape[1], height * out_scale, width * out_scale)
                s = out_scale
                out[..., top * s : bottom * s, left * s : right * s] = piece[
                    ..., (top - y0) * s : (bottom - y0) * s, (left - x0) * s : (right - x0) * s
                ]
        return out


def upscale(
    loaded: LoadedModel,
    images: Sequence[np.ndarray],
    *,
    device: str | None = None,
    dtype: str = "fp32",
    tile: int | None = None,
    overlap: int = 16,
) -> list[np.ndarray]:
    """Super-resolve same-size HxWx3 uint8 LR images as one batch; returns uint8 outputs
    ``scale`` times larger."""
    import torch

    device = device or default_device()
    check_device_dtype(device, dtype)
    if not images:
        return []
    shapes = {image.shape for image in images}
    if len(shapes) != 1 or any(image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 for image in images):
        raise InferenceError(f"expected same-size HxWx3 uint8 images, got {sorted(shapes)}")
    if tile is not None and (tile < 8 or overlap < 0):
        raise InferenceError("tile must be at least 8 pixels and overlap at least 0")
    spec, scale = loaded.spec, loaded.checkpoint.scale
    height, width = images[0].shape[:2]
    target = (height * scale, width * scale)
    inputs, chroma = [], []
    for image in images:
        rgb = image.astype(np.float64) / 255.0
        if spec.pre_upsample:
            rgb = imresize(rgb, output_shape=target, method="bicubic")
        if spec.color == "y":
            ycbcr = rgb_to_ycbcr(rgb)
            inputs.append(ycbcr[..., :1])
            cbcr = ycbcr[..., 1:]
            chroma.append(cbcr if spec.pre_upsample else imresize(cbcr, output_shape=target, method="bicubic"))
        else:
            inputs.append(rgb)
    # NHWC in memory, NCHW to the model: PyTorch's channels-last layout, the faster one for
    # oneDNN's convolutions on the CPU (bench/sr_models.py: 5-30% per image)
    pixels = np.ascontiguousarray(np.stack(inputs), dtype=np.float32)
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2) * spec.input_range
    out_scale = 1 if spec.pre_upsample else scale
    output = _forward(loaded.model, batch, device=device, dtype=dtype, out_scale=out_scale, tile=tile, overlap=overlap)
    output = (output / spec.input_range).permute(0, 2, 3, 1).numpy().astype(np.float64)
    if output.shape[1:3] != target:
        raise InferenceError(f"{loaded.checkpoint.name} returned {output.shape[1:3]}, expected {target}")
    results = []
    for index, planes in enumerate(output):
        rgb = ycbcr_to_rgb(np.concatenate([planes, chroma[index]], axis=-1)) if spec.color == "y" else planes
        results.append(np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8))
    return results
