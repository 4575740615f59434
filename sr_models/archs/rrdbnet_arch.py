"""RRDBNet, the ESRGAN generator (Wang et al., ECCV-W 2018), ×4.

Architecture as in xinntao/ESRGAN ``RRDBNet_arch.py`` (``RRDBNet(3, 3, 64, 23, gc=32)``): ``conv_first``
→ nb Residual-in-Residual Dense Blocks → ``trunk_conv``, added to the ``conv_first`` features → twice
(nearest ×2, 3×3 conv, LeakyReLU 0.2) → ``HRconv`` + LeakyReLU 0.2 → ``conv_last``. A dense block has
five biased 3×3 convs with growth gc (LeakyReLU 0.2 after the first four) and returns
``x + 0.2·conv5``; an RRDB chains three dense blocks and returns ``x + 0.2·out``. RGB in [0, 1]
(the official test script reads BGR with OpenCV and flips it to RGB). 16,697,987 parameters.

Our parameter names are layout B below. ``convert_state_dict`` accepts, detecting nb from the keys:

* (A) the original release built with ``architecture.RRDB_Net`` / ``block.py``, whose ``B.sequential``
  flattens nested Sequentials into ``self.model`` and wraps each conv in a Sequential (index 0):
  ``model.0`` = conv_first; ``model.1`` = ShortcutBlock with ``sub.{i}.RDB{j}.conv{k}.0`` for the RRDBs
  and ``model.1.sub.{nb}`` = trunk_conv; the two upconv blocks (Upsample, conv, LeakyReLU) give
  ``model.3`` = upconv1 and ``model.6`` = upconv2; ``model.8`` = HRconv; ``model.10`` = conv_last
  (confirmed by xinntao/ESRGAN ``architecture.py``, ``block.py`` and ``transer_RRDB_models.py``, the
  authors' converter from this layout to B).
* (B) xinntao/ESRGAN ``RRDBNet_arch.py`` (ours, identity): ``conv_first``, ``RRDB_trunk.{i}.RDB{j}.conv{k}``,
  ``trunk_conv``, ``upconv1``, ``upconv2``, ``HRconv``, ``conv_last``. ``RRDB_ESRGAN_x4.pth`` and
  ``RRDB_PSNR_x4.pth`` have been published in A and in B.
* (C) XPixelGroup/BasicSR ``basicsr/archs/rrdbnet_arch.py``: ``conv_first``, ``body.{i}.rdb{j}.conv{k}``,
  ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last`` (the mapping of BasicSR's
  ``scripts/model_conversion/convert_models.py``). Only its ×4 form: BasicSR's ×2 and ×1 variants
  pixel-unshuffle the input (conv_first takes 12 or 48 channels) and are refused.

``interpolate_state_dicts`` (ESRGAN §3.4 network interpolation) lives in ``interpolation.py`` and is
re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from sr_models.archs.base import ArchSpec, UnknownLayout, remap_keys
from sr_models.archs.interpolation import interpolate_state_dicts

# This family's architectures, read by sr_models.archs' registry.
SPECS: list[ArchSpec] = []

__all__ = ["RRDBNet", "build", "convert_state_dict", "interpolate_state_dicts"]

PAPER = (
    "Wang, Yu, Wu, Gu, Liu, Dong, Qiao, Loy. ESRGAN: Enhanced Super-Resolution Generative Adversarial "
    "Networks. ECCV Workshops 2018"
)
_PART = r"(weight|bias)"


class _DenseBlock(nn.Module):
    """Five 3×3 convs, each seeing the input and all previous outputs; residual scaled by 0.2."""

    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)

    def forward(self, x):
        features = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        return x + 0.2 * self.conv5(torch.cat(features, 1))


class _RRDB(nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.RDB1 = _DenseBlock(nf, gc)
        self.RDB2 = _DenseBlock(nf, gc)
        self.RDB3 = _DenseBlock(nf, gc)

    def forward(self, x):
        return x + 0.2 * self.RDB3(self.RDB2(self.RDB1(x)))


class RRDBNet(nn.Module):
    def __init__(self, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 23, gc: int = 32):
        super().__init__()
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.RRDB_trunk = nn.Sequential(*(_RRDB(nf, gc) for _ in range(nb)))
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)

    def forward(self, x):
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.RRDB_trunk(fea))
        fea = F.leaky_relu(self.upconv1(F.interpolate(fea, scale_factor=2, mode="nearest")), 0.2)
        fea = F.leaky_relu(self.upconv2(F.interpolate(fea, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.HRconv(fea), 0.2))


# --- key layouts --------------------------------------------------------------------------------


def _block_count(keys, pattern: str) -> int:
    indices = {int(m.group(1)) for key in keys if (m := re.match(pattern, key))}
    if not indices or indices != set(range(len(indices))):
        raise UnknownLayout(f"rrdbnet: RRDB blocks are not numbered 0..n-1 (found {sorted(indices)[:8]})")
    return len(indices)


def _expected_keys(nb: int) -> set[str]:
    names = ["conv_first", "trunk_conv", "upconv1", "upconv2", "HRconv", "conv_last"]
    names += [f"RRDB_trunk.{i}.RDB{j}.conv{k}" for i in range(nb) for j in (1, 2, 3) for k in range(1, 6)]
    return {f"{name}.{part}" for name in names for part in ("weight", "bias")}


def _check_complete(state: dict, nb: int, what: str) -> dict:
    expected = _expected_keys(nb)
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise UnknownLayout(f"{what}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    return state


def convert_state_dict(state: Mapping[str, torch.Tensor]) -> dict:
    """ESRGAN old (A), new (B, ours) or BasicSR (C) key layout → ours; any nb."""
    keys = list(state)
    if "model.0.weight" in state:
        nb = _block_count(keys, r"model\.1\.sub\.(\d+)\.RDB")
        rules = [
            (rf"model\.0\.{_PART}", r"conv_first.\1"),
            (rf"model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.{_PART}", r"RRDB_trunk.\1.RDB\2.conv\3.\4"),
            (rf"model\.1\.sub\.{nb}\.{_PART}", r"trunk_conv.\1"),
            (rf"model\.3\.{_PART}", r"upconv1.\1"),
            (rf"model\.6\.{_PART}", r"upconv2.\1"),
            (rf"model\.8\.{_PART}", r"HRconv.\1"),
            (rf"model\.10\.{_PART}", r"conv_last.\1"),
        ]
        what = "rrdbnet (old ESRGAN model.* layout)"
        return _check_complete(remap_keys(state, rules, what), nb, what)
    if "trunk_conv.weight" in state or any(key.startswith("RRDB_trunk.") for key in keys):
        return _check_complete(dict(state), _block_count(keys, r"RRDB_trunk\.(\d+)\."), "rrdbnet (ESRGAN layout)")
    if "conv_body.weight" in state or any(key.startswith("body.") for key in keys):
        first = state.get("conv_first.weight")
        if first is not None and first.ndim == 4 and first.shape[1] in (12, 48):
            raise UnknownLayout(
                f"rrdbnet: BasicSR's x{2 if first.shape[1] == 12 else 1} RRDBNet variant (the input is "
                f"pixel-unshuffled, conv_first takes {first.shape[1]} channels) is not supported; only x4"
            )
        nb = _block_count(keys, r"body\.(\d+)\.")
        rules = [
            (rf"body\.(\d+)\.rdb([123])\.conv([1-5])\.{_PART}", r"RRDB_trunk.\1.RDB\2.conv\3.\4"),
            (rf"conv_body\.{_PART}", r"trunk_conv.\1"),
            (rf"conv_up([12])\.{_PART}", r"upconv\1.\2"),
            (rf"conv_hr\.{_PART}", r"HRconv.\1"),
            (rf"(conv_first|conv_last)\.{_PART}", r"\1.\2"),
        ]
        what = "rrdbnet (BasicSR layout)"
        return _check_complete(remap_keys(state, rules, what), nb, what)
    raise UnknownLayout(f"rrdbnet: no ESRGAN/BasicSR RRDBNet layout matches; first keys {keys[:5]}")


def build(scale: int = 4, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 23, gc: int = 32) -> RRDBNet:
    if scale != 4:
        raise ValueError(f"RRDBNet (ESRGAN) is x4 only, not x{scale}")
    return RRDBNet(in_nc=in_nc, out_nc=out_nc, nf=nf, nb=nb, gc=gc)


SPECS.append(
    ArchSpec(
        name="rrdbnet",
        family="rrdbnet",
        build=build,
        convert=convert_state_dict,
        scales=(4,),
        color="rgb",
        input_range=1.0,
        pre_upsample=False,
        paper=PAPER,
    )
)
