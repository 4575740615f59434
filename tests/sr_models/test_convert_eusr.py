"""Converting 4PP-EUSR TensorFlow frozen graphs into our PyTorch EUSR.

The reference is a small TensorFlow 1-style graph written here after the authors' generator
(idearibosome/tf-perceptual-eusr ``train/models/4pp_eusr.py``): the same variable scopes, the same
unnamed-``tf.layers.conv2d`` scope numbering (``variable_scope(None, default_name="conv2d")``), reference
variables, ``tf.case`` on the scale inside each pass, four passes sharing variables, the
``sr_input``/``sr_input_scale``/``sr_output`` interface and ``convert_variables_to_constants`` as in their
``train/freeze.py``. Our network, given the converted weights, must reproduce the frozen graph's output.
"""

from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command

from core.weights import file_sha256, read_state
from sr_models import convert_eusr, weights
from sr_models.archs import build
from sr_models.archs.eusr_arch import RGB_MEAN
from sr_models.management.commands.convert_weights import default_checkpoint
from tests.factories import REQUIRE_SERVICES

TINY = {"n_feats": 8, "n_shared_blocks": 2, "n_upscale_blocks": 1}
ATOL = 1e-3  # on outputs in [0, 255]-ish


@pytest.fixture(scope="module")
def tf():
    try:
        import tensorflow
    except ImportError as error:
        message = f"TensorFlow is not installed ({error}): pip install -r requirements-tf.txt"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message}; PIPAL_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(message)
    return tensorflow


@contextlib.contextmanager
def control_flow_v1(tf):
    """TF 1.x's Switch/Merge conditionals, as in the released graphs (TensorFlow 2 defaults to If ops)."""
    was_v2 = tf.compat.v1.control_flow_v2_enabled()
    tf.compat.v1.disable_control_flow_v2()
    try:
        yield
    finally:
        if was_v2:
            tf.compat.v1.enable_control_flow_v2()


def official_style_graph(tf, n_feats=64, n_shared_blocks=32, n_upscale_blocks=1, *, seed=0, mean=RGB_MEAN):
    """A frozen GraphDef of the 4PP-EUSR generator in the authors' structure and names, random weights."""
    v1 = tf.compat.v1
    mean = [float(m) for m in mean]

    def conv2d(x, filters, kernel, gain):
        # tf.layers.conv2d without a name: scope conv2d, conv2d_1, … per enclosing scope, kernel HWIO, bias.
        with v1.variable_scope(None, default_name="conv2d"):
            fan_in = kernel * kernel * int(x.shape[-1])
            init = v1.random_normal_initializer(stddev=gain / math.sqrt(fan_in))
            w = v1.get_variable(
                "kernel", [kernel, kernel, int(x.shape[-1]), filters], initializer=init, use_resource=False
            )
            b = v1.get_variable(
                "bias", [filters], initializer=v1.random_normal_initializer(stddev=2.0), use_resource=False
            )
            return tf.nn.bias_add(tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME"), b)

    def local_residual_block(x, kernel, weight=1.0):
        res = tf.nn.relu(conv2d(x, n_feats, kernel, 0.5))
        res = conv2d(res, n_feats, kernel, 0.5)
        res *= weight
        return x + res

    def residual_module(x, blocks):
        res = x
        for _ in range(blocks):
            res = local_residual_block(res, 3)
        return x + conv2d(res, n_feats, 3, 0.5)

    def scale_specific_processing(x, scale):
        with v1.variable_scope(f"x{scale}"):
            return local_residual_block(local_residual_block(x, 5), 5)

    def scale_specific_upsampling(x, scale):
        with v1.variable_scope(f"x{scale}"):
            for module in range(int(math.log2(scale))):
                with v1.variable_scope(f"m{module}"):
                    outputs = []
                    for pixel in range(4):
                        with v1.variable_scope(f"px{pixel}"):
                            x = residual_module(x, n_upscale_blocks)
                            outputs.append(x)
                    x = tf.nn.depth_to_space(tf.concat(outputs, axis=3), 2)
            return conv2d(x, 3, 3, 0.25)  # outputs mostly within [0, 255]

    def generator(x, scale, reuse):
        with v1.variable_scope("generator", reuse=reuse):
            x = tf.cast(x, tf.float32) - mean
            with v1.variable_scope("first_conv"):
                x = conv2d(x, n_feats, 3, 1.0)
            with v1.variable_scope("initial_blocks"):
                branches = [(tf.equal(scale, s), functools.partial(scale_specific_processing, x, s)) for s in (2, 4, 8)]
                x = v1.case(branches, exclusive=True)
            with v1.variable_scope("shared"):
                x = residual_module(x, n_shared_blocks)
            with v1.variable_scope("upscaling"):
                branches = [(tf.equal(scale, s), functools.partial(scale_specific_upsampling, x, s)) for s in (2, 4, 8)]
                x = v1.case(branches, exclusive=True)
            return x + mean

    graph = tf.Graph()
    with control_flow_v1(tf), graph.as_default():
        v1.set_random_seed(seed)
        image = v1.placeholder(tf.float32, [None, None, None, 3], name="sr_input")
        scale = v1.placeholder(tf.float32, [], name="sr_input_scale")
        output_2x = generator(generator(image, 2, reuse=False), 2, reuse=True)
        output_4x = generator(image, 4, reuse=True)
        output_8x = generator(image, 8, reuse=True)
        size = [tf.shape(image)[1] * 4, tf.shape(image)[2] * 4]
        output_8x = v1.image.resize_images(output_8x, size, method=v1.image.ResizeMethod.BICUBIC, align_corners=False)
        pairs = [
            (tf.equal(scale, float(s)), functools.partial(tf.identity, o))
            for s, o in ((2, output_2x), (4, output_4x), (8, output_8x))
        ]
        output = tf.identity(v1.case(pairs, exclusive=True), name="sr_output")
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            variables = [variable.op.name for variable in v1.global_variables()]
            frozen = v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), [output.op.name])
    return frozen, variables


