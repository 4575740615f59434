"""SRResNet (RankSRGAN), MSRResNet (BasicSR), RRDBNet (ESRGAN) and EUSR (4PP-EUSR): parameter counts,
tiny forward passes, every published key layout against an independent reference forward written in
that layout's own names, refusal of foreign layouts, and ESRGAN network interpolation."""

from __future__ import annotations

import math
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F

from sr_models.archs import ARCHS, UnknownLayout, interpolation
from sr_models.archs import eusr_arch as eusr
from sr_models.archs import rrdbnet_arch as rrdbnet
from sr_models.archs import srresnet_arch as srresnet

torch.set_num_threads(1)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(x, state, name, pad=1):
    return F.conv2d(x, state[f"{name}.weight"], state[f"{name}.bias"], padding=pad)


def entries(name, cin, cout, k=3):
    """(key, shape) of one biased PyTorch conv."""
    return [(f"{name}.weight", (cout, cin, k, k)), (f"{name}.bias", (cout,))]


def random_state(spec, seed=0, std=0.05):
    gen = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=gen) * std for key, shape in spec}


def load_converted(model, convert, official):
    model.load_state_dict(convert(official), strict=True)
    return model.eval()


# --- registry and sizes --------------------------------------------------------------------------


def test_registered_specs():
    expected = {
        "srresnet": ("srresnet", (2, 3, 4), 1.0),
        "msrresnet": ("srresnet", (2, 3, 4), 1.0),
        "rrdbnet": ("rrdbnet", (4,), 1.0),
        "eusr": ("eusr", (4,), 255.0),
    }
    for name, (family, scales, value_range) in expected.items():
        spec = ARCHS[name]
        assert (spec.family, spec.scales, spec.input_range, spec.color, spec.pre_upsample) == (
            family,
            scales,
            value_range,
            "rgb",
            False,
        )
    assert dict(ARCHS["eusr"].options) == {"path": "x4"}


@pytest.mark.published
def test_parameter_counts():
    with torch.device("meta"):
        assert n_params(srresnet.build(scale=4)) == 1_554_499  # RankSRGAN SRResNet (SPEC §6)
        assert n_params(srresnet.build_msrresnet(scale=4)) == 1_554_499 - (64 * 64 * 9 + 64)  # no LRconv
        assert n_params(rrdbnet.build(scale=4)) == 16_697_987  # ESRGAN RRDBNet(3, 3, 64, 23, gc=32)
        count = n_params(eusr.build(scale=4))
    assert count == 6_295_689
    assert round(count / 1e6, 1) == 6.3  # 4PP-EUSR Table 1


def test_scale_limits():
    with pytest.raises(ValueError, match="x4 only"):
        rrdbnet.build(scale=2)
    with pytest.raises(ValueError, match="x4 outputs"):
        eusr.build(scale=2)
    with pytest.raises(ValueError, match="path"):
        eusr.build(scale=4, path="x16")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_srresnet_forward_shapes(scale):
    x = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        assert srresnet.build(scale=scale, nf=8, nb=1)(x).shape == (1, 3, 5 * scale, 7 * scale)
        assert srresnet.build_msrresnet(scale=scale, nf=8, nb=1)(x).shape == (1, 3, 5 * scale, 7 * scale)


def test_rrdbnet_forward_shape():
    with torch.no_grad():
        assert rrdbnet.build(scale=4, nf=8, nb=1, gc=4)(torch.rand(2, 3, 5, 6)).shape == (2, 3, 20, 24)


@pytest.mark.parametrize("path", ["x4", "x2x2", "x8down"])
def test_eusr_forward_shape(path):
    model = eusr.build(scale=4, path=path, n_feats=8, n_shared_blocks=1)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 5, 6) * 255).shape == (1, 3, 20, 24)


# --- SRResNet (RankSRGAN) -------------------------------------------------------------------------

NF, NB = 8, 2


