"""A small DnCNN or FFDNet training run on a study's references (no Django here).

What it is for: a deep denoiser for the platform's own images when the official KAIR weights are
not wanted or not available, trained in minutes on a CPU. The weights are a local experiment,
never the published ones (``train_denoiser`` labels the file so).

The recipe (``DenoiserTrainConfig``), and where each setting comes from:

* Networks: DnCNN (Zhang et al., TIP 2017) — Conv+ReLU, (nb − 2) × Conv+BN+ReLU, Conv, residual
  learning; FFDNet (Zhang et al., TIP 2018) — the same body on the 2×2-unshuffled image plus the
  noise-level map σ/255. The saved file never holds batch norm: it is merged into the
  convolutions (KAIR's published layout, ``arch.fold_batch_norm``). Depth and width default to
  the published ones: DnCNN-B 20 × 64 (a network for several σ is blind; paper §IV-A), FFDNet
  15 × 64 grey, 12 × 96 colour (FFDNet Table I).
* Loss: DnCNN Eq. (1), ℓ(Θ) = 1/(2N) Σ‖R(y_i; Θ) − (y_i − x_i)‖²_F over a batch of N patches,
  R the predicted residual. With x̂ = y − R(y) this is 1/(2N) Σ‖x̂_i − x_i‖², which is also
  FFDNet's loss (its Eq. 4) and cszn/DnCNN ``main_train.py``'s ``sum_squared_error`` / 2.
* Optimiser: Adam (torch's default betas), lr 1e-3 for the first 30 of 50 epochs, then 1e-4
  (cszn/DnCNN ``Demo_Train_model_64_25_Res_Bnorm_Adam.m``: ``[logspace(-3,-3,30) logspace(-4,-4,20)]``;
  FFDNet §IV-A: 1e-3, then 1e-4 once the error stops falling). Here: 1e-3 for the first 60 % of
  the iterations, then a tenth of it.
* Batch norm: DnCNN trains with it (paper §III-B; KAIR ``options/train_dncnn.json`` "BR", merged
  at the end); FFDNet without (KAIR ``options/train_ffdnet.json`` "R": with BN, a short run measured
  a large gap between batch statistics and running statistics). BN ε 1e-4, momentum 0.95
  (cszn/DnCNN ``main_train.py``).
* Initialisation: orthogonal convolution weights, zero biases, BN γ = 1, β = 0 (cszn/DnCNN
  ``main_train.py``); gain 0.2 for DnCNN (KAIR's configs), 1 for FFDNet (``INIT_GAIN``).
* Data: random patches with the 8 flips/rotations of cszn/DnCNN ``data_generator.py``. The paper
  uses 40 × 40 patches (DnCNN-S; 50 × 50 for the blind DnCNN-B), FFDNet 70 × 70 grey / 50 × 50
  colour, batch 128. CPU deviations (defaults): patch 40, batch 16, 300 iterations.
* Degradation at the catalogue's levels, drawn uniformly among ``levels`` for every patch:
  Gaussian noise added as the platform adds it (``ops.add_gaussian_noise``: i.i.d. per pixel
  and channel, stored as 8 bits), fresh each time; JPEG as the platform compresses
  (``ops.jpeg_roundtrip``: Pillow, 4:2:0), the whole image once per quality, patches cut from the
  same place in both. A grey network learns from one RGB channel of the patch (Gaussian: the
  channels are denoised one by one) or from Y (BT.601) for JPEG (``loading.denoise`` does the same).
  FFDNet is told σ for Gaussian noise; it has no JPEG form here (its map is a noise level).

Validation: the references are split *by image*; each held-out image is degraded at every level
(seeded), denoised by ``loading.denoise`` exactly as a distortion would be, and PSNR (RGB, 8-bit,
peak 255, whole image) is measured for the degraded input and for the output, averaged over
held-out images and levels (and reported per level).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from sr_models.denoisers.records import TASKS, DenoiserOptions
from sr_models.inference import rgb_to_ycbcr
from sr_models.training import TrainingError, check_images, split_by_image, torch_threads

__all__ = [
    "DEFAULT_LEVELS",
    "DenoiserTrainConfig",
    "DenoiserTrainResult",
    "TrainingError",
    "check_config",
    "check_images",
    "psnr_rgb",
    "split_by_image",
    "torch_threads",
    "train_denoiser",
]

# The levels of the platform's catalogue: σ of its deep_denoising types (fixtures/distortion_catalogue.csv)
# and the JPEG qualities of its JPEG-removal types.
DEFAULT_LEVELS = {"gaussian": (15.0, 25.0, 35.0, 50.0), "jpeg": (30, 20, 10, 5)}
DECAY_AT = 0.6  # cszn/DnCNN: 30 of 50 epochs at 1e-3, the rest at 1e-4
DECAY_FACTOR = 0.1
BLIND_DNCNN_DEPTH = 20  # DnCNN-B (paper §IV-A)
# Orthogonal initialisation gain. DnCNN: KAIR options/train_dncnn.json ("init_type": "orthogonal",
# "init_gain": 0.2). FFDNet has no global residual and, without BN, must first learn to pass the image
# through: with KAIR's 0.2 a short CPU run measured no gain (its configs run 10^6 iterations), with
# cszn/DnCNN main_train.py's plain init.orthogonal_ (gain 1) it learns in a few hundred.
INIT_GAIN = {"dncnn": 0.2, "ffdnet": 1.0}


@dataclass(frozen=True)
class DenoiserTrainConfig:
    arch: str = "dncnn"  # "dncnn" | "ffdnet"
    channels: int = 3  # 3: an RGB network; 1: a grey one (RGB channels one by one, or Y for JPEG)
    nb: int | None = None  # convolutions; None: the published depth (DnCNN-B 20, FFDNet 15 grey / 12 colour)
    nc: int | None = None  # features; None: the published width (64; FFDNet colour 96)
    task: str = "gaussian"  # "gaussian" | "jpeg"
    levels: tuple[float, ...] = ()  # σ on 0-255 or JPEG qualities; empty: DEFAULT_LEVELS[task]
    iterations: int = 300  # CPU; the papers train for ~50 epochs of 128-patch batches
    batch: int = 16  # papers: 128
    patch: int = 40  # DnCNN-S 40 (DnCNN-B 50; FFDNet 70 grey / 50 colour)
    lr: float = 1e-3  # Adam, then a tenth of it after DECAY_AT of the run
    seed: int = 0
    holdout: float = 0.25  # share of the images kept for validation (at least one, at most all but one)
    batch_norm: bool | None = None  # None: DnCNN with BN (paper, KAIR "BR"), FFDNet without (KAIR "R")
    init_gain: float | None = None  # orthogonal init gain; None: DnCNN 0.2 (KAIR), FFDNet 1.0 (cszn/DnCNN)

    def resolved(self) -> DenoiserTrainConfig:
        """The same settings with the defaults filled in (levels, nb, nc), as a run uses them."""
        from sr_models.denoisers import arch

        levels = tuple(self.levels) or DEFAULT_LEVELS.get(self.task, ())
        key = (self.arch, self.channels)
        nb = self.nb
        if nb is None:
            nb = BLIND_DNCNN_DEPTH if self.arch == "dncnn" else arch.PUBLISHED_DEPTH.get(key, 15)
        nc = self.nc if self.nc is not None else arch.PUBLISHED_WIDTH.get(key, 64)
        if self.task == "jpeg":
            levels = tuple(int(level) for level in levels)
        else:
            levels = tuple(float(level) for level in levels)
        batch_norm = self.batch_norm if self.batch_norm is not None else self.arch == "dncnn"
        init_gain = self.init_gain if self.init_gain is not None else INIT_GAIN[self.arch]
        return replace(self, levels=levels, nb=nb, nc=nc, batch_norm=batch_norm, init_gain=init_gain)

    def options(self) -> DenoiserOptions:
        """What the trained network is: its architecture and what it removes, at which levels."""
        config = self.resolved()
        levels = config.levels
        return DenoiserOptions(
            arch=config.arch,
            channels=config.channels,
            nb=config.nb,
            nc=config.nc,
            tasks=(config.task,),
            blind=config.arch == "dncnn",
            sigma_range=(min(levels), max(levels)) if config.task == "gaussian" else None,
            quality_range=(min(levels), max(levels)) if config.task == "jpeg" else None,
        )

    def as_dict(self) -> dict:
        data = asdict(self)
        data["levels"] = list(self.levels)
        return data


@dataclass
class DenoiserTrainResult:
    state_dict: dict  # name -> CPU tensor, published (BN-merged) layout: loads into options.build()
    options: DenoiserOptions
    config: DenoiserTrainConfig  # resolved
    losses: list[float]  # DnCNN Eq. (1) per iteration, on the [0, 1] scale
    train_indices: list[int]
    validation_indices: list[int]
    psnr_degraded: float  # dB, RGB, mean over held-out images and levels: the network's input
    psnr_denoised: float  # the network's output
    per_level: list[dict] = field(default_factory=list)  # {"level", "degraded", "denoised"} each
    seconds: float = 0.0

    @property
    def gain(self) -> float:
        return self.psnr_denoised - self.psnr_degraded


# --- checks ---------------------------------------------------------------------------------------


def check_config(config: DenoiserTrainConfig) -> None:
    from sr_models.denoisers import arch

    if config.arch not in arch.ARCHS:
        raise TrainingError(f"unknown denoiser architecture {config.arch!r} (known: {', '.join(arch.ARCHS)})")
    if config.task not in TASKS:
        raise TrainingError(f"task must be one of {', '.join(TASKS)}, not {config.task!r}")
    if config.arch == "ffdnet" and config.task == "jpeg":
        raise TrainingError(
            "FFDNet takes a noise level σ as its map: train it on gaussian noise (or use dncnn for jpeg)"
        )
    if config.channels not in (1, 3):
        raise TrainingError(f"channels must be 1 (grey / Y) or 3 (RGB), not {config.channels}")
    resolved = config.resolved()
    if not resolved.levels:
        raise TrainingError("levels must list at least one noise σ or JPEG quality")
    if config.task == "gaussian" and not all(0 < level <= 255 for level in resolved.levels):
        raise TrainingError(
            f"Gaussian σ levels must be within (0, 255] on the 0-255 scale, not {list(resolved.levels)}"
        )
    if config.task == "jpeg" and not all(1 <= level <= 100 for level in resolved.levels):
        raise TrainingError(f"JPEG qualities must be within 1-100, not {list(resolved.levels)}")
    if resolved.nb < 2:
        raise TrainingError(f"nb (convolutions) must be at least 2, not {resolved.nb}")
    for name in ("batch", "iterations", "nc"):
        if getattr(resolved, name) < (0 if name == "iterations" else 1):
            raise TrainingError(f"{name} must be positive, not {getattr(resolved, name)}")
    if config.patch < 8 or (config.arch == "ffdnet" and config.patch % 2):
        raise TrainingError(f"the patch must be at least 8 pixels (and even for FFDNet), not {config.patch}")
    if not config.lr > 0:
        raise TrainingError(f"the learning rate must be positive, not {config.lr}")
    if not 0 < config.holdout < 1:
        raise TrainingError(f"the validation share must be between 0 and 1, not {config.holdout}")


# --- data -----------------------------------------------------------------------------------------


def degrade(image: np.ndarray, task: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """The platform's own degradation: 8-bit Gaussian noise of σ = level, or a JPEG round trip."""
    from sr_models.distortions import ops

    if task == "gaussian":
        return ops.add_gaussian_noise(image, float(level), rng)
    return ops.jpeg_roundtrip(image, int(level))


