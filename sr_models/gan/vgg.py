"""The VGG19 feature extractor of the perceptual loss, and the weight file it needs (no Django here).

ESRGAN §3.3 (and RankSRGAN's ``feature_layer: 34``, SPEC §7.6) compare VGG19 features of conv5_4
*before* its activation: torchvision's ``vgg19().features`` numbers its layers 0..36, index 34 is
conv5_4 and 35 its ReLU, so the extractor keeps ``features[:35]``. Input: RGB in [0, 1], normalised
with ImageNet's mean and std first (BasicSR ``VGGFeatureExtractor(use_input_norm=True)``; mmsr's
``define_F`` the same). The network is frozen (no gradients into its weights, eval mode); gradients
still flow through it into the generator's output.

Weights: torchvision's ImageNet VGG19 (``VGG19_Weights.IMAGENET1K_V1``), the file BasicSR and mmsr load
too, read strictly from the weights directory; or, with ``scratch=True``, random weights, flagged
``pretrained=False`` in what ``load_vgg19_features`` returns: a loss on them is no perceptual loss,
only a stand-in for tests.

torch is imported inside the functions: the record is declared at start, where torch is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core import weights as core_weights
from core.weights import WEIGHTS, WeightsError, WeightsRecord, read_state

# torchvision/models/vgg.py ``cfgs["E"]``: channels of each 3x3 conv, "M" a 2x2 max pool.
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
# ESRGAN §3.3: the features before activation of conv5_4 (torchvision index 34; 35 is relu5_4).
LAST_LAYER = "conv5_4"
# BasicSR ``basicsr/archs/vgg_arch.py`` VGGFeatureExtractor (torchvision's ImageNet normalisation).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# iqa.learned.official.TORCHVISION_LICENCE (sr_models may not import iqa).
TORCHVISION_LICENCE = "BSD-3-Clause (torchvision); ImageNet weights for non-commercial research"


def vgg19_layer_names() -> tuple[str, ...]:
    """The name of each of torchvision's ``vgg19().features`` layers, by index: conv1_1, relu1_1, conv1_2,
    relu1_2, pool1, conv2_1, …, conv5_4 (34), relu5_4 (35), pool5 (36) — BasicSR's ``NAMES['vgg19']``."""
    names, block, conv = [], 1, 1
    for entry in VGG19_CONFIG:
        if entry == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return tuple(names)


def extractor_layer_names() -> tuple[str, ...]:
    """The layers the extractor keeps: every one up to and with conv5_4, before its ReLU."""
    names = vgg19_layer_names()
    return names[: names.index(LAST_LAYER) + 1]


def _skeleton():
    """torchvision's VGG19 with its tensors on the meta device: its layout without the cost of
    initialising 143M parameters; a load with ``assign=True`` gives it the file's tensors."""
    import torch
    from torchvision.models import vgg19

    with torch.device("meta"):
        return vgg19(weights=None)


def _load_layout(state: dict, record: WeightsRecord):
    """torchvision's VGG19 holding ``state``: every key of its layout, of its shape, none left over."""
    network = _skeleton()
    try:
        network.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        raise WeightsError(f"{record.file} does not fit {record.label}: {error}") from None
    return network


def _check_layout(path: Path) -> None:
    """The import check: the file's tensors load strictly into torchvision's VGG19."""
    try:
        _load_layout(read_state(path), VGG19_RECORD)
    except WeightsError as error:
        raise WeightsError(f"{Path(path).name} is not {VGG19_RECORD.label} ({VGG19_RECORD.layout}): {error}") from None


VGG19_RECORD = WeightsRecord(
    name="vgg19_imagenet",
    label="torchvision's ImageNet VGG19 (the perceptual loss' feature extractor)",
    file="vgg19-dcbb9e9d.pth",
    # The direct download is where torchvision publishes it (VGG19_Weights.IMAGENET1K_V1.url); the
    # refusal of a missing file names the source, so this names the URL.
    source="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    licence=TORCHVISION_LICENCE,
    layout="torchvision VGG19 state dict (features.{0,2,5,...,34}.weight/bias, classifier.{0,3,6}.weight/bias)",
    normalisation="RGB in [0, 1], then ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225)",
    check=_check_layout,
    notes="torchvision.models.vgg19, VGG19_Weights.IMAGENET1K_V1 "
    "(https://pytorch.org/vision/stable/models/generated/torchvision.models.vgg19.html); "
    "the name ends in the first digits of its SHA-256, checked on import",
)


def register_weights() -> None:
    """Add VGG19_RECORD to the platform's weights records (SrModelsConfig.ready()), where
    ``fetch_weights`` and ``import_weights`` find it; again is harmless."""
    if VGG19_RECORD.name not in WEIGHTS:
        WEIGHTS.add(VGG19_RECORD.name, VGG19_RECORD)


@dataclass
class VGG19Features:
    """The extractor: ``network(x)`` maps RGB in [0, 1] (N, 3, H, W) to conv5_4 features before
    activation (N, 512, H/16, W/16). ``pretrained`` is False for random (scratch) weights."""

    network: object  # torch.nn.Sequential: normalise, conv1_1 … conv5_4; frozen, in eval mode
    pretrained: bool
    provenance: dict = field(default_factory=dict)


def _extractor(features) -> object:
    """ImageNet normalisation, then torchvision's ``features[:35]`` under their layer names, frozen."""
    from collections import OrderedDict

    from torch import nn
    from torchvision.transforms import Normalize

    names = extractor_layer_names()
    layers = [("normalise", Normalize(IMAGENET_MEAN, IMAGENET_STD))] + list(
        zip(names, features[: len(names)], strict=True)
    )
    network = nn.Sequential(OrderedDict(layers))
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network.eval()


def _scratch_features():
    """Random VGG19 features, initialised as torchvision's VGG.__init__ does (kaiming normal, fan_out,
    zero biases), without initialising the classifier it would drop."""
    from torch import nn

    features = _skeleton().features.to_empty(device="cpu")
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return features


def load_vgg19_features(weights_dir: Path, *, scratch: bool = False) -> VGG19Features:
    """The perceptual loss' extractor with torchvision's ImageNet VGG19 weights, read strictly from
    ``weights_dir``: a missing file is refused with its name, URL and the import command, a file of
    another layout with what does not fit. ``scratch``: random weights instead, flagged ``pretrained=False``."""
    if scratch:
        return VGG19Features(_extractor(_scratch_features()), pretrained=False, provenance={"weights": "scratch"})
    path = core_weights.locate(VGG19_RECORD, Path(weights_dir))
    state, files = core_weights.load_state(VGG19_RECORD, path)
    network = _load_layout(state, VGG19_RECORD)
    return VGG19Features(
        _extractor(network.features), pretrained=True, provenance={"weights": VGG19_RECORD.name, **files}
    )