def run_frozen(tf, graph_def, image, scale):
    """The frozen graph's output as the authors' test/test.py gets it (input_map on sr_input, sr_input_scale)."""
    with tf.Graph().as_default() as graph:
        inputs = {
            convert_eusr.GRAPH_INPUT: tf.constant(image),
            convert_eusr.GRAPH_INPUT_SCALE: tf.constant(float(scale)),
        }
        (output,) = tf.import_graph_def(
            graph_def, name="model", input_map=inputs, return_elements=[convert_eusr.GRAPH_OUTPUT]
        )
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run(output)


@pytest.fixture(scope="module")
def tiny_graph(tf, tmp_path_factory):
    frozen, variables = official_style_graph(tf, **TINY)
    path = tmp_path_factory.mktemp("graphs") / "tiny_eusr.pb"
    path.write_bytes(frozen.SerializeToString())
    return frozen, variables, path


@pytest.fixture(scope="module")
def full_graph(tf, tmp_path_factory):
    frozen, _ = official_style_graph(tf, seed=1)
    path = tmp_path_factory.mktemp("graphs") / "4pp_eusr_pirm.pb"
    path.write_bytes(frozen.SerializeToString())
    return frozen, path


def test_the_graph_names_its_variables_as_the_docstring_maps_them(tiny_graph):
    frozen, variables, path = tiny_graph
    constants = convert_eusr.read_frozen_graph(path)
    model_keys = set(build("eusr", 4, **TINY).state_dict())
    assert len(variables) == len(model_keys) == 186  # 93 convs: 153 in the released network, 60 fewer shared
    for name in variables:  # each variable is a Const of its own name after freezing, plus an Identity …/read
        assert name in constants and f"{name}/read" in constants
        ours = name.removeprefix("generator/").replace("/", ".").replace(".kernel", ".weight")
        assert ours in model_keys
    assert {"generator/first_conv/conv2d/kernel", "generator/shared/conv2d_4/bias"} <= set(variables)
    assert "generator/upscaling/x8/m2/px3/conv2d_2/kernel" in variables
    names = {node.name: node.op for node in frozen.node}
    assert names["sr_input"] == names["sr_input_scale"] == "Placeholder" and names["sr_output"] == "Identity"


