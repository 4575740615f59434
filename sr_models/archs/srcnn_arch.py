"""SRCNN (Dong et al.), the 9-5-5 network of the PyTorch port by yjn870 (github.com/yjn870/SRCNN-pytorch).

Three convolutions on the Y channel of the bicubic-upscaled image in [0, 1]: 9x9 (1 -> 64) and
5x5 (64 -> 32), each followed by ReLU, then 5x5 (32 -> 1). The port zero-pads every convolution
so the output has the input's size. Parameter names are the port's ``conv1``/``conv2``/``conv3``,
so its published ``srcnn_x{2,3,4}.pth`` state dicts load as they are.
"""

from __future__ import annotations

from torch import nn

from sr_models.archs.base import ArchSpec, UnknownLayout

# This family's architectures, read by sr_models.archs' registry.
SPECS: list[ArchSpec] = []

PAPER = "Dong, Loy, He, Tang. Image Super-Resolution Using Deep Convolutional Networks. TPAMI 2016 (ECCV 2014)"

KEYS = tuple(f"conv{i}.{part}" for i in (1, 2, 3) for part in ("weight", "bias"))


class SRCNN(nn.Module):
    def __init__(self, num_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(num_channels, 64, kernel_size=9, padding=4)
        self.conv2 = nn.Conv2d(64, 32, kernel_size=5, padding=2)
        self.conv3 = nn.Conv2d(32, num_channels, kernel_size=5, padding=2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)


def convert_state_dict(state) -> dict:
    """yjn870/SRCNN-pytorch ``models.py`` names (conv1/conv2/conv3) are ours: identity."""
    keys = set(state)
    if keys == set(KEYS):
        return dict(state)
    unexpected = sorted(keys - set(KEYS))[:5]
    missing = sorted(set(KEYS) - keys)[:5]
    raise UnknownLayout(f"srcnn: not the SRCNN 9-5-5 layout (unexpected keys {unexpected}, missing keys {missing})")


def build(scale: int, num_channels: int = 1) -> SRCNN:
    # the scale only chooses the checkpoint: SRCNN works on the bicubic-upscaled image
    return SRCNN(num_channels=num_channels)


SPECS.append(
    ArchSpec(
        name="srcnn",
        family="srcnn",
        build=build,
        convert=convert_state_dict,
        scales=(2, 3, 4),
        color="y",
        input_range=1.0,
        pre_upsample=True,
        paper=PAPER,
    )
)
