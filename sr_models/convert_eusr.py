"""Convert the official 4PP-EUSR weights (TensorFlow 1 frozen graphs) into our PyTorch EUSR (no Django here).

The authors publish the weights only as frozen GraphDefs (``4pp_eusr_pirm.pb``, 2018; ``4pp_eusr_paper_v2.pb``,
2019). Freezing (``convert_variables_to_constants``, as in their later ``train/freeze.py``) turns each variable
into a Const node under the variable's name (``generator/first_conv/conv2d/kernel``; a reference variable also
leaves an Identity ``…/kernel/read``, a resource variable Identity nodes named after the op that reads it).
Interface (idearibosome/tf-perceptual-eusr ``test/test.py``): input ``sr_input:0`` (float32 NHWC RGB in
[0, 255]), output ``sr_output:0``; graphs frozen by ``train/freeze.py`` also take ``sr_input_scale:0`` (float32
scalar 2, 4 or 8: which pass makes the ×4 output). The released graphs predate that script and the authors'
own test code fed them ``sr_input`` only, so the scale placeholder may be absent there; the provenance records
the placeholders the converted graph actually has.

Only the Const tensors are used: names map onto ours as documented in ``sr_models/archs/eusr_arch.py`` (strip
``generator/``, ``/`` → ``.``, ``kernel`` HWIO → ``weight`` OIHW, ``bias`` → ``bias``); every parameter must be
filled exactly once with the right shape, and the graph's mean-shift and residual-scaling constants must be
the ones our network hard-codes.

TensorFlow is an optional extra (``pip install -r requirements-tf.txt``), imported only when a graph is read.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from core.weights import file_sha256, write_checkpoint

CONVERTER = "sr_models.convert_eusr"
CONVERTER_VERSION = "1"
GRAPH_INPUT, GRAPH_INPUT_SCALE, GRAPH_OUTPUT = "sr_input:0", "sr_input_scale:0", "sr_output:0"
TF_SCOPE = "generator/"
INSTALL_HINT = "pip install -r requirements-tf.txt"

# Constants of the graph that are not variables but fix the arithmetic our EUSR hard-codes:
# ``x - mean`` / ``x + mean`` in each generator pass (name scopes generator, generator_1, …) and
# ``res *= weight`` in every local residual block (weight = 1.0 in the released model).
_MEAN_CONST = re.compile(r"generator(?:_\d+)?/(?:sub|add)(?:_\d+)?/y")
_SCALING_CONST = re.compile(r"generator(?:_\d+)?/.*/mul(?:_\d+)?/y")


class ConversionError(ValueError):
    """A file that cannot be converted: not a frozen graph, or not the 4PP-EUSR generator we implement."""


class TensorFlowMissing(ConversionError):
    """TensorFlow (the optional extra) is not installed."""


def _tensorflow():
    try:
        import tensorflow as tf
    except ImportError as error:
        raise TensorFlowMissing(
            f"reading a TensorFlow frozen graph needs TensorFlow, which is not installed ({error}): {INSTALL_HINT}"
        ) from None
    return tf


def _load_graph_def(path: str | os.PathLike):
    tf = _tensorflow()
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as error:  # google.protobuf.message.DecodeError and friends
        raise ConversionError(
            f"{path.name} is not a TensorFlow frozen graph (GraphDef .pb): {type(error).__name__}: {error}"
        ) from None
    if not any(node.op == "Const" for node in graph_def.node):
        raise ConversionError(f"{path.name} is not a TensorFlow frozen graph (GraphDef .pb): it holds no constants")
    return graph_def


def _constants(graph_def, file: str) -> dict[str, np.ndarray]:
    tf = _tensorflow()
    nodes = {node.name: node for node in graph_def.node}
    constants: dict[str, np.ndarray] = {}
    for name, node in nodes.items():
        if node.op == "Const":
            try:
                constants[name] = tf.make_ndarray(node.attr["value"].tensor)
            except Exception as error:
                raise ConversionError(f"{file}: constant {name} cannot be read ({error})") from None
    for name, node in nodes.items():
        source, hops = node, 0
        while source.op == "Identity" and source.input and hops < 16:
            source = nodes.get(source.input[0].split(":")[0].lstrip("^"), source)
            hops += 1
        if node.op == "Identity" and source.op == "Const" and name not in constants:
            constants[name] = constants[source.name]
    return constants


def graph_interface(graph_def) -> dict:
    """The graph's placeholders and whether it has the ``sr_output`` node the authors' test code reads."""
    names = {node.name for node in graph_def.node}
    placeholders = sorted(node.name for node in graph_def.node if node.op == "Placeholder")
    return {"placeholders": placeholders, "output": GRAPH_OUTPUT if GRAPH_OUTPUT.split(":")[0] in names else None}


def read_frozen_graph(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a frozen graph's Const nodes, by node name.

    An Identity (or chain of them) that reads a Const is listed under its own name too, so a graph whose
    weights are only reachable as ``…/kernel/read`` still yields them; ``eusr_state_from_tf`` folds those
    aliases onto the variable name.
    """
    return _constants(_load_graph_def(path), Path(path).name)


