"""EDSR (Lim et al.), as in the authors' PyTorch code (github.com/sanghyun-son/EDSR-PyTorch,
``src/model/edsr.py`` and ``src/model/common.py``).

RGB in [0, 255] in and out. ``sub_mean`` removes the DIV2K RGB mean (0.4488, 0.4371, 0.4040) x 255
and ``add_mean`` puts it back; both are 1x1 convolutions with identity weights, as in the official
``MeanShift``, so the official checkpoints' values load as they are. Then ``head.0`` (3x3, 3 -> F),
``body.{i}`` residual blocks (``body.{i}.body.0`` conv, ReLU, ``body.{i}.body.2`` conv, scaled by
``res_scale``, plus the block input), ``body.{n}`` (3x3), a global skip from the head, and ``tail.0``,
the sub-pixel upsampler (``tail.0.0`` conv to 4F then PixelShuffle(2), repeated as ``tail.0.2`` ... for
x4 and x8; one conv to 9F and PixelShuffle(3) for x3), and ``tail.1`` (3x3, F -> 3).

Two networks: EDSR baseline (16 blocks, 64 features, res_scale 1) and EDSR (32 blocks, 256 features,
res_scale 0.1). Our parameter names are the official ones; BasicSR's ``edsr_arch.py`` layout
(``conv_first``, ``body.{i}.conv1/conv2``, ``conv_after_body``, ``upsample``, ``conv_last``, the mean a
plain attribute outside the state dict, input in [0, 1]) maps onto them: its
``(x - mean) * 255 ... / 255 + mean`` is the same function scaled to [0, 255].

The MeanShift, the upsampler and the key renaming here are shared with RCAN (``rcan.py``).
"""

from __future__ import annotations

import functools
import math
import re

import torch
from torch import nn

from sr_models.archs.base import ArchSpec, UnknownLayout

# This family's architectures, read by sr_models.archs' registry.
SPECS: list[ArchSpec] = []

PAPER = (
    "Lim, Son, Kim, Nah, Lee. Enhanced Deep Residual Networks for Single Image Super-Resolution. CVPR Workshops 2017"
)

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
BASELINE = {"n_resblocks": 16, "n_feats": 64, "res_scale": 1.0}
FULL = {"n_resblocks": 32, "n_feats": 256, "res_scale": 0.1}


class MeanShift(nn.Conv2d):
    """Adds ``sign * rgb_range * rgb_mean`` per channel: a fixed 1x1 convolution with identity weights."""

    def __init__(self, rgb_range: float = 255.0, rgb_mean=DIV2K_RGB_MEAN, sign: int = -1):
        super().__init__(3, 3, kernel_size=1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(rgb_mean))
        self.requires_grad_(False)


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


