"""The pure parts of GAN training for SR: the adversarial losses against hand computations from the
papers' formulas, the rank-content loss' direction, the VGG19 extractor (ends at conv5_4 before its
ReLU; torchvision's layout loads strictly; missing and foreign files refused), and the discriminators'
shapes, gradients and patch checks."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.models import vgg19

from core.weights import WEIGHTS, WeightsError, WeightsMissing
from sr_models.gan import losses, vgg
from sr_models.gan.discriminators import (
    EusrDiscriminator,
    PatchSizeError,
    VGGStyleDiscriminator,
    build_discriminator,
)

torch.set_num_threads(1)

REAL = [1.5, -0.3, 2.0]
FAKE = [-1.0, 0.4, -2.5, 0.1]


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def mean(values) -> float:
    return sum(values) / len(values)


def logits(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).reshape(-1, 1)


# --- adversarial losses -----------------------------------------------------------------------------


def test_relativistic_losses_are_esrgan_equations_1_and_2():
    d_ra_real = [sigmoid(r - mean(FAKE)) for r in REAL]  # D_Ra(x_r, x_f)
    d_ra_fake = [sigmoid(f - mean(REAL)) for f in FAKE]  # D_Ra(x_f, x_r)
    expected_d = -mean([math.log(p) for p in d_ra_real]) - mean([math.log(1 - p) for p in d_ra_fake])
    expected_g = -mean([math.log(1 - p) for p in d_ra_real]) - mean([math.log(p) for p in d_ra_fake])

    loss_d = losses.relativistic_discriminator_loss(logits(REAL), logits(FAKE))
    loss_g = losses.relativistic_generator_loss(logits(REAL), logits(FAKE))
    assert loss_d.item() == pytest.approx(expected_d, abs=1e-6)
    assert loss_g.item() == pytest.approx(expected_g, abs=1e-6)
    # the authors' code: the two expectations averaged
    halved_d = losses.relativistic_discriminator_loss(logits(REAL), logits(FAKE), halved=True)
    assert halved_d.item() == pytest.approx(expected_d / 2, abs=1e-6)
    assert losses.relativistic_generator_loss(logits(REAL), logits(FAKE), halved=True).item() == pytest.approx(
        expected_g / 2, abs=1e-6
    )


def test_vanilla_losses_are_binary_cross_entropy():
    expected_d = -mean([math.log(sigmoid(r)) for r in REAL]) - mean([math.log(1 - sigmoid(f)) for f in FAKE])
    expected_g = -mean([math.log(sigmoid(f)) for f in FAKE])
    assert losses.vanilla_discriminator_loss(logits(REAL), logits(FAKE)).item() == pytest.approx(expected_d, abs=1e-6)
    assert losses.vanilla_generator_loss(logits(FAKE)).item() == pytest.approx(expected_g, abs=1e-6)


def test_losses_stay_finite_for_confident_logits():
    confident = torch.tensor([[80.0], [-80.0]])
    for value in (
        losses.relativistic_discriminator_loss(confident, -confident),
        losses.relativistic_generator_loss(confident, -confident),
        losses.vanilla_discriminator_loss(-confident, confident),
        losses.vanilla_generator_loss(-confident),
    ):
        assert math.isfinite(value.item())


def test_a_discriminator_that_separates_well_has_the_lower_discriminator_loss():
    separating = losses.relativistic_discriminator_loss(logits([3.0, 2.0]), logits([-3.0, -2.0]))
    confused = losses.relativistic_discriminator_loss(logits([-3.0, -2.0]), logits([3.0, 2.0]))
    assert separating < confused
    assert losses.relativistic_generator_loss(logits([3.0, 2.0]), logits([-3.0, -2.0])) > separating


# --- rank-content and perceptual losses -------------------------------------------------------------


def test_rank_content_loss_is_sigmoid_of_the_score_averaged():
    scores = torch.tensor([[0.5], [-1.0], [2.0]])
    assert losses.rank_content_loss(scores, lower_is_better=True).item() == pytest.approx(
        mean([sigmoid(0.5), sigmoid(-1.0), sigmoid(2.0)]), abs=1e-6
    )
    assert losses.rank_content_loss(scores, lower_is_better=True, reduction="sum").item() == pytest.approx(
        sigmoid(0.5) + sigmoid(-1.0) + sigmoid(2.0), abs=1e-6
    )
    with pytest.raises(ValueError, match="reduction"):
        losses.rank_content_loss(scores, lower_is_better=True, reduction="max")


def test_rank_content_loss_falls_as_the_image_gets_better_in_the_rankers_direction():
    higher, lower = torch.tensor([[1.0], [0.5]]), torch.tensor([[-1.0], [-1.5]])
    # NIQE/Ma/PI Rankers: a lower score is a better image, so the loss falls with the score
    assert losses.rank_content_loss(lower, lower_is_better=True) < losses.rank_content_loss(
        higher, lower_is_better=True
    )
    # a Ranker that scores better images higher: the loss falls as the score rises
    assert losses.rank_content_loss(higher, lower_is_better=False) < losses.rank_content_loss(
        lower, lower_is_better=False
    )
    # and its gradient pushes the score the right way
    score = torch.tensor([[0.3]], requires_grad=True)
    losses.rank_content_loss(score, lower_is_better=True).backward()
    assert score.grad.item() > 0
    score.grad = None
    losses.rank_content_loss(score, lower_is_better=False).backward()
    assert score.grad.item() < 0


def test_perceptual_loss_is_l1_and_trains_only_the_sr_side():
    sr = torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    hr = torch.tensor([[0.0, -1.0], [1.5, 3.0]], requires_grad=True)
    loss = losses.perceptual_loss(sr, hr)
    assert loss.item() == pytest.approx((1.0 + 1.0 + 1.0 + 0.0) / 4, abs=1e-6)
    loss.backward()
    assert sr.grad is not None and hr.grad is None


# --- VGG19 feature extractor ------------------------------------------------------------------------


def test_layer_map_is_torchvisions_vgg19_and_the_extractor_ends_at_conv5_4_before_relu():
    names = vgg.vgg19_layer_names()
    with torch.device("meta"):
        features = vgg19(weights=None).features
    assert len(names) == len(features) == 37
    kinds = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d}
    for name, layer in zip(names, features, strict=True):
        assert isinstance(layer, kinds[name[:4]]), name
    assert names[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert (names[34], names[35], names[36]) == ("conv5_4", "relu5_4", "pool5")
    assert vgg.extractor_layer_names() == names[:35]


def test_scratch_extractor_gives_conv5_4_features_before_activation():
    torch.manual_seed(0)
    extractor = vgg.load_vgg19_features("/nonexistent", scratch=True)
    assert extractor.pretrained is False
    network = extractor.network
    assert [name for name, _ in network.named_children()][-1] == "conv5_4"
    assert not network.training and not any(p.requires_grad for p in network.parameters())

    ramp = torch.linspace(0, 1, 32)
    image = torch.stack([ramp.outer(ramp), ramp.expand(32, 32), 1 - ramp.outer(ramp)]).unsqueeze(0)  # [0, 1]
    out = network(image)
    assert out.shape == (1, 512, 2, 2)
    assert (out < 0).any()  # before activation: negative values survive

    # the same weights in torchvision's features: index 34 gives our output, index 35 (ReLU) clips it
    with torch.device("meta"):
        reference = vgg19(weights=None).features
    convs = [layer for layer in network if isinstance(layer, torch.nn.Conv2d)]
    reference_convs = [layer for layer in reference if isinstance(layer, torch.nn.Conv2d)]
    for ours, theirs in zip(convs, reference_convs, strict=True):
        theirs.load_state_dict(ours.state_dict(), assign=True)
    normalised = (image - torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(vgg.IMAGENET_STD).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        at_conv5_4 = reference[:35](normalised)
        after_relu = reference[35](at_conv5_4.clone())
    torch.testing.assert_close(out, at_conv5_4, rtol=1e-5, atol=1e-5)
    assert (after_relu >= 0).all() and not torch.equal(after_relu, out)


def test_gradients_flow_through_the_frozen_extractor_into_the_image():
    torch.manual_seed(0)
    network = vgg.load_vgg19_features("/nonexistent", scratch=True).network
    sr = torch.rand(1, 3, 32, 32, requires_grad=True)
    losses.perceptual_loss(network(sr), network(torch.rand(1, 3, 32, 32))).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in network.parameters())


@pytest.fixture(scope="module")
def torchvision_vgg19_file(tmp_path_factory):
    """A file in torchvision's VGG19 layout under the published name: every tensor of torchvision's
    own state dict, of its shape, filled with a constant of its own. Each is one number expanded to
    the shape (torch.save keeps the one-element storage), so the file is a few kilobytes, not 548 MB."""
    with torch.device("meta"):
        model = vgg19(weights=None)
    state = {
        key: torch.full((1,) * tensor.dim(), index / 100).expand(tensor.shape)
        for index, (key, tensor) in enumerate(model.state_dict().items())
    }
    weights_dir = tmp_path_factory.mktemp("weights")
    torch.save(state, weights_dir / vgg.VGG19_RECORD.file)
    return weights_dir, list(state)


def test_torchvision_layout_loads_strictly(torchvision_vgg19_file):
    weights_dir, keys = torchvision_vgg19_file
    extractor = vgg.load_vgg19_features(weights_dir)
    assert extractor.pretrained is True
    assert extractor.provenance["file"] == "vgg19-dcbb9e9d.pth" and len(extractor.provenance["sha256"]) == 64
    conv5_4 = extractor.network.conv5_4
    assert torch.all(conv5_4.weight == keys.index("features.34.weight") / 100)
    assert not conv5_4.weight.requires_grad
    vgg.VGG19_RECORD.check(weights_dir / vgg.VGG19_RECORD.file)  # the import check accepts it


def test_missing_file_is_refused_with_its_name_url_and_import_command(tmp_path):
    with pytest.raises(WeightsMissing) as refusal:
        vgg.load_vgg19_features(tmp_path)
    message = str(refusal.value)
    assert "vgg19-dcbb9e9d.pth" in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert "python manage.py import_weights vgg19_imagenet /path/to/vgg19-dcbb9e9d.pth" in message


def test_the_record_is_found_by_name_as_fetch_weights_and_import_weights_find_it():
    vgg.register_weights()
    vgg.register_weights()
    record = WEIGHTS.get("vgg19_imagenet")
    assert record is vgg.VGG19_RECORD
    assert record.hash_prefix == "dcbb9e9d" and record.url.endswith(record.file)


def test_foreign_layout_is_refused(tmp_path):
    with torch.device("meta"):
        features = vgg19(weights=None).features
    # only the features: the classifier missing, so not torchvision's VGG19 file
    state = {f"features.{key}": torch.zeros((1,) * t.dim()).expand(t.shape) for key, t in features.state_dict().items()}
    path = tmp_path / vgg.VGG19_RECORD.file
    torch.save(state, path)
    with pytest.raises(WeightsError, match="classifier"):
        vgg.load_vgg19_features(tmp_path)
    with pytest.raises(WeightsError, match="is not torchvision's ImageNet VGG19"):
        vgg.VGG19_RECORD.check(path)


# --- discriminators ---------------------------------------------------------------------------------


@pytest.mark.parametrize("patch, side", [(128, 4), (296, 9)])
def test_vgg_style_discriminator_gives_one_logit_per_image_and_trains(patch, side):
    torch.manual_seed(0)
    network = build_discriminator("vgg_style", patch, num_feat=8)
    assert network.linear1.in_features == 8 * 8 * side * side
    images = torch.rand(2, 3, patch, patch, requires_grad=True)
    out = network(images)
    assert out.shape == (2, 1)
    losses.vanilla_discriminator_loss(out[:1], out[1:]).backward()
    assert images.grad.abs().sum() > 0
    assert all(p.grad is not None for p in network.parameters())


def test_vgg_style_discriminator_official_layout():
    network = VGGStyleDiscriminator(input_size=128, num_feat=64)
    assert network.linear1.in_features == 512 * 4 * 4 and network.linear2.out_features == 1
    assert network.conv0_0.bias is not None and network.conv0_1.bias is None and not hasattr(network, "bn0_0")
    assert (network.conv0_1.kernel_size, network.conv0_1.stride) == ((4, 4), (2, 2))
    assert network.conv4_1.out_channels == 512 and network.bn4_1.num_features == 512
    assert VGGStyleDiscriminator(input_size=296).linear1.in_features == 512 * 9 * 9  # discriminator_vgg_296


def test_eusr_discriminator_gives_one_logit_per_32_pixel_cell_and_trains():
    torch.manual_seed(0)
    network = build_discriminator("eusr", 192, channels=(4, 4, 8, 8, 8, 8, 8, 8, 16, 16), hidden=32)
    images = torch.rand(2, 3, 192, 192, requires_grad=True)
    out = network(images)
    assert out.shape == (2, 36)  # 192 / 32 = 6 cells a side
    assert network(torch.rand(1, 3, 100, 70)).shape == (1, 4 * 3)  # 'same' padding: ⌈100/32⌉·⌈70/32⌉
    losses.relativistic_discriminator_loss(out[:1], out[1:]).backward()
    assert images.grad.abs().sum() > 0
    assert all(p.grad is not None for p in network.parameters())


def test_eusr_discriminator_official_layout():
    network = EusrDiscriminator()
    convs = [getattr(network, f"conv{index}") for index in range(1, 11)]
    assert [conv.out_channels for conv in convs] == [32, 32, 64, 64, 128, 128, 256, 256, 512, 512]
    assert [conv.stride[0] for conv in convs] == [1, 2] * 5
    assert all(conv.kernel_size == (3, 3) for conv in convs)
    assert not any(isinstance(layer, torch.nn.BatchNorm2d) for layer in network.modules())
    assert (network.fc.in_features, network.fc.out_features, network.final.out_features) == (512, 1024, 1)


def test_a_patch_the_network_cannot_take_is_refused_with_a_message():
    with pytest.raises(PatchSizeError, match="at least 32 pixels"):
        build_discriminator("vgg_style", 24)
    with pytest.raises(PatchSizeError, match="positive"):
        build_discriminator("eusr", 0)
    with pytest.raises(ValueError, match="unknown discriminator"):
        build_discriminator("patchgan", 128)
    network = build_discriminator("vgg_style", 128, num_feat=4)
    with pytest.raises(PatchSizeError, match="takes 128x128 patches.*not 96x96"):
        network(torch.rand(1, 3, 96, 96))
