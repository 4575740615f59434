"""FSRCNN (Dong et al.), FSRCNN(d=56, s=12, m=4) as in the PyTorch port by yjn870
(github.com/yjn870/FSRCNN-pytorch).

It works on the Y channel of the low-resolution image in [0, 1]: feature extraction (5x5, 1 -> d),
shrinking (1x1, d -> s), m mapping layers (3x3, s -> s), expanding (1x1, s -> d), every one followed
by a PReLU, and a 9x9 transposed convolution with stride ``scale`` that makes the upscaled output
(padding 4 and output padding ``scale - 1``, so the output is exactly ``scale`` times the input).
Parameter names are the port's ``first_part``/``mid_part``/``last_part``, so its published
``fsrcnn_x{2,3,4}.pth`` state dicts load as they are.
"""

from __future__ import annotations

import re

from torch import nn

from sr_models.archs.base import ArchSpec, UnknownLayout

# This family's architectures, read by sr_models.archs' registry.
SPECS: list[ArchSpec] = []

PAPER = "Dong, Loy, Tang. Accelerating the Super-Resolution Convolutional Neural Network. ECCV 2016"

# yjn870's names: first_part.{0: conv, 1: prelu}, mid_part.{2i: conv, 2i+1: prelu}, last_part (transposed conv)
_KEY = re.compile(r"(first_part|mid_part)\.\d+\.(weight|bias)|last_part\.(weight|bias)")
_SIGNATURE = ("first_part.0.weight", "mid_part.0.weight", "last_part.weight")


class FSRCNN(nn.Module):
    def __init__(self, scale: int, num_channels: int = 1, d: int = 56, s: int = 12, m: int = 4):
        super().__init__()
        self.first_part = nn.Sequential(nn.Conv2d(num_channels, d, kernel_size=5, padding=2), nn.PReLU(d))
        mid = [nn.Conv2d(d, s, kernel_size=1), nn.PReLU(s)]
        for _ in range(m):
            mid += [nn.Conv2d(s, s, kernel_size=3, padding=1), nn.PReLU(s)]
        mid += [nn.Conv2d(s, d, kernel_size=1), nn.PReLU(d)]
        self.mid_part = nn.Sequential(*mid)
        self.last_part = nn.ConvTranspose2d(
            d, num_channels, kernel_size=9, stride=scale, padding=4, output_padding=scale - 1
        )

    def forward(self, x):
        return self.last_part(self.mid_part(self.first_part(x)))


def convert_state_dict(state) -> dict:
    """yjn870/FSRCNN-pytorch ``models.py`` names are ours: identity, after checking the names."""
    keys = set(state)
    unexpected = sorted(key for key in keys if not _KEY.fullmatch(key))
    missing = [key for key in _SIGNATURE if key not in keys]
    if not unexpected and not missing:
        return dict(state)
    raise UnknownLayout(
        f"fsrcnn: not the first_part/mid_part/last_part layout "
        f"(unexpected keys {unexpected[:5]}, missing keys {missing})"
    )


def build(scale: int, d: int = 56, s: int = 12, m: int = 4, num_channels: int = 1) -> FSRCNN:
    return FSRCNN(scale, num_channels=num_channels, d=d, s=s, m=m)


SPECS.append(
    ArchSpec(
        name="fsrcnn",
        family="fsrcnn",
        build=build,
        convert=convert_state_dict,
        scales=(2, 3, 4),
        color="y",
        input_range=1.0,
        pre_upsample=False,
        paper=PAPER,
    )
)
