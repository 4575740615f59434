"""VDSR (Kim et al.) as in the PyTorch port by twtygqyy (github.com/twtygqyy/pytorch-vdsr).

Twenty 3x3 convolutions without bias on the Y channel of the bicubic-upscaled image in [0, 1]:
``input`` (1 -> 64) and 18 ``residual_layer`` blocks (64 -> 64), each followed by ReLU, then
``output`` (64 -> 1); the network predicts the residual, added to its input. Parameter names are the
port's ``vdsr.py`` since its commit 1efd062 (2017-03-17), the one its ``model/model_epoch_50.pth``
was saved with. The port's first commit (7cd0d62) had the same twenty convolutions in one
``features`` Sequential (convs at even indices 0, 2, ..., 38); that layout is mapped too.
"""

from __future__ import annotations

import torch
from torch import nn

from sr_models.archs.base import ArchSpec, UnknownLayout

# This family's architectures, read by sr_models.archs' registry.
SPECS: list[ArchSpec] = []

PAPER = "Kim, Lee, Lee. Accurate Image Super-Resolution Using Very Deep Convolutional Networks. CVPR 2016"

N_MIDDLE = 18  # 20 convolutions: input, 18 residual_layer blocks, output


class ConvReLU(nn.Module):
    def __init__(self, channels: int = 64):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.conv(x))


class VDSR(nn.Module):
    def __init__(self, num_channels: int = 1, features: int = 64, n_middle: int = N_MIDDLE):
        super().__init__()
        self.input = nn.Conv2d(num_channels, features, kernel_size=3, padding=1, bias=False)
        self.residual_layer = nn.Sequential(*(ConvReLU(features) for _ in range(n_middle)))
        self.output = nn.Conv2d(features, num_channels, kernel_size=3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.output(self.residual_layer(self.relu(self.input(x))))
        return torch.add(out, x)


OUR_KEYS = ("input.weight", *(f"residual_layer.{i}.conv.weight" for i in range(N_MIDDLE)), "output.weight")
# first commit of twtygqyy/pytorch-vdsr: features.{0, 2, ..., 38} are the twenty convolutions, in order
FEATURES_KEYS = tuple(f"features.{2 * i}.weight" for i in range(N_MIDDLE + 2))


def convert_state_dict(state) -> dict:
    keys = set(state)
    if keys == set(OUR_KEYS):
        return dict(state)
    if keys == set(FEATURES_KEYS):
        return {ours: state[theirs] for ours, theirs in zip(OUR_KEYS, FEATURES_KEYS, strict=True)}
    layout = FEATURES_KEYS if "features.0.weight" in keys else OUR_KEYS
    unexpected = sorted(keys - set(layout))[:5]
    missing = [key for key in layout if key not in keys][:5]
    raise UnknownLayout(
        f"vdsr: neither the input/residual_layer/output nor the features layout of 20 bias-free convolutions "
        f"(unexpected keys {unexpected}, missing keys {missing})"
    )


def build(scale: int, num_channels: int = 1) -> VDSR:
    # the scale only chooses the checkpoint: VDSR works on the bicubic-upscaled image
    return VDSR(num_channels=num_channels)


SPECS.append(
    ArchSpec(
        name="vdsr",
        family="vdsr",
        build=build,
        convert=convert_state_dict,
        scales=(2, 3, 4),
        color="y",
        input_range=1.0,
        pre_upsample=True,
        paper=PAPER,
    )
)