@pytest.mark.parametrize("path,scale", [("x4", 4), ("x2x2", 2), ("x8down", 8)])
def test_converted_weights_reproduce_the_frozen_graph(tf, tiny_graph, tmp_path, path, scale):
    frozen, _, pb = tiny_graph
    provenance = convert_eusr.convert(pb, tmp_path / "tiny.pth", source_name=pb.name, options=TINY)
    saved = torch.load(tmp_path / "tiny.pth", map_location="cpu", weights_only=True)
    assert saved["provenance"] == provenance and provenance["source_sha256"] == file_sha256(pb)
    assert provenance["rgb_mean_constants_checked"] == 8 and provenance["residual_scalings_checked"] > 0
    assert provenance["graph"] == {"placeholders": ["sr_input", "sr_input_scale"], "output": "sr_output:0"}
    model = build("eusr", 4, path=path, **TINY).eval()
    model.load_state_dict(read_state(tmp_path / "tiny.pth"), strict=True)

    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, size=(2, 9, 7, 3)).astype(np.float32)  # NHWC, odd sizes on purpose
    expected = run_frozen(tf, frozen, image, scale)
    with torch.no_grad():
        ours = model(torch.from_numpy(image).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert ours.shape == expected.shape == (2, 36, 28, 3)
    assert expected.std() > 5  # the weights move the output well away from the mean
    error = np.abs(ours - expected).max()
    assert error < ATOL, f"max |ours - TF| = {error}"
    if path == "x4":  # a wrong kernel layout (HWIO -> OIWH, spatially transposed) is far off
        state = {k: (v.transpose(-1, -2).clone() if v.ndim == 4 else v) for k, v in model.state_dict().items()}
        model.load_state_dict(state)
        with torch.no_grad():
            wrong = model(torch.from_numpy(image).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        assert np.abs(wrong - expected).max() > 1.0


def test_convert_weights_command_installs_a_strictly_loading_checkpoint(tf, full_graph, settings, tmp_path, capsys):
    frozen, full_graph = full_graph
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"
    call_command("convert_weights", "eusr", str(full_graph))  # name from the file: eusr_4pp_pirm_x4
    target = tmp_path / "weights" / "4pp_eusr_pirm.pth"
    out = capsys.readouterr().out
    assert str(target) in out and file_sha256(target) in out and "306 tensors" in out
    assert sorted(p.name for p in target.parent.iterdir()) == ["4pp_eusr_pirm.pth"]  # no staging left
    saved = torch.load(target, map_location="cpu", weights_only=True)
    provenance = saved["provenance"]
    assert provenance["source"] == "4pp_eusr_pirm.pb" and provenance["source_sha256"] == file_sha256(full_graph)
    assert provenance["converter"] == "sr_models.convert_eusr" and provenance["tensorflow"]
    assert provenance["parameters"] == 6_295_689 and provenance["date"]
    loaded = weights.load_checkpoint("eusr_4pp_pirm_x4", weights_dir=tmp_path / "weights")
    (node,) = [node for node in frozen.node if node.name == "generator/upscaling/x4/m1/px2/conv2d_1/kernel"]
    kernel = torch.from_numpy(tf.make_ndarray(node.attr["value"].tensor)).permute(3, 2, 0, 1)
    torch.testing.assert_close(loaded.model.upscaling.x4.m1.px2.conv2d_1.weight, kernel, rtol=0, atol=0)


def test_the_default_checkpoint_comes_from_the_published_file_name():
    assert default_checkpoint(Path("/x/4pp_eusr_pirm.pb")) == "eusr_4pp_pirm_x4"
    assert default_checkpoint(Path("4pp_eusr_paper_v2.pb")) == "eusr_4pp_paper_x4"
    with pytest.raises(CommandError, match="--name"):
        default_checkpoint(Path("4pp_eusr_paper.pb"))  # v1 of the paper graph: not what our checkpoint names


def test_command_refusals(full_graph, settings, tmp_path):
    full_graph = full_graph[1]
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"
    with pytest.raises(CommandError, match="no converter for 'edsr'"):
        call_command("convert_weights", "edsr", str(full_graph))
    renamed = tmp_path / "model.pb"
    renamed.write_bytes(full_graph.read_bytes())
    with pytest.raises(CommandError, match="--name"):
        call_command("convert_weights", "eusr", str(renamed))
    with pytest.raises(CommandError, match="not a 4PP-EUSR checkpoint"):
        call_command("convert_weights", "eusr", str(renamed), "--name", "esrgan_x4")
    with pytest.raises(CommandError, match="no such file"):
        call_command("convert_weights", "eusr", str(tmp_path / "absent.pb"))


def test_not_a_graph_is_refused(tf, settings, tmp_path):
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"
    fake = tmp_path / "4pp_eusr_pirm.pb"
    torch.save({"params": {"x": torch.zeros(2)}}, fake)  # a PyTorch zip, not a GraphDef
    with pytest.raises(CommandError, match="not a TensorFlow frozen graph"):
        call_command("convert_weights", "eusr", str(fake))
    fake.write_bytes(b"")
    with pytest.raises(CommandError, match="not a TensorFlow frozen graph"):
        call_command("convert_weights", "eusr", str(fake))
    assert not (tmp_path / "weights" / "4pp_eusr_pirm.pth").exists()


def drop_node(tf, graph_def, name):
    pruned = tf.compat.v1.GraphDef()
    pruned.CopyFrom(graph_def)
    del pruned.node[:]
    pruned.node.extend(node for node in graph_def.node if node.name not in (name, f"{name}/read"))
    return pruned


def test_a_graph_missing_or_adding_a_variable_is_refused(tf, tiny_graph, settings, tmp_path):
    frozen, _, _ = tiny_graph
    missing = drop_node(tf, frozen, "generator/shared/conv2d_3/kernel")
    constants = {node.name: tf.make_ndarray(node.attr["value"].tensor) for node in missing.node if node.op == "Const"}
    with pytest.raises(convert_eusr.ConversionError, match="generator/shared/conv2d_3/kernel") as error:
        convert_eusr.eusr_state_from_tf(constants, **TINY)
    assert "1 of our 186 parameters have no constant" in str(error.value)

    extra = dict(convert_eusr.read_frozen_graph(tiny_graph[2]))
    extra["generator/shared/conv2d_99/bias"] = np.zeros(8, np.float32)
    with pytest.raises(convert_eusr.ConversionError, match="not in our EUSR: generator/shared/conv2d_99/bias"):
        convert_eusr.eusr_state_from_tf(extra, **TINY)
    with pytest.raises(convert_eusr.ConversionError, match=r"has shape \(3, 3, 3, 8\); our first_conv.conv2d.weight"):
        convert_eusr.eusr_state_from_tf(convert_eusr.read_frozen_graph(tiny_graph[2]), **{**TINY, "n_feats": 4})


def test_the_command_refuses_a_graph_missing_a_variable(tf, full_graph, settings, tmp_path):
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"
    pb = tmp_path / "broken.pb"
    pb.write_bytes(drop_node(tf, full_graph[0], "generator/upscaling/x8/m2/px1/conv2d_2/bias").SerializeToString())
    with pytest.raises(
        CommandError,
        match="1 of our 306 parameters have no constant in the graph: generator/upscaling/x8/m2/px1/conv2d_2/bias",
    ):
        call_command("convert_weights", "eusr", str(pb), "--name", "eusr_4pp_paper_x4")
    assert list((tmp_path / "weights").iterdir()) == []  # nothing installed, no staging left


def test_a_different_rgb_mean_or_residual_scaling_is_refused(tf, tiny_graph, tmp_path):
    frozen, _, _ = tiny_graph
    for name, value, message in (
        ("generator_2/add/y", np.array([110.0, 110.0, 110.0], np.float32), "RGB mean"),
        ("generator/shared/mul_1/y", np.array(0.1, np.float32), "scales residuals"),
    ):
        altered = tf.compat.v1.GraphDef()
        altered.CopyFrom(frozen)
        (node,) = [node for node in altered.node if node.name == name]
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
        pb = tmp_path / "altered.pb"
        pb.write_bytes(altered.SerializeToString())
        with pytest.raises(convert_eusr.ConversionError, match=f"{message}.*{name}"):
            convert_eusr.convert(pb, tmp_path / "x.pth", source_name=pb.name, options=TINY)
        assert not (tmp_path / "x.pth").exists()


def test_a_missing_tensorflow_is_a_clear_error(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_tensorflow(name, *args, **kwargs):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("No module named 'tensorflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorflow)
    with pytest.raises(convert_eusr.TensorFlowMissing, match="pip install -r requirements-tf.txt"):
        convert_eusr.read_frozen_graph(tmp_path / "4pp_eusr_pirm.pb")
    pb = tmp_path / "4pp_eusr_pirm.pb"
    pb.write_bytes(b"\x00")
    with pytest.raises(CommandError, match="requirements-tf.txt"):
        call_command("convert_weights", "eusr", str(pb))
