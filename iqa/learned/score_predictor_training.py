"""4PP-EUSR's score predictor: targets, loss, pretrained backbone, training and evaluation (no Django).

The network is in ``score_predictor_arch``, whose docstring describes the recipe.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from core.weights import WeightsError, file_sha256, read_state
from iqa.learned.official import MOBILENET_V2, Backbone
from iqa.learned.score_predictor_arch import (
    ADAM_BETAS,
    ADAM_EPS,
    BINS,
    INPUT_NORMS,
    MIN_CROP,
    SCORES,
    TARGETS,
    ScorePredictor,
    build,
    center_crop,
    mean_score,
)
from iqa.learned.training import TrainingError, TrainingRun

# The pretrained choices of --backbone: torchvision's ImageNet files (records in iqa.learned.official).
BACKBONES: dict[str, Backbone] = dict(MOBILENET_V2)
BACKBONE_CHOICES = ("scratch", *BACKBONES)


class BackboneMissing(TrainingError):
    """``--backbone pretrained`` without the torchvision file in the weights directory."""

# --- loss and targets -----------------------------------------------------------------------------


def squared_emd(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """003 Eq. 1 per row: Σ_i (CDF_predicted(i) − CDF_target(i))², i over the bins. (N, B) x (N, B) -> (N,)."""
    return ((predicted.cumsum(-1) - target.cumsum(-1)) ** 2).sum(-1)


def gaussian_target(mean: float, sigma: float, bins: int = BINS) -> np.ndarray:
    """A Gaussian at the bin centres 1..bins, normalised to sum 1 (float64)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, not {sigma}")
    centres = np.arange(1, bins + 1, dtype=np.float64)
    weights = np.exp(-0.5 * ((centres - mean) / sigma) ** 2)
    return weights / weights.sum()


@dataclass(frozen=True)
class Target:
    name: str
    reference: str
    mos: float
    mean: float  # on 1..10
    sigma: float  # in bins, after the floor
    elo_std: float  # population std of recent_elo, Elo points


def mos_targets(items: Sequence, *, sigma_floor: float = 0.5) -> tuple[list[Target], list[str]]:
    """(targets in the order of ``items``, skipped reference names). Items need ``name``, ``reference``,
    ``mos`` and ``recent_elo`` (``iqa.learned_data.MosImage``); an item's ``mos_std``, when set (imported
    labels with a published standard deviation), is its uncertainty instead of the Elo values' spread."""
    if not sigma_floor > 0:
        raise TrainingError(f"sigma_floor must be positive, not {sigma_floor}")
    by_reference: dict[str, list] = defaultdict(list)
    for item in items:
        by_reference[item.reference].append(item)
    ranges, skipped = {}, []
    for reference, members in sorted(by_reference.items()):
        values = [float(member.mos) for member in members]
        if len(members) < 2 or max(values) == min(values):
            skipped.append(reference)
        else:
            ranges[reference] = (min(values), max(values))
    span = SCORES[1] - SCORES[0]
    targets = []
    for item in items:
        if item.reference not in ranges:
            continue
        low, high = ranges[item.reference]
        scale = span / (high - low)
        published = getattr(item, "mos_std", None)  # a labelled dataset's own std (as 4PP-EUSR used TID2013's)
        if published is not None:
            elo_std = float(published)
        else:
            elo_std = float(np.std(item.recent_elo)) if len(item.recent_elo) > 1 else 0.0
        targets.append(
            Target(
                name=item.name,
                reference=item.reference,
                mos=float(item.mos),
                mean=SCORES[0] + (float(item.mos) - low) * scale,
                sigma=max(sigma_floor, elo_std * scale),
                elo_std=elo_std,
            )
        )
    return targets, skipped


# --- pretrained backbone --------------------------------------------------------------------------


