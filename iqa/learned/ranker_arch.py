"""RankSRGAN's Ranker as a learned no-reference metric: network, official weights, training (no Django here).

Network: ``Ranker_VGG12_296`` of XPixelGroup/RankSRGAN (``codes/models/archs/RankSRGAN_arch.py``), in
its key layout: ten biased convolutions ``conv{0..4}_{0,1}`` (3x3 stride 1, then 4x4 stride 2 padding 1
instead of pooling; widths nf, nf, 2nf, 2nf, 4nf, 4nf, 8nf x4), ``bn{X}_{Y}`` after every one but
``conv0_0``, LeakyReLU 0.2, global average pooling, ``classifier.0`` Linear(8nf, 100) -> LeakyReLU 0.2 ->
``classifier.2`` Linear(100, 1). nf 64 is the official network (13,734,281 parameters; journal Table 2:
13,734K); a smaller ``nf`` is for tests and benchmarks.

Input: RGB in [0, 1], no mean/std normalisation. The official dataset class
(``codes/data/Rank_IMIM_Pair_dataset.py``) reads patches with ``util.read_img`` (cv2, BGR, /255) and flips
them to RGB, and RankSRGAN feeds the Ranker the generator's output ``fake_H`` (RGB, [0, 1]) as is — the
platform's metric input exactly.

Direction: trained with ``MarginRankingLoss(margin=0.5)`` on scores clamped to [-5, 5] and target +1 when
the first image's label is higher (``codes/models/Ranker_model.py``), so the Ranker scores higher-label
images higher. With NIQE/Ma/PI rank labels (best = lowest, journal Sec. 5.1: "the one with the best NIQE
value is set to 1") it scores *worse* images higher: "a lower ranking score indicates better perceptual
quality" (Sec. 3.3, Eq. 9). A Ranker trained here takes its direction from its dataset's labels.

Training (``train``) follows the released ``codes/options/train/train_Ranker.yml``, not the paper's text:
Adam lr 1e-4 (the paper, Sec. 5.1, says 1e-3), default betas, weight decay 1e-4, batch 16, MultiStepLR x0.5
at 100k and 200k of 400k iterations (the paper: every 100k for 300k) — here at 1/4 and 1/2 of the run
unless ``lr_steps`` says otherwise; PyTorch's default initialisation (the code applies none; the paper says
He's). Each iteration takes, per batch element, one group of the rank dataset (uniformly) and one pair of its
patches with different labels (uniformly, in random order; tied labels never make a pair — the code would
give a tie target +1), and the two sides of the batch go through the network in two forward passes, as in
``Ranker_model.optimize_parameters`` (so BatchNorm sees each side's statistics). The config sets 128-pixel
crops with flips and rotations (``GT_size: 128``, ``use_flip``, ``use_rot``); the released dataset class
ignores those keys and feeds whole 296-pixel patches. We crop (``crop``, 0 = whole patches), the same
window and the same flips/transposition for both images of a pair.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.weights import WeightsError, read_state
from iqa.learned.errors import LearnedModelError

KIND = "ranker"
ARCH = "Ranker_VGG12_296"
OFFICIAL_NF = 64
OFFICIAL_PARAMETERS = 13_734_281
MARGIN = 0.5  # train_Ranker / Ranker_model.py: nn.MarginRankingLoss(margin=0.5)
SCORE_CLAMP = 5.0  # Ranker_model.optimize_parameters: torch.clamp(score, min=-5, max=5) before the loss
MIN_SIDE = 32  # five stride-2 4x4 convolutions (padding 1): a smaller side leaves the last one no input
HISTORY_EVERY = 10  # a history entry (mean loss, learning rate) every this many steps and at a run's end


# --- network -----------------------------------------------------------------------------------------


class Ranker(nn.Module):
    """``Ranker_VGG12_296`` (official names and order of layers); one score per image, any input size."""

    def __init__(self, in_nc: int = 3, nf: int = OFFICIAL_NF):
        super().__init__()
        widths = [(in_nc, nf), (nf, nf), (nf, 2 * nf), (2 * nf, 2 * nf), (2 * nf, 4 * nf), (4 * nf, 4 * nf)]
        widths += [(4 * nf, 8 * nf), (8 * nf, 8 * nf), (8 * nf, 8 * nf), (8 * nf, 8 * nf)]
        self.nf = nf
        for index, (cin, cout) in enumerate(widths):
            stage, step = divmod(index, 2)
            kernel, stride = (3, 1) if step == 0 else (4, 2)
            setattr(self, f"conv{stage}_{step}", nn.Conv2d(cin, cout, kernel, stride, 1, bias=True))
            if index:
                setattr(self, f"bn{stage}_{step}", nn.BatchNorm2d(cout, affine=True))
        self.classifier = nn.Sequential(nn.Linear(8 * nf, 100), nn.LeakyReLU(0.2, True), nn.Linear(100, 1))
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.lrelu(self.conv0_0(x))
        for stage in range(5):
            for step in range(2):
                if stage or step:
                    conv, bn = getattr(self, f"conv{stage}_{step}"), getattr(self, f"bn{stage}_{step}")
                    fea = self.lrelu(bn(conv(fea)))
        fea = fea.mean(dim=(2, 3))  # nn.AvgPool2d(fea.size()[2]) on the square patches it was made for
        return self.classifier(fea)


def build(config: dict) -> Ranker:
    """The network a ``model.pt`` config describes (``{"arch", "nf", "in_nc"}``)."""
    config = dict(config or {})
    arch = config.pop("arch", ARCH)
    if arch != ARCH:
        raise LearnedModelError(f"a ranker config names arch {arch!r}; only {ARCH} is known")
    unknown = set(config) - {"nf", "in_nc"}
    if unknown:
        raise LearnedModelError(f"unknown ranker option(s) {', '.join(sorted(unknown))}")
    return Ranker(in_nc=int(config.get("in_nc", 3)), nf=int(config.get("nf", OFFICIAL_NF)))


class RankerMetric(nn.Module):
    """The metric callable: ``(images (N,3,H,W) RGB in [0, 1], references=None) -> (N,)`` Ranker scores."""

    def __init__(self, network: Ranker):
        super().__init__()
        self.network = network.eval()

    def forward(self, images: torch.Tensor, references: torch.Tensor | None = None) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"the Ranker scores (N, 3, H, W) RGB batches, not {tuple(images.shape)}")
        if min(images.shape[2:]) < MIN_SIDE:
            raise ValueError(
                f"the Ranker needs images at least {MIN_SIDE} pixels a side, not {images.shape[3]}x{images.shape[2]}"
            )
        self.network.eval()
        return self.network(images).reshape(images.shape[0])


def as_metric(network: Ranker) -> RankerMetric:
    return RankerMetric(network)


def parameter_count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


# --- official weights -----------------------------------------------------------------------------


def official_state(state: dict) -> dict:
    """An official Ranker file's tensors (``core.weights.read_state``: unwrapped, ``module.`` stripped) in
    our key names: BatchNorm's ``num_batches_tracked`` added when a file from PyTorch < 0.4.1 lacks it
    (it is not used in eval)."""
    state = dict(state)
    for key in [k for k in state if k.startswith("bn") and k.endswith(".running_var")]:
        state.setdefault(key.replace(".running_var", ".num_batches_tracked"), torch.tensor(0, dtype=torch.long))
    return state


def load_official(path: Path, device: str = "cpu") -> Ranker:
    """An official ``Ranker_{NIQE,Ma,PI}.pth`` (or one in its layout), loaded strictly, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise LearnedModelError(f"{path} is missing")
    try:
        state = official_state(read_state(path))  # weights_only: a pickle that carries code is refused
    except WeightsError as error:  # damaged zip, pickled code, not a torch file: the message names the file
        raise LearnedModelError(str(error)) from None
    first = state.get("conv0_0.weight")
    if first is None or first.ndim != 4:
        raise LearnedModelError(
            f"{path.name} is not in the Ranker_VGG12_296 layout: no conv0_0.weight "
            f"(keys start {', '.join(sorted(state)[:4])})"
        )
    network = Ranker(in_nc=int(first.shape[1]), nf=int(first.shape[0]))
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{key} {tuple(state[key].shape)} (expected {tuple(value.shape)})"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if keys:
                parts.append(f"{title}: {', '.join(keys[:6])}{' …' if len(keys) > 6 else ''}")
        detail = "; ".join(parts)
        raise LearnedModelError(f"{path.name} does not fit Ranker_VGG12_296 (nf {network.nf}): {detail}")
    network.load_state_dict(state, strict=True)
    return network.to(device).eval()