def ranksrgan_mmsr_spec(scale):
    """RankSRGAN_arch.SRResNet names (mmsr version)."""
    spec = entries("conv_first", 3, NF)
    for i in range(NB):
        spec += entries(f"recon_trunk.{i}.conv1", NF, NF) + entries(f"recon_trunk.{i}.conv2", NF, NF)
    spec += entries("LRconv", NF, NF)
    if scale == 4:
        spec += entries("upconv1", NF, NF * 4) + entries("upconv2", NF, NF * 4)
    else:
        spec += entries("upconv1", NF, NF * scale * scale)
    return spec + entries("HRconv", NF, NF) + entries("conv_last", NF, 3)


def ranksrgan_old_spec(scale):
    """architecture.SRResNet + block.py (CNA, no norm, pixelshuffle), flattened into ``model``."""
    spec = entries("model.0", 3, NF)
    for i in range(NB):
        spec += entries(f"model.1.sub.{i}.res.0", NF, NF) + entries(f"model.1.sub.{i}.res.2", NF, NF)
    spec += entries(f"model.1.sub.{NB}", NF, NF)
    if scale == 4:
        return spec + (
            entries("model.2", NF, NF * 4)
            + entries("model.5", NF, NF * 4)
            + entries("model.8", NF, NF)
            + entries("model.10", NF, 3)
        )
    return spec + entries("model.2", NF, NF * scale * scale) + entries("model.5", NF, NF) + entries("model.7", NF, 3)


def reference_srresnet_mmsr(s, x, scale):
    """RankSRGAN_arch.SRResNet.forward, in its own names."""
    fea = conv(x, s, "conv_first")
    out = fea
    for i in range(NB):
        out = out + conv(F.relu(conv(out, s, f"recon_trunk.{i}.conv1")), s, f"recon_trunk.{i}.conv2")
    out = conv(out, s, "LRconv")
    if scale == 4:
        out = F.relu(F.pixel_shuffle(conv(out + fea, s, "upconv1"), 2))
        out = F.relu(F.pixel_shuffle(conv(out, s, "upconv2"), 2))
    else:
        out = F.relu(F.pixel_shuffle(conv(out + fea, s, "upconv1"), scale))
    return conv(F.relu(conv(out, s, "HRconv")), s, "conv_last")


def reference_srresnet_old(s, x, scale):
    """self.model of architecture.SRResNet, module by module (ShortcutBlock: x + sub(x))."""
    fea = conv(x, s, "model.0")
    sub = fea
    for i in range(NB):  # ResNetBlock: x + res(x), res = [conv, ReLU, conv]
        sub = sub + conv(F.relu(conv(sub, s, f"model.1.sub.{i}.res.0")), s, f"model.1.sub.{i}.res.2")
    out = fea + conv(sub, s, f"model.1.sub.{NB}")
    if scale == 4:
        out = F.relu(F.pixel_shuffle(conv(out, s, "model.2"), 2))
        out = F.relu(F.pixel_shuffle(conv(out, s, "model.5"), 2))
        return conv(F.relu(conv(out, s, "model.8")), s, "model.10")
    out = F.relu(F.pixel_shuffle(conv(out, s, "model.2"), scale))
    return conv(F.relu(conv(out, s, "model.5")), s, "model.7")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_srresnet_layouts_match_official_forward(scale):
    x = torch.rand(1, 3, 6, 5)
    outputs = []
    for spec, reference in (
        (ranksrgan_mmsr_spec, reference_srresnet_mmsr),
        (ranksrgan_old_spec, reference_srresnet_old),
    ):
        official = random_state(spec(scale), seed=scale)
        model = load_converted(srresnet.build(scale=scale, nf=NF, nb=NB), srresnet.convert_state_dict, official)
        with torch.no_grad():
            out = model(x)
            torch.testing.assert_close(out, reference(official, x, scale), rtol=1e-5, atol=1e-6)
        outputs.append(out)
    # the same values under both layouts: the old x4 layout maps exactly as the authors' transfer.py
    assert torch.equal(outputs[0], outputs[1])


