"""A small SRResNet training run on a study's references (no Django here).

What it is for: showing that the training path works end to end — MATLAB-bicubic LR
inputs, L1 loss, PSNR over bicubic going up — on a lab's own references, in minutes
on a CPU. Weights that come out of it are a local experiment, never one of the
published checkpoints (``train_sr`` labels the file so).

Recipe (``TrainConfig``), and where each setting comes from:

* Network: ``srresnet`` (RankSRGAN's SRResNet without BN), nf 64 / nb 16 by default,
  as in the authors' ``SRResNet_bicx4_in3nf64nb16.pth``; ``nf``/``nb`` shrink it for tests.
* Initialisation: Kaiming-normal (fan_in) scaled by 0.1, zero biases, on every
  convolution — ``initialize_weights(..., 0.1)`` of mmsr/RankSRGAN
  (``codes/models/archs/arch_util.py``), which their SRResNet applies to its layers
  and residual blocks; BasicSR's MSRResNet does the same (``default_init_weights(..., 0.1)``).
* Optimiser and loss: Adam, lr 2e-4, betas (0.9, 0.99), no weight decay, L1 (mean)
  — RankSRGAN ``codes/options/train/train_SRResNet.yml`` (``lr_G: 2e-4``, ``beta1 0.9``,
  ``beta2 0.99``, ``pixel_criterion: l1``) and BasicSR
  ``options/train/SRResNet_SRGAN/train_MSRResNet_x4.yml`` (Adam 2e-4, betas [0.9, 0.99], L1Loss).
* Schedule: both configs anneal the rate with cosine restarts (4 periods of 250k
  iterations, eta_min 1e-7, 1M iterations in all). A CPU run is a few hundred or
  thousand iterations, so we use one cosine period over the whole run, 2e-4 -> 1e-7.
* Data: both configs take 128x128 HR crops (32x32 LR at x4), batch 16, with
  horizontal/vertical flips and 90° rotations, from LR images made once per image
  with MATLAB's bicubic ``imresize``. Deviation for CPU speed: patch 48 HR pixels and
  batch 8 by default (the same augmentation, the same way of making LR).
* LR images: MATLAB-compatible bicubic ``imresize`` (antialiased) of the whole HR image
  after cropping it to a multiple of the scale (SPEC §6); training crops are aligned
  on the LR grid, so every LR pixel comes from the image, not from a patch border.

Validation (``psnr_y``): the references are split *by image* into training and
validation sets — no image gives patches to both. PSNR is measured on the whole
validation images in the SR convention (4PP-EUSR §5, ESRGAN §4.2): outputs quantised
to 8 bits, Y channel of YCbCr (ITU-R BT.601 as MATLAB's ``rgb2ycbcr``, Y in [16, 235],
not rounded), ``scale`` pixels cropped at each border, peak 255, averaged over images.
The baseline is MATLAB-bicubic upscaling of the same LR images.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from sr_models.imresize import imresize
from sr_models.inference import rgb_to_ycbcr

ARCH = "srresnet"
ETA_MIN = 1e-7  # the configs' cosine floor
BETAS = (0.9, 0.99)


class TrainingError(ValueError):
    """Inputs or settings a training run refuses, with a message that says why."""


@dataclass(frozen=True)
class TrainConfig:
    scale: int = 4
    patch: int = 48  # HR pixels (configs: 128; smaller for CPU)
    batch: int = 8  # configs: 16; smaller for CPU
    iterations: int = 300
    lr: float = 2e-4  # RankSRGAN train_SRResNet.yml lr_G, BasicSR train_MSRResNet_x4.yml
    seed: int = 0
    nf: int = 64
    nb: int = 16
    holdout: float = 0.25  # share of the images kept for validation (at least one, at most all but one)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    state_dict: dict  # name -> CPU tensor, loads strictly into build("srresnet", scale, nf=..., nb=...)
    psnr_bicubic: float  # dB, Y channel, border cropped, mean over validation images
    psnr_start: float  # the untrained network
    psnr_end: float  # after training
    losses: list[float]  # L1 per iteration, on the [0, 1] scale
    train_indices: list[int]  # positions in the input list
    validation_indices: list[int]
    seconds: float = 0.0
    config: TrainConfig = field(default_factory=TrainConfig)

    @property
    def gain_start(self) -> float:
        return self.psnr_start - self.psnr_bicubic

    @property
    def gain_end(self) -> float:
        return self.psnr_end - self.psnr_bicubic


# --- checks -------------------------------------------------------------------------------------


def check_config(config: TrainConfig) -> None:
    from sr_models import archs

    scales = archs.arch(ARCH).scales
    if config.scale not in scales:
        raise TrainingError(f"{ARCH} supports scales {', '.join(f'x{s}' for s in scales)}, not x{config.scale}")
    if config.patch < 2 * config.scale or config.patch % config.scale:
        raise TrainingError(
            f"the patch ({config.patch} HR pixels) must be a multiple of the scale ({config.scale}) "
            f"and at least {2 * config.scale}"
        )
    for name in ("batch", "iterations", "nf", "nb"):
        if getattr(config, name) < (0 if name == "iterations" else 1):
            raise TrainingError(f"{name} must be positive, not {getattr(config, name)}")
    if not config.lr > 0:
        raise TrainingError(f"the learning rate must be positive, not {config.lr}")
    if not 0 < config.holdout < 1:
        raise TrainingError(f"the validation share must be between 0 and 1, not {config.holdout}")


def check_images(images: Sequence[np.ndarray], config, names: Sequence[str] | None = None) -> None:
    """At least two HxWx3 uint8 images, none smaller than ``config.patch`` (any trainer's config with a patch)."""
    names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    if len(images) < 2:
        raise TrainingError(
            f"training needs at least 2 reference images (one to train on, one to validate on), got {len(images)}"
        )
    problems = []
    for name, image in zip(names, images, strict=True):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            problems.append(f"{name}: expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")
        elif min(image.shape[:2]) < config.patch:
            problems.append(
                f"{name}: {image.shape[1]}x{image.shape[0]} is smaller than the {config.patch}x{config.patch} patch"
            )
    if problems:
        raise TrainingError("; ".join(problems))


# --- data ---------------------------------------------------------------------------------------


def split_by_image(count: int, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """Training and validation image indices: a seeded shuffle, at least one image on each side."""
    n_val = min(count - 1, max(1, round(holdout * count)))
    order = np.random.default_rng(seed).permutation(count).tolist()
    return sorted(order[n_val:]), sorted(order[:n_val])


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so both sides are multiples of the scale (SR test-set convention)."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic (antialiased) downscaling of a scale-aligned HR image, uint8 in and out."""
    return imresize(hr, output_shape=(hr.shape[0] // scale, hr.shape[1] // scale), method="bicubic")


def sample_batch(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], config: TrainConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of aligned (LR, HR) crops, float32 NCHW in [0, 1], with random flips and 90° rotations."""
    lr_patch = config.patch // config.scale
    lrs, hrs = [], []
    for _ in range(config.batch):
        lr, hr = pairs[rng.integers(len(pairs))]
        top = int(rng.integers(lr.shape[0] - lr_patch + 1))
        left = int(rng.integers(lr.shape[1] - lr_patch + 1))
        lr_crop = lr[top : top + lr_patch, left : left + lr_patch]
        s = config.scale
        hr_crop = hr[top * s : (top + lr_patch) * s, left * s : (left + lr_patch) * s]
        hflip, vflip, rot = rng.random(3) < 0.5  # BasicSR's augment: hflip, vflip, transpose (rot90)
        for flag, op in ((hflip, lambda a: a[:, ::-1]), (vflip, lambda a: a[::-1]), (rot, lambda a: a.swapaxes(0, 1))):
            if flag:
                lr_crop, hr_crop = op(lr_crop), op(hr_crop)
        lrs.append(lr_crop)
        hrs.append(hr_crop)
    to_tensor = lambda crops: np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2), dtype=np.float32) / 255.0  # noqa: E731
    return to_tensor(lrs), to_tensor(hrs)


# --- evaluation ---------------------------------------------------------------------------------


def quantize(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] -> uint8, rounding half up and saturating (how an SR output is saved)."""
    return np.clip(np.floor(rgb.astype(np.float64) * 255.0 + 0.5), 0, 255).astype(np.uint8)


def psnr_y(reference: np.ndarray, output: np.ndarray, border: int) -> float:
    """PSNR (dB) of two uint8 RGB images on BT.601 Y (MATLAB rgb2ycbcr, not rounded), ``border``
    pixels cropped at each side, peak 255 — the SR papers' convention."""
    if reference.shape != output.shape:
        raise TrainingError(f"PSNR of images of different sizes: {reference.shape} and {output.shape}")
    y_ref = rgb_to_ycbcr(reference.astype(np.float64) / 255.0)[..., 0] * 255.0
    y_out = rgb_to_ycbcr(output.astype(np.float64) / 255.0)[..., 0] * 255.0
    if border:
        y_ref, y_out = y_ref[border:-border, border:-border], y_out[border:-border, border:-border]
    mse = float(np.mean((y_ref - y_out) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def bicubic_psnr(pairs: Sequence[tuple[np.ndarray, np.ndarray]], scale: int) -> float:
    values = [psnr_y(hr, imresize(lr, output_shape=hr.shape[:2], method="bicubic"), scale) for lr, hr in pairs]
    return float(np.mean(values))


def model_psnr(model, pairs: Sequence[tuple[np.ndarray, np.ndarray]], scale: int) -> float:
    import torch

    model.eval()
    values = []
    with torch.inference_mode():
        for lr, hr in pairs:
            batch = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1), dtype=np.float32) / 255.0)[None]
            sr = model(batch)[0].clamp(0.0, 1.0).permute(1, 2, 0).numpy()
            values.append(psnr_y(hr, quantize(sr), scale))
    model.train()
    return float(np.mean(values))


# --- training -----------------------------------------------------------------------------------


@contextlib.contextmanager
def torch_threads(count: int | None):
    """Run with ``count`` intra-op CPU threads (None or 0: torch's default), restored afterwards.
    On a machine other jobs share, one thread can be many times faster than OpenMP threads
    that wait on each other; results are deterministic for a given seed and thread count."""
    import torch

    if not count:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def init_weights(model, scale: float = 0.1) -> None:
    """mmsr/RankSRGAN ``initialize_weights(net, 0.1)``: Kaiming-normal (fan_in, a=0) × 0.1, zero bias."""
    import torch
    from torch import nn

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
                module.weight.mul_(scale)
                if module.bias is not None:
                    module.bias.zero_()


def train_srresnet(
    hr_images: Sequence[np.ndarray],
    config: TrainConfig | None = None,
    progress: Callable[[int, float], None] | None = None,
    *,
    names: Sequence[str] | None = None,
) -> TrainResult:
    """Train ``srresnet`` with L1 on random crops of some images; measure PSNR (Y, border cropped)
    against bicubic on the others, before and after. Deterministic for a seed on CPU.

    ``progress(iteration, loss)`` is called after every step (1-based iteration)."""
    import torch

    from sr_models import archs

    config = config or TrainConfig()
    check_config(config)
    check_images(hr_images, config, names)
    started = time.perf_counter()
    train_idx, val_idx = split_by_image(len(hr_images), config.holdout, config.seed)
    pairs = {}
    for index in train_idx + val_idx:
        hr = modcrop(hr_images[index], config.scale)
        pairs[index] = (make_lr(hr, config.scale), hr)
    train_pairs = [pairs[i] for i in train_idx]
    val_pairs = [pairs[i] for i in val_idx]

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = archs.build(ARCH, config.scale, nf=config.nf, nb=config.nb)
    init_weights(model)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=BETAS, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.iterations), eta_min=ETA_MIN)

    psnr_bicubic = bicubic_psnr(val_pairs, config.scale)
    psnr_start = model_psnr(model, val_pairs, config.scale)
    losses: list[float] = []
    for iteration in range(1, config.iterations + 1):
        lr_batch, hr_batch = sample_batch(train_pairs, config, rng)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.l1_loss(model(torch.from_numpy(lr_batch)), torch.from_numpy(hr_batch))
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(iteration, losses[-1])
    psnr_end = model_psnr(model, val_pairs, config.scale)
    model.eval()
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    return TrainResult(
        state_dict=state,
        psnr_bicubic=psnr_bicubic,
        psnr_start=psnr_start,
        psnr_end=psnr_end,
        losses=losses,
        train_indices=train_idx,
        validation_indices=val_idx,
        seconds=time.perf_counter() - started,
        config=config,
    )
