"""Rank datasets for the RankSRGAN Ranker: build them, write them, read them (no Django here).

A rank dataset is a folder:

* ``patches/<source image>/<top>_<left>_<level>.png`` — 8-bit RGB patches;
* ``labels.csv`` — one row per patch: ``patch`` (path under ``patches/``), ``group``,
  ``source_image``, ``label``, ``split`` (``train`` or ``validation``);
* ``manifest.json`` — the source kind and its parameters, what the label means and its
  direction (``label.higher_is_worse``), patch size and stride, seed, validation share,
  the split and the counts.

A *group* is one patch position of one source image at several levels (SR methods,
distortion strengths, interpolation weights, a study's distorted images of one
reference). The Ranker is trained on pairs from one group only: the same content, two
levels, so the pair differs only in what the label measures.

Sources (RankSRGAN journal version, Sec. 4 and 5.1; SPEC §4 "Rank dataset"):

* ``sr`` (4.1): outputs of several SR checkpoints on MATLAB-bicubic LR images, labelled
  per patch with a chosen metric (the paper: NIQE). The official script
  (``datasets/generate_rankdataset/generate_rankdataset.m``) keeps a patch when its
  level-1 (ESRGAN) patch is sharp enough (``compute_sharpness`` >= 40) and
  ``|NIQE(SRGAN) - NIQE(ESRGAN)| > 0.1``. We keep a patch when *every* pair of methods
  differs by more than ``min_gap`` (for ESRGAN/SRGAN/SRResNet the binding pair is the
  same one: SRResNet's NIQE is far from both), which works for any list of methods.
* ``distortion`` (4.3): Gaussian blur (the paper's kernel widths 0.1, 2, 4, used here as
  the Gaussian's sigma in pixels) or Gaussian noise. The paper's noise "covariances 1,
  15, 30" are used as the noise's **standard deviation on the 0-255 scale** (sigma 1,
  15, 30; variance 1, 225, 900): read as variances, 30 would be sigma 5.5, barely
  visible, while 15 and 30 are the standard sigmas of the denoising literature; the
  manifest says so. Label = the level's sigma; higher is worse.
* ``interpolation`` (4.2): ``I = λ·SR + (1 − λ)·HR`` for λ in 0.25, 0.5, 0.75 (and
  optionally 0 = HR and 1 = SR), SR = a GAN-SR checkpoint's output (the paper: SRGAN)
  on the MATLAB-bicubic LR image. Label = λ; higher is worse.
* ``study``: a study's images; group = reference (one group per patch position when the
  images are larger than a patch), label = MOS (higher is better).

Patches: 296 pixels, stride 148 (the code; the paper says 200), at most 200 per source
image (a seeded random subset, as the script's ``randperm``), positions
``0, stride, ...`` up to the last one that fits (the MATLAB loop ``1:stride:H-296``
leaves out the last one when ``H − 296`` is a multiple of the stride; we keep it). A
side shorter than the patch gives a patch as long as that side (a whole 288x288 PIPAL
image is one patch). The split is by source image, never by patch: patches of one image
overlap, so a patch split leaks (SPEC §6; the official ``move_valid.py`` splits patches).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.dataset_paths import OutsideDataset, inside
from iqa.learned.training import TrainingError

LABELS_FILE = "labels.csv"
MANIFEST_FILE = "manifest.json"
PATCH_FOLDER = "patches"
COLUMNS = ("patch", "group", "source_image", "label", "split")
SPLITS = ("train", "validation")
FORMAT = "pipal-rank-dataset"
FORMAT_VERSION = 1

PATCH_SIZE = 296
STRIDE = 148  # the code (generate_rankdataset.m); the paper says 200
MAX_PATCHES = 200
VALIDATION_SHARE = 0.1
SR_MIN_SHARPNESS = 40.0  # generate_rankdataset.m keeps a patch when compute_sharpness(...) >= 40
SR_MIN_GAP = 0.1  # |NIQE(SRGAN) - NIQE(ESRGAN)| > 0.1, in the metric's units
BLUR_SIGMAS = (0.1, 2.0, 4.0)  # paper Sec. 4.3 "3 blur kernels (width 0.1, 2, 4)", used as sigma
NOISE_SIGMAS = (1.0, 15.0, 30.0)  # paper Sec. 4.3 "3 covariances (1, 15, 30)", used as sigma on 0-255
LAMBDAS = (0.25, 0.5, 0.75)  # paper Sec. 4.2
SR_MODELS = ("esrgan_x4", "srgan_x4", "srresnet_x4")  # the script's levels 1/2/3
INTERPOLATION_MODEL = "srgan_x4"
SCALE = 4

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class RankDatasetError(TrainingError):
    """A rank dataset that cannot be built or read, with a message that names the file or option."""


@dataclass(frozen=True)
class PatchOptions:
    size: int = PATCH_SIZE
    stride: int = STRIDE
    max_per_image: int = MAX_PATCHES
    min_sharpness: float = 0.0  # 0: keep flat patches too
    validation: float = VALIDATION_SHARE
    seed: int = 0

    def check(self) -> None:
        if self.size < 8 or self.stride < 1 or self.max_per_image < 1:
            raise RankDatasetError(
                f"patch size must be at least 8, stride and patches per image at least 1 (got {self.size}, "
                f"{self.stride}, {self.max_per_image})"
            )
        if not 0 < self.validation < 1:
            raise RankDatasetError(f"the validation share must be between 0 and 1, not {self.validation}")
        if not self.min_sharpness >= 0:
            raise RankDatasetError(f"the sharpness threshold must be 0 or more, not {self.min_sharpness}")


@dataclass
class Level:
    name: str  # part of the patch file name, e.g. "sigma2", "lambda0.25", "esrgan_x4", "A0001_01_02"
    image: np.ndarray  # HxWx3 uint8, the same size for every level of a source
    label: float | None = None  # None: labelled per patch by the builder's scorer


@dataclass
class SourceLevels:
    levels: list[Level]
    anchor: np.ndarray | None = None  # what the sharpness test looks at (default: the first level)
    reference: np.ndarray | None = None  # HR image for a full-reference scorer


@dataclass
class Summary:
    folder: Path
    counts: dict
    split: dict = field(default_factory=dict)


Progress = Callable[[int, int, str], None]  # (done, total, source image name)
PatchScorer = Callable[[list[np.ndarray], "np.ndarray | None"], list[float]]


# --- pixels -----------------------------------------------------------------------------------------


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half up and saturate (the platform's one float -> uint8 conversion)."""
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-bicubic (antialiased) downscale of a scale-aligned HR image (SPEC §6)."""
    from sr_models.imresize import imresize

    return imresize(hr, output_shape=(hr.shape[0] // scale, hr.shape[1] // scale), method="bicubic")


def sharpness(patch: np.ndarray, block: int = 96) -> float:
    """``compute_sharpness.m`` of the official script: local standard deviation under a 7x7
    Gaussian (sigma 7/6, replicate border) of the grey patch, averaged over 96x96 blocks
    (``blkproc`` pads partial blocks with zeros) and summed over the blocks."""
    import cv2

    grey = patch.astype(np.float64)
    if grey.ndim == 3:  # MATLAB rgb2gray on uint8, rounded back to uint8
        grey = np.floor(grey[..., :3] @ np.array([0.298936021293775, 0.587043074451121, 0.114020904255103]) + 0.5)
    window = cv2.getGaussianKernel(7, 7 / 6, cv2.CV_64F)
    window = window @ window.T

    def smooth(x):
        return cv2.filter2D(x, -1, window, borderType=cv2.BORDER_REPLICATE)

    residual = grey - smooth(grey)
    sigma = np.sqrt(np.maximum(smooth(residual * residual), 0.0))
    rows, cols = math.ceil(sigma.shape[0] / block), math.ceil(sigma.shape[1] / block)
    padded = np.zeros((rows * block, cols * block))
    padded[: sigma.shape[0], : sigma.shape[1]] = sigma
    return float(padded.reshape(rows, block, cols, block).mean(axis=(1, 3)).sum())


def patch_positions(shape: tuple[int, ...], size: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of every patch: a side shorter than ``size`` gives one patch that long."""

    def starts(length: int) -> list[int]:
        return [0] if length <= size else list(range(0, length - size + 1, stride))

    height, width = shape[:2]
    return [(top, left, min(size, height), min(size, width)) for top in starts(height) for left in starts(width)]