def test_srresnet_old_layout_mapping_is_positional_transfer():
    """codes/scripts/transfer.py copies the old keys onto the mmsr keys in order: same result."""
    old = random_state(ranksrgan_old_spec(4))
    new_keys = [key for key, _ in ranksrgan_mmsr_spec(4)]
    by_position = dict(zip(new_keys, old.values(), strict=True))
    converted = srresnet.convert_state_dict(old)
    assert converted.keys() == by_position.keys()
    assert all(torch.equal(converted[key], by_position[key]) for key in new_keys)


# --- MSRResNet (BasicSR) --------------------------------------------------------------------------


def msrresnet_spec(scale, trunk, hr):
    spec = entries("conv_first", 3, NF)
    for i in range(NB):
        spec += entries(f"{trunk}.{i}.conv1", NF, NF) + entries(f"{trunk}.{i}.conv2", NF, NF)
    if scale == 4:
        spec += entries("upconv1", NF, NF * 4) + entries("upconv2", NF, NF * 4)
    else:
        spec += entries("upconv1", NF, NF * scale * scale)
    return spec + entries(hr, NF, NF) + entries("conv_last", NF, 3)


def reference_msrresnet(s, x, scale, trunk, hr):
    """basicsr/archs/srresnet_arch.py MSRResNet.forward (= RankSRGAN SRResNet_arch.MSRResNet)."""
    out = F.leaky_relu(conv(x, s, "conv_first"), 0.1)
    for i in range(NB):
        out = out + conv(F.relu(conv(out, s, f"{trunk}.{i}.conv1")), s, f"{trunk}.{i}.conv2")
    if scale == 4:
        out = F.leaky_relu(F.pixel_shuffle(conv(out, s, "upconv1"), 2), 0.1)
        out = F.leaky_relu(F.pixel_shuffle(conv(out, s, "upconv2"), 2), 0.1)
    else:
        out = F.leaky_relu(F.pixel_shuffle(conv(out, s, "upconv1"), scale), 0.1)
    out = conv(F.leaky_relu(conv(out, s, hr), 0.1), s, "conv_last")
    return out + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("trunk,hr", [("body", "conv_hr"), ("recon_trunk", "HRconv")])
def test_msrresnet_layouts_match_official_forward(scale, trunk, hr):
    official = random_state(msrresnet_spec(scale, trunk, hr), seed=scale)
    model = load_converted(
        srresnet.build_msrresnet(scale=scale, nf=NF, nb=NB), srresnet.convert_msrresnet_state_dict, official
    )
    x = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_msrresnet(official, x, scale, trunk, hr), rtol=1e-5, atol=1e-6)


def test_srresnet_and_msrresnet_refuse_each_other():
    with pytest.raises(UnknownLayout, match="msrresnet"):
        srresnet.convert_state_dict(random_state(msrresnet_spec(4, "body", "conv_hr")))
    with pytest.raises(UnknownLayout, match="use srresnet"):
        srresnet.convert_msrresnet_state_dict(random_state(ranksrgan_mmsr_spec(4)))
    with pytest.raises(UnknownLayout, match="use srresnet"):
        srresnet.convert_msrresnet_state_dict(random_state(ranksrgan_old_spec(4)))


def test_srresnet_unknown_and_incomplete_layouts():
    with pytest.raises(UnknownLayout, match="RankSRGAN"):
        srresnet.convert_state_dict({"features.0.weight": torch.zeros(1)})
    old = random_state(ranksrgan_old_spec(4))
    old["model.12.weight"] = torch.zeros(1)
    with pytest.raises(UnknownLayout, match=r"model\.12\.weight"):
        srresnet.convert_state_dict(old)
    mmsr = random_state(ranksrgan_mmsr_spec(4))
    del mmsr["HRconv.bias"]
    with pytest.raises(UnknownLayout, match=r"HRconv\.bias"):
        srresnet.convert_state_dict(mmsr)


# --- RRDBNet (ESRGAN) -----------------------------------------------------------------------------

GC, RB = 4, 2  # growth channels and RRDB count of the tiny nets


def rrdb_roles():
    """(role, in channels, out channels) of every conv of RRDBNet, in order."""
    roles = [("first", 3, NF)]
    for i in range(RB):
        for j in (1, 2, 3):
            for k in range(1, 6):
                roles.append(((i, j, k), NF + (k - 1) * GC, GC if k < 5 else NF))
    return roles + [("trunk", NF, NF), ("up1", NF, NF), ("up2", NF, NF), ("hr", NF, NF), ("last", NF, 3)]