def backbone_state(choice: str, weights_dir: Path) -> tuple[dict | None, dict]:
    """(``features.*`` state dict or None, a record of where the initial weights came from).

    ``scratch``: None (torch's random initialisation, recorded as such). A pretrained choice reads
    torchvision's file from ``weights_dir`` only — never a download, never random weights in its place."""
    if choice == "scratch":
        return None, {"init": "scratch", "note": "random initial weights (torchvision's initialisation), no ImageNet"}
    if choice not in BACKBONES:
        raise TrainingError(f"--backbone must be one of {', '.join(BACKBONE_CHOICES)}, not {choice!r}")
    backbone = BACKBONES[choice]
    path = Path(weights_dir) / backbone.file
    if not path.is_file():
        raise BackboneMissing(
            f"--backbone {choice}: {backbone.file} (torchvision MobileNet_V2_Weights.{backbone.weights}, ImageNet) "
            f"is not in {weights_dir} (PIPAL_WEIGHTS_DIR). Get it from {backbone.url} and run: "
            f"python manage.py import_weights /path/to/{backbone.file} — or train with --backbone scratch "
            "(random initial weights, recorded as such)"
        )
    sha256 = file_sha256(path)
    if not sha256.startswith(backbone.hash_prefix):
        raise TrainingError(
            f"{path}: its SHA-256 starts {sha256[:8]}, not {backbone.hash_prefix} as torchvision's name says; "
            f"a damaged copy? Get it again from {backbone.url}"
        )
    try:
        state = read_state(path)  # weights_only
    except WeightsError as error:
        raise TrainingError(f"{path} is not a readable torch checkpoint: {error}") from None
    features = {key[len("features.") :]: value for key, value in state.items() if key.startswith("features.")}
    others = sorted(key for key in state if not key.startswith("features.") and not key.startswith("classifier."))
    if others or not features:
        raise TrainingError(f"{path} does not hold torchvision's MobileNetV2 keys (unexpected: {others[:5]})")
    record = {"init": backbone.weights, "file": backbone.file, "url": backbone.url, "sha256": sha256}
    return features, record


# --- training -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Every hyper-parameter that changes the result (a resume must repeat them; only ``iterations`` may grow)."""

    iterations: int = 8000  # phase 2 steps: ≈100 epochs of TID2013's 2,640 training images at batch 32
    head_iterations: int = 2000  # phase 1 steps: ≈100 epochs at batch 128
    batch: int = 32
    head_batch: int = 128
    lr: float = 1e-5
    head_lr: float = 1e-3
    adam_eps: float = ADAM_EPS
    crop: int = 192
    dropout: float = 0.75
    input_norm: str = "paper"
    backbone: str = "scratch"
    sigma_floor: float = 0.5
    holdout: float = 0.2
    seed: int = 0

    def as_dict(self) -> dict:
        return {**asdict(self), "adam_betas": list(ADAM_BETAS), "targets": TARGETS}

    def check(self) -> None:
        problems = []
        if self.iterations < 0 or self.head_iterations < 0 or self.iterations + self.head_iterations < 1:
            problems.append("--iterations and --head-iterations must be 0 or more, and not both 0")
        if self.batch < 2 or self.head_batch < 1:
            problems.append("--batch must be at least 2 (BatchNorm trains in phase 2) and --head-batch at least 1")
        if not (self.lr > 0 and self.head_lr > 0 and self.adam_eps > 0):
            problems.append("learning rates and Adam's epsilon must be positive")
        if self.crop < MIN_CROP:
            problems.append(f"--crop must be at least {MIN_CROP} (MobileNetV2 downsamples 32 times)")
        if not 0 <= self.dropout < 1:
            problems.append(f"--dropout must be in [0, 1), not {self.dropout}")
        if self.input_norm not in INPUT_NORMS:
            problems.append(f"--input-norm must be one of {', '.join(INPUT_NORMS)}")
        if self.backbone not in BACKBONE_CHOICES:
            problems.append(f"--backbone must be one of {', '.join(BACKBONE_CHOICES)}")
        if not self.sigma_floor > 0:
            problems.append("--sigma-floor must be positive")
        if problems:
            raise TrainingError("; ".join(problems))


@dataclass(frozen=True)
class Sample:
    """One training or validation image: where it is, its size, its MOS and its Gaussian target."""

    name: str
    path: str
    reference: str
    width: int
    height: int
    mos: float
    mean: float
    sigma: float


def run_settings(settings: Settings, backbone: dict) -> dict:
    """The run's recorded settings: the hyper-parameters and the SHA-256 of a pretrained backbone file."""
    return {**settings.as_dict(), "backbone_sha256": backbone.get("sha256")}