def safe_name(name: str) -> str:
    cleaned = _SAFE.sub("_", name).strip("._") or "image"
    return cleaned[:120]


# --- the core builder ---------------------------------------------------------------------------------


def _split(names: Sequence[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    from iqa.learned.training import TrainingError, split_references

    if len(set(names)) < 2:
        raise RankDatasetError(
            f"{len(set(names))} source image(s): a rank dataset needs at least 2 (one to train on, one to validate on)"
        )
    try:
        return split_references(names, share, seed)
    except TrainingError as error:
        raise RankDatasetError(str(error)) from None


def _write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    path.write_bytes(buffer.getvalue())


def _prepare_folder(folder: Path) -> Path:
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise RankDatasetError(f"{folder} exists and is not an empty folder: choose a new output folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.partial-"))


def build(
    folder: Path,
    sources: Sequence[tuple[str, Callable[[], SourceLevels]]],
    *,
    source: str,
    parameters: dict,
    label_meaning: str,
    higher_is_worse: bool,
    options: PatchOptions,
    scorer: PatchScorer | None = None,
    min_gap: float = 0.0,
    progress: Progress | None = None,
) -> Summary:
    """Cut every source's levels into patches at the same positions, label them, split by source image,
    and write the dataset folder (built in a temporary sibling, then renamed: never half a dataset).

    ``sources``: (name, load) per source image; ``load()`` gives its levels. Levels without a label
    are labelled per patch by ``scorer(patches, reference_patch)``; a position is kept only when every
    pair of its labels differs by more than ``min_gap`` and its anchor patch is sharp enough."""
    options.check()
    if not sources:
        raise RankDatasetError("no source images: nothing to build a rank dataset from")
    names = [name for name, _ in sources]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RankDatasetError(f"source image names must be unique; repeated: {', '.join(duplicates[:5])}")
    train, validation = _split(names, options.validation, options.seed)
    in_validation = set(validation)
    staging = _prepare_folder(folder)
    rows: list[dict] = []
    dropped = {"flat": 0, "gap": 0, "over_limit": 0}
    try:
        for index, (name, load) in enumerate(sources):
            split = "validation" if name in in_validation else "train"
            rows += _cut_source(staging, index, name, load(), options, scorer, min_gap, split, dropped)
            if progress is not None:
                progress(index + 1, len(sources), name)
        counts = _counts(rows, names, dropped)
        for split in SPLITS:
            if not any(row["split"] == split for row in rows):
                raise RankDatasetError(
                    f"no {split} patches are left (sharpness threshold {options.min_sharpness}, minimum label gap "
                    f"{min_gap}; dropped {dropped['flat']} flat and {dropped['gap']} too-close positions): lower "
                    "the thresholds or add images"
                )
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "source": source,
            "parameters": parameters,
            "label": {"meaning": label_meaning, "higher_is_worse": bool(higher_is_worse)},
            "patch": {
                "size": options.size,
                "stride": options.stride,
                "max_per_image": options.max_per_image,
                "min_sharpness": options.min_sharpness,
                "min_label_gap": min_gap,
                "smaller_images": "a side shorter than the patch size gives a patch as long as that side",
            },
            "seed": options.seed,
            "validation_share": options.validation,
            "split": {"by": "source image", "train": train, "validation": validation},
            "counts": counts,
        }
        with open(staging / LABELS_FILE, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if Path(folder).exists():
            Path(folder).rmdir()  # empty (checked above)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Summary(folder=Path(folder), counts=counts, split={"train": train, "validation": validation})


def _cut_source(staging, index, name, loaded, options, scorer, min_gap, split, dropped) -> list[dict]:
    levels = loaded.levels
    if len(levels) < 2:
        raise RankDatasetError(f"{name}: {len(levels)} level(s); a group needs at least 2 to make a pair")
    shapes = {level.image.shape for level in levels}
    if len(shapes) != 1:
        detail = ", ".join(f"{level.name} {level.image.shape[1]}x{level.image.shape[0]}" for level in levels)
        raise RankDatasetError(f"{name}: the levels of one source must have the same size ({detail})")
    for level in levels:
        if level.image.dtype != np.uint8 or level.image.ndim != 3 or level.image.shape[2] != 3:
            raise RankDatasetError(f"{name} / {level.name}: expected an HxWx3 uint8 RGB image")
    if any(level.label is None for level in levels) and scorer is None:
        raise RankDatasetError(f"{name}: levels without a label need a metric to label their patches")
    level_names = [safe_name(level.name) for level in levels]
    if len(set(level_names)) != len(level_names):
        raise RankDatasetError(f"{name}: level names must be unique, got {', '.join(level.name for level in levels)}")
    anchor = loaded.anchor if loaded.anchor is not None else levels[0].image
    kept = []
    for top, left, height, width in patch_positions(anchor.shape, options.size, options.stride):
        window = (slice(top, top + height), slice(left, left + width))
        if options.min_sharpness > 0 and sharpness(anchor[window]) < options.min_sharpness:
            dropped["flat"] += 1
            continue
        kept.append((top, left, height, width, window))
    rng = np.random.default_rng([options.seed, index])
    if len(kept) > options.max_per_image:  # the script's randperm: a random subset
        dropped["over_limit"] += len(kept) - options.max_per_image
        choice = sorted(rng.choice(len(kept), size=options.max_per_image, replace=False).tolist())
        kept = [kept[i] for i in choice]
    # labelled after the subset, like the script (which computes NIQE only on the kept patches)
    folder_name = f"{index:05d}_{safe_name(name)}"
    (staging / PATCH_FOLDER / folder_name).mkdir(parents=True, exist_ok=True)
    rows = []
    for top, left, height, width, window in kept:
        patches = [np.ascontiguousarray(level.image[window]) for level in levels]
        labels = [level.label for level in levels]
        if any(label is None for label in labels):
            reference = None if loaded.reference is None else np.ascontiguousarray(loaded.reference[window])
            todo = [i for i, label in enumerate(labels) if label is None]
            scores = scorer([patches[i] for i in todo], reference)
            for i, score in zip(todo, scores, strict=True):
                labels[i] = float(score)
        if not all(math.isfinite(label) for label in labels):
            raise RankDatasetError(f"{name} at ({top}, {left}): a label is not a finite number ({labels})")
        gaps = [abs(a - b) for i, a in enumerate(labels) for b in labels[i + 1 :]]
        if len(set(labels)) < 2 or (min_gap > 0 and min(gaps) <= min_gap):  # the script: keep if gap > 0.1
            dropped["gap"] += 1
            continue
        group = name if (height, width) == anchor.shape[:2] else f"{name}@{top}_{left}"  # whole image: its name
        for level_name, patch, label in zip(level_names, patches, labels, strict=True):
            relative = f"{folder_name}/{top:05d}_{left:05d}_{level_name}.png"
            _write_png(staging / PATCH_FOLDER / relative, patch)
            rows.append({"patch": relative, "group": group, "source_image": name, "label": repr(label), "split": split})
    return rows


def _counts(rows: list[dict], names: Sequence[str], dropped: dict) -> dict:
    groups = {row["group"] for row in rows}
    return {
        "source_images": len(names),
        "source_images_with_patches": len({row["source_image"] for row in rows}),
        "groups": len(groups),
        "patches": len(rows),
        "train_patches": sum(row["split"] == "train" for row in rows),
        "validation_patches": sum(row["split"] == "validation" for row in rows),
        "dropped_flat_positions": dropped["flat"],
        "dropped_close_label_positions": dropped["gap"],
        "dropped_over_limit_positions": dropped["over_limit"],
    }


# --- the four sources -------------------------------------------------------------------------------


def _check_hr(hr_images: Sequence[tuple[str, np.ndarray]]) -> None:
    for name, image in hr_images:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise RankDatasetError(f"{name}: expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")


def build_distortion(
    folder: Path,
    hr_images: Sequence[tuple[str, np.ndarray]],
    *,
    kind: str = "blur",
    sigmas: Sequence[float] | None = None,
    options: PatchOptions | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Gaussian blur or Gaussian noise at several strengths of each HR image (label = sigma, higher is worse).

    Blur: ``sr_models.distortions.ops.gaussian_blur`` (OpenCV, kernel to 3 sigma, reflect-101 border) of the
    whole image, then patches. Noise: i.i.d. N(0, sigma²) per pixel and channel on 0-255, stored as 8 bits
    (``ops.add_gaussian_noise``), seeded per image and level."""
    from sr_models.distortions import ops

    options = options or PatchOptions()
    _check_hr(hr_images)
    if kind not in ("blur", "noise"):
        raise RankDatasetError(f"distortion kind must be blur or noise, not {kind!r}")
    sigmas = tuple(float(s) for s in (sigmas or (BLUR_SIGMAS if kind == "blur" else NOISE_SIGMAS)))
    if len(set(sigmas)) < 2 or min(sigmas) <= 0:
        raise RankDatasetError(f"give at least 2 different positive sigmas, not {sigmas}")

    def loader(index: int, hr: np.ndarray):
        def load() -> SourceLevels:
            levels = []
            for position, sigma in enumerate(sigmas):
                if kind == "blur":
                    image = ops.gaussian_blur(hr, sigma)
                else:
                    image = ops.add_gaussian_noise(hr, sigma, np.random.default_rng([options.seed, index, position]))
                levels.append(Level(f"sigma{sigma:g}", image, sigma))
            return SourceLevels(levels, anchor=hr)

        return load

    meaning = {
        "blur": "Gaussian blur sigma in pixels (the paper's kernel 'width')",
        "noise": "Gaussian noise standard deviation on the 0-255 scale (the paper's 'covariances' 1/15/30 read as "
        "sigma, not variance)",
    }[kind]
    return build(
        folder,
        [(name, loader(i, hr)) for i, (name, hr) in enumerate(hr_images)],
        source="distortion",
        parameters={"kind": kind, "sigmas": list(sigmas), "sigma_unit": "pixels" if kind == "blur" else "0-255"},
        label_meaning=meaning,
        higher_is_worse=True,
        options=options,
        progress=progress,
    )


Upscaler = Callable[[np.ndarray], np.ndarray]  # uint8 LR -> uint8 SR, scale times larger


def _super_resolve(name: str, hr: np.ndarray, model: str, upscale: Upscaler, scale: int):
    """(HR cropped to a multiple of the scale, the model's output on its MATLAB-bicubic LR image)."""
    hr = modcrop(hr, scale)
    if min(hr.shape[:2]) < scale:
        raise RankDatasetError(f"{name}: {hr.shape[1]}x{hr.shape[0]} is too small for x{scale} SR")
    sr = upscale(make_lr(hr, scale))
    if sr.shape != hr.shape or sr.dtype != np.uint8:
        raise RankDatasetError(f"{model} on {name}: expected a {hr.shape} uint8 output, got {sr.dtype} {sr.shape}")
    return hr, sr


def build_interpolation(
    folder: Path,
    hr_images: Sequence[tuple[str, np.ndarray]],
    *,
    upscale: Upscaler,
    model: str,
    lambdas: Sequence[float] = LAMBDAS,
    include_ends: bool = False,
    scale: int = SCALE,
    options: PatchOptions | None = None,
    progress: Progress | None = None,
) -> Summary:
    """``λ·SR + (1 − λ)·HR`` (float, rounded half up to 8 bits) of each HR image and the SR output of
    ``model`` on its MATLAB-bicubic LR image; label = λ (higher = nearer the SR output = worse)."""
    options = options or PatchOptions()
    _check_hr(hr_images)
    weights = sorted({float(v) for v in lambdas} | ({0.0, 1.0} if include_ends else set()))
    if len(weights) < 2 or min(weights) < 0 or max(weights) > 1:
        raise RankDatasetError(f"give at least 2 different interpolation weights in [0, 1], not {weights}")

    def loader(name: str, hr: np.ndarray):
        def load() -> SourceLevels:
            hr_cropped, sr = _super_resolve(name, hr, model, upscale, scale)
            hr_f, sr_f = hr_cropped.astype(np.float64), sr.astype(np.float64)
            levels = [Level(f"lambda{w:g}", to_uint8(w * sr_f + (1 - w) * hr_f), w) for w in weights]
            return SourceLevels(levels, anchor=hr_cropped)

        return load

    return build(
        folder,
        [(name, loader(name, hr)) for name, hr in hr_images],
        source="interpolation",
        parameters={"model": model, "lambdas": weights, "scale": scale, "lr": "MATLAB bicubic imresize",
                    "formula": "I = lambda * SR + (1 - lambda) * HR"},
        label_meaning="interpolation weight lambda of the SR output (0 = HR, 1 = SR)",
        higher_is_worse=True,
        options=options,
        progress=progress,
    )


@dataclass(frozen=True)
class PatchMetric:
    name: str
    higher_is_better: bool
    full_reference: bool
    score: PatchScorer  # (patches, HR patch or None) -> one value per patch
    version: str = ""


def build_sr(
    folder: Path,
    hr_images: Sequence[tuple[str, np.ndarray]],
    *,
    upscalers: dict[str, Upscaler],
    metric: PatchMetric,
    min_gap: float = SR_MIN_GAP,
    scale: int = SCALE,
    options: PatchOptions | None = None,
    progress: Progress | None = None,
) -> Summary:
    """The outputs of several SR checkpoints on each HR image's MATLAB-bicubic LR image, one group per patch
    position, labelled per patch with ``metric`` (full-reference metrics get the HR patch). The sharpness
    test looks at the first checkpoint's output (the script's level 1, ESRGAN)."""
    options = options or PatchOptions(min_sharpness=SR_MIN_SHARPNESS)
    _check_hr(hr_images)
    if len(upscalers) < 2:
        raise RankDatasetError(f"give at least 2 SR models (got {', '.join(upscalers) or 'none'})")
    if not min_gap >= 0:
        raise RankDatasetError(f"the minimum label gap must be 0 or more, not {min_gap}")

    def loader(name: str, hr: np.ndarray):
        def load() -> SourceLevels:
            levels, reference = [], None
            for model, upscale in upscalers.items():
                reference, sr = _super_resolve(name, hr, model, upscale, scale)
                levels.append(Level(model, sr))
            return SourceLevels(levels, anchor=levels[0].image, reference=reference if metric.full_reference else None)

        return load

    arrow = "lower is better" if not metric.higher_is_better else "higher is better"
    return build(
        folder,
        [(name, loader(name, hr)) for name, hr in hr_images],
        source="sr",
        parameters={"models": list(upscalers), "metric": metric.name, "metric_version": metric.version,
                    "metric_full_reference": metric.full_reference, "scale": scale, "lr": "MATLAB bicubic imresize"},
        label_meaning=f"{metric.name} of the patch ({arrow})",
        higher_is_worse=not metric.higher_is_better,
        options=options,
        scorer=metric.score,
        min_gap=min_gap,
        progress=progress,
    )


@dataclass(frozen=True)
class StudyImage:
    name: str
    load: Callable[[], np.ndarray]  # HxWx3 uint8 RGB
    mos: float


def build_study(
    folder: Path,
    references: Sequence[tuple[str, Sequence[StudyImage]]],
    *,
    study: str,
    options: PatchOptions | None = None,
    progress: Progress | None = None,
) -> Summary:
    """A study's judged images: one group per reference (per reference and patch position when the images
    are larger than a patch), label = MOS (higher is better). References with fewer than 2 images are left out."""
    options = options or PatchOptions()
    usable = [(ref, list(images)) for ref, images in references if len(images) >= 2]
    if len(usable) < 2:
        raise RankDatasetError(
            f"study {study}: {len(usable)} reference(s) with at least 2 judged images; a rank dataset needs 2 "
            "(one to train on, one to validate on): collect more judgments"
        )

    def loader(ref: str, images: list[StudyImage]):
        def load() -> SourceLevels:
            return SourceLevels([Level(image.name, image.load(), float(image.mos)) for image in images])

        return load

    return build(
        folder,
        [(ref, loader(ref, images)) for ref, images in usable],
        source="study",
        parameters={"study": study, "images": sum(len(images) for _, images in usable)},
        label_meaning="the study's MOS (Elo) of the image",
        higher_is_worse=False,
        options=options,
        progress=progress,
    )


# --- reading ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    patch: str
    group: str
    source_image: str
    label: float
    split: str


class RankDataset:
    """A rank dataset folder, checked, with its patches read on demand (and cached up to ``cache_bytes``)."""

    def __init__(self, folder: Path, manifest: dict, items: list[Item], *, cache_bytes: int = 1 << 30):
        self.folder = Path(folder)
        self.manifest = manifest
        self.items = items
        self.cache_bytes = cache_bytes
        self._cache: dict[int, np.ndarray] = {}
        self._cached = 0

    @property
    def higher_is_worse(self) -> bool:
        return bool(self.manifest["label"]["higher_is_worse"])

    @property
    def source(self) -> str:
        return str(self.manifest.get("source", ""))

    def path(self, index: int) -> Path:
        return self.folder / PATCH_FOLDER / self.items[index].patch

    def image(self, index: int) -> np.ndarray:
        """The patch as HxWx3 uint8 RGB; a file that cannot be decoded is named in the error."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        from PIL import Image

        path = self.path(index)
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB")).copy()
        except (OSError, ValueError) as error:
            raise RankDatasetError(f"{path}: cannot read the patch ({error})") from None
        if self._cached + pixels.nbytes <= self.cache_bytes:
            self._cache[index] = pixels
            self._cached += pixels.nbytes
        return pixels

    def groups(self, split: str) -> dict[str, list[int]]:
        """group -> item indices of one split, in file order."""
        found: dict[str, list[int]] = {}
        for index, item in enumerate(self.items):
            if item.split == split:
                found.setdefault(item.group, []).append(index)
        return found

    def pairs(self, split: str) -> list[list[tuple[int, int]]]:
        """Per group with at least one, the (i, j) item pairs with different labels (ties never make a pair)."""
        out = []
        for members in self.groups(split).values():
            pairs = [
                (a, b)
                for k, a in enumerate(members)
                for b in members[k + 1 :]
                if self.items[a].label != self.items[b].label
            ]
            if pairs:
                out.append(pairs)
        return out

    def source_images(self, split: str) -> list[str]:
        return sorted({item.source_image for item in self.items if item.split == split})

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of labels.csv and manifest.json: a resume must see the same data."""
        digest = hashlib.sha256()
        for name in (LABELS_FILE, MANIFEST_FILE):
            digest.update((self.folder / name).read_bytes())
        return digest.hexdigest()[:16]


def load(folder: Path, *, cache_bytes: int = 1 << 30) -> RankDataset:
    """Read and check a rank dataset folder (labels, splits, groups, files present)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RankDatasetError(f"{folder} is not a folder (build one with build_rank_dataset)")
    manifest_path, labels_path = folder / MANIFEST_FILE, folder / LABELS_FILE
    for path in (manifest_path, labels_path):
        if not path.is_file():
            raise RankDatasetError(f"{path} is missing: {folder} is not a rank dataset (build_rank_dataset makes one)")
    try:
        manifest = json.loads(manifest_path.read_text())
        higher_is_worse = manifest["label"]["higher_is_worse"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RankDatasetError(f"{manifest_path}: not a rank-dataset manifest ({error})") from None
    if not isinstance(higher_is_worse, bool):
        raise RankDatasetError(f"{manifest_path}: label.higher_is_worse must be true or false")
    items = []
    with open(labels_path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise RankDatasetError(f"{labels_path}: expected the columns {', '.join(COLUMNS)}, got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                label = float(row["label"])
            except (TypeError, ValueError):
                raise RankDatasetError(f"{labels_path} line {line}: label {row['label']!r} is not a number") from None
            if not math.isfinite(label):
                raise RankDatasetError(f"{labels_path} line {line}: label {row['label']!r} is not finite")
            if row["split"] not in SPLITS:
                raise RankDatasetError(f"{labels_path} line {line}: split {row['split']!r} is not train or validation")
            patch = row["patch"]
            try:
                inside(folder / PATCH_FOLDER, patch)
            except OutsideDataset as error:
                raise RankDatasetError(f"{labels_path} line {line}: patch {error}") from None
            items.append(Item(patch, row["group"], row["source_image"], label, row["split"]))
    if not items:
        raise RankDatasetError(f"{labels_path} lists no patches")
    missing = [item.patch for item in items if not (folder / PATCH_FOLDER / item.patch).is_file()]
    if missing:
        raise RankDatasetError(
            f"{len(missing)} patch file(s) listed in {labels_path} are missing, "
            f"e.g. {folder / PATCH_FOLDER / missing[0]}"
        )
    where: dict[str, tuple[str, str]] = {}
    for item in items:
        seen = where.setdefault(item.group, (item.source_image, item.split))
        if seen != (item.source_image, item.split):
            raise RankDatasetError(
                f"{labels_path}: group {item.group!r} spans {seen} and {(item.source_image, item.split)}; a group is "
                "one source image in one split"
            )
    splits: dict[str, str] = {}
    for item in items:
        if splits.setdefault(item.source_image, item.split) != item.split:
            raise RankDatasetError(
                f"{labels_path}: source image {item.source_image!r} has patches in both splits (a patch split leaks)"
            )
    return RankDataset(folder, manifest, items, cache_bytes=cache_bytes)


def describe(dataset: RankDataset) -> dict:
    """Counts for a log line: patches, groups and usable pairs per split."""
    out = {}
    for split in SPLITS:
        pairs = dataset.pairs(split)
        out[split] = {
            "patches": sum(item.split == split for item in dataset.items),
            "groups": len(dataset.groups(split)),
            "groups_with_pairs": len(pairs),
            "pairs": sum(len(p) for p in pairs),
            "source_images": len(dataset.source_images(split)),
        }
    return out

