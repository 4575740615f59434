"""SRResNet generators without batch normalisation: RankSRGAN's SRResNet and BasicSR's MSRResNet.

``srresnet`` — the generator of RankSRGAN (Zhang et al., ICCV 2019) and of the authors' SRResNet and
SRGAN retrainings (XPixelGroup/RankSRGAN ``codes/models/archs/RankSRGAN_arch.py``, class ``SRResNet``):
``conv_first`` (no activation) → ``recon_trunk.{0..nb-1}`` residual blocks (conv, ReLU, conv, identity
added, no BN, no scaling) → ``LRconv``, whose output is added to the ``conv_first`` features before
``upconv1`` → PixelShuffle → ReLU (twice for ×4; once, with a ×3 shuffle, for ×3) → ``HRconv`` → ReLU
→ ``conv_last``. No bilinear base image is added. nf 64 and nb 16 give 1,554,499 parameters at ×4.
RGB in [0, 1].

``msrresnet`` — BasicSR's modified SRResNet (``basicsr/archs/srresnet_arch.py``, class ``MSRResNet``):
LeakyReLU(0.1) after ``conv_first``, ``body.{i}`` residual blocks, no LRconv and no long skip,
``upconv1``/``upconv2`` + PixelShuffle + LeakyReLU(0.1), ``conv_hr`` + LeakyReLU(0.1), ``conv_last``,
plus the bilinearly upscaled input (align_corners=False). RGB in [0, 1].

Published key layouts that ``convert_state_dict`` / ``convert_msrresnet_state_dict`` accept:

srresnet
  * RankSRGAN, mmsr version (ours, identity): ``conv_first``, ``recon_trunk.{i}.conv{1,2}``, ``LRconv``,
    ``upconv1``, ``upconv2``, ``HRconv``, ``conv_last`` (``mmsr_RankSRGAN_{NIQE,...}.pth``,
    ``mmsr_SRResNet_pretrain.pth``).
  * Old BasicSR / RankSRGAN v1 ``architecture.SRResNet`` built with ``block.py`` (norm None, mode CNA,
    ReLU, pixelshuffle upsampling; ``codes/models/networks.py`` of the first RankSRGAN commit), whose
    ``B.sequential`` flattens nested Sequentials into ``self.model``:
    ``model.0`` = conv_first; ``model.1`` = ShortcutBlock whose ``sub`` holds the nb ResNetBlocks
    (``model.1.sub.{i}.res.0`` = conv1, ``.res.1`` ReLU, ``.res.2`` = conv2) then the LR conv
    ``model.1.sub.{nb}`` = LRconv; at ×4 ``model.2`` = upconv1 (3 shuffle, 4 ReLU), ``model.5`` = upconv2
    (6, 7), ``model.8`` = HRconv (9 ReLU), ``model.10`` = conv_last. The ×4 correspondence is also the one
    the authors' ``codes/scripts/transfer.py`` applies (key order of the old SRResNet onto the mmsr one)
    to turn ``SRResNet_bicx4_in3nf64nb16.pth`` into ``mmsr_SRResNet_pretrain.pth``. For ×2/×3 (one
    upsampler) the same code gives ``model.2`` = upconv1, ``model.5`` = HRconv, ``model.7`` = conv_last;
    that variant is derived from the code only (no published file is known). Files in this layout:
    ``SRResNet_bicx4_in3nf64nb16.pth``, ``SRGAN.pth``, ``RankSRGAN_{NIQE,Ma,PI}.pth`` (old release).

msrresnet
  * BasicSR (ours, identity): ``conv_first``, ``body.{i}.conv{1,2}``, ``upconv1``, ``upconv2``,
    ``conv_hr``, ``conv_last``.
  * mmsr / RankSRGAN-repo ``SRResNet_arch.MSRResNet``: ``recon_trunk.{i}`` for ``body.{i}`` and
    ``HRconv`` for ``conv_hr`` (no ``LRconv`` — a file with one is RankSRGAN's SRResNet: use ``srresnet``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from sr_models.archs.base import ArchSpec, UnknownLayout, remap_keys

# This family's architectures, read by sr_models.archs' registry.
SPECS: list[ArchSpec] = []

PAPER_RANKSRGAN = (
    "Zhang, Liu, Dong, Qiao. RankSRGAN: Generative Adversarial Networks with Ranker for Image "
    "Super-Resolution. ICCV 2019 (generator: SRResNet without BN, Ledig et al. CVPR 2017)"
)
PAPER_MSRRESNET = (
    "Ledig et al. Photo-Realistic Single Image Super-Resolution Using a GAN. CVPR 2017 "
    "(modified SRResNet of BasicSR, Wang et al.)"
)
_PART = r"(weight|bias)"


class _ResidualBlock(nn.Module):
    """conv 3×3 → ReLU → conv 3×3, added to the input (no BN, no residual scaling)."""

    def __init__(self, nf: int):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


def _upsampling_convs(nf: int, scale: int) -> tuple[nn.Conv2d, nn.Conv2d | None, int]:
    if scale == 4:
        return nn.Conv2d(nf, nf * 4, 3, 1, 1), nn.Conv2d(nf, nf * 4, 3, 1, 1), 2
    if scale in (2, 3):
        return nn.Conv2d(nf, nf * scale * scale, 3, 1, 1), None, scale
    raise ValueError(f"SRResNet supports x2, x3 and x4, not x{scale}")


class SRResNet(nn.Module):
    """RankSRGAN's SRResNet generator (parameter names as in ``RankSRGAN_arch.SRResNet``)."""

    def __init__(self, scale: int = 4, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 16):
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.recon_trunk = nn.Sequential(*(_ResidualBlock(nf) for _ in range(nb)))
        self.LRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        upconv1, upconv2, self._shuffle = _upsampling_convs(nf, scale)
        self.upconv1 = upconv1
        if upconv2 is not None:
            self.upconv2 = upconv2
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)

    def forward(self, x):
        fea = self.conv_first(x)
        out = self.LRconv(self.recon_trunk(fea)) + fea
        out = F.relu(F.pixel_shuffle(self.upconv1(out), self._shuffle))
        if self.scale == 4:
            out = F.relu(F.pixel_shuffle(self.upconv2(out), self._shuffle))
        return self.conv_last(F.relu(self.HRconv(out)))