def _augment(patch: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flips/rotations (cszn/DnCNN data_generator.py data_aug, modes 0-7)."""
    if mode >= 4:
        patch = patch[::-1]
    return np.rot90(patch, k=mode % 4)


def _planes(image: np.ndarray, channels: int, task: str, channel: int) -> np.ndarray:
    """HxWxC float32 in [0, 1]: RGB, Y (BT.601) for a grey JPEG network, or one RGB channel."""
    rgb = image.astype(np.float64) / 255.0
    if channels == 3:
        return rgb.astype(np.float32)
    if task == "jpeg":
        return rgb_to_ycbcr(rgb)[..., :1].astype(np.float32)
    return rgb[..., channel : channel + 1].astype(np.float32)


def sample_batch(
    images: Sequence[np.ndarray],
    degraded: dict[tuple[int, int], np.ndarray],
    config: DenoiserTrainConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(degraded, clean, σ/255) for a batch: float32 NCHW in [0, 1] and N levels (0 for JPEG).
    ``degraded`` holds the JPEG round trips by (image, level index); noise is drawn here."""
    inputs, targets, sigmas = [], [], []
    size = config.patch
    for _ in range(config.batch):
        index = int(rng.integers(len(images)))
        image = images[index]
        level_index = int(rng.integers(len(config.levels)))
        level = config.levels[level_index]
        top = int(rng.integers(image.shape[0] - size + 1))
        left = int(rng.integers(image.shape[1] - size + 1))
        mode = int(rng.integers(8))
        channel = int(rng.integers(3))
        clean = _augment(image[top : top + size, left : left + size], mode)
        if config.task == "gaussian":
            noisy = degrade(np.ascontiguousarray(clean), "gaussian", level, rng)
            sigmas.append(level / 255.0)
        else:
            noisy = _augment(degraded[index, level_index][top : top + size, left : left + size], mode)
            sigmas.append(0.0)
        inputs.append(_planes(noisy, config.channels, config.task, channel))
        targets.append(_planes(clean, config.channels, config.task, channel))

    def stack(planes):
        return np.ascontiguousarray(np.stack(planes).transpose(0, 3, 1, 2), dtype=np.float32)

    return stack(inputs), stack(targets), np.asarray(sigmas, dtype=np.float32)


# --- evaluation -----------------------------------------------------------------------------------


def psnr_rgb(reference: np.ndarray, image: np.ndarray) -> float:
    """PSNR (dB) of two uint8 RGB images over every pixel and channel, peak 255."""
    if reference.shape != image.shape:
        raise TrainingError(f"PSNR of images of different sizes: {reference.shape} and {image.shape}")
    mse = float(np.mean((reference.astype(np.float64) - image.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def evaluate(
    loaded, images: Sequence[np.ndarray], config: DenoiserTrainConfig, image_ids: Sequence[int]
) -> tuple[float, float, list[dict]]:
    """Mean PSNR of the degraded inputs and of the outputs over ``images`` and every level (seeded
    by the run's seed, the image's position and the level's), and per level."""
    from sr_models.denoisers.loading import denoise

    per_level = []
    for level_index, level in enumerate(config.levels):
        degraded_values, denoised_values = [], []
        for image, image_id in zip(images, image_ids, strict=True):
            rng = np.random.default_rng([config.seed, image_id, level_index])
            degraded = degrade(image, config.task, level, rng)
            sigma = float(level) if config.task == "gaussian" else None
            output = denoise(loaded, degraded, sigma=sigma, task=config.task)
            degraded_values.append(psnr_rgb(image, degraded))
            denoised_values.append(psnr_rgb(image, output))
        per_level.append(
            {"level": level, "degraded": float(np.mean(degraded_values)), "denoised": float(np.mean(denoised_values))}
        )
    return (
        float(np.mean([entry["degraded"] for entry in per_level])),
        float(np.mean([entry["denoised"] for entry in per_level])),
        per_level,
    )


# --- training -------------------------------------------------------------------------------------


def init_weights(model, gain: float) -> None:
    """Orthogonal convolution weights scaled by ``gain``, zero biases, BN γ = 1, β = 0 (cszn/DnCNN
    main_train.py ``_initialize_weights``; KAIR's gain, see INIT_GAIN)."""
    import torch
    from torch import nn

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.orthogonal_(module.weight, gain=gain)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


def train_denoiser(
    images: Sequence[np.ndarray],
    config: DenoiserTrainConfig | None = None,
    progress: Callable[[int, float], None] | None = None,
    *,
    names: Sequence[str] | None = None,
) -> DenoiserTrainResult:
    """Train a DnCNN or FFDNet on patches of some images, degraded at ``config.levels``; measure PSNR
    of the degraded and the denoised held-out images. Deterministic for a seed (and thread count) on
    the CPU. ``progress(iteration, loss)`` is called after every step (1-based)."""
    import torch

    from sr_models.denoisers import arch
    from sr_models.denoisers.loading import LoadedDenoiser

    config = config or DenoiserTrainConfig()
    check_config(config)
    config = config.resolved()
    check_images(images, config, names)
    options = config.options()
    started = time.perf_counter()
    train_idx, val_idx = split_by_image(len(images), config.holdout, config.seed)
    train_images = [images[i] for i in train_idx]
    degraded = {}
    if config.task == "jpeg":  # the whole image once per quality, as the platform compresses it
        for position, image in enumerate(train_images):
            for level_index, level in enumerate(config.levels):
                degraded[position, level_index] = degrade(image, "jpeg", level, np.random.default_rng(0))

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = options.build(batch_norm=config.batch_norm)
    init_weights(model, config.init_gain)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=[max(1, round(DECAY_AT * config.iterations))], gamma=DECAY_FACTOR
    )
    losses: list[float] = []
    for iteration in range(1, config.iterations + 1):
        inputs, targets, sigmas = sample_batch(train_images, degraded, config, rng)
        noisy, clean = torch.from_numpy(inputs), torch.from_numpy(targets)
        optimizer.zero_grad(set_to_none=True)
        output = model(noisy, torch.from_numpy(sigmas)) if options.takes_sigma else model(noisy)
        # DnCNN Eq. (1): 1/(2N) Σ‖R(y) − (y − x)‖² = 1/(2N) Σ‖x̂ − x‖² with x̂ = y − R(y).
        loss = 0.5 * torch.sum((output - clean) ** 2) / noisy.shape[0]
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(iteration, losses[-1])

    model.eval()
    network = arch.fold_batch_norm(model) if config.batch_norm else model
    state = {key: value.detach().cpu().clone() for key, value in network.state_dict().items()}
    loaded = LoadedDenoiser(name="(training run)", options=options, model=network, provenance={})
    psnr_degraded, psnr_denoised, per_level = evaluate(loaded, [images[i] for i in val_idx], config, val_idx)
    return DenoiserTrainResult(
        state_dict=state,
        options=options,
        config=config,
        losses=losses,
        train_indices=train_idx,
        validation_indices=val_idx,
        psnr_degraded=psnr_degraded,
        psnr_denoised=psnr_denoised,
        per_level=per_level,
        seconds=time.perf_counter() - started,
    )