# each published layout's conv names, spelled out from its code
OLD_ESRGAN = {"first": "model.0", "trunk": f"model.1.sub.{RB}", "up1": "model.3", "up2": "model.6"}
OLD_ESRGAN |= {"hr": "model.8", "last": "model.10"}
NEW_ESRGAN = {"first": "conv_first", "trunk": "trunk_conv", "up1": "upconv1", "up2": "upconv2"}
NEW_ESRGAN |= {"hr": "HRconv", "last": "conv_last"}
BASICSR = {"first": "conv_first", "trunk": "conv_body", "up1": "conv_up1", "up2": "conv_up2"}
BASICSR |= {"hr": "conv_hr", "last": "conv_last"}
RRDB_LAYOUTS = {
    "A": lambda role: (
        f"model.1.sub.{role[0]}.RDB{role[1]}.conv{role[2]}.0" if isinstance(role, tuple) else OLD_ESRGAN[role]
    ),
    "B": lambda role: (
        f"RRDB_trunk.{role[0]}.RDB{role[1]}.conv{role[2]}" if isinstance(role, tuple) else NEW_ESRGAN[role]
    ),
    "C": lambda role: f"body.{role[0]}.rdb{role[1]}.conv{role[2]}" if isinstance(role, tuple) else BASICSR[role],
}


