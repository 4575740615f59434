"""RCAN (Zhang et al.), as in the authors' code (github.com/yulunzhang/RCAN,
``RCAN_TestCode/code/model/rcan.py``; the same file is in EDSR-PyTorch as ``src/model/rcan.py``).

RGB in [0, 255] in and out, with EDSR's ``sub_mean``/``add_mean`` (DIV2K mean x 255). ``head.0``
(3x3, 3 -> 64); ``body.{g}`` residual groups, each ``body.{g}.body.{b}`` residual channel attention
blocks (RCAB: ``body.0`` conv, ReLU, ``body.2`` conv, ``body.3`` channel attention whose
``conv_du.0``/``conv_du.2`` 1x1 convolutions squeeze by ``reduction`` and expand again around a ReLU,
ending in a sigmoid that scales the channels; the block input is added) then ``body.{g}.body.{n}``
(3x3) and the group input; ``body.{G}`` (3x3) and the skip from the head; ``tail`` as in EDSR.
The paper's network: 10 groups x 20 blocks, 64 features, reduction 16.

Our parameter names are the official ones. BasicSR's ``rcan_arch.py`` layout (``conv_first``,
``body.{g}.residual_group.{b}.rcab.{0,2}``, ``...rcab.3.attention.{1,3}``, ``body.{g}.conv``,
``conv_after_body``, ``upsample``, ``conv_last``, mean outside the state dict, input in [0, 1]) maps
onto them, as BasicSR's own ``scripts/model_conversion/convert_models.py`` maps the other way.
"""

from __future__ import annotations

import functools

from torch import nn

from sr_models.archs.base import ArchSpec
from sr_models.archs.edsr_arch import (
    DIV2K_RGB_MEAN,
    MeanShift,
    Upsampler,
    basicsr_rules,
    conv3x3,
    count_indices,
    fill_mean_shift,
    rename,
    unknown_layout,
)

PAPER = (
    "Zhang, Li, Li, Wang, Zhong, Fu. Image Super-Resolution Using Very Deep Residual Channel Attention Networks. "
    "ECCV 2018"
)

# This family's architectures, read by sr_models.archs' registry.
SPECS: list[ArchSpec] = []

PAPER_CONFIG = {"n_resgroups": 10, "n_resblocks": 20, "n_feats": 64, "reduction": 16}


class CALayer(nn.Module):
    """Channel attention: global average pooling, 1x1 squeeze, ReLU, 1x1 expand, sigmoid, rescale."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return x * self.conv_du(self.avg_pool(x))


class RCAB(nn.Module):
    def __init__(self, n_feats: int, reduction: int):
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(n_feats, n_feats), nn.ReLU(inplace=True), conv3x3(n_feats, n_feats), CALayer(n_feats, reduction)
        )

    def forward(self, x):
        return x + self.body(x)  # the official RCAB does not scale the residual


class ResidualGroup(nn.Module):
    def __init__(self, n_feats: int, reduction: int, n_resblocks: int):
        super().__init__()
        self.body = nn.Sequential(*(RCAB(n_feats, reduction) for _ in range(n_resblocks)), conv3x3(n_feats, n_feats))

    def forward(self, x):
        return x + self.body(x)


class RCAN(nn.Module):
    def __init__(
        self,
        scale: int,
        n_resgroups: int = 10,
        n_resblocks: int = 20,
        n_feats: int = 64,
        reduction: int = 16,
        rgb_range: float = 255.0,
        rgb_mean=DIV2K_RGB_MEAN,
    ):
        super().__init__()
        self.sub_mean = MeanShift(rgb_range, rgb_mean, sign=-1)
        self.head = nn.Sequential(conv3x3(3, n_feats))
        self.body = nn.Sequential(
            *(ResidualGroup(n_feats, reduction, n_resblocks) for _ in range(n_resgroups)), conv3x3(n_feats, n_feats)
        )
        self.tail = nn.Sequential(Upsampler(scale, n_feats), conv3x3(n_feats, 3))
        self.add_mean = MeanShift(rgb_range, rgb_mean, sign=1)

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        x = x + self.body(x)
        return self.add_mean(self.tail(x))


OFFICIAL_RULES = [
    (r"(sub_mean|add_mean)\.(weight|bias)", r"\1.\2"),
    (r"head\.0\.(weight|bias)", r"head.0.\1"),
    (r"body\.(\d+)\.body\.(\d+)\.body\.([02])\.(weight|bias)", r"body.\1.body.\2.body.\3.\4"),
    (r"body\.(\d+)\.body\.(\d+)\.body\.3\.conv_du\.([02])\.(weight|bias)", r"body.\1.body.\2.body.3.conv_du.\3.\4"),
    (r"body\.(\d+)\.body\.(\d+)\.(weight|bias)", r"body.\1.body.\2.\3"),
    (r"body\.(\d+)\.(weight|bias)", r"body.\1.\2"),
    (r"tail\.0\.(\d+)\.(weight|bias)", r"tail.0.\1.\2"),
    (r"tail\.1\.(weight|bias)", r"tail.1.\1"),
]
SIGNATURES = {
    "RCAN (head/body/tail)": ("head.0.weight", "body.0.body.0.body.3.conv_du.0.weight", "tail.1.weight"),
    "BasicSR rcan_arch (conv_first/body/conv_after_body/upsample/conv_last)": (
        "conv_first.weight",
        "body.0.residual_group.0.rcab.3.attention.1.weight",
        "body.0.conv.weight",
        "conv_after_body.weight",
        "conv_last.weight",
    ),
}


def convert_state_dict(state) -> dict:
    """yulunzhang/RCAN (``RCAN_B{I,D}X*.pt``) and EDSR-PyTorch's rcan.py: identity.
    BasicSR ``basicsr/archs/rcan_arch.py``: renamed, DIV2K mean added."""
    keys = set(state)
    official, basicsr = SIGNATURES.values()
    if all(key in keys for key in official):
        return fill_mean_shift(rename(state, OFFICIAL_RULES, "rcan (RCAN layout)"))
    if all(key in keys for key in basicsr):
        n_groups = count_indices(state, r"body\.(\d+)\.conv\.weight")
        n_blocks = count_indices(state, r"body\.0\.residual_group\.(\d+)\.rcab\.0\.weight")
        rcab, ours = r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.", r"body.\1.body.\2.body."
        rules = [
            (rcab + r"([02])\.(weight|bias)", ours + r"\3.\4"),
            # BasicSR puts the pooling inside the Sequential: attention.{1,3} are conv_du.{0,2}
            (rcab + r"3\.attention\.1\.(weight|bias)", ours + r"3.conv_du.0.\3"),
            (rcab + r"3\.attention\.3\.(weight|bias)", ours + r"3.conv_du.2.\3"),
            (r"body\.(\d+)\.conv\.(weight|bias)", rf"body.\1.body.{n_blocks}.\2"),
            *basicsr_rules(n_groups),
        ]
        return fill_mean_shift(rename(state, rules, "rcan (BasicSR layout)"))
    raise unknown_layout("rcan", state, SIGNATURES)


def _build(scale: int, **options) -> RCAN:
    return RCAN(scale, **options)


SPECS.append(
    ArchSpec(
        name="rcan",
        family="rcan",
        build=functools.partial(_build, **PAPER_CONFIG),
        convert=convert_state_dict,
        scales=(2, 3, 4, 8),
        color="rgb",
        input_range=255.0,
        pre_upsample=False,
        paper=PAPER,
        options=tuple(PAPER_CONFIG.items()),
    )
)