def _our_name(tf_name: str) -> str | None:
    """Our parameter name for a TF variable name, or None when the name is not a generator variable."""
    name = tf_name.removesuffix(":0").removesuffix("/read")
    if not name.startswith(TF_SCOPE) or not name.endswith(("/kernel", "/bias")):
        return None
    name = name[len(TF_SCOPE) :].replace("/", ".")
    return name.removesuffix(".kernel") + ".weight" if name.endswith(".kernel") else name


def _is_variable_name(tf_name: str) -> bool:
    return tf_name.removesuffix(":0").removesuffix("/read").endswith(("/kernel", "/bias"))


def check_graph_arithmetic(constants: Mapping[str, np.ndarray]) -> dict:
    """Check the mean shift and residual scaling the graph computes with against our EUSR's; returns the
    facts for the provenance (how many of each constant were found and checked)."""
    from sr_models.archs.eusr_arch import RGB_MEAN

    means = {k: v for k, v in constants.items() if _MEAN_CONST.fullmatch(k) and np.shape(v) == (3,)}
    scalings = {k: v for k, v in constants.items() if _SCALING_CONST.fullmatch(k) and np.ndim(v) == 0}
    wrong_means = {k: v.tolist() for k, v in means.items() if not np.allclose(v, RGB_MEAN, rtol=0, atol=1e-4)}
    if wrong_means:
        raise ConversionError(
            f"the graph shifts by an RGB mean other than our EUSR's {list(RGB_MEAN)}: "
            + ", ".join(f"{k} = {v}" for k, v in sorted(wrong_means.items())[:4])
        )
    wrong_scalings = {k: float(v) for k, v in scalings.items() if float(v) != 1.0}
    if wrong_scalings:
        raise ConversionError(
            "the graph scales residuals (our EUSR adds them unscaled): "
            + ", ".join(f"{k} = {v}" for k, v in sorted(wrong_scalings.items())[:4])
        )
    return {
        "rgb_mean": list(RGB_MEAN),
        "rgb_mean_constants_checked": len(means),
        "residual_scalings_checked": len(scalings),
    }