def rrdb_state(layout, seed=0):
    gen = torch.Generator().manual_seed(seed)
    name = RRDB_LAYOUTS[layout]
    state = {}
    for role, cin, cout in rrdb_roles():  # same values in every layout for one seed
        state[f"{name(role)}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * 0.05
        state[f"{name(role)}.bias"] = torch.randn(cout, generator=gen) * 0.05
    return state


def reference_rrdbnet(s, x, name):
    """RRDBNet_arch.RRDBNet.forward in terms of a layout's names."""

    def c(x, role):
        return conv(x, s, name(role))

    fea = c(x, "first")
    trunk = fea
    for i in range(RB):
        block_in = trunk
        for j in (1, 2, 3):
            feats = [trunk]
            for k in range(1, 5):
                feats.append(F.leaky_relu(c(torch.cat(feats, 1), (i, j, k)), 0.2))
            trunk = c(torch.cat(feats, 1), (i, j, 5)) * 0.2 + trunk
        trunk = trunk * 0.2 + block_in
    fea = fea + c(trunk, "trunk")
    fea = F.leaky_relu(c(F.interpolate(fea, scale_factor=2, mode="nearest"), "up1"), 0.2)
    fea = F.leaky_relu(c(F.interpolate(fea, scale_factor=2, mode="nearest"), "up2"), 0.2)
    return c(F.leaky_relu(c(fea, "hr"), 0.2), "last")


def test_rrdbnet_layouts_match_official_forward():
    x = torch.rand(1, 3, 5, 4)
    converted, outputs = {}, {}
    for layout, name in RRDB_LAYOUTS.items():
        official = rrdb_state(layout)
        converted[layout] = rrdbnet.convert_state_dict(official)
        model = load_converted(rrdbnet.build(scale=4, nf=NF, nb=RB, gc=GC), rrdbnet.convert_state_dict, official)
        with torch.no_grad():
            outputs[layout] = model(x)
            torch.testing.assert_close(outputs[layout], reference_rrdbnet(official, x, name), rtol=1e-5, atol=1e-6)
    for layout in "AC":
        assert converted[layout].keys() == converted["B"].keys()
        assert all(torch.equal(converted[layout][k], converted["B"][k]) for k in converted["B"])
        assert torch.equal(outputs[layout], outputs["B"])


def test_rrdbnet_any_block_count():
    for layout in "ABC":
        state = {k: v for k, v in rrdb_state(layout).items() if ".1.RDB" not in k and ".1.rdb" not in k}
        if layout == "A":  # the trunk conv follows the last RRDB in model.1.sub
            state = {k.replace(f"model.1.sub.{RB}.", "model.1.sub.1."): v for k, v in state.items()}
        rrdbnet.build(scale=4, nf=NF, nb=1, gc=GC).load_state_dict(rrdbnet.convert_state_dict(state), strict=True)


def test_rrdbnet_refuses_foreign_layouts():
    with pytest.raises(UnknownLayout, match="no ESRGAN/BasicSR"):
        rrdbnet.convert_state_dict(random_state(ranksrgan_mmsr_spec(4)))
    with pytest.raises(UnknownLayout, match="fit no rule"):
        rrdbnet.convert_state_dict(random_state(msrresnet_spec(4, "body", "conv_hr")))
    basicsr_x2 = rrdb_state("C")
    basicsr_x2["conv_first.weight"] = torch.zeros(NF, 12, 3, 3)  # pixel-unshuffled input
    with pytest.raises(UnknownLayout, match="pixel-unshuffled"):
        rrdbnet.convert_state_dict(basicsr_x2)
    old = rrdb_state("A")
    old["model.1.sub.0.RDB1.conv6.0.weight"] = torch.zeros(1)
    with pytest.raises(UnknownLayout, match=r"conv6"):
        rrdbnet.convert_state_dict(old)
    new = rrdb_state("B")
    del new["trunk_conv.bias"]
    with pytest.raises(UnknownLayout, match=r"trunk_conv\.bias"):
        rrdbnet.convert_state_dict(new)


# --- network interpolation ------------------------------------------------------------------------


def test_interpolation_endpoints_and_blend():
    psnr = rrdbnet.convert_state_dict(rrdb_state("A", seed=1))
    gan = rrdbnet.convert_state_dict(rrdb_state("C", seed=2))
    assert rrdbnet.interpolate_state_dicts is interpolation.interpolate_state_dicts
    at0 = interpolation.interpolate_state_dicts(psnr, gan, 0.0)
    at1 = interpolation.interpolate_state_dicts(psnr, gan, 1.0)
    mid = interpolation.interpolate_state_dicts(psnr, gan, 0.3)
    assert list(at0) == list(psnr) == list(mid)
    for key in psnr:
        assert torch.equal(at0[key], psnr[key]) and torch.equal(at1[key], gan[key])
        assert torch.equal(mid[key], (1 - 0.3) * psnr[key] + 0.3 * gan[key])
    model = rrdbnet.build(scale=4, nf=NF, nb=RB, gc=GC)
    model.load_state_dict(mid, strict=True)


def test_interpolation_refusals():
    a = {"w": torch.ones(2, 2), "b": torch.zeros(2)}
    with pytest.raises(ValueError, match="different keys"):
        interpolation.interpolate_state_dicts(a, {"w": torch.ones(2, 2)}, 0.5)
    with pytest.raises(ValueError, match="shape"):
        interpolation.interpolate_state_dicts(a, {"w": torch.ones(2, 3), "b": torch.zeros(2)}, 0.5)
    with pytest.raises(ValueError, match="dtype"):
        interpolation.interpolate_state_dicts(a, {"w": torch.ones(2, 2).double(), "b": torch.zeros(2)}, 0.5)
    for alpha in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="alpha"):
            interpolation.interpolate_state_dicts(a, a, alpha)
    counters = {"n": torch.tensor(3)}
    assert torch.equal(interpolation.interpolate_state_dicts(counters, counters, 0.5)["n"], torch.tensor(3))
    with pytest.raises(ValueError, match="non-floating"):
        interpolation.interpolate_state_dicts(counters, {"n": torch.tensor(4)}, 0.5)


# --- EUSR (4PP-EUSR) ------------------------------------------------------------------------------


