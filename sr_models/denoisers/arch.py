"""DnCNN and FFDNet in cszn/KAIR's key layout, so KAIR's published files load strictly (no Django here).

DnCNN (Zhang et al., TIP 2017, "Beyond a Gaussian denoiser"; KAIR ``models/network_dncnn.py``):
Conv+ReLU, (nb − 2) × Conv(+BN)+ReLU, Conv; 3×3 kernels, ``nc`` channels; the network predicts the
noise, the output is input − residual. KAIR publishes its files with the batch norm merged into the
convolutions (``act_mode='R'`` in ``main_test_dncnn.py``): ``model.{0,2,…,2(nb−1)}.weight/bias``,
the ReLUs at the odd positions (SPEC §7.5: verified on ``dncnn_25.pth``).

FFDNet (Zhang et al., TIP 2018; KAIR ``models/network_ffdnet.py``): the image is reversibly
downsampled into four sub-images (pixel unshuffle ×2), a one-channel noise-level map σ/255 is
concatenated, nb convolutions (ReLU between, BN merged in the published files) map
``in_nc·4 + 1`` channels to ``out_nc·4`` and a pixel shuffle ×2 puts them back. KAIR's own
``PixelUnShuffle`` orders channels as torch's ``nn.PixelUnshuffle`` (c·4 + 2i + j), and holds no
tensors, so the keys are ``model.{0,2,…,2(nb−1)}.weight/bias`` as in DnCNN. Odd sizes are padded
by replicating the last row/column and cropped back, as KAIR's ``forward`` does. FFDNet returns
the clean image directly (no residual).

``batch_norm=True`` builds the training form (Conv+BN+ReLU in the body, as both papers train):
``fold_batch_norm`` merges each BN into its convolution, which gives the published layout.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

ARCHS = ("dncnn", "ffdnet")

# DnCNN paper §IV-A and KAIR main_test_dncnn.py: depth 17 for a known σ, 20 for blind models and
# DnCNN-3; 64 channels. FFDNet paper Table I and KAIR main_test_ffdnet.py: 15 layers / 64 channels
# for grey images, 12 layers / 96 channels for colour.
PUBLISHED_DEPTH = {("dncnn", 1): 17, ("dncnn", 3): 17, ("ffdnet", 1): 15, ("ffdnet", 3): 12}
PUBLISHED_BLIND_DNCNN_DEPTH = 20
PUBLISHED_WIDTH = {("dncnn", 1): 64, ("dncnn", 3): 64, ("ffdnet", 1): 64, ("ffdnet", 3): 96}

# cszn/DnCNN TrainingCodes/dncnn_pytorch/main_train.py: BatchNorm2d(eps=0.0001, momentum=0.95)
# ("the Gaussian noise output helps to stabilise batch normalisation, thus a large momentum").
BN_EPS = 1e-4
BN_MOMENTUM = 0.95


def _body(in_channels: int, out_channels: int, nc: int, nb: int, batch_norm: bool) -> nn.Sequential:
    if nb < 2:
        raise ValueError(f"a DnCNN/FFDNet needs at least 2 convolutions, not {nb}")
    layers: list[nn.Module] = [nn.Conv2d(in_channels, nc, 3, padding=1, bias=True), nn.ReLU(inplace=True)]
    for _ in range(nb - 2):
        layers.append(nn.Conv2d(nc, nc, 3, padding=1, bias=True))
        if batch_norm:
            layers.append(nn.BatchNorm2d(nc, eps=BN_EPS, momentum=BN_MOMENTUM))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.Conv2d(nc, out_channels, 3, padding=1, bias=True))
    return nn.Sequential(*layers)


class DnCNN(nn.Module):
    def __init__(self, in_nc: int = 1, out_nc: int = 1, nc: int = 64, nb: int = 17, batch_norm: bool = False):
        super().__init__()
        self.in_nc, self.out_nc, self.nc, self.nb, self.batch_norm = in_nc, out_nc, nc, nb, batch_norm
        self.model = _body(in_nc, out_nc, nc, nb, batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.model(x)  # residual learning: the body predicts the noise


class FFDNet(nn.Module):
    SCALE = 2  # the reversible downsampling factor (FFDNet §III-A)

    def __init__(self, in_nc: int = 1, out_nc: int = 1, nc: int = 64, nb: int = 15, batch_norm: bool = False):
        super().__init__()
        self.in_nc, self.out_nc, self.nc, self.nb, self.batch_norm = in_nc, out_nc, nc, nb, batch_norm
        s = self.SCALE
        self.m_down = nn.PixelUnshuffle(s)
        self.model = _body(in_nc * s * s + 1, out_nc * s * s, nc, nb, batch_norm)
        self.m_up = nn.PixelShuffle(s)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``x`` N×C×H×W in [0, 1]; ``sigma`` the noise level on the same scale (σ/255), a number per
        image (shape N, N×1 or N×1×1×1)."""
        height, width = x.shape[-2:]
        pad_bottom, pad_right = height % 2, width % 2
        if pad_bottom or pad_right:
            x = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate")
        x = self.m_down(x)
        level = sigma.reshape(-1, 1, 1, 1).to(x.dtype).expand(x.shape[0], 1, x.shape[-2], x.shape[-1])
        x = self.m_up(self.model(torch.cat((x, level), dim=1)))
        return x[..., :height, :width]


def build(arch: str, *, channels: int, nb: int, nc: int, batch_norm: bool = False) -> nn.Module:
    if arch not in ARCHS:
        raise ValueError(f"unknown denoiser architecture {arch!r} (known: {', '.join(ARCHS)})")
    if channels not in (1, 3):
        raise ValueError(f"a denoiser works on 1 (grey / Y) or 3 (RGB) channels, not {channels}")
    network = DnCNN if arch == "dncnn" else FFDNet
    return network(in_nc=channels, out_nc=channels, nc=nc, nb=nb, batch_norm=batch_norm)


def expected_keys(nb: int) -> list[str]:
    """The published (BN-merged) layout's keys, in order: ``model.{0,2,…,2(nb−1)}.weight/bias``."""
    return [f"model.{2 * layer}.{kind}" for layer in range(nb) for kind in ("weight", "bias")]


@torch.no_grad()
def fold_batch_norm(model: DnCNN | FFDNet) -> DnCNN | FFDNet:
    """The same function without batch norm: each BN (with its running statistics) merged into the
    convolution before it — W' = W·γ/√(var + ε), b' = (b − mean)·γ/√(var + ε) + β (KAIR
    ``utils/utils_bnorm.py`` merge_bn) — in the published key layout, in eval mode."""
    folded = type(model)(in_nc=model.in_nc, out_nc=model.out_nc, nc=model.nc, nb=model.nb, batch_norm=False)
    convolutions = []
    layers = list(model.model)
    for position, layer in enumerate(layers):
        if not isinstance(layer, nn.Conv2d):
            continue
        weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone()
        following = layers[position + 1] if position + 1 < len(layers) else None
        if isinstance(following, nn.BatchNorm2d):
            scale = following.weight / torch.sqrt(following.running_var + following.eps)
            weight = weight * scale.reshape(-1, 1, 1, 1)
            bias = (bias - following.running_mean) * scale + following.bias
        convolutions.append((weight, bias))
    targets = [layer for layer in folded.model if isinstance(layer, nn.Conv2d)]
    for target, (weight, bias) in zip(targets, convolutions, strict=True):
        target.weight.copy_(weight)
        target.bias.copy_(bias)
    return folded.eval()