def _listing(names, limit: int = 8) -> str:
    names = sorted(names)
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def eusr_state_from_tf(constants: Mapping[str, np.ndarray], **options) -> dict:
    """Our EUSR state dict (``torch.Tensor`` values) from a frozen graph's constants.

    ``options`` are our ``build`` options (``n_feats``, ``n_shared_blocks``, ``n_upscale_blocks``; default: the
    released network, 64 / 32 / 1). Strict: every generator variable of the graph must be one of our
    parameters, every parameter must be filled exactly once, with the shape it has in our network.
    """
    import torch

    from sr_models import archs

    model = archs.build("eusr", 4, **options)
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    sources: dict[str, list[str]] = {}
    unknown = []
    for tf_name in constants:
        if not _is_variable_name(tf_name):
            continue  # an op's constant (mean shift, case predicates, axes, …), not a weight
        ours = _our_name(tf_name)
        if ours is None or ours not in expected:
            unknown.append(tf_name)
        else:
            sources.setdefault(ours, []).append(tf_name)
    missing = sorted(set(expected) - set(sources))
    if unknown or missing:
        parts = []
        if missing:
            tf_missing = [
                TF_SCOPE + k.rsplit(".", 1)[0].replace(".", "/") + ("/kernel" if k.endswith(".weight") else "/bias")
                for k in missing
            ]
            parts.append(
                f"{len(missing)} of our {len(expected)} parameters have no constant in the graph: "
                f"{_listing(tf_missing)}"
            )
        if unknown:
            parts.append(f"{len(unknown)} variables of the graph are not in our EUSR: {_listing(unknown)}")
        raise ConversionError(
            "not the 4PP-EUSR generator we implement ({}): {}".format(
                ", ".join(f"{k}={v}" for k, v in options.items()) or "64 features, 32 shared blocks", "; ".join(parts)
            )
        )
    state, problems = {}, []
    for ours, tf_names in sorted(sources.items()):
        arrays = [np.asarray(constants[name]) for name in tf_names]
        if any(a.shape != arrays[0].shape or not np.array_equal(a, arrays[0]) for a in arrays[1:]):
            problems.append(f"{ours} is given differently by {', '.join(sorted(tf_names))}")
            continue
        array = arrays[0]
        if not np.issubdtype(array.dtype, np.floating):
            problems.append(f"{tf_names[0]} is {array.dtype}, not a float tensor")
            continue
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        if ours.endswith(".weight"):
            if tensor.ndim != 4:
                problems.append(f"{tf_names[0]} has shape {tuple(array.shape)}, not a 4-D HWIO kernel")
                continue
            tensor = tensor.permute(3, 2, 0, 1)  # HWIO -> OIHW
        if tuple(tensor.shape) != expected[ours]:
            problems.append(f"{tf_names[0]} has shape {tuple(array.shape)}; our {ours} needs {expected[ours]}")
            continue
        state[ours] = tensor.contiguous().clone()
    if problems:
        raise ConversionError("the graph's weights do not fit our EUSR: " + "; ".join(problems[:8]))
    return state


def convert(pb_path: str | os.PathLike, out_path: str | os.PathLike, *, source_name: str, options=None) -> dict:
    """Convert a frozen 4PP-EUSR graph into ``{"params": state_dict, "provenance": {...}}`` at ``out_path``
    (written whole or not at all); returns the provenance. ``options``: our build options (tests use a
    small network; the released graphs need none)."""
    import torch

    from sr_models import archs

    tf = _tensorflow()
    pb_path, out_path, options = Path(pb_path), Path(out_path), dict(options or {})
    graph_def = _load_graph_def(pb_path)
    constants = _constants(graph_def, pb_path.name)
    arithmetic = check_graph_arithmetic(constants)
    state = eusr_state_from_tf(constants, **options)
    model = archs.build("eusr", 4, **options)
    model.load_state_dict(state, strict=True)
    params = {key: value.detach().clone().contiguous() for key, value in model.state_dict().items()}
    provenance = {
        "source": source_name,
        "source_sha256": file_sha256(pb_path),
        "converter": CONVERTER,
        "converter_version": CONVERTER_VERSION,
        "tensorflow": str(tf.__version__),
        "torch": str(torch.__version__),  # a TorchVersion would need weights_only=False
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "graph": graph_interface(graph_def),
        "mapping": "generator/<scope>/<conv>/{kernel HWIO,bias} -> <scope>.<conv>.{weight OIHW,bias}",
        "options": options,
        "tensors": len(params),
        "parameters": int(sum(value.numel() for value in params.values())),
        **arithmetic,
    }
    write_checkpoint(out_path, params, provenance)
    return provenance