class TFGenerator:
    """4PP-EUSR's ``_generator`` written against TensorFlow variable names, NHWC, HWIO kernels.

    ``tf.layers.conv2d`` names its variables ``<scope>/conv2d[_n]/{kernel,bias}``, numbered per scope in
    creation order, and entering a named scope again starts its sub-scopes' numbering afresh (this is
    how ``reuse=True`` finds the same variables); variables are created on first use, then reused.
    """

    def __init__(self, feats, shared_blocks, seed=0):
        self.feats, self.shared_blocks = feats, shared_blocks
        self.vars, self.counts, self.scopes = {}, {}, []
        self.gen = torch.Generator().manual_seed(seed)

    @contextmanager
    def scope(self, name):
        self.scopes.append(name)
        prefix = "/".join(self.scopes)
        self.counts = {k: v for k, v in self.counts.items() if k != prefix and not k.startswith(prefix + "/")}
        yield
        self.scopes.pop()

    def conv(self, x, filters, k):
        prefix = "/".join(self.scopes)
        index = self.counts.get(prefix, 0)
        self.counts[prefix] = index + 1
        name = f"{prefix}/conv2d" + (f"_{index}" if index else "")
        if name + "/kernel" not in self.vars:
            self.vars[name + "/kernel"] = torch.randn(k, k, x.shape[-1], filters, generator=self.gen) * 0.03
            self.vars[name + "/bias"] = torch.randn(filters, generator=self.gen) * 0.03
        kernel, bias = self.vars[name + "/kernel"], self.vars[name + "/bias"]
        out = F.conv2d(x.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), bias, padding=k // 2)
        return out.permute(0, 2, 3, 1)

    def lrb(self, x, k):
        return x + self.conv(F.relu(self.conv(x, self.feats, k)), self.feats, k)

    def residual_module(self, x, blocks):
        res = x
        for _ in range(blocks):
            res = self.lrb(res, 3)
        return x + self.conv(res, self.feats, 3)

    @staticmethod
    def depth_to_space(x, b=2):  # tf.depth_to_space: out[h*b+i, w*b+j, c] = in[h, w, (i*b+j)*C + c]
        n, h, w, d = x.shape
        c = d // (b * b)
        return x.reshape(n, h, w, b, b, c).permute(0, 1, 3, 2, 4, 5).reshape(n, h * b, w * b, c)

    def __call__(self, x, scale):
        mean = torch.tensor(eusr.RGB_MEAN)
        with self.scope("generator"):
            x = x - mean
            with self.scope("first_conv"):
                x = self.conv(x, self.feats, 3)
            with self.scope("initial_blocks"), self.scope(f"x{scale}"):
                x = self.lrb(self.lrb(x, 5), 5)
            with self.scope("shared"):
                x = self.residual_module(x, self.shared_blocks)
            with self.scope("upscaling"), self.scope(f"x{scale}"):
                for m in range(int(math.log2(scale))):
                    with self.scope(f"m{m}"):
                        outs = []
                        for p in range(4):
                            with self.scope(f"px{p}"):
                                x = self.residual_module(x, 1)
                                outs.append(x)
                        x = self.depth_to_space(torch.cat(outs, -1))
                x = self.conv(x, 3, 3)
        return x + mean


def test_eusr_tf_names_map_onto_ours_and_match_the_tf_forward():
    feats, shared = 4, 2
    tf = TFGenerator(feats, shared)
    x = torch.rand(1, 4, 3, 3) * 255  # NHWC
    reference = {
        "x4": tf(x, 4),
        "x2x2": tf(tf(x, 2), 2),  # reuse=True: the same variables
        "x8down": tf(x, 8)[:, ::2, ::2, :],  # TF1 legacy bicubic at an exact /2 lands on pixels [2i, 2j]
    }
    assert "generator/shared/conv2d_4/kernel" in tf.vars  # 2 blocks x 2 convs, then the module's conv
    assert "generator/upscaling/x8/m2/px3/conv2d_2/bias" in tf.vars
    assert "generator/upscaling/x8/conv2d/kernel" in tf.vars
    ours = {}
    for name, value in tf.vars.items():  # the mapping documented in eusr.py
        key = name.removeprefix("generator/").replace("/", ".")
        ours[key.replace(".kernel", ".weight")] = value.permute(3, 2, 0, 1) if name.endswith("kernel") else value
    for path, expected in reference.items():
        model = load_converted(
            eusr.build(scale=4, path=path, n_feats=feats, n_shared_blocks=shared), eusr.convert_state_dict, ours
        )
        with torch.no_grad():
            out = model(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-4)


