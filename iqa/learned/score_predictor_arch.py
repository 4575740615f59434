"""4PP-EUSR's subjective-score predictor (Choi et al., 003 §3.4 and §4.2; NIMA's recipe), trained here (no Django).

Network. torchvision's MobileNetV2, width multiplier 1.0, its classifier replaced by
dropout + ``Linear(1280, 10)`` + softmax: a distribution over the score bins 1..10. The
predicted score is the mean of that distribution (§3.4: "we use only the mean values of the
predicted score distributions"). The paper gives no dropout rate; the default 0.75 is NIMA's
(titu1994/neural-image-assessment, the Keras code the NIMA recipe is usually run with). The
input is ``(255·x − 127.5) / 127.5`` = ``2x − 1`` (the paper's TensorFlow MobileNetV2 input;
``input_norm="paper"``). torchvision's ImageNet weights were trained on ``(x − mean) / std``
instead; ``input_norm="imagenet"`` feeds them that.

Loss. The squared earth mover's distance of 003 Eq. 1 (Hou et al. 2016):
``Σ_i (CDF_p(i) − CDF_q(i))²`` over the 10 bins, averaged over the batch (no 1/N, no root).

Targets. TID2013 gives each image a mean and a standard deviation; the paper turned them into
Gaussians over the bins after shifting [0, 9] to [1, 10]. An Elo MOS is identified only within
a reference (SPEC §6), so each reference's MOS range is mapped linearly onto [1, 10]:
``μ = 1 + 9·(mos − min_ref) / (max_ref − min_ref)``. The spread is the population standard
deviation of the image's ``recent_elo`` (the last Elo values whose mean is its MOS: how much the
rating still moves) scaled by the same ``9 / (max_ref − min_ref)``, floored at ``sigma_floor``
bins (0.5 by default) so a target is never a one-bin spike. The Gaussian is evaluated at the
bin centres 1..10 and normalised to sum 1 (a truncated, discretised Gaussian: its mean is pulled
inwards when μ is within ~2σ of 1 or 10). A reference with fewer than two judged images, or whose
images all have the same MOS, carries no ranking and is left out (listed as skipped).

Schedule (003 §4.2, SPEC §6). Phase 1 trains only the new layer (Adam lr 1e-3, batch 128) with
the backbone frozen: its BatchNorm layers keep their running statistics (eval mode), as a frozen
Keras model does. Phase 2 trains everything (Adam lr 1e-5, batch 32). Adam β = (0.9, 0.999),
ε = 1e-7, constant learning rates. The paper counts epochs (100 + 100 on TID2013's 2,640 training
images); here both phases count steps (``head_iterations``, ``iterations``), each step a batch of
distinct images drawn at random (with replacement only when the set is smaller than the batch).

From scratch (no ImageNet file on the machine) the same schedule runs, recorded as ``scratch``:
phase 1 then only fits the new layer on random features, so a short phase 1 suits it, and in eval
mode the network gives nearly one score to every image until BatchNorm's running statistics have
caught up with the trained weights (about 100 phase-2 steps on the tests' tiny study).

Crops. Training takes a random ``crop``×``crop`` (192) window of each image, never rescaled
(§4.2: the predictor judges patches); validation and the metric take the centre window. An image
smaller than the crop is refused with its name (lower ``crop``): padding would add content the
raters never saw and rescaling is what the paper avoids. As a metric, an image smaller than the
crop is scored whole (MobileNetV2 takes any size).

Evaluation: SRCC/KRCC of the predicted scores against the MOS of the held-out references, pooled
and averaged per reference (SPEC §6 "MOS scale per reference"), and the mean squared EMD to the
targets, all on centre crops — exactly what ``as_metric`` computes.

Determinism: one seed sets the initial weights (torch), the batches and crops (numpy), and
dropout (torch); every random state is in the checkpoint, so a run resumed from its checkpoint
continues exactly as the uninterrupted run would have (on the same machine and thread count).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

KIND = "score_predictor"
BINS = 10
SCORES = (1.0, 10.0)  # the score of bin 1 and of bin BINS
FEATURES = 1280  # MobileNetV2 width 1.0: channels of the pooled representation
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-7
INPUT_NORMS = ("paper", "imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageClassification preset
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_CROP = 32  # MobileNetV2 downsamples 32 times
TARGETS = (
    "per reference, MOS range linearly onto 1..10 (mu = 1 + 9 (mos - min) / (max - min)); sigma = population "
    "std of recent_elo times the same 9 / (max - min), floored at sigma_floor; Gaussian at the bin centres "
    "1..10, normalised to sum 1; references with < 2 judged images or one MOS value skipped"
)


# --- the network ----------------------------------------------------------------------------------


class ScorePredictor(nn.Module):
    """MobileNetV2 with a 10-bin softmax head. Input (N, 3, H, W) RGB in [0, 1]; output (N, 10) probabilities.

    The key layout is torchvision's (``features.*``, ``classifier.1.*``), so ImageNet weights load by name."""

    def __init__(self, *, dropout: float = 0.75, crop: int = 192, input_norm: str = "paper", width_mult: float = 1.0):
        super().__init__()
        from torchvision.models import mobilenet_v2

        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {', '.join(INPUT_NORMS)}, not {input_norm!r}")
        base = mobilenet_v2(weights=None, width_mult=width_mult)
        self.features = base.features
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(base.last_channel, BINS))
        self.crop = crop
        self.input_norm = input_norm
        if input_norm == "paper":
            mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # (255 x - 127.5) / 127.5
        else:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled 1280-vector (4PP-EUSR's "global average pooling" output)."""
        x = (x - self.mean) / self.std
        return nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)

    def head(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(pooled), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.representation(x))


def build(config: dict) -> ScorePredictor:
    return ScorePredictor(
        dropout=float(config.get("dropout", 0.75)),
        crop=int(config.get("crop", 192)),
        input_norm=str(config.get("input_norm", "paper")),
        width_mult=float(config.get("width_mult", 1.0)),
    )


def mean_score(probabilities: torch.Tensor) -> torch.Tensor:
    """The mean of each distribution over the bins, on the 1..10 scale: (N, 10) -> (N,)."""
    scores = torch.linspace(*SCORES, BINS, dtype=probabilities.dtype, device=probabilities.device)
    return probabilities @ scores


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The centre ``size``×``size`` window of (N, C, H, W); a side shorter than ``size`` is kept whole."""
    height, width = images.shape[-2:]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return images[..., top : top + min(size, height), left : left + min(size, width)]


def as_metric(network: ScorePredictor) -> Callable:
    """No-reference metric: the predicted mean score (1..10, higher is better) of each image's centre crop."""
    network.eval()

    def score(images: torch.Tensor, references: torch.Tensor | None = None) -> torch.Tensor:
        return mean_score(network(center_crop(images, network.crop)))

    return score
