"""The discriminators of the seed papers' GAN training (no Django here); each returns logits.

* ``VGGStyleDiscriminator`` (SRGAN/ESRGAN in BasicSR ``basicsr/archs/discriminator_arch.py``; RankSRGAN's
  ``discriminator_vgg_296``; SPEC §7.6): ten convolutions ``conv{0..4}_{0,1}``, 3x3 stride 1 then 4x4
  stride 2 (padding 1), widths nf, nf, 2nf, 2nf, 4nf, 4nf, 8nf, 8nf, 8nf, 8nf; only conv0_0 has a bias
  and no BatchNorm (``bn{X}_{Y}`` after every other one); LeakyReLU 0.2; ``linear1`` 8nf·s·s → 100,
  LeakyReLU, ``linear2`` 100 → 1. Each 4x4 stride-2 convolution floors the side to half, so
  s = 4 for a 128 patch (ESRGAN, SRGAN) and 9 for 296 (RankSRGAN: 296→148→74→37→18→9); the linear layer
  is sized for one patch side, and other inputs are refused.
* ``EusrDiscriminator`` (4PP-EUSR §3.3 Fig. 5; idearibosome/tf-perceptual-eusr ``train/models/4pp_eusr.py``
  ``_discriminator``): ten biased 3x3 convolutions ``conv1..conv10`` of 32, 32, 64, 64, 128, 128, 256,
  256, 512, 512 channels, strides 1 and 2 alternating, TensorFlow 'same' padding, ``tf.nn.leaky_relu``
  (α 0.2), no BatchNorm ("the batch size is too small"); then ``tf.reshape(x, [-1, 512])``, so the two
  dense layers (512 → 1024, LeakyReLU, → 1) score every cell of the last 512-channel map on its own:
  one logit per 32x32 cell, (N, ⌈H/32⌉·⌈W/32⌉), which the official sigmoid cross-entropy averages. The
  official graph feeds it the generator's [0, 255] RGB (the ground truth as read); it takes any size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2  # BasicSR VGGStyleDiscriminator; tf.nn.leaky_relu's default alpha (4PP-EUSR)
VGG_STRIDED = 5  # five 4x4 stride-2 convolutions: a side under 2**5 leaves the last one nothing
VGG_MIN_PATCH = 2**VGG_STRIDED
VGG_HIDDEN = 100  # linear1's width (BasicSR, mmsr)
EUSR_CHANNELS = (32, 32, 64, 64, 128, 128, 256, 256, 512, 512)  # 4pp_eusr.py conv1..conv10
EUSR_HIDDEN = 1024  # 4pp_eusr.py fc: tf.layers.dense(x, 1024)


class PatchSizeError(ValueError):
    """A patch the discriminator cannot take, said before training starts."""


def vgg_final_side(patch: int) -> int:
    """The side of the last feature map for a square ``patch``: floor-halved by each 4x4 stride-2 conv."""
    side = patch
    for _ in range(VGG_STRIDED):
        side //= 2
    return side


class VGGStyleDiscriminator(nn.Module):
    """BasicSR's VGGStyleDiscriminator for square patches of ``input_size`` (128: ESRGAN/SRGAN; 296:
    RankSRGAN's discriminator_vgg_296); one logit per image, (N, 1)."""

    def __init__(self, input_size: int = 128, num_feat: int = 64, num_in_ch: int = 3):
        super().__init__()
        if input_size < VGG_MIN_PATCH:
            raise PatchSizeError(
                f"the VGG-style discriminator needs patches of at least {VGG_MIN_PATCH} pixels a side "
                f"(five stride-2 convolutions), not {input_size}"
            )
        self.input_size = input_size
        widths = [num_feat, num_feat, 2 * num_feat, 2 * num_feat, 4 * num_feat, 4 * num_feat] + [8 * num_feat] * 4
        cin = num_in_ch
        for index, cout in enumerate(widths):
            stage, step = divmod(index, 2)
            kernel, stride = (3, 1) if step == 0 else (4, 2)
            # BasicSR: conv0_0 biased and without BatchNorm; every later conv unbiased, BatchNorm after it.
            setattr(self, f"conv{stage}_{step}", nn.Conv2d(cin, cout, kernel, stride, 1, bias=index == 0))
            if index:
                setattr(self, f"bn{stage}_{step}", nn.BatchNorm2d(cout, affine=True))
            cin = cout
        side = vgg_final_side(input_size)
        self.linear1 = nn.Linear(8 * num_feat * side * side, VGG_HIDDEN)
        self.linear2 = nn.Linear(VGG_HIDDEN, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise PatchSizeError(
                f"this VGG-style discriminator takes {self.input_size}x{self.input_size} patches "
                f"(its linear layer is sized for them), not {x.shape[-2]}x{x.shape[-1]}"
            )
        feat = self.lrelu(self.conv0_0(x))
        for stage in range(5):
            for step in range(2):
                if stage or step:
                    conv, bn = getattr(self, f"conv{stage}_{step}"), getattr(self, f"bn{stage}_{step}")
                    feat = self.lrelu(bn(conv(feat)))
        return self.linear2(self.lrelu(self.linear1(feat.flatten(1))))


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding of one side: output ⌈size/stride⌉, the odd pixel at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class EusrDiscriminator(nn.Module):
    """4PP-EUSR's discriminator; logits (N, cells), one per 32x32 cell of the input (see the module)."""

    def __init__(self, num_in_ch: int = 3, channels: tuple[int, ...] = EUSR_CHANNELS, hidden: int = EUSR_HIDDEN):
        super().__init__()
        self.strides = tuple(1 if index % 2 == 0 else 2 for index in range(len(channels)))
        cin = num_in_ch
        for index, cout in enumerate(channels, start=1):
            setattr(self, f"conv{index}", nn.Conv2d(cin, cout, 3, self.strides[index - 1], 0, bias=True))
            cin = cout
        self.fc = nn.Linear(cin, hidden)
        self.final = nn.Linear(hidden, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)
        # tf.layers.conv2d / dense defaults: Glorot-uniform kernels, zero biases.
        for layer in self.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = x
        for index, stride in enumerate(self.strides, start=1):
            top, bottom = _same_padding(feat.shape[-2], 3, stride)
            left, right = _same_padding(feat.shape[-1], 3, stride)
            feat = self.lrelu(getattr(self, f"conv{index}")(F.pad(feat, (left, right, top, bottom))))
        cells = feat.permute(0, 2, 3, 1)  # NHWC, as TensorFlow's reshape to [-1, 512] reads it
        logits = self.final(self.lrelu(self.fc(cells)))
        return logits.reshape(x.shape[0], -1)


# The names trainers' recipes use, and what each is.
DISCRIMINATORS = {
    "vgg_style": "BasicSR's VGGStyleDiscriminator (SRGAN/ESRGAN at 128, RankSRGAN's discriminator_vgg_296 at 296)",
    "eusr": "4PP-EUSR's discriminator (no BatchNorm, one logit per 32x32 cell)",
}


def build_discriminator(name: str, patch: int, **options) -> nn.Module:
    """The discriminator ``name`` for square HR patches of side ``patch``; a patch it cannot take is
    refused here, with a message, before any training starts. ``options``: widths (``num_feat`` of the
    VGG-style one; ``channels``/``hidden`` of 4PP-EUSR's) for small test networks."""
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}: one of {', '.join(DISCRIMINATORS)}")
    if not isinstance(patch, int) or isinstance(patch, bool) or patch < 1:
        raise PatchSizeError(f"the patch side must be a positive number of pixels, not {patch!r}")
    if name == "vgg_style":
        return VGGStyleDiscriminator(input_size=patch, **options)
    return EusrDiscriminator(**options)
