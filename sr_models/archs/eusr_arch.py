"""EUSR as used by 4PP-EUSR (Choi, Kim, Cheon, Lee, Neurocomputing 2019; Kim & Lee, CVPR-W 2018).

Read from idearibosome/tf-perceptual-eusr ``train/models/4pp_eusr.py`` (the generator is the same
in ``train/models/eusr.py``), TensorFlow 1 with ``tf.layers.conv2d`` (biased, 'same' padding):

* input RGB in [0, 255] minus the mean (114.4, 111.5, 103.0); the mean is added back to the output;
* ``first_conv``: 3×3, 3 → 64;
* ``initial_blocks/x{2,4,8}``: per scale, two local residual blocks with **5×5** kernels;
* ``shared``: a residual module — 32 local residual blocks (3×3), a 3×3 conv, and the module's input added;
* ``upscaling/x{s}``: log2(s) enhanced upscaling modules ``m{k}``; each chains four residual modules
  ``px0..px3`` (one local residual block + conv + skip each; px{p+1} takes px{p}'s output), concatenates
  their four outputs (256 channels) and applies ``tf.depth_to_space(·, 2)``, so px{2i+j} becomes the
  sub-pixel (i, j) of each 2×2 output cell (TensorFlow's channel order, not PixelShuffle's); then a
  3×3 conv to RGB;
* local residual block: conv → ReLU → conv, added to the input, no scaling (``weight=1.0``).

The graph holds the ×2, ×4 and ×8 paths (6,295,689 parameters, "6.3M" in 4PP-EUSR Table 1); its
``sr_input_scale`` picks the ×4 output: 2 → the ×2 path applied twice (the whole network, mean shift
included, on the first pass's unclipped output), 4 → the ×4 path (the paper's reported output), 8 → the
×8 path then ``tf.image.resize_images(..., BICUBIC, align_corners=False)`` to 4× the input size. Our
``forward`` does the same for the build option ``path`` = ``"x2x2"``, ``"x4"`` (default) or ``"x8down"``.
TF1's legacy bicubic resize (``resize_bicubic_tf1``) samples source coordinate ``out·(in/out)`` with no
half-pixel offset, Keys' cubic with a = −0.75 from a 1024-entry table and clamped borders, and no
antialiasing; for an exact ÷2 it therefore returns the pixels ``[2i, 2j]``.

Parameter names follow the TensorFlow variable names. ``tf.layers.conv2d`` without a name gets the
variable scope ``conv2d``, ``conv2d_1``, ``conv2d_2``, … numbered per enclosing scope in creation order,
so (kernel HWIO → our weight OIHW by ``permute(3, 2, 0, 1)``; bias → bias), with nb = 32 shared blocks:

=================================================================  ==============================================
TensorFlow variable                                                 ours
=================================================================  ==============================================
``generator/first_conv/conv2d/{kernel,bias}``                       ``first_conv.conv2d.{weight,bias}``
``generator/initial_blocks/x{s}/conv2d{,_1}``  (LRB 1: conv1, conv2)  ``initial_blocks.x{s}.conv2d{,_1}``
``generator/initial_blocks/x{s}/conv2d_{2,3}`` (LRB 2)               ``initial_blocks.x{s}.conv2d_{2,3}``
``generator/shared/conv2d_{2b}``, ``conv2d_{2b+1}`` (LRB b, 0..31)  ``shared.conv2d_{2b}``, ``shared.conv2d_{2b+1}``
``generator/shared/conv2d_64`` (the module's conv)                  ``shared.conv2d_64``
``generator/upscaling/x{s}/m{k}/px{p}/conv2d{,_1}`` (LRB)            ``upscaling.x{s}.m{k}.px{p}.conv2d{,_1}``
``generator/upscaling/x{s}/m{k}/px{p}/conv2d_2`` (module conv)       ``upscaling.x{s}.m{k}.px{p}.conv2d_2``
``generator/upscaling/x{s}/conv2d`` (to RGB)                         ``upscaling.x{s}.conv2d``
=================================================================  ==============================================

(``conv2d`` stands for index 0: ``conv2d_0`` is never a TF name; s ∈ {2, 4, 8}, k < log2 s, p ∈ 0..3.)
So a TF converter maps ``name[len("generator/"):].replace("/", ".")`` with ``kernel`` → ``weight``.
The 4PP-EUSR graph calls the generator four times (``reuse=True``); re-entering the ``generator`` scope
restarts the numbering, so every pass uses these same variables. ``train/freeze.py`` freezes with
``convert_variables_to_constants``, which (TensorFlow's behaviour; not checked on the released ``.pb``)
keeps each variable's name on its Const node.
The weights exist only as frozen TensorFlow graphs; ``convert_state_dict`` accepts our own layout only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from sr_models.archs.base import ArchSpec, UnknownLayout

# This family's architectures, read by sr_models.archs' registry.
SPECS: list[ArchSpec] = []

PAPER = (
    "Choi, Kim, Cheon, Lee. Deep learning-based image super-resolution considering quantitative and "
    "perceptual quality. Neurocomputing 2019 (4PP-EUSR); EUSR: Kim, Lee, CVPR Workshops 2018"
)
RGB_MEAN = (114.4, 111.5, 103.0)
MODEL_SCALES = (2, 4, 8)
PATHS = ("x4", "x2x2", "x8down")


def _tf_name(index: int) -> str:
    return "conv2d" if index == 0 else f"conv2d_{index}"


def _convs(count: int, channels: int, kernel: int) -> nn.ModuleDict:
    return nn.ModuleDict({_tf_name(i): nn.Conv2d(channels, channels, kernel, 1, kernel // 2) for i in range(count)})


def _residual_blocks(convs: nn.ModuleDict, x, blocks: int, start: int = 0):
    """``blocks`` local residual blocks (conv → ReLU → conv, + input) on convs start, start+1, …"""
    for b in range(blocks):
        first, second = convs[_tf_name(start + 2 * b)], convs[_tf_name(start + 2 * b + 1)]
        x = x + second(F.relu(first(x)))
    return x


def _residual_module(convs: nn.ModuleDict, x, blocks: int):
    """Local residual blocks, then a conv, plus the module's input."""
    return x + convs[_tf_name(2 * blocks)](_residual_blocks(convs, x, blocks))