class MSRResNet(nn.Module):
    """BasicSR's modified SRResNet (parameter names as in ``basicsr/archs/srresnet_arch.py``)."""

    def __init__(self, scale: int = 4, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 16):
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.body = nn.Sequential(*(_ResidualBlock(nf) for _ in range(nb)))
        upconv1, upconv2, self._shuffle = _upsampling_convs(nf, scale)
        self.upconv1 = upconv1
        if upconv2 is not None:
            self.upconv2 = upconv2
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)

    def forward(self, x):
        out = self.body(F.leaky_relu(self.conv_first(x), 0.1))
        out = F.leaky_relu(F.pixel_shuffle(self.upconv1(out), self._shuffle), 0.1)
        if self.scale == 4:
            out = F.leaky_relu(F.pixel_shuffle(self.upconv2(out), self._shuffle), 0.1)
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


# --- key layouts --------------------------------------------------------------------------------


def _block_count(keys, pattern: str) -> int:
    indices = {int(m.group(1)) for key in keys if (m := re.match(pattern, key))}
    if not indices or indices != set(range(len(indices))):
        raise UnknownLayout(f"residual blocks are not numbered 0..n-1 (found {sorted(indices)[:8]})")
    return len(indices)


def _check_complete(state: dict, expected: set[str], what: str) -> dict:
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise UnknownLayout(f"{what}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    return state


def _srresnet_keys(nb: int, x4: bool) -> set[str]:
    names = ["conv_first", "LRconv", "upconv1", "HRconv", "conv_last"] + (["upconv2"] if x4 else [])
    names += [f"recon_trunk.{i}.conv{c}" for i in range(nb) for c in (1, 2)]
    return {f"{name}.{part}" for name in names for part in ("weight", "bias")}


def _msrresnet_keys(nb: int, x4: bool) -> set[str]:
    names = ["conv_first", "upconv1", "conv_hr", "conv_last"] + (["upconv2"] if x4 else [])
    names += [f"body.{i}.conv{c}" for i in range(nb) for c in (1, 2)]
    return {f"{name}.{part}" for name in names for part in ("weight", "bias")}


def convert_state_dict(state: Mapping[str, torch.Tensor]) -> dict:
    """RankSRGAN SRResNet: the old ``model.*`` layout or the mmsr names (ours) → our names."""
    keys = list(state)
    if any(key.startswith("model.") for key in keys):
        nb = _block_count(keys, r"model\.1\.sub\.(\d+)\.res\.")
        x4 = "model.10.weight" in state
        tail = (
            [("upconv1", 2), ("upconv2", 5), ("HRconv", 8), ("conv_last", 10)]
            if x4
            else [("upconv1", 2), ("HRconv", 5), ("conv_last", 7)]
        )
        rules = [
            (rf"model\.0\.{_PART}", r"conv_first.\1"),
            (rf"model\.1\.sub\.(\d+)\.res\.0\.{_PART}", r"recon_trunk.\1.conv1.\2"),
            (rf"model\.1\.sub\.(\d+)\.res\.2\.{_PART}", r"recon_trunk.\1.conv2.\2"),
            (rf"model\.1\.sub\.{nb}\.{_PART}", r"LRconv.\1"),
        ] + [(rf"model\.{index}\.{_PART}", rf"{name}.\1") for name, index in tail]
        what = "srresnet (old BasicSR/RankSRGAN model.* layout)"
        return _check_complete(remap_keys(state, rules, what), _srresnet_keys(nb, x4), what)
    if "LRconv.weight" in state:
        nb = _block_count(keys, r"recon_trunk\.(\d+)\.")
        what = "srresnet (RankSRGAN mmsr layout)"
        return _check_complete(dict(state), _srresnet_keys(nb, "upconv2.weight" in state), what)
    hint = ""
    if any(key.startswith(("body.", "recon_trunk.")) for key in keys):
        hint = " (no LRconv: this looks like BasicSR's MSRResNet — use the msrresnet architecture)"
    raise UnknownLayout(f"srresnet: no RankSRGAN SRResNet layout matches{hint}; first keys {keys[:5]}")


def convert_msrresnet_state_dict(state: Mapping[str, torch.Tensor]) -> dict:
    """MSRResNet: BasicSR names (ours) or the mmsr/RankSRGAN-repo names → our names."""
    keys = list(state)
    if "LRconv.weight" in state or any(key.startswith("model.") for key in keys):
        raise UnknownLayout(
            "msrresnet: this is RankSRGAN's SRResNet (LRconv long skip, no bilinear base) — use srresnet; "
            f"first keys {keys[:5]}"
        )
    if any(key.startswith("body.") for key in keys):
        nb = _block_count(keys, r"body\.(\d+)\.")
        what = "msrresnet (BasicSR layout)"
        return _check_complete(dict(state), _msrresnet_keys(nb, "upconv2.weight" in state), what)
    if any(key.startswith("recon_trunk.") for key in keys):
        nb = _block_count(keys, r"recon_trunk\.(\d+)\.")
        rules = [
            (rf"recon_trunk\.(\d+)\.conv([12])\.{_PART}", r"body.\1.conv\2.\3"),
            (rf"HRconv\.{_PART}", r"conv_hr.\1"),
            (rf"(conv_first|upconv1|upconv2|conv_last)\.{_PART}", r"\1.\2"),
        ]
        what = "msrresnet (mmsr layout)"
        return _check_complete(remap_keys(state, rules, what), _msrresnet_keys(nb, "upconv2.weight" in state), what)
    raise UnknownLayout(f"msrresnet: no MSRResNet layout matches; first keys {keys[:5]}")


def build(scale: int, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 16) -> SRResNet:
    return SRResNet(scale=scale, in_nc=in_nc, out_nc=out_nc, nf=nf, nb=nb)


def build_msrresnet(scale: int, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 16) -> MSRResNet:
    return MSRResNet(scale=scale, in_nc=in_nc, out_nc=out_nc, nf=nf, nb=nb)


SPECS.append(
    ArchSpec(
        name="srresnet",
        family="srresnet",
        build=build,
        convert=convert_state_dict,
        scales=(2, 3, 4),
        color="rgb",
        input_range=1.0,
        pre_upsample=False,
        paper=PAPER_RANKSRGAN,
    )
)
SPECS.append(
    ArchSpec(
        name="msrresnet",
        family="srresnet",
        build=build_msrresnet,
        convert=convert_msrresnet_state_dict,
        scales=(2, 3, 4),
        color="rgb",
        input_range=1.0,
        pre_upsample=False,
        paper=PAPER_MSRRESNET,
    )
)
