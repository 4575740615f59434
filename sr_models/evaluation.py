"""The SR evaluation protocol behind benchmark_sr (no Django here).

What the SR papers do (ESRGAN §4.1–4.2, RankSRGAN §5, 4PP-EUSR §5; SPEC §6), step by step:

1. HR images are cropped to a multiple of the scale ("modcrop");
2. LR inputs are made with MATLAB's ``imresize`` (bicubic, a = −0.5, antialiased when shrinking) and
   rounded to 8 bits (``sr_models.imresize``); the bicubic baseline upscales them back the same way;
3. each method's 8-bit output is compared with the HR image after ``crop`` pixels are cut from every
   border; PSNR and SSIM on the Y channel of YCbCr (BT.601 as MATLAB's ``rgb2ycbcr``, pyiqa's
   ``test_y_channel``) unless told to use RGB; NIQE, Ma (pyiqa ``nrqm``), PI and LPIPS on the same
   cropped images (the PIRM 2018 evaluation shaves the border for PI too);
4. a method's figure is the mean over a dataset's images, ranked per column (1 = best, by the metric's
   direction), as RankSRGAN's Table 3 and 4PP-EUSR's Table 2 lay them out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from sr_models.imresize import imresize

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
# Column labels of the papers' tables, by metric name.
LABELS = {"psnr": "PSNR", "ssim": "SSIM", "niqe": "NIQE", "nrqm": "Ma", "pi": "PI", "lpips": "LPIPS"}


class EvaluationError(ValueError):
    """A folder or image the protocol cannot use, named."""


@dataclass(frozen=True)
class Method:
    name: str  # e.g. "bicubic", "esrgan_x4"
    label: str  # e.g. "Bicubic", "ESRGAN x4"
    upscale: Callable[[np.ndarray], np.ndarray]  # HxWx3 uint8 LR -> (sH)x(sW)x3 uint8


@dataclass(frozen=True)
class Scorer:
    name: str
    higher_is_better: bool
    score: Callable[[np.ndarray, np.ndarray], float]  # (output, hr), both cropped HxWx3 uint8


def read_hr_folder(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(file name, HxWx3 uint8) of every image in a folder, sorted by name; unreadable files are named."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"{folder} is not a folder of HR images")
    files = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise EvaluationError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    images, errors = [], []
    for path in files:
        try:
            with Image.open(path) as image:
                images.append((path.name, np.array(image.convert("RGB"))))
        except (OSError, ValueError) as error:
            errors.append(f"{path}: cannot be read as an image ({error})")
    if errors:
        raise EvaluationError("; ".join(errors))
    return images


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    height, width = image.shape[0] - image.shape[0] % scale, image.shape[1] - image.shape[1] % scale
    return image[:height, :width]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """MATLAB's im2uint8 of a [0, 1] float image: round half away from zero, clip."""
    return np.clip(np.floor(image * 255 + 0.5), 0, 255).astype(np.uint8)


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The 8-bit MATLAB-bicubic LR input of a modcropped HR image."""
    return to_uint8(imresize(hr.astype(np.float64) / 255, 1 / scale, method="bicubic"))


def bicubic(scale: int) -> Method:
    def upscale(lr: np.ndarray) -> np.ndarray:
        target = (lr.shape[0] * scale, lr.shape[1] * scale)
        return to_uint8(imresize(lr.astype(np.float64) / 255, output_shape=target, method="bicubic"))

    return Method("bicubic", "Bicubic", upscale)


def shave(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border else image


def evaluate(
    datasets: dict[str, Sequence[tuple[str, np.ndarray]]],
    methods: Sequence[Method],
    scorers: Sequence[Scorer],
    *,
    scale: int,
    crop: int,
    progress: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """One row per (dataset, image, method) with a column per scorer."""
    rows = []
    for dataset, images in datasets.items():
        for image_name, original in images:
            hr = modcrop(original, scale)
            if min(hr.shape[:2]) <= 2 * crop:
                raise EvaluationError(f"{dataset}/{image_name}: {hr.shape[1]}x{hr.shape[0]} leaves nothing "
                                      f"after cropping {crop} pixels at each border")
            lr = make_lr(hr, scale)
            reference = shave(hr, crop)
            for method in methods:
                output = method.upscale(lr)
                if output.shape != hr.shape:
                    raise EvaluationError(
                        f"{method.name} made a {output.shape[1]}x{output.shape[0]} output of {dataset}/{image_name}, "
                        f"expected {hr.shape[1]}x{hr.shape[0]}"
                    )
                cropped = shave(output, crop)
                row = {"dataset": dataset, "image": image_name, "method": method.name, "label": method.label}
                for scorer in scorers:
                    try:
                        row[scorer.name] = float(scorer.score(cropped, reference))
                    except (RuntimeError, ValueError) as error:  # e.g. NIQE's 96-px blocks on a tiny image
                        size = f"{cropped.shape[1]}x{cropped.shape[0]}"
                        raise EvaluationError(
                            f"{scorer.name} failed on {dataset}/{image_name} ({size} after cropping): {error}"
                        ) from error
                rows.append(row)
                if progress is not None:
                    progress()
    return pd.DataFrame(rows)


def summary(per_image: pd.DataFrame, scorers: Sequence[Scorer]) -> pd.DataFrame:
    """Mean per (dataset, method) and metric, with its rank among the dataset's methods (1 = best)."""
    names = [scorer.name for scorer in scorers]
    means = per_image.groupby(["dataset", "method", "label"], sort=False)[names].mean().reset_index()
    counts = per_image.groupby(["dataset", "method"], sort=False).size().rename("images").reset_index()
    means = means.merge(counts, on=["dataset", "method"])
    for scorer in scorers:
        means[f"{scorer.name}_rank"] = (
            means.groupby("dataset")[scorer.name]
            .rank(method="min", ascending=not scorer.higher_is_better)
            .astype(int)
        )
    return means


def _superscript(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def markdown(table: pd.DataFrame, scorers: Sequence[Scorer], *, title: str, notes: Sequence[str] = ()) -> str:
    """One table per dataset: methods as rows, metrics (↑/↓) as columns, each mean with its rank."""
    lines = [f"# {title}", ""]
    lines += [f"- {note}" for note in notes]
    for dataset, group in table.groupby("dataset", sort=False):
        lines += ["", f"## {dataset} ({int(group['images'].iloc[0])} images)", ""]
        header = ["method", *[f"{LABELS.get(s.name, s.name)} {'↑' if s.higher_is_better else '↓'}" for s in scorers]]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        for _, row in group.iterrows():
            cells = [row["label"]]
            for scorer in scorers:
                value = row[scorer.name]
                digits = 2 if scorer.name == "psnr" else 4
                rank = _superscript(row[scorer.name + "_rank"])
                cells.append("n/a" if math.isnan(value) else f"{value:.{digits}f}{rank}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