def depth_to_space_tf(x: torch.Tensor, block: int = 2) -> torch.Tensor:
    """``tf.depth_to_space`` (NHWC semantics) on NCHW: out[c, h·b + i, w·b + j] = in[(i·b + j)·C + c, h, w]."""
    n, channels, height, width = x.shape
    c = channels // (block * block)
    x = x.view(n, block, block, c, height, width).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(n, c, height * block, width * block)


def _tf1_cubic_weights(in_size: int, out_size: int, dtype=torch.float32) -> torch.Tensor:
    """(out, in) matrix of TF1's legacy ResizeBicubic along one axis (align_corners=False)."""
    table_size, a = 1024, -0.75
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)  # TF: float(in) / out, in float

    def near(t):  # |t| <= 1
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):  # 1 < |t| < 2
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    for out_loc in range(out_size):
        in_loc = float(torch.tensor(float(out_loc), dtype=torch.float32) * scale)  # float(out) * scale
        floor = math.floor(in_loc)
        offset = round((in_loc - floor) * table_size)  # lrintf: half to even, as Python's round
        t = offset / table_size
        weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
        for tap, weight in zip(range(floor - 1, floor + 3), weights, strict=True):
            matrix[out_loc, min(max(tap, 0), in_size - 1)] += weight
    return matrix.to(dtype)


