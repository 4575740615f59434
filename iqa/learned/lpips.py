"""LPIPS-Alex with max, BlurPool or L2 pooling, and its 2AFC training (no Django here).

The network is LPIPS v0.1 (Zhang et al. 2018, richzhang/PerceptualSimilarity;
SPEC §5): inputs in [0, 1] go to [-1, 1], through the scaling layer, through
AlexNet's ``features`` up to relu5 (taps relu1..relu5: 64/192/384/256/256
channels); each tap is unit-normalised over channels, the squared difference
is weighted by a non-negative 1x1 conv ``lin{k}``, averaged over space and
summed over taps. Lower is more similar.

PIPAL Sec. 4.3 (Table 5) replaces AlexNet's two max-pooling layers inside
LPIPS with anti-aliased ones:

* ``max`` — MaxPool(3, stride 2), the baseline;
* ``blurpool`` — MaxPool(3, stride 1), then a binomial low-pass and stride-2
  subsampling (Zhang 2019, adobe/antialiased-cnns ``BlurPool``: filter size 4 =
  [1, 3, 3, 1], their default, reflect padding);
* ``l2`` — L2 pooling: sqrt of a 3x3 Hanning low-pass ([0.5, 1, 0.5]^T [0.5, 1, 0.5],
  normalised) of the squared features, stride 2, padding 1 (Ding et al. 2020, DISTS).

The pooling layers hold no weights, so one state dict loads into every variant:
"the same weights" with another pooling. The first convolution keeps its
stride of 4 in every variant: PIPAL does not say it blurred it (SPEC §5) and
LPIPS's official weights assume it.

Training (``train``) follows LPIPS's 2AFC recipe (``lpips/trainer.py``): a small
head G maps (d0, d1) to the probability that p1 is the closer image, trained
with binary cross-entropy against the share of raters who chose p1; Adam,
lr 1e-4, beta1 0.5; the rate constant for the first half of the run and
decaying linearly to 0 over the second (LPIPS: 5 + 5 epochs); ``lin`` weights
clamped to >= 0 after every step. BAPPS trains on 64x64 patches: we take
aligned random 64x64 crops of (reference, p0, p1). ``lin``-only training over a
frozen ImageNet AlexNet is LPIPS's "lin" mode, ``tune`` also trains the trunk,
``scratch`` starts the trunk from random weights and trains everything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from iqa.learned.training import TrainingError, TrainingRun

KIND = "lpips"
POOLINGS = ("max", "blurpool", "l2")
BACKBONES = ("pretrained", "scratch")
CHANNELS = (64, 192, 384, 256, 256)  # relu1..relu5 of AlexNet
# The torchvision AlexNet file LPIPS's trunk comes from (ImageNet weights; name ends in its SHA-256 prefix).
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_FILE}"
# LPIPS v0.1 "alex" lin weights: pip lpips ships weights/v0.1/alex.pth; pyiqa mirrors it under this name.
LIN_FILES = ("LPIPS_v0.1_alex-df73285e.pth", "alex.pth")
LIN_URL = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/LPIPS_v0.1_alex-df73285e.pth"
# LPIPS v0.1 scaling layer (ScalingLayer in lpips/pretrained_networks.py)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NORM_EPS = 1e-10  # lpips normalize_tensor
HEAD_EPS = 0.1  # lpips Dist2LogitLayer
HEAD_CHANNELS = 32  # lpips BCERankingLoss(chn_mid=32)


def binomial(size: int) -> torch.Tensor:
    """Row ``size - 1`` of Pascal's triangle: [1, 2, 1], [1, 3, 3, 1], [1, 4, 6, 4, 1], …"""
    return torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float32)


class BlurPool(nn.Module):
    """Low-pass with a normalised binomial filter, then keep every ``stride``-th pixel (antialiased-cnns)."""

    def __init__(self, channels: int, size: int = 4, stride: int = 2):
        super().__init__()
        if size < 1:
            raise ValueError(f"blur filter size must be at least 1, not {size}")
        row = binomial(size)
        kernel = row[:, None] * row[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum()).expand(channels, 1, size, size).clone(), False)
        # antialiased-cnns pads (size-1)/2 rounded down before, up after
        self.padding = ((size - 1) // 2, size // 2, (size - 1) // 2, size // 2)
        self.stride, self.channels = stride, channels

    def forward(self, x):
        if any(self.padding):
            x = F.pad(x, self.padding, mode="reflect")
        return F.conv2d(x, self.kernel, stride=self.stride, groups=self.channels)


class L2Pool(nn.Module):
    """sqrt(Hanning low-pass of x^2), stride 2 (DISTS ``L2pooling``, filter_size 5 -> 3x3 taps)."""

    def __init__(self, channels: int, stride: int = 2):
        super().__init__()
        taps = torch.tensor([0.5, 1.0, 0.5])  # numpy.hanning(5)[1:-1]
        kernel = taps[:, None] * taps[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum()).expand(channels, 1, 3, 3).clone(), False)
        self.stride, self.channels = stride, channels

    def forward(self, x):
        out = F.conv2d(x * x, self.kernel, stride=self.stride, padding=1, groups=self.channels)
        return torch.sqrt(out + 1e-12)


def _pool(kind: str, channels: int, blur_size: int) -> nn.Module:
    if kind == "max":
        return nn.MaxPool2d(3, 2)
    if kind == "blurpool":
        return nn.Sequential(nn.MaxPool2d(3, 1), BlurPool(channels, blur_size, 2))
    if kind == "l2":
        return L2Pool(channels, 2)
    raise ValueError(f"unknown pooling {kind!r} (known: {', '.join(POOLINGS)})")