def model_config(settings: Settings, backbone: dict) -> dict:
    return {
        "arch": "mobilenet_v2",
        "width_mult": 1.0,
        "bins": BINS,
        "dropout": settings.dropout,
        "crop": settings.crop,
        "input_norm": settings.input_norm,
        "backbone": backbone,
        "score": "mean of the predicted distribution over bins 1..10, on the centre crop",
    }


class ImageCache:
    """uint8 HxWx3 arrays by path, read with ``read`` and kept up to ``max_bytes`` (least recently used out)."""

    def __init__(self, read: Callable[[str], np.ndarray], max_bytes: int = 1 << 30):
        self.read, self.max_bytes, self.bytes = read, max_bytes, 0
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, path: str) -> np.ndarray:
        if path in self._kept:
            self._kept.move_to_end(path)
            return self._kept[path]
        pixels = self.read(path)
        self._kept[path] = pixels
        self.bytes += pixels.nbytes
        while self.bytes > self.max_bytes and len(self._kept) > 1:
            self.bytes -= self._kept.popitem(last=False)[1].nbytes
        return pixels


def check_sizes(samples: Sequence[Sample], crop: int) -> None:
    small = [s for s in samples if min(s.width, s.height) < crop]
    if small:
        first = small[0]
        raise TrainingError(
            f"{len(small)} image(s) smaller than the {crop}x{crop} crop, e.g. {first.name} ({first.width}x"
            f"{first.height}): lower --crop (the paper crops, it never rescales or pads)"
        )