def resize_bicubic_tf1(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``tf.image.resize_images(x, [height, width], BICUBIC, align_corners=False)`` of TF 1.x on NCHW."""
    rows = _tf1_cubic_weights(x.shape[-2], height).to(x.device, x.dtype)
    cols = _tf1_cubic_weights(x.shape[-1], width).to(x.device, x.dtype)
    return torch.einsum("oh,nchw,pw->ncop", rows, x, cols)


class EUSR(nn.Module):
    """The multi-scale EUSR generator of 4PP-EUSR; ``path`` picks how the ×4 output is made."""

    def __init__(self, path: str = "x4", n_feats: int = 64, n_shared_blocks: int = 32, n_upscale_blocks: int = 1):
        super().__init__()
        if path not in PATHS:
            raise ValueError(f"EUSR path must be one of {PATHS}, not {path!r}")
        self.path, self.n_shared_blocks, self.n_upscale_blocks = path, n_shared_blocks, n_upscale_blocks
        self.register_buffer("rgb_mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.first_conv = nn.ModuleDict({"conv2d": nn.Conv2d(3, n_feats, 3, 1, 1)})
        self.initial_blocks = nn.ModuleDict({f"x{s}": _convs(4, n_feats, 5) for s in MODEL_SCALES})
        self.shared = _convs(2 * n_shared_blocks + 1, n_feats, 3)
        upscaling = {}
        for s in MODEL_SCALES:
            modules = {
                f"m{k}": nn.ModuleDict({f"px{p}": _convs(2 * n_upscale_blocks + 1, n_feats, 3) for p in range(4)})
                for k in range(int(math.log2(s)))
            }
            upscaling[f"x{s}"] = nn.ModuleDict({**modules, "conv2d": nn.Conv2d(n_feats, 3, 3, 1, 1)})
        self.upscaling = nn.ModuleDict(upscaling)

    def generate(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        """One pass of the network through the ×``scale`` path (2, 4 or 8), RGB in [0, 255]."""
        key = f"x{scale}"
        x = self.first_conv["conv2d"](x - self.rgb_mean)
        x = _residual_blocks(self.initial_blocks[key], x, 2)
        x = _residual_module(self.shared, x, self.n_shared_blocks)
        upscaling = self.upscaling[key]
        for k in range(int(math.log2(scale))):
            outputs = []
            for p in range(4):
                x = _residual_module(upscaling[f"m{k}"][f"px{p}"], x, self.n_upscale_blocks)
                outputs.append(x)
            x = depth_to_space_tf(torch.cat(outputs, 1), 2)
        return upscaling["conv2d"](x) + self.rgb_mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.path == "x4":
            return self.generate(x, 4)
        if self.path == "x2x2":
            return self.generate(self.generate(x, 2), 2)
        return resize_bicubic_tf1(self.generate(x, 8), x.shape[-2] * 4, x.shape[-1] * 4)


# --- initial weights (the authors' training code) ----------------------------------------------------


def expected_residual_blocks(n_shared_blocks: int, n_upscale_blocks: int, scales=MODEL_SCALES) -> int:
    """``num_expected_residual_blocks`` of tf-perceptual-eusr ``train/models/eusr.py``: two scale-specific local
    residual blocks per training scale, the shared ones, and 4·log2(s) modules of ``n_upscale_blocks`` per scale
    (62 for the paper's 32 and 1 over ×2, ×4, ×8)."""
    return 2 * len(scales) + n_shared_blocks + sum(4 * int(math.log2(s)) * n_upscale_blocks for s in scales)


def initialize(model: EUSR) -> None:
    """EUSR's initial weights as ``train/models/eusr.py`` draws them (TensorFlow 1): the convolutions inside the
    local residual blocks from ``variance_scaling_initializer(factor=1e-4 / blocks, mode='FAN_IN',
    uniform=False)`` — a normal truncated at two standard deviations, std sqrt(1.3·factor / fan_in) — so each
    block starts close to the identity; every other convolution Glorot-uniform (``tf.layers.conv2d``'s
    default); all biases zero."""
    factor = 1e-4 / expected_residual_blocks(model.n_shared_blocks, model.n_upscale_blocks)
    in_blocks = set()
    for key in MODEL_SCALES:  # initial_blocks x{s}: two LRBs, four convs
        in_blocks.update(model.initial_blocks[f"x{key}"].values())
    shared = model.shared
    in_blocks.update(shared[_tf_name(i)] for i in range(2 * model.n_shared_blocks))
    for path in model.upscaling.values():
        for name, module in path.items():
            if name.startswith("m"):
                for px in module.values():
                    in_blocks.update(px[_tf_name(i)] for i in range(2 * model.n_upscale_blocks))
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, nn.Conv2d):
                continue
            if module in in_blocks:
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                std = math.sqrt(1.3 * factor / fan_in)
                nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            else:
                nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


# --- key layout ---------------------------------------------------------------------------------


def _expected_keys(n_shared_blocks: int, n_upscale_blocks: int) -> set[str]:
    names = ["first_conv.conv2d"]
    names += [f"initial_blocks.x{s}.{_tf_name(i)}" for s in MODEL_SCALES for i in range(4)]
    names += [f"shared.{_tf_name(i)}" for i in range(2 * n_shared_blocks + 1)]
    for s in MODEL_SCALES:
        names.append(f"upscaling.x{s}.conv2d")
        names += [
            f"upscaling.x{s}.m{k}.px{p}.{_tf_name(i)}"
            for k in range(int(math.log2(s)))
            for p in range(4)
            for i in range(2 * n_upscale_blocks + 1)
        ]
    return {f"{name}.{part}" for name in names for part in ("weight", "bias")}


def _conv_count(keys, pattern: str) -> int:
    indices = {int(m.group(1) or 0) for key in keys if (m := re.fullmatch(pattern, key))}
    return len(indices)


def convert_state_dict(state: Mapping[str, torch.Tensor]) -> dict:
    """Our EUSR layout only (the published weights are TensorFlow graphs, converted elsewhere)."""
    keys = list(state)
    if any("/" in key or key.endswith(":0") for key in keys):
        raise UnknownLayout(
            "eusr: these are TensorFlow variable names (e.g. generator/shared/conv2d/kernel): convert the "
            f"frozen graph with: python manage.py convert_weights eusr FILE.pb; first keys {keys[:3]}"
        )
    shared_convs = _conv_count(keys, r"shared\.conv2d(?:_(\d+))?\.weight")
    px_convs = _conv_count(keys, r"upscaling\.x2\.m0\.px0\.conv2d(?:_(\d+))?\.weight")
    if shared_convs % 2 != 1 or px_convs % 2 != 1:
        raise UnknownLayout(f"eusr: not our EUSR layout; first keys {keys[:5]}")
    expected = _expected_keys((shared_convs - 1) // 2, (px_convs - 1) // 2)
    missing, unexpected = sorted(expected - set(keys)), sorted(set(keys) - expected)
    if missing or unexpected:
        raise UnknownLayout(f"eusr: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    return dict(state)


def build(
    scale: int = 4, path: str = "x4", n_feats: int = 64, n_shared_blocks: int = 32, n_upscale_blocks: int = 1
) -> EUSR:
    if scale != 4:
        raise ValueError(f"4PP-EUSR produces x4 outputs (path x4, x2x2 or x8down), not x{scale}")
    return EUSR(path=path, n_feats=n_feats, n_shared_blocks=n_shared_blocks, n_upscale_blocks=n_upscale_blocks)


SPECS.append(
    ArchSpec(
        name="eusr",
        family="eusr",
        build=build,
        convert=convert_state_dict,
        scales=(4,),
        color="rgb",
        input_range=255.0,
        pre_upsample=False,
        paper=PAPER,
        options=(("path", "x4"),),
    )
)