class ResBlock(nn.Module):
    def __init__(self, n_feats: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(conv3x3(n_feats, n_feats), nn.ReLU(inplace=True), conv3x3(n_feats, n_feats))
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.body(x) * self.res_scale


class Upsampler(nn.Sequential):
    """Sub-pixel convolution: log2(scale) steps of conv to 4F and PixelShuffle(2), or one x3 step."""

    def __init__(self, scale: int, n_feats: int):
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [conv3x3(n_feats, 4 * n_feats), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [conv3x3(n_feats, 9 * n_feats), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"the sub-pixel upsampler supports scales 2^n and 3, not {scale}")
        super().__init__(*layers)


class EDSR(nn.Module):
    def __init__(
        self,
        scale: int,
        n_resblocks: int = 16,
        n_feats: int = 64,
        res_scale: float = 1.0,
        rgb_range: float = 255.0,
        rgb_mean=DIV2K_RGB_MEAN,
    ):
        super().__init__()
        self.sub_mean = MeanShift(rgb_range, rgb_mean, sign=-1)
        self.head = nn.Sequential(conv3x3(3, n_feats))
        self.body = nn.Sequential(
            *(ResBlock(n_feats, res_scale) for _ in range(n_resblocks)), conv3x3(n_feats, n_feats)
        )
        self.tail = nn.Sequential(Upsampler(scale, n_feats), conv3x3(n_feats, 3))
        self.add_mean = MeanShift(rgb_range, rgb_mean, sign=1)

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        x = x + self.body(x)
        return self.add_mean(self.tail(x))


# --- key layouts -------------------------------------------------------------------------------

Rules = list[tuple[str, str]]  # (regular expression matching a whole key, re.Match.expand template)


def rename(state, rules: Rules, what: str) -> dict:
    """Renames every key by the first rule whose pattern matches it in full; a key that no rule
    matches makes the state dict foreign (UnknownLayout naming a few of them)."""
    compiled = [(re.compile(pattern), template) for pattern, template in rules]
    out, unexpected = {}, []
    for key, value in state.items():
        for pattern, template in compiled:
            match = pattern.fullmatch(key)
            if match:
                out[match.expand(template)] = value
                break
        else:
            unexpected.append(key)
    if unexpected:
        raise UnknownLayout(f"{what}: unexpected keys {sorted(unexpected)[:5]}")
    return out


def fill_mean_shift(state: dict, rgb_range: float = 255.0) -> dict:
    """Adds ``sub_mean``/``add_mean`` with the DIV2K mean when the file does not carry them
    (BasicSR keeps the mean out of its state dict; the official loaders tolerate their absence too)."""
    for name, sign in (("sub_mean", -1), ("add_mean", 1)):
        if f"{name}.weight" not in state and f"{name}.bias" not in state:
            for part, value in MeanShift(rgb_range, DIV2K_RGB_MEAN, sign).state_dict().items():
                state[f"{name}.{part}"] = value
    return state


def unknown_layout(family: str, state, signatures: dict[str, tuple[str, ...]]) -> UnknownLayout:
    """The error for a state dict that has the signature keys of none of the layouts."""
    missing = "; ".join(
        f"{layout} misses {[key for key in signature if key not in state]}" for layout, signature in signatures.items()
    )
    return UnknownLayout(f"{family}: no known layout (unexpected keys {sorted(state)[:5]}; {missing})")


OFFICIAL_RULES: Rules = [
    (r"(sub_mean|add_mean)\.(weight|bias)", r"\1.\2"),
    (r"head\.0\.(weight|bias)", r"head.0.\1"),
    (r"body\.(\d+)\.body\.([02])\.(weight|bias)", r"body.\1.body.\2.\3"),
    (r"body\.(\d+)\.(weight|bias)", r"body.\1.\2"),
    (r"tail\.0\.(\d+)\.(weight|bias)", r"tail.0.\1.\2"),
    (r"tail\.1\.(weight|bias)", r"tail.1.\1"),
]
SIGNATURES = {
    "EDSR-PyTorch (head/body/tail)": ("head.0.weight", "body.0.body.0.weight", "tail.1.weight"),
    "BasicSR edsr_arch (conv_first/body/conv_after_body/upsample/conv_last)": (
        "conv_first.weight",
        "body.0.conv1.weight",
        "conv_after_body.weight",
        "conv_last.weight",
    ),
}


def basicsr_rules(n_blocks: int) -> Rules:
    """BasicSR ``edsr_arch.EDSR`` and ``rcan_arch.RCAN`` share these outer names; ``conv_after_body``
    is the body's last convolution, ``body.{n_blocks}`` in the official layout."""
    return [
        (r"conv_first\.(weight|bias)", r"head.0.\1"),
        (r"conv_after_body\.(weight|bias)", rf"body.{n_blocks}.\1"),
        (r"upsample\.(\d+)\.(weight|bias)", r"tail.0.\1.\2"),
        (r"conv_last\.(weight|bias)", r"tail.1.\1"),
    ]


def count_indices(state, pattern: str) -> int:
    """How many distinct values the single group of ``pattern`` takes over the keys."""
    compiled = re.compile(pattern)
    return len({match.group(1) for key in state if (match := compiled.fullmatch(key))})


def convert_state_dict(state) -> dict:
    """EDSR-PyTorch (``src/model/edsr.py``; also its published ``edsr_*.pt``/``EDSR_*.pt``): identity.
    BasicSR ``basicsr/archs/edsr_arch.py`` (``EDSR_{M,L}x*_official-*.pth``): renamed, mean added."""
    keys = set(state)
    official, basicsr = SIGNATURES.values()
    if all(key in keys for key in official):
        return fill_mean_shift(rename(state, OFFICIAL_RULES, "edsr (EDSR-PyTorch layout)"))
    if all(key in keys for key in basicsr):
        n_blocks = count_indices(state, r"body\.(\d+)\.conv1\.weight")
        rules = [
            # the ReLU sits between them, at index 1 of the official block's Sequential
            (r"body\.(\d+)\.conv1\.(weight|bias)", r"body.\1.body.0.\2"),
            (r"body\.(\d+)\.conv2\.(weight|bias)", r"body.\1.body.2.\2"),
            *basicsr_rules(n_blocks),
        ]
        return fill_mean_shift(rename(state, rules, "edsr (BasicSR layout)"))
    raise unknown_layout("edsr", state, SIGNATURES)


def _build(scale: int, **options) -> EDSR:
    return EDSR(scale, **options)


SPECS.append(
    ArchSpec(
        name="edsr_baseline",
        family="edsr",
        build=functools.partial(_build, **BASELINE),
        convert=convert_state_dict,
        scales=(2, 3, 4),
        color="rgb",
        input_range=255.0,
        pre_upsample=False,
        paper=PAPER + " (baseline: 16 blocks, 64 features)",
        options=tuple(BASELINE.items()),
    )
)
SPECS.append(
    ArchSpec(
        name="edsr",
        family="edsr",
        build=functools.partial(_build, **FULL),
        convert=convert_state_dict,
        scales=(2, 3, 4),
        color="rgb",
        input_range=255.0,
        pre_upsample=False,
        paper=PAPER + " (32 blocks, 256 features, residual scaling 0.1)",
        options=tuple(FULL.items()),
    )
)
