"""SRCNN, FSRCNN, VDSR, EDSR and RCAN: parameter counts, forward shapes and the published key layouts.

The layouts' key names are written out here from the authors' code (yjn870/SRCNN-pytorch and
FSRCNN-pytorch ``models.py``, twtygqyy/pytorch-vdsr ``vdsr.py``, sanghyun-son/EDSR-PyTorch
``src/model/edsr.py`` + ``common.py``, yulunzhang/RCAN ``RCAN_TestCode/code/model/rcan.py``, BasicSR
``basicsr/archs/edsr_arch.py``, ``rcan_arch.py`` and ``arch_util.py``), never derived from our converters.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sr_models.archs import ARCHS, UnknownLayout
from sr_models.archs import edsr_arch as edsr
from sr_models.archs import fsrcnn_arch as fsrcnn
from sr_models.archs import rcan_arch as rcan
from sr_models.archs import srcnn_arch as srcnn
from sr_models.archs import vdsr_arch as vdsr

NAMES = ("srcnn", "fsrcnn", "vdsr", "edsr_baseline", "edsr", "rcan")
# small but complete configurations for forward passes (every module kind present)
SMALL = {
    "edsr_baseline": {"n_resblocks": 2, "n_feats": 16},
    "edsr": {"n_resblocks": 2, "n_feats": 16},
    "rcan": {"n_resgroups": 2, "n_resblocks": 2, "n_feats": 16, "reduction": 4},
}
MEAN_SHIFT = ("sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias")  # not in BasicSR files
DIV2K_MEAN_255 = torch.tensor([0.4488, 0.4371, 0.4040]) * 255


def build(name: str, scale: int, **options):
    spec = ARCHS[name]
    return spec.build(scale=scale, **{**dict(spec.options), **options}).eval()


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def total(model) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cout * cin * k * k + (cout if bias else 0)


# --- registry ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, family, scales, color, input_range, pre_upsample",
    [
        ("srcnn", "srcnn", (2, 3, 4), "y", 1.0, True),
        ("fsrcnn", "fsrcnn", (2, 3, 4), "y", 1.0, False),
        ("vdsr", "vdsr", (2, 3, 4), "y", 1.0, True),
        ("edsr_baseline", "edsr", (2, 3, 4), "rgb", 255.0, False),
        ("edsr", "edsr", (2, 3, 4), "rgb", 255.0, False),
        ("rcan", "rcan", (2, 3, 4, 8), "rgb", 255.0, False),
    ],
)
def test_registered_specs(name, family, scales, color, input_range, pre_upsample):
    spec = ARCHS[name]
    assert (spec.family, spec.scales, spec.color, spec.input_range, spec.pre_upsample) == (
        family,
        scales,
        color,
        input_range,
        pre_upsample,
    )
    assert spec.paper and spec.convert is not None


# --- parameter counts ----------------------------------------------------------------------------


def test_srcnn_parameter_count():
    # conv1 64*1*9*9 + 64 = 5,248; conv2 32*64*5*5 + 32 = 51,232; conv3 1*32*5*5 + 1 = 801
    assert conv(1, 64, 9) + conv(64, 32, 5) + conv(32, 1, 5) == 57_281
    assert trainable(build("srcnn", 3)) == 57_281


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_parameter_count(scale):
    # FSRCNN(56, 12, 4), the same for every scale (the stride is no parameter):
    # first_part: conv 56*1*5*5 + 56 = 1,456, PReLU 56                        -> 1,512
    # mid_part:   conv 12*56 + 12 = 684, PReLU 12                              ->   696
    #             4 x (conv 12*12*3*3 + 12 = 1,308, PReLU 12)                  -> 5,280
    #             conv 56*12 + 56 = 728, PReLU 56                              ->   784
    # last_part:  ConvTranspose2d weight 56*1*9*9 = 4,536, bias 1              -> 4,537
    # total 1,512 + 696 + 5,280 + 784 + 4,537 = 12,809
    assert (conv(1, 56, 5) + 56) + (conv(56, 12, 1) + 12) + 4 * (conv(12, 12, 3) + 12) + (conv(12, 56, 1) + 56) + (
        56 * 81 + 1
    ) == 12_809
    assert trainable(build("fsrcnn", scale)) == 12_809


def test_vdsr_parameter_count():
    # 20 bias-free 3x3 convolutions: input 64*1*9 = 576, 18 x 64*64*9 = 663,552, output 1*64*9 = 576
    assert 576 + 18 * 36_864 + 576 == 664_704
    assert trainable(build("vdsr", 2)) == 664_704


def edsr_count(n_blocks: int, feats: int, scale: int) -> int:
    steps = {2: [4], 3: [9], 4: [4, 4], 8: [4, 4, 4]}[scale]
    upsampler = sum(conv(feats, r * feats, 3) for r in steps)
    return (
        conv(3, feats, 3) + 2 * n_blocks * conv(feats, feats, 3) + conv(feats, feats, 3) + upsampler + conv(feats, 3, 3)
    )


@pytest.mark.published
def test_edsr_full_x4_parameter_count():
    # head 7,168 + 32 blocks x 2 x 590,080 + body.32 590,080 + tail.0 2 x 2,360,320 + tail.1 6,915
    model = build("edsr", 4)  # the real network, built on the CPU
    assert edsr_count(32, 256, 4) == 43_089_923
    assert trainable(model) == 43_089_923
    assert round(trainable(model) / 1e6, 1) == 43.1  # EDSR-PyTorch README and 4PP-EUSR Table 1: 43.1M
    assert total(model) == 43_089_923 + 2 * (9 + 3)  # + the frozen MeanShift convolutions


@pytest.mark.published
def test_edsr_baseline_x4_parameter_count():
    # head 1,792 + 16 x 2 x 36,928 + body.16 36,928 + tail.0 2 x 147,712 + tail.1 1,731
    model = build("edsr_baseline", 4)
    assert edsr_count(16, 64, 4) == 1_517_571
    assert trainable(model) == 1_517_571
    assert round(trainable(model) / 1e6, 2) == 1.52  # EDSR-PyTorch README: EDSR_baseline_x4 1.52 M


@pytest.mark.published
@pytest.mark.parametrize(
    "name, scale, millions",
    # the EDSR-PyTorch README's table: baseline x2 1.37 M, x3 1.55 M; EDSR x2 40.7 M, x3 43.7 M
    [("edsr_baseline", 2, 1.37), ("edsr_baseline", 3, 1.55), ("edsr", 2, 40.7), ("edsr", 3, 43.7)],
)
def test_edsr_other_scales_parameter_counts(name, scale, millions):
    with torch.device("meta"):  # the real configuration, without allocating its weights
        model = ARCHS[name].build(scale=scale)
    n_blocks, feats = (16, 64) if name == "edsr_baseline" else (32, 256)
    assert trainable(model) == edsr_count(n_blocks, feats, scale)
    assert round(trainable(model) / 1e6, 2 if millions < 10 else 1) == millions


@pytest.mark.published
def test_rcan_x4_parameter_count():
    # RCAB: 2 x 36,928 + channel attention (64*4 + 4) + (4*64 + 64) = 74,436
    # group: 20 x 74,436 + 36,928 = 1,525,648; body: 10 groups + body.10 36,928
    # head 1,792 + 15,256,480 + 36,928 + tail.0 2 x 147,712 + tail.1 1,731 = 15,592,355
    rcab = 2 * conv(64, 64, 3) + conv(64, 4, 1) + conv(4, 64, 1)
    assert rcab == 74_436
    expected = conv(3, 64, 3) + 10 * (20 * rcab + conv(64, 64, 3)) + conv(64, 64, 3) + 2 * conv(64, 256, 3)
    expected += conv(64, 3, 3)
    assert expected == 15_592_355
    model = build("rcan", 4)
    assert trainable(model) == 15_592_355
    assert round(trainable(model) / 1e6, 1) == 15.6  # 4PP-EUSR Table 1: 15.6M


# --- forward passes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, scale", [(name, scale) for name in NAMES for scale in ARCHS[name].scales])
def test_forward_shape(name, scale):
    spec = ARCHS[name]
    model = build(name, scale, **SMALL.get(name, {}))
    channels = 1 if spec.color == "y" else 3
    x = torch.rand(1, channels, 12, 12) * spec.input_range
    with torch.no_grad():
        y = model(x)
    side = 12 if spec.pre_upsample else 12 * scale
    assert y.shape == (1, channels, side, side)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", ["edsr_baseline", "rcan"])
def test_mean_shift_inside_the_model(name):
    model = build(name, 2, **SMALL[name])
    x = torch.rand(1, 3, 4, 4) * 255
    with torch.no_grad():
        assert torch.allclose(model.sub_mean(x), x - DIV2K_MEAN_255.view(1, 3, 1, 1), atol=1e-4)
        assert torch.allclose(model.add_mean(x), x + DIV2K_MEAN_255.view(1, 3, 1, 1), atol=1e-4)
        for module in (model.head, model.body, model.tail):  # a network that predicts nothing ...
            for p in module.parameters():
                p.zero_()
        # ... returns the DIV2K mean colour, in [0, 255]
        assert torch.allclose(model(x), DIV2K_MEAN_255.view(1, 3, 1, 1).expand(1, 3, 8, 8), atol=1e-4)
    assert not any(p.requires_grad for p in (*model.sub_mean.parameters(), *model.add_mean.parameters()))


# --- published layouts ---------------------------------------------------------------------------


def relabel(model, theirs_to_ours: dict[str, str], absent: tuple[str, ...] = ()) -> dict:
    """The model's weights under the layout's names; the mapping covers every tensor but ``absent``."""
    ours = model.state_dict()
    assert sorted([*theirs_to_ours.values(), *absent]) == sorted(ours), "the test's mapping must cover our names"
    return {theirs: ours[name].clone() for theirs, name in theirs_to_ours.items()}


def assert_loads_and_matches(reference, name: str, scale: int, options: dict, state: dict, convert, x):
    """``convert(state)`` loads strictly into a fresh network that then computes what ``reference`` does."""
    fresh = build(name, scale, **options)
    with torch.no_grad():
        for p in fresh.parameters():
            p.add_(1.0)  # whatever init the fresh network had, its weights must come from the state dict
    fresh.load_state_dict(convert(state), strict=True)
    with torch.no_grad():
        assert torch.equal(fresh(x), reference(x))


def perturbed(name: str, scale: int, **options):
    """A model whose MeanShift differs from the DIV2K default too (official files carry their own)."""
    model = build(name, scale, **options)
    with torch.no_grad():
        model.sub_mean.bias.add_(torch.tensor([1.0, -2.0, 3.0]))
        model.add_mean.bias.sub_(torch.tensor([1.0, -2.0, 3.0]))
    return model


def test_srcnn_yjn870_layout():
    model = build("srcnn", 3)
    names = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "conv3.bias"]
    state = relabel(model, {n: n for n in names})
    assert_loads_and_matches(model, "srcnn", 3, {}, state, srcnn.convert_state_dict, torch.rand(1, 1, 10, 10))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_yjn870_layout(scale):
    model = build("fsrcnn", scale)
    names = ["first_part.0.weight", "first_part.0.bias", "first_part.1.weight"]  # conv, PReLU
    for i in (0, 2, 4, 6, 8, 10):  # mid_part: 1x1 shrink, four 3x3 maps, 1x1 expand, each + PReLU
        names += [f"mid_part.{i}.weight", f"mid_part.{i}.bias", f"mid_part.{i + 1}.weight"]
    names += ["last_part.weight", "last_part.bias"]
    state = relabel(model, {n: n for n in names})
    assert state["last_part.weight"].shape == (56, 1, 9, 9)
    assert_loads_and_matches(model, "fsrcnn", scale, {}, state, fsrcnn.convert_state_dict, torch.rand(1, 1, 10, 10))


def test_vdsr_twtygqyy_layout():
    model = build("vdsr", 2)
    names = ["input.weight", *(f"residual_layer.{i}.conv.weight" for i in range(18)), "output.weight"]
    state = relabel(model, {n: n for n in names})
    assert_loads_and_matches(model, "vdsr", 2, {}, state, vdsr.convert_state_dict, torch.rand(1, 1, 10, 10))


def test_vdsr_twtygqyy_first_commit_features_layout():
    # commit 7cd0d62: one nn.Sequential "features" of conv, ReLU, ..., conv: the convs at 0, 2, ..., 38
    model = build("vdsr", 2)
    ours = ["input.weight", *(f"residual_layer.{i}.conv.weight" for i in range(18)), "output.weight"]
    state = relabel(model, {f"features.{2 * i}.weight": name for i, name in enumerate(ours)})
    assert_loads_and_matches(model, "vdsr", 2, {}, state, vdsr.convert_state_dict, torch.rand(1, 1, 10, 10))


def edsr_official_names(n_blocks: int, scale: int) -> list[str]:
    upsampler = {2: [0], 3: [0], 4: [0, 2], 8: [0, 2, 4]}[scale]
    names = ["sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias", "head.0.weight", "head.0.bias"]
    for i in range(n_blocks):
        names += [
            f"body.{i}.body.0.weight",
            f"body.{i}.body.0.bias",
            f"body.{i}.body.2.weight",
            f"body.{i}.body.2.bias",
        ]
    names += [f"body.{n_blocks}.weight", f"body.{n_blocks}.bias"]
    names += [f"tail.0.{i}.{p}" for i in upsampler for p in ("weight", "bias")]
    return names + ["tail.1.weight", "tail.1.bias"]


@pytest.mark.parametrize("name, scale", [("edsr_baseline", 2), ("edsr_baseline", 3), ("edsr", 4)])
def test_edsr_pytorch_layout(name, scale):
    options = SMALL[name]
    model = perturbed(name, scale, **options)
    names = edsr_official_names(options["n_resblocks"], scale)
    state = relabel(model, {n: n for n in names})
    x = torch.rand(1, 3, 10, 10) * 255
    assert_loads_and_matches(model, name, scale, options, state, edsr.convert_state_dict, x)


def test_edsr_pytorch_layout_without_mean_shift():
    # the official loaders use strict=False; a file without sub_mean/add_mean gets the DIV2K mean
    model = build("edsr_baseline", 4, **SMALL["edsr_baseline"])
    names = [n for n in edsr_official_names(2, 4) if "_mean" not in n]
    state = {n: model.state_dict()[n] for n in names}
    x = torch.rand(1, 3, 10, 10) * 255
    assert_loads_and_matches(model, "edsr_baseline", 4, SMALL["edsr_baseline"], state, edsr.convert_state_dict, x)


def basicsr_edsr_mapping(n_blocks: int, scale: int) -> dict[str, str]:
    upsampler = {2: [0], 3: [0], 4: [0, 2], 8: [0, 2, 4]}[scale]
    mapping = {"conv_first.weight": "head.0.weight", "conv_first.bias": "head.0.bias"}
    for i in range(n_blocks):
        for p in ("weight", "bias"):
            mapping[f"body.{i}.conv1.{p}"] = f"body.{i}.body.0.{p}"
            mapping[f"body.{i}.conv2.{p}"] = f"body.{i}.body.2.{p}"
    for p in ("weight", "bias"):
        mapping[f"conv_after_body.{p}"] = f"body.{n_blocks}.{p}"
        mapping.update({f"upsample.{i}.{p}": f"tail.0.{i}.{p}" for i in upsampler})
        mapping[f"conv_last.{p}"] = f"tail.1.{p}"
    return mapping


def basicsr_edsr_forward(state: dict, x01: torch.Tensor, n_blocks: int, res_scale: float, scale: int):
    """BasicSR ``edsr_arch.EDSR.forward`` written out with its own key names, input and output in [0, 1]."""
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)

    def c(x, key):
        return F.conv2d(x, state[f"{key}.weight"], state[f"{key}.bias"], padding=1)

    x = c((x01 - mean) * 255.0, "conv_first")
    res = x
    for i in range(n_blocks):
        res = res + c(F.relu(c(res, f"body.{i}.conv1")), f"body.{i}.conv2") * res_scale
    res = c(res, "conv_after_body") + x
    for i in {2: [0], 3: [0], 4: [0, 2], 8: [0, 2, 4]}[scale]:
        res = F.pixel_shuffle(c(res, f"upsample.{i}"), 3 if scale == 3 else 2)
    return c(res, "conv_last") / 255.0 + mean


@pytest.mark.parametrize("name, scale", [("edsr_baseline", 3), ("edsr", 4)])
def test_edsr_basicsr_layout(name, scale):
    options = SMALL[name]
    model = build(name, scale, **options)
    state = relabel(model, basicsr_edsr_mapping(options["n_resblocks"], scale), absent=MEAN_SHIFT)
    assert "sub_mean.bias" not in state  # BasicSR keeps the mean outside its state dict
    x = torch.rand(1, 3, 10, 10) * 255
    assert_loads_and_matches(model, name, scale, options, state, edsr.convert_state_dict, x)
    # and the converted network computes what BasicSR's forward computes, scaled to [0, 255]
    fresh = build(name, scale, **options)
    fresh.load_state_dict(edsr.convert_state_dict(state), strict=True)
    x01 = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        ours = fresh(x01 * 255.0)
        theirs = basicsr_edsr_forward(state, x01, options["n_resblocks"], dict(ARCHS[name].options)["res_scale"], scale)
    assert torch.allclose(ours, theirs * 255.0, atol=1e-3)


def rcan_official_names(n_groups: int, n_blocks: int, scale: int) -> list[str]:
    upsampler = {2: [0], 3: [0], 4: [0, 2], 8: [0, 2, 4]}[scale]
    names = ["sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias", "head.0.weight", "head.0.bias"]
    for g in range(n_groups):
        for b in range(n_blocks):
            for layer in ("body.0", "body.2", "body.3.conv_du.0", "body.3.conv_du.2"):
                names += [f"body.{g}.body.{b}.{layer}.weight", f"body.{g}.body.{b}.{layer}.bias"]
        names += [f"body.{g}.body.{n_blocks}.weight", f"body.{g}.body.{n_blocks}.bias"]
    names += [f"body.{n_groups}.weight", f"body.{n_groups}.bias"]
    names += [f"tail.0.{i}.{p}" for i in upsampler for p in ("weight", "bias")]
    return names + ["tail.1.weight", "tail.1.bias"]


@pytest.mark.parametrize("scale", [3, 8])
def test_rcan_official_layout(scale):
    options = SMALL["rcan"]
    model = perturbed("rcan", scale, **options)
    state = relabel(model, {n: n for n in rcan_official_names(2, 2, scale)})
    x = torch.rand(1, 3, 6, 6) * 255
    assert_loads_and_matches(model, "rcan", scale, options, state, rcan.convert_state_dict, x)


def basicsr_rcan_mapping(n_groups: int, n_blocks: int, scale: int) -> dict[str, str]:
    upsampler = {2: [0], 3: [0], 4: [0, 2], 8: [0, 2, 4]}[scale]
    mapping = {}
    for p in ("weight", "bias"):
        mapping[f"conv_first.{p}"] = f"head.0.{p}"
        for g in range(n_groups):
            for b in range(n_blocks):
                theirs, ours = f"body.{g}.residual_group.{b}.rcab", f"body.{g}.body.{b}.body"
                mapping[f"{theirs}.0.{p}"] = f"{ours}.0.{p}"
                mapping[f"{theirs}.2.{p}"] = f"{ours}.2.{p}"
                mapping[f"{theirs}.3.attention.1.{p}"] = f"{ours}.3.conv_du.0.{p}"
                mapping[f"{theirs}.3.attention.3.{p}"] = f"{ours}.3.conv_du.2.{p}"
            mapping[f"body.{g}.conv.{p}"] = f"body.{g}.body.{n_blocks}.{p}"
        mapping[f"conv_after_body.{p}"] = f"body.{n_groups}.{p}"
        mapping.update({f"upsample.{i}.{p}": f"tail.0.{i}.{p}" for i in upsampler})
        mapping[f"conv_last.{p}"] = f"tail.1.{p}"
    return mapping


def basicsr_rcan_forward(state: dict, x01: torch.Tensor, n_groups: int, n_blocks: int, scale: int):
    """BasicSR ``rcan_arch.RCAN.forward`` written out with its own key names (res_scale 1), in [0, 1]."""
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)

    def c(x, key, padding=1):
        return F.conv2d(x, state[f"{key}.weight"], state[f"{key}.bias"], padding=padding)

    x = c((x01 - mean) * 255.0, "conv_first")
    res = x
    for g in range(n_groups):
        group_in = res
        for b in range(n_blocks):
            key = f"body.{g}.residual_group.{b}.rcab"
            y = c(F.relu(c(res, f"{key}.0")), f"{key}.2")
            w = F.adaptive_avg_pool2d(y, 1)
            w = torch.sigmoid(c(F.relu(c(w, f"{key}.3.attention.1", 0)), f"{key}.3.attention.3", 0))
            res = res + y * w
        res = c(res, f"body.{g}.conv") + group_in
    res = c(res, "conv_after_body") + x
    for i in {2: [0], 3: [0], 4: [0, 2], 8: [0, 2, 4]}[scale]:
        res = F.pixel_shuffle(c(res, f"upsample.{i}"), 3 if scale == 3 else 2)
    return c(res, "conv_last") / 255.0 + mean


@pytest.mark.parametrize("scale", [2, 4])
def test_rcan_basicsr_layout(scale):
    options = SMALL["rcan"]
    model = build("rcan", scale, **options)
    state = relabel(model, basicsr_rcan_mapping(2, 2, scale), absent=MEAN_SHIFT)
    x = torch.rand(1, 3, 8, 8) * 255
    assert_loads_and_matches(model, "rcan", scale, options, state, rcan.convert_state_dict, x)
    fresh = build("rcan", scale, **options)
    fresh.load_state_dict(rcan.convert_state_dict(state), strict=True)
    x01 = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        ours = fresh(x01 * 255.0)
        theirs = basicsr_rcan_forward(state, x01, 2, 2, scale)
    assert torch.allclose(ours, theirs * 255.0, atol=1e-3)


# --- foreign layouts -----------------------------------------------------------------------------


def small_state(name: str, scale: int = 2) -> dict:
    return build(name, scale, **SMALL.get(name, {})).state_dict()


@pytest.mark.parametrize(
    "convert, state, named",
    [
        (srcnn.convert_state_dict, lambda: small_state("fsrcnn"), "first_part.0.bias"),
        (srcnn.convert_state_dict, lambda: {**small_state("srcnn"), "conv4.weight": torch.zeros(1)}, "conv4.weight"),
        (fsrcnn.convert_state_dict, lambda: small_state("srcnn"), "conv1.bias"),
        (
            fsrcnn.convert_state_dict,
            lambda: {**small_state("fsrcnn"), "extra.weight": torch.zeros(1)},
            "extra.weight",
        ),
        (vdsr.convert_state_dict, lambda: small_state("srcnn"), "conv1.bias"),
        (
            vdsr.convert_state_dict,
            lambda: {k: v for k, v in small_state("vdsr").items() if k != "output.weight"},
            "output.weight",
        ),
        (edsr.convert_state_dict, lambda: small_state("rcan"), "body.0.body.0.body.0.bias"),
        (edsr.convert_state_dict, lambda: small_state("srcnn"), "conv1.bias"),
        (
            edsr.convert_state_dict,
            lambda: {**small_state("edsr"), "body.0.body.1.running_mean": torch.zeros(1)},
            "body.0.body.1.running_mean",
        ),
        (rcan.convert_state_dict, lambda: small_state("edsr"), "add_mean.bias"),
        (rcan.convert_state_dict, lambda: small_state("vdsr"), "input.weight"),
    ],
)
def test_unknown_layout_names_keys(convert, state, named):
    with pytest.raises(UnknownLayout, match=named.replace(".", r"\.")):
        convert(state())