def to_tensor(crops: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 HxWx3 crops -> (N, 3, H, W) float32 in [0, 1]."""
    stacked = torch.from_numpy(np.stack(crops))
    return stacked.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def sample_batch(
    samples: Sequence[Sample], images: Callable[[str], np.ndarray], crop: int, size: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` images (distinct when there are enough), a random crop of each, and their targets."""
    chosen = rng.choice(len(samples), size=size, replace=len(samples) < size)
    crops, targets = [], []
    for index in chosen:
        sample = samples[int(index)]
        pixels = images(sample.path)
        top = int(rng.integers(0, pixels.shape[0] - crop + 1))
        left = int(rng.integers(0, pixels.shape[1] - crop + 1))
        crops.append(pixels[top : top + crop, left : left + crop])
        targets.append(gaussian_target(sample.mean, sample.sigma))
    return to_tensor(crops), torch.from_numpy(np.stack(targets)).float()


class Optimizers:
    """Phase 1's Adam (the new layer) and phase 2's (everything), checkpointed as one."""

    def __init__(self, model: ScorePredictor, settings: Settings):
        common = {"betas": ADAM_BETAS, "eps": settings.adam_eps}
        self.head = torch.optim.Adam(model.classifier.parameters(), lr=settings.head_lr, **common)
        self.all = torch.optim.Adam(model.parameters(), lr=settings.lr, **common)

    def state_dict(self) -> dict:
        return {"head": self.head.state_dict(), "all": self.all.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.head.load_state_dict(state["head"])
        self.all.load_state_dict(state["all"])


def train_step(model: ScorePredictor, optimizers: Optimizers, phase: str, x: torch.Tensor, target: torch.Tensor):
    """One optimiser step; returns the batch's mean squared EMD before the step."""
    if phase == "head":
        model.eval()  # frozen backbone: BatchNorm keeps its statistics
        model.classifier.train()
        with torch.no_grad():
            pooled = model.representation(x)
        predicted, optimizer = model.head(pooled), optimizers.head
    else:
        model.train()
        predicted, optimizer = model(x), optimizers.all
    loss = squared_emd(predicted, target).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def evaluate(
    model: ScorePredictor, samples: Sequence[Sample], images: Callable[[str], np.ndarray], batch: int = 32
) -> dict:
    """Held-out figures on centre crops: SRCC/KRCC vs MOS (pooled, per-reference mean) and the squared EMD."""
    from scipy.stats import ConstantInputWarning

    from iqa.correlation import rank_agreement

    model.eval()
    predicted, distances = [], []
    for start in range(0, len(samples), batch):
        chunk = samples[start : start + batch]
        x = to_tensor([_center(images(sample.path), model.crop) for sample in chunk])
        probabilities = model(center_crop(x, model.crop))  # as_metric's computation, keeping the distribution
        targets = torch.from_numpy(np.stack([gaussian_target(s.mean, s.sigma) for s in chunk])).float()
        distances += squared_emd(probabilities, targets).tolist()
        predicted += mean_score(probabilities).tolist()
    mos = [sample.mos for sample in samples]
    with warnings.catch_warnings():  # a constant prediction (an untrained net) has no rank correlation: None
        warnings.simplefilter("ignore", ConstantInputWarning)
        agreement = rank_agreement(predicted, mos, [sample.reference for sample in samples])
    return {
        "srcc": _finite(agreement.srcc),
        "krcc": _finite(agreement.krcc),
        "srcc_per_reference": _finite(agreement.srcc_per_group),
        "krcc_per_reference": _finite(agreement.krcc_per_group),
        "references_in_per_reference_mean": agreement.groups,
        "images": agreement.n,
        "references": len({sample.reference for sample in samples}),
        "squared_emd": float(np.mean(distances)),
        "predicted_score_range": [min(predicted), max(predicted)],
        "protocol": "centre crop, predicted mean score vs Elo MOS; per-reference mean over references with >= 3 images",
    }


def _center(pixels: np.ndarray, crop: int) -> np.ndarray:
    top, left = max(0, (pixels.shape[0] - crop) // 2), max(0, (pixels.shape[1] - crop) // 2)
    return pixels[top : top + crop, left : left + crop]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass
class TrainResult:
    model: ScorePredictor
    results: dict
    sha256: str
    steps_before: int  # steps a resumed run found done


def train(
    *,
    train_samples: Sequence[Sample],
    validation_samples: Sequence[Sample],
    settings: Settings,
    run: TrainingRun,
    read: Callable[[str], np.ndarray],
    backbone: tuple[dict | None, dict] = (None, {"init": "scratch"}),
    metric_description: str = "",
    progress: Callable[[int, int, str, float], None] | None = None,
    checkpoint_every: int = 100,
) -> TrainResult:
    """Run (or resume) the two phases, checkpoint, evaluate on the held-out references and finish the run."""
    settings.check()
    check_sizes([*train_samples, *validation_samples], settings.crop)
    if not train_samples or not validation_samples:
        raise TrainingError("training needs images on both sides of the split")
    features, backbone_record = backbone
    torch.manual_seed(settings.seed)
    model = build(model_config(settings, backbone_record))
    if features is not None:
        try:
            model.features.load_state_dict(features, strict=True)
        except RuntimeError as error:
            file = backbone_record.get("file")
            raise TrainingError(f"the {file} backbone does not fit MobileNetV2: {error}") from None
    optimizers = Optimizers(model, settings)
    rng = np.random.default_rng([settings.seed, 1])
    done = run.restore(model, optimizers, None, rng)
    total = settings.head_iterations + settings.iterations
    if done > total:
        raise TrainingError(f"{run.name} has done {done} steps already, more than the {total} asked for")
    run.start()
    images = ImageCache(read)
    for step in range(done + 1, total + 1):
        phase = "head" if step <= settings.head_iterations else "all"
        size = settings.head_batch if phase == "head" else settings.batch
        x, target = sample_batch(train_samples, images, settings.crop, size, rng)
        loss = train_step(model, optimizers, phase, x, target)
        run.history.append({"step": step, "phase": phase, "loss": loss})
        if progress:
            progress(step, total, phase, loss)
        if step % checkpoint_every == 0 or step == total:
            run.checkpoint(step, model, optimizers, None, rng)
    model.eval()
    validation = evaluate(model, validation_samples, images)
    losses = [entry["loss"] for entry in run.history]
    results = {
        "validation": validation,
        "steps": total,
        "train_loss_first": losses[0] if losses else None,
        "train_loss_last10": float(np.mean(losses[-10:])) if losses else None,
    }
    sha256 = run.finish(
        config=model_config(settings, backbone_record),
        state_dict=model.state_dict(),
        results=results,
        metric={"higher_is_better": True, "full_reference": False, "description": metric_description},
    )
    return TrainResult(model=model, results=results, sha256=sha256, steps_before=done)