def test_eusr_refuses_foreign_layouts():
    with pytest.raises(UnknownLayout, match="TensorFlow variable names"):
        eusr.convert_state_dict({"generator/first_conv/conv2d/kernel": torch.zeros(3, 3, 3, 64)})
    with pytest.raises(UnknownLayout, match="not our EUSR layout"):
        eusr.convert_state_dict(rrdb_state("B"))
    state = eusr.build(scale=4, n_feats=4, n_shared_blocks=1).state_dict()
    assert eusr.convert_state_dict(state).keys() == state.keys()
    del state["upscaling.x4.m1.px2.conv2d_1.weight"]
    with pytest.raises(UnknownLayout, match=r"upscaling\.x4\.m1\.px2\.conv2d_1\.weight"):
        eusr.convert_state_dict(state)


def test_depth_to_space_tf_order():
    x = torch.arange(2 * 12 * 2 * 3, dtype=torch.float32).view(2, 12, 2, 3)
    out = eusr.depth_to_space_tf(x, 2)
    c = 3
    for i in range(2):
        for j in range(2):
            assert torch.equal(out[:, :, i::2, j::2], x[:, (i * 2 + j) * c : (i * 2 + j + 1) * c])


def test_tf1_bicubic_resize():
    x = torch.rand(1, 3, 8, 10)
    assert torch.equal(eusr.resize_bicubic_tf1(x, 4, 5), x[..., ::2, ::2])  # exact /2: no antialiasing
    torch.testing.assert_close(eusr.resize_bicubic_tf1(x, 8, 10), x)
    # cubic convolution, Keys' kernel with a = -0.75, at the source coordinate out * (in / out) (no
    # half-pixel offset) rounded to TF's 1/1024 table, on a signal away from the clamped borders
    a = -0.75

    def keys(d):
        d = abs(d)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a if d < 2 else 0.0

    signal = torch.rand(16)
    out = eusr.resize_bicubic_tf1(signal.view(1, 1, 1, 16), 1, 12)[0, 0, 0]
    for o in range(2, 10):
        source = o * 16 / 12
        snapped = math.floor(source) + round((source - math.floor(source)) * 1024) / 1024
        expected = sum(
            signal[n].item() * keys(snapped - n) for n in range(math.floor(source) - 1, math.floor(source) + 3)
        )
        assert out[o].item() == pytest.approx(expected, abs=1e-5)


def test_eusr_initialisation_is_the_authors():
    """tf-perceptual-eusr train/models/eusr.py: residual-block convolutions from variance scaling (factor 1e-4 / 62
    at the paper's size, fan in, truncated normal: std sqrt(1.3 factor / fan_in)), the others Glorot-uniform,
    zero biases."""
    assert eusr.expected_residual_blocks(32, 1) == 62  # 2x3 scale-specific + 32 shared + (1+2+3)x4 upscaling
    torch.manual_seed(0)
    model = eusr.build(scale=4)
    eusr.initialize(model)
    in_block = [model.shared.conv2d, model.shared.conv2d_63, model.initial_blocks.x8.conv2d_3,
                model.upscaling.x4.m1.px3.conv2d_1]
    others = [model.first_conv.conv2d, model.shared.conv2d_64, model.upscaling.x2.m0.px0.conv2d_2,
              model.upscaling.x8.conv2d]
    for conv in in_block:
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        std = (1.3 * 1e-4 / 62 / fan_in) ** 0.5
        weights = conv.weight.detach()
        assert float(weights.abs().max()) <= 2 * std
        # a normal truncated at 2 std has std 0.88 std (the spread checks the scale, not the exact law)
        assert float(weights.std()) == pytest.approx(0.88 * std, rel=0.1)
    for conv in others:
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        limit = (6 / (fan_in + fan_out)) ** 0.5
        assert float(conv.weight.detach().abs().max()) <= limit
        assert float(conv.weight.detach().abs().max()) > 0.9 * limit
    assert all(float(m.bias.abs().max()) == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d))
