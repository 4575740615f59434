"""LPIPS-Alex training on 2AFC triplets (LPIPS's recipe) and its evaluation (no Django here).

The network is in ``lpips_arch``; the recipe is described there and in PIPAL Sec. 4.3.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from iqa.learned.lpips_arch import (
    BACKBONES,
    LPIPS,
    POOLINGS,
    RankingHead,
    build,
    smallest_side,
)
from iqa.learned.training import TrainingError, TrainingRun

# --- training ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    pooling: str = "max"
    backbone: str = "pretrained"  # or "scratch"
    tune: bool = False  # also train the (pretrained) trunk
    blur_size: int = 4
    iterations: int = 1000
    batch: int = 50  # LPIPS train.py --batch_size 50
    patch: int = 64  # BAPPS patches are 64x64
    lr: float = 1e-4  # LPIPS train.py --lr 0.0001
    beta1: float = 0.5  # LPIPS train.py --beta1 0.5
    seed: int = 0
    holdout: float = 0.2
    checkpoint_every: int = 100

    def as_dict(self) -> dict:
        return asdict(self)

    def network_config(self) -> dict:
        return {"pooling": self.pooling, "blur_size": self.blur_size}


def check_settings(settings: Settings) -> None:
    problems = []
    if settings.pooling not in POOLINGS:
        problems.append(f"pooling {settings.pooling!r} (known: {', '.join(POOLINGS)})")
    if settings.backbone not in BACKBONES:
        problems.append(f"backbone {settings.backbone!r} (known: {', '.join(BACKBONES)})")
    if settings.tune and settings.backbone == "scratch":
        problems.append("--tune applies to a pretrained backbone (scratch trains the whole network anyway)")
    for name in ("iterations", "batch", "checkpoint_every"):
        if getattr(settings, name) < 1:
            problems.append(f"{name} must be at least 1")
    if settings.pooling in POOLINGS and 1 <= settings.blur_size <= 7:
        minimum = smallest_side(settings.pooling, settings.blur_size)
        if settings.patch < minimum:
            blur = f", blur size {settings.blur_size}" if settings.pooling == "blurpool" else ""
            problems.append(
                f"patch {settings.patch} is too small for LPIPS-Alex with {settings.pooling} pooling{blur}: "
                f"its feature maps need at least {minimum} pixels a side (--patch {minimum} or more)"
            )
    if settings.lr <= 0:
        problems.append("lr must be positive")
    if not 1 <= settings.blur_size <= 7:
        problems.append(f"blur size {settings.blur_size}: use 1 to 7")
    if problems:
        raise TrainingError("; ".join(problems))


@dataclass(frozen=True)
class TrainTriplet:
    reference: int  # indices into the image list
    p0: int
    p1: int
    judge: float  # share of votes for p1
    votes: int = 1


@dataclass
class Evaluation:
    two_afc: float  # BAPPS 2AFC score: mean of judge where the model prefers p1, 1 - judge where p0, 0.5 on ties
    triplets: int
    srcc: float  # signed (distance vs MOS, so agreement is positive), pooled over images
    krcc: float
    srcc_per_reference: float  # mean SRCC within references (MOS is identified only within one: SPEC §6)
    images: int

    def as_dict(self) -> dict:
        return {key: (None if isinstance(value, float) and math.isnan(value) else value)
                for key, value in asdict(self).items()}


@dataclass
class Result:
    state_dict: dict
    before: Evaluation
    after: Evaluation
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def _as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)


def _crop_batch(images, triplets, rng: np.random.Generator, patch: int):
    refs, p0s, p1s = [], [], []
    for triplet in triplets:
        reference, first, second = images[triplet.reference], images[triplet.p0], images[triplet.p1]
        height = min(reference.shape[0], first.shape[0], second.shape[0])
        width = min(reference.shape[1], first.shape[1], second.shape[1])
        size_y, size_x = min(patch, height), min(patch, width)
        y, x = int(rng.integers(0, height - size_y + 1)), int(rng.integers(0, width - size_x + 1))
        for source, target in ((reference, refs), (first, p0s), (second, p1s)):
            target.append(_as_tensor(source[y : y + size_y, x : x + size_x]))
    return torch.stack(refs), torch.stack(p0s), torch.stack(p1s)


@torch.inference_mode()
def image_distances(network: LPIPS, images, pairs: Sequence[tuple[int, int]], batch: int = 8) -> list[float]:
    """LPIPS of (image, reference) index pairs over whole images, grouped by reference."""
    was_training = network.training
    network.eval()
    values = [math.nan] * len(pairs)
    by_reference: dict[int, list[int]] = {}
    for position, (_, reference) in enumerate(pairs):
        by_reference.setdefault(reference, []).append(position)
    for reference, positions in by_reference.items():
        ref = _as_tensor(images[reference])[None]
        for start in range(0, len(positions), batch):
            chunk = positions[start : start + batch]
            batch_images = torch.stack([_as_tensor(images[pairs[p][0]]) for p in chunk])
            distances = network(batch_images, ref.expand(len(chunk), -1, -1, -1))
            for p, value in zip(chunk, distances.tolist(), strict=True):
                values[p] = value
    network.train(was_training)
    return values


def evaluate(network: LPIPS, images, triplets: Sequence[TrainTriplet], mos: dict[int, float],
             reference_of: dict[int, int]) -> Evaluation:
    """2AFC score on ``triplets`` and SRCC/KRCC of distance vs MOS over the ``mos`` images."""
    from iqa.correlation import rank_agreement

    needed = sorted({t.p0 for t in triplets} | {t.p1 for t in triplets} | set(mos))
    pairs = [(image, reference_of[image]) for image in needed]
    distance = dict(zip(needed, image_distances(network, images, pairs), strict=True))
    scores = []
    for t in triplets:
        d0, d1 = distance[t.p0], distance[t.p1]
        scores.append(t.judge if d1 < d0 else 1 - t.judge if d0 < d1 else 0.5)
    two_afc = float(np.mean(scores)) if scores else math.nan
    rated = sorted(mos)
    srcc = krcc = per_reference = math.nan
    values = np.array([-distance[i] for i in rated])  # lower distance = more similar: sign so agreement > 0
    targets = np.array([mos[i] for i in rated])
    if len(rated) >= 3 and np.ptp(values) > 0 and np.ptp(targets) > 0:
        agreement = rank_agreement(values, targets, [reference_of[i] for i in rated])
        srcc, krcc, per_reference = agreement.srcc, agreement.krcc, agreement.srcc_per_group
    return Evaluation(two_afc, len(scores), srcc, krcc, per_reference, len(rated))


def learning_rate(settings: Settings, step: int) -> float:
    """Constant for the first half, then linear decay to 0 (LPIPS: nepoch 5 + nepoch_decay 5)."""
    half = settings.iterations / 2
    if step < half:
        return settings.lr
    return settings.lr * max(0.0, (settings.iterations - step) / (settings.iterations - half))


def train(
    images: Sequence[np.ndarray],
    train_triplets: Sequence[TrainTriplet],
    validation_triplets: Sequence[TrainTriplet],
    validation_mos: dict[int, float],
    reference_of: dict[int, int],
    settings: Settings,
    run: TrainingRun,
    *,
    trunk: dict | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> Result:
    """Train LPIPS on 2AFC triplets of HxWx3 uint8 ``images`` (indices into it); checkpoint into ``run``.

    ``trunk``: AlexNet ``features.*`` weights for ``backbone="pretrained"``. Deterministic for a seed on
    CPU, and a resumed run continues exactly where the last checkpoint stopped."""
    check_settings(settings)
    if not train_triplets:
        raise TrainingError("no judged pair among the training references: nothing to learn from")
    if settings.backbone == "pretrained" and trunk is None:
        raise TrainingError("backbone pretrained needs AlexNet's ImageNet weights (or use --backbone scratch)")
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    network = build(settings.network_config())
    if trunk is not None and settings.backbone == "pretrained":
        network.load_state_dict(trunk, strict=False)
    head = RankingHead()
    model = nn.ModuleDict({"lpips": network, "head": head})
    train_trunk = settings.backbone == "scratch" or settings.tune
    for parameter in network.features.parameters():
        parameter.requires_grad_(train_trunk)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=settings.lr, betas=(settings.beta1, 0.999))
    network.clamp_lins()

    before = evaluate(network, images, validation_triplets, validation_mos, reference_of)
    done = run.restore(model, optimizer, rng=rng)
    run.start()
    losses = [entry["loss"] for entry in run.history]
    model.train()
    if not train_trunk:
        network.features.eval()  # frozen trunk (no BN or dropout in it either way)
    for step in range(done, settings.iterations):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(settings, step)
        chosen = rng.integers(0, len(train_triplets), settings.batch)
        batch = [train_triplets[i] for i in chosen]
        refs, p0s, p1s = _crop_batch(images, batch, rng, settings.patch)
        judge = torch.tensor([t.judge for t in batch], dtype=torch.float32)
        optimizer.zero_grad(set_to_none=True)
        reference_taps = network.taps(refs)
        d0 = network.distance(network.taps(p0s), reference_taps)
        d1 = network.distance(network.taps(p1s), reference_taps)
        loss = F.binary_cross_entropy_with_logits(head(d0, d1), judge)
        loss.backward()
        optimizer.step()
        network.clamp_lins()
        losses.append(float(loss.detach()))
        run.history.append({"step": step + 1, "loss": losses[-1]})
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == settings.iterations:
            run.checkpoint(step + 1, model, optimizer, rng=rng)
        if progress is not None:
            progress(step + 1, losses[-1])
    after = evaluate(network, images, validation_triplets, validation_mos, reference_of)
    state = {key: value.detach().cpu().clone() for key, value in network.state_dict().items()}
    return Result(state, before, after, losses, time.perf_counter() - started, settings.iterations - done)


# --- shift consistency (Zhang 2019) ---------------------------------------------------------------


@torch.inference_mode()
def shift_sensitivity(network: LPIPS, images: Sequence[torch.Tensor], size: int, shifts=(1, 2, 3, 4)) -> float:
    """How far an image moves under a small shift, in units of the distance between different images.

    For each (3, H, W) image x in [0, 1], the ``size`` x ``size`` crop at (0, 0) is compared with the
    crop shifted right by k pixels (the same picture, k pixels later), and with the crop of
    another image of the set: mean d(x, shift_k x) / mean d(x, other image). Dividing by the
    variant's own distance between different images makes variants with other distance scales
    comparable; a shift-invariant network scores 0."""
    if len(images) < 2:
        raise ValueError("shift sensitivity needs at least two images (the second sets the distance scale)")
    widest = max(shifts)
    if any(img.shape[-1] < size + widest or img.shape[-2] < size for img in images):
        raise ValueError(f"every image must be at least {size + widest}x{size} pixels")
    network.eval()
    base = torch.stack([img[:, :size, :size] for img in images])
    other = torch.roll(base, 1, dims=0)
    scale = network(other, base).mean()
    moved = torch.stack([network(torch.stack([img[:, :size, k : k + size] for img in images]), base)
                         for k in shifts]).mean()
    return float(moved / scale)
