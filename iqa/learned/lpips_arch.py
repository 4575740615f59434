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

import functools
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from core.weights import WeightsError, read_state
from iqa.learned.errors import TrainingError
from iqa.learned.official import ALEXNET, LPIPS_CHANNELS, LPIPS_LIN

KIND = "lpips"
POOLINGS = ("max", "blurpool", "l2")
BACKBONES = ("pretrained", "scratch")
CHANNELS = LPIPS_CHANNELS  # relu1..relu5 of AlexNet (declared with the records that hold them)
# The torchvision AlexNet file LPIPS's trunk comes from and LPIPS v0.1's lin weights: records in
# iqa.learned.official (pip lpips ships the lin weights as weights/v0.1/alex.pth; pyiqa mirrors them).
ALEXNET_FILE = ALEXNET.file
ALEXNET_URL = ALEXNET.url
LIN_FILES = (LPIPS_LIN.file, "alex.pth")
LIN_URL = LPIPS_LIN.url
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


# AlexNet's own smallest input (torchvision's 11x11 stride-4 trunk; 32 kept as before for max pooling).
ALEXNET_MIN_SIDE = 32


@functools.cache
def smallest_side(pooling: str, blur_size: int = 4) -> int:
    """The smallest square input the feature stack with this pooling takes (at least ALEXNET_MIN_SIDE):
    found by running the stack on zeros, since BlurPool's low-pass and stride need more pixels than
    max pooling (47 for the 4-tap filter, 55 for 7 taps) and a smaller input leaves an empty map."""
    features = alexnet_features(pooling, blur_size).eval()
    with torch.no_grad():
        for side in range(ALEXNET_MIN_SIDE, 1024):
            try:
                features(torch.zeros(1, 3, side, side))
            except RuntimeError:
                continue
            return side
    raise ValueError(f"no input side up to 1024 pixels fits pooling {pooling!r} with blur size {blur_size}")


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
    """A weight file's tensors, read weights-only (``core.weights.read_state``)."""
    try:
        return read_state(path)
    except WeightsError as error:
        raise TrainingError(f"{path} is not a readable PyTorch weight file: {error}") from None


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