def alexnet_features(pooling: str = "max", blur_size: int = 4) -> nn.Sequential:
    """torchvision AlexNet ``features[:12]`` (indices kept, so its state dict keys load unchanged)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        _pool(pooling, 64, blur_size),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(inplace=True),
        _pool(pooling, 192, blur_size),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(inplace=True),
    )


TAPS = (1, 4, 7, 9, 11)  # relu1..relu5 inside features


class Lin(nn.Module):
    """LPIPS ``NetLinLayer``: dropout + 1x1 conv to one channel, no bias (keys ``model.1.weight``)."""

    def __init__(self, channels: int, dropout: bool = True):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout() if dropout else nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x):
        return self.model(x)


class LPIPS(nn.Module):
    def __init__(self, pooling: str = "max", blur_size: int = 4, dropout: bool = True):
        super().__init__()
        self.pooling = pooling
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), False)
        self.features = alexnet_features(pooling, blur_size)
        for k, channels in enumerate(CHANNELS):
            self.add_module(f"lin{k}", Lin(channels, dropout))

    @property
    def lins(self) -> list[Lin]:
        return [getattr(self, f"lin{k}") for k in range(len(CHANNELS))]

    def taps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised relu1..relu5 features of images in [0, 1]."""
        x = ((images * 2 - 1) - self.shift) / self.scale
        found = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPS:
                found.append(x / (torch.sqrt((x * x).sum(dim=1, keepdim=True)) + NORM_EPS))
        return found

    def distance(self, taps_a: list[torch.Tensor], taps_b: list[torch.Tensor]) -> torch.Tensor:
        total = 0
        for lin, a, b in zip(self.lins, taps_a, taps_b, strict=True):
            total = total + lin((a - b) ** 2).mean(dim=(2, 3))
        return total.reshape(-1)

    def forward(self, images: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """(N,) distances; a reference batch broadcast from one image (stride 0) is run through AlexNet once."""
        if references.shape[0] > 1 and references.stride(0) == 0:
            reference_taps = [t.expand(images.shape[0], -1, -1, -1) for t in self.taps(references[:1])]
        else:
            reference_taps = self.taps(references)
        return self.distance(self.taps(images), reference_taps)

    def clamp_lins(self) -> None:
        """LPIPS keeps the lin weights non-negative (``clamp_weights``): a distance never falls when features differ."""
        with torch.no_grad():
            for lin in self.lins:
                lin.model[1].weight.clamp_(min=0)


class RankingHead(nn.Module):
    """LPIPS ``Dist2LogitLayer``: (d0, d1) -> logit of P(p1 is closer to the reference)."""

    def __init__(self, channels: int = HEAD_CHANNELS):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(5, channels, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(channels, channels, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(channels, 1, 1),
        )

    def forward(self, d0: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
        d0, d1 = d0.view(-1, 1, 1, 1), d1.view(-1, 1, 1, 1)
        inputs = torch.cat((d0, d1, d0 - d1, d0 / (d1 + HEAD_EPS), d1 / (d0 + HEAD_EPS)), dim=1)
        return self.model(inputs).view(-1)


# --- the learned-metric kind interface (iqa.learned.store) -----------------------------------------


def build(config: dict) -> LPIPS:
    pooling = config.get("pooling", "max")
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r} (known: {', '.join(POOLINGS)})")
    return LPIPS(pooling=pooling, blur_size=int(config.get("blur_size", 4)))


def as_metric(network: LPIPS):
    def score(images, references=None):
        if references is None:
            raise ValueError("LPIPS is full-reference: it needs the reference image")
        return network(images, references)

    return score


# --- official weights ----------------------------------------------------------------------------


def _tensors(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is named
        raise TrainingError(f"{path} is not a readable PyTorch weight file: {error}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise TrainingError(f"{path} holds no state dict")
    return {key.removeprefix("module."): value for key, value in state.items()}


def alexnet_trunk_state(path: Path) -> dict:
    """``features.*`` of a torchvision AlexNet file (or of an LPIPS file that embeds ``net.slice*``)."""
    state = _tensors(path)
    wanted = [f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")]
    missing = [key for key in wanted if key not in state]
    if missing:
        raise TrainingError(f"{path} is not a torchvision AlexNet file: it lacks {', '.join(missing[:3])}")
    return {key: state[key] for key in wanted}


def lin_state(path: Path) -> dict:
    """``lin{k}.model.1.weight`` of an LPIPS v0.1 alex file (pip lpips alex.pth or pyiqa's copy)."""
    state = _tensors(path)
    wanted = {f"lin{k}.model.1.weight": (1, c, 1, 1) for k, c in enumerate(CHANNELS)}
    found = {}
    for key, shape in wanted.items():
        if key not in state:
            raise TrainingError(f"{path} is not an LPIPS-Alex lin file: it lacks {key}")
        if tuple(state[key].shape) != shape:
            raise TrainingError(f"{path}: {key} has shape {tuple(state[key].shape)}, expected {shape}")
        found[key] = state[key]
    return found


def load_official(alexnet_path: Path, lin_path: Path, pooling: str = "max", blur_size: int = 4) -> LPIPS:
    """LPIPS-Alex v0.1 from torchvision's AlexNet file and LPIPS's lin file, with any pooling."""
    network = LPIPS(pooling=pooling, blur_size=blur_size)
    network.load_state_dict({**alexnet_trunk_state(alexnet_path), **lin_state(lin_path)}, strict=True)
    return network.eval()


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
    if settings.patch < 32:
        problems.append(f"patch {settings.patch}: AlexNet needs at least 32 pixels")
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
