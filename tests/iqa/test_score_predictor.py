"""train_score_predictor: 4PP-EUSR's MobileNetV2 score predictor — the squared EMD and the Gaussian targets
by hand, a tiny run that lowers the loss and becomes a metric, resume equality, and the refusals."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from annotation.models import DistortedImage
from iqa import metrics
from iqa.learned import score_predictor_arch as sp_arch
from iqa.learned import score_predictor_training as sp
from iqa.learned import store
from iqa.learned.training import TrainingRun, torch_threads
from iqa.weights import file_sha256
from tests.factories import import_folder, make_pipal_folder

SIZE = 48  # image side; crops of 32 (the smallest MobileNetV2 input that keeps a 1x1 map)
TINY = {"crop": 32, "head_batch": 8, "batch": 8, "head_lr": 1e-2, "lr": 1e-3, "threads": 1}
NOISE = (0, 10, 20, 35, 50, 70)  # grey levels of noise by rank: rank 0 is the best image


def texture(seed: int, size: int = SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.stack([128 + 60 * np.sin(x * rng.uniform(0.1, 0.4) + y * rng.uniform(0.1, 0.4) + c) for c in range(3)], -1)
    return np.clip(out, 0, 255).astype(np.uint8)


def noisy(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, clean.shape)
    return np.clip(clean + noise, 0, 255).round().astype(np.uint8)


# --- loss, targets, network -------------------------------------------------------------------------


def test_squared_emd_matches_a_hand_computation():
    first = torch.zeros(1, 10)
    first[0, 0] = 1
    last = torch.zeros(1, 10)
    last[0, 9] = 1
    # CDFs differ by 1 at bins 1..9 and agree (both 1) at bin 10
    assert sp.squared_emd(first, last).item() == pytest.approx(9.0)
    p = torch.tensor([[0.5, 0.5] + [0.0] * 8])
    q = torch.tensor([[0.0, 0.5, 0.5] + [0.0] * 7])
    # CDF p: .5, 1, 1, ...; CDF q: 0, .5, 1, ...: differences .5, .5, 0, ... -> .25 + .25
    assert sp.squared_emd(p, q).item() == pytest.approx(0.5)
    r = torch.tensor([[0.2, 0.3, 0.1, 0.4] + [0.0] * 6])
    s = torch.tensor([[0.1, 0.1, 0.4, 0.4] + [0.0] * 6])
    # CDFs .2 .5 .6 1 / .1 .2 .6 1 -> .01 + .09 + 0
    assert sp.squared_emd(r, s).item() == pytest.approx(0.10)
    assert sp.squared_emd(torch.cat([p, r]), torch.cat([q, s])).tolist() == pytest.approx([0.5, 0.1])
    assert sp.squared_emd(r, r).item() == 0


def test_gaussian_targets_sum_to_one_and_centre_on_the_mean():
    target = sp.gaussian_target(5.5, 1.0)
    assert target.shape == (10,) and target.sum() == pytest.approx(1.0)
    assert (target @ np.arange(1, 11)) == pytest.approx(5.5, abs=1e-9)  # symmetric: the mean is kept
    assert target[4] == pytest.approx(target[5]) and target.argmax() in (4, 5)
    assert sp.gaussian_target(3.0, 1.0) @ np.arange(1, 11) == pytest.approx(3.0, abs=0.02)  # 2 sigma from the edge
    edge = sp.gaussian_target(1.0, 1.0)
    assert edge.argmax() == 0 and edge @ np.arange(1, 11) > 1.0  # truncated at the edge: pulled inwards
    assert (sp.gaussian_target(7.2, 0.5) > 0.05).sum() >= 2  # never a one-bin spike at the floor
    with pytest.raises(ValueError, match="sigma must be positive"):
        sp.gaussian_target(5, 0)


def test_mos_targets_map_each_reference_range_onto_1_to_10():
    def image(name, reference, mos, recent):
        return SimpleNamespace(name=name, reference=reference, mos=mos, recent_elo=recent)

    items = [
        image("A_1", "A", 1500.0, [1470.0, 1530.0]),  # std 30
        image("A_2", "A", 1300.0, [1300.0]),  # one value: no spread, the floor
        image("A_3", "A", 1400.0, [1390.0, 1410.0]),  # std 10
        image("B_1", "B", 1410.0, [1200.0, 1620.0]),  # std 210
        image("B_2", "B", 1390.0, [1390.0, 1390.0]),
        image("C_1", "C", 1400.0, [1400.0]),  # a lone image: skipped
        image("D_1", "D", 1400.0, [1390.0]),  # one MOS value: skipped
        image("D_2", "D", 1400.0, [1410.0]),
    ]
    targets, skipped = sp.mos_targets(items, sigma_floor=0.5)
    assert skipped == ["C", "D"]
    by_name = {target.name: target for target in targets}
    assert [target.name for target in targets] == ["A_1", "A_2", "A_3", "B_1", "B_2"]
    # A spans 1300..1500: 9 bins per 200 Elo
    assert by_name["A_2"].mean == pytest.approx(1.0) and by_name["A_1"].mean == pytest.approx(10.0)
    assert by_name["A_3"].mean == pytest.approx(5.5)
    assert by_name["A_1"].sigma == pytest.approx(30 * 9 / 200) and by_name["A_1"].elo_std == pytest.approx(30)
    assert by_name["A_3"].sigma == pytest.approx(0.5)  # 10 * 9 / 200 = 0.45, floored
    assert by_name["A_2"].sigma == pytest.approx(0.5) and by_name["A_2"].elo_std == 0
    # B spans only 20 Elo: its own range is still 1..10 (MOS is identified within a reference only)
    assert (by_name["B_2"].mean, by_name["B_1"].mean) == pytest.approx((1.0, 10.0))
    assert by_name["B_1"].sigma == pytest.approx(210 * 9 / 20)
    assert sp.mos_targets(items, sigma_floor=2.0)[0][2].sigma == pytest.approx(2.0)
    # Imported labels with a published std (TID2013-style): that std, mapped the same way, is the sigma.
    labelled = [
        SimpleNamespace(name="T_1", reference="T", mos=2.0, recent_elo=[2.0], mos_std=0.4),
        SimpleNamespace(name="T_2", reference="T", mos=6.0, recent_elo=[6.0], mos_std=0.8),
    ]
    labelled_targets, _ = sp.mos_targets(labelled, sigma_floor=0.5)
    assert [t.sigma for t in labelled_targets] == pytest.approx([0.4 * 9 / 4, 0.8 * 9 / 4])


def test_network_is_torchvision_mobilenet_v2_with_a_10_bin_head():
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    torch.manual_seed(0)
    network = sp_arch.build({"crop": 32})
    reference = mobilenet_v2(width_mult=1.0).state_dict()
    own = network.state_dict()
    features = {key for key in reference if key.startswith("features.")}
    assert features == {key for key in own if key.startswith("features.")}
    assert all(own[key].shape == reference[key].shape for key in features)
    assert own["classifier.1.weight"].shape == (10, 1280) and own["classifier.1.bias"].shape == (10,)
    assert sum(p.numel() for p in network.parameters()) == 2_223_872 + 12_810  # torchvision's trunk + the new layer
    assert isinstance(network.classifier[0], torch.nn.Dropout) and network.classifier[0].p == 0.75

    # the published files, as torchvision 0.29 names them
    for choice, enum in (("pretrained", "IMAGENET1K_V1"), ("pretrained-v2", "IMAGENET1K_V2")):
        weights = MobileNet_V2_Weights[enum]
        assert sp.BACKBONES[choice].url == weights.url and sp.BACKBONES[choice].weights == enum
        assert sp.BACKBONES[choice].file == weights.url.rsplit("/", 1)[1]
        assert sp.BACKBONES[choice].top1 == weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]

    # the input is (255x - 127.5) / 127.5 and the score the mean over bins 1..10
    images = torch.rand(3, 3, 40, 50)
    network.eval()
    with torch.no_grad():
        expected = torch.softmax(
            network.classifier(
                torch.nn.functional.adaptive_avg_pool2d(network.features((images * 255 - 127.5) / 127.5), 1).flatten(1)
            ),
            1,
        )
        assert torch.allclose(network(images), expected, atol=1e-6)
        scores = sp_arch.as_metric(network)(images)
    assert scores.shape == (3,) and bool(((scores >= 1) & (scores <= 10)).all())
    cropped = images[..., 4:36, 9:41]  # the centre 32x32 window
    assert torch.allclose(scores, sp_arch.mean_score(network(cropped)), atol=1e-6)
    assert sp_arch.mean_score(torch.eye(10)).tolist() == pytest.approx(list(range(1, 11)))
    small = torch.rand(1, 3, 20, 64)
    assert sp_arch.center_crop(small, 32).shape == (1, 3, 20, 32)  # a short side is kept whole


# --- training on in-memory images (no database) ----------------------------------------------------


def synthetic_samples(references: int = 3, per_reference: int = 4, size: int = SIZE):
    pixels, samples = {}, []
    for r in range(references):
        clean = texture(r, size)
        for rank in range(per_reference):
            name = f"R{r}_{rank}"
            pixels[name] = noisy(clean, NOISE[rank], seed=100 * r + rank)
            mos = 1500.0 - 50 * rank
            samples.append(
                sp.Sample(
                    name, name, f"R{r}", size, size, mos, 1 + 9 * (per_reference - 1 - rank) / (per_reference - 1), 0.5
                )
            )
    return pixels, samples


def run_in(folder: Path, settings: sp.Settings, samples, pixels, resume: bool = False):
    run = TrainingRun(
        folder, kind=sp_arch.KIND, settings=sp.run_settings(settings, {}), data={"test": "synthetic"}, resume=resume
    )
    train = [sample for sample in samples if sample.reference != "R0"]
    validation = [sample for sample in samples if sample.reference == "R0"]
    with torch_threads(1):
        return sp.train(
            train_samples=train,
            validation_samples=validation,
            settings=settings,
            run=run,
            read=pixels.__getitem__,
            checkpoint_every=2,
        )


def test_resumed_run_equals_the_uninterrupted_one_and_a_seed_repeats(tmp_path):
    pixels, samples = synthetic_samples()
    base = {k: v for k, v in TINY.items() if k != "threads"}
    full_settings = sp.Settings(head_iterations=3, iterations=4, seed=5, **base)
    full = run_in(tmp_path / "full", full_settings, samples, pixels)
    again = run_in(tmp_path / "again", full_settings, samples, pixels)
    half = run_in(tmp_path / "half", sp.Settings(head_iterations=3, iterations=1, seed=5, **base), samples, pixels)
    resumed = run_in(tmp_path / "half", full_settings, samples, pixels, resume=True)
    assert half.steps_before == 0 and resumed.steps_before == 4

    def losses(folder):
        return [entry["loss"] for entry in json.loads((folder / "manifest.json").read_text())["history"]]

    assert len(losses(tmp_path / "full")) == 7 and losses(tmp_path / "full") == losses(tmp_path / "again")
    assert losses(tmp_path / "half") == pytest.approx(losses(tmp_path / "full"), rel=1e-5, abs=1e-7)
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key  # the seed decides everything
        assert torch.allclose(value.float(), resumed.model.state_dict()[key].float(), rtol=1e-5, atol=1e-6), key
    assert resumed.results["validation"]["srcc"] == pytest.approx(full.results["validation"]["srcc"])
    other = run_in(tmp_path / "other", sp.Settings(head_iterations=3, iterations=4, seed=6, **base), samples, pixels)
    assert losses(tmp_path / "other") != losses(tmp_path / "full")
    _ = other


def test_pretrained_backbone_is_loaded_by_its_hash_named_file_or_refused(tmp_path, monkeypatch):
    with pytest.raises(sp.BackboneMissing) as missing:
        sp.backbone_state("pretrained", tmp_path)
    message = str(missing.value)
    assert "mobilenet_v2-b0353104.pth" in message
    assert "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth" in message
    assert "python manage.py import_weights /path/to/mobilenet_v2-b0353104.pth" in message
    assert "--backbone scratch" in message

    # a file under the published name whose content does not match the name's hash prefix
    from torchvision.models import mobilenet_v2

    torch.manual_seed(1)
    imagenet = mobilenet_v2().state_dict()
    torch.save(imagenet, tmp_path / "mobilenet_v2-b0353104.pth")
    with pytest.raises(sp.TrainingError, match="SHA-256 starts .* not b0353104"):
        sp.backbone_state("pretrained", tmp_path)

    # a torchvision-style file whose name carries its own hash prefix: its trunk is what training starts from
    source = tmp_path / "trunk.pth"
    torch.save(imagenet, source)
    named = tmp_path / f"mobilenet_v2-{file_sha256(source)[:8]}.pth"
    source.rename(named)
    fake = replace(sp.BACKBONES["pretrained"], file=named.name, url=f"https://example.invalid/{named.name}")
    monkeypatch.setitem(sp.BACKBONES, "pretrained", fake)
    features, record = sp.backbone_state("pretrained", tmp_path)
    assert record["init"] == "IMAGENET1K_V1" and record["sha256"] == file_sha256(named)
    pixels, samples = synthetic_samples(references=2, per_reference=3)
    base = {k: v for k, v in TINY.items() if k != "threads"}
    settings = sp.Settings(head_iterations=1, iterations=0, backbone="pretrained", **base)
    run = TrainingRun(tmp_path / "pre", kind=sp_arch.KIND, settings=sp.run_settings(settings, record), data={})
    result = sp.train(
        train_samples=[s for s in samples if s.reference == "R1"],
        validation_samples=[s for s in samples if s.reference == "R0"],
        settings=settings,
        run=run,
        read=pixels.__getitem__,
        backbone=(features, record),
    )
    trained = result.model.state_dict()
    # phase 1 only: the frozen trunk is the file's, untouched (BatchNorm statistics included)
    assert all(torch.equal(trained[f"features.{key}"], value) for key, value in features.items())
    manifest = store.read_manifest(tmp_path / "pre")
    assert manifest["config"]["backbone"]["sha256"] == file_sha256(named)
    assert manifest["settings"]["backbone_sha256"] == file_sha256(named)


# --- the command on a synthetic study ---------------------------------------------------------------


@pytest.fixture
def weights_dir(settings, tmp_path) -> Path:
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"  # iqa.apps re-reads it: trained folders become metrics
    return settings.PIPAL_WEIGHTS_DIR


@pytest.fixture
def noisy_study(study, tmp_path, weights_dir):
    """4 references x 6 images of 48x48: noise of rank 0..5 on a texture, MOS falling with the noise."""
    folder = make_pipal_folder(tmp_path / "data", references=4, types=("01", "02", "03"), levels=(1, 2))
    for r in range(1, 5):
        clean = texture(r)
        Image.fromarray(clean).save(folder / "Ref" / f"R{r:04d}.png")
        for rank, (code, level) in enumerate((c, lv) for c in ("01", "02", "03") for lv in (1, 2)):
            Image.fromarray(noisy(clean, NOISE[rank], seed=10 * r + rank)).save(
                folder / "Dis" / f"R{r:04d}_{code}_{level:02d}.png"
            )
    import_folder(study, folder)
    for image in DistortedImage.objects.filter(study=study).order_by("name"):
        rank = ("01", "02", "03").index(image.distortion_type.code) * 2 + image.level - 1
        image.mos = 1560.0 - 40 * rank
        image.recent_elo = [image.mos - 15, image.mos, image.mos + 15]
        image.judgment_count = 12
        image.save()
    return study


def test_tiny_run_lowers_the_loss_and_becomes_a_metric(noisy_study, weights_dir):
    out = io.StringIO()
    name = "sp_tiny"
    call_command(
        "train_score_predictor", "s1", name=name, backbone="scratch", head_iterations=4, iterations=96,
        holdout=0.25, seed=0, stdout=out, **TINY,
    )  # fmt: skip
    folder = weights_dir / "learned" / name
    manifest = store.read_manifest(folder)
    text = out.getvalue()
    print(f"\n{text}")

    # the manifest: data, split by reference, hyper-parameters, targets, results
    assert manifest["kind"] == "score_predictor" and manifest["model_sha256"] == file_sha256(folder / "model.pt")
    data = manifest["data"]
    assert data["study"] == "s1" and data["images"] == 24 and data["skipped_references"] == []
    assert len(data["validation_references"]) == 1 and len(data["train_references"]) == 3
    assert set(data["validation_references"]).isdisjoint(data["train_references"])
    settings = manifest["settings"]
    assert (settings["head_iterations"], settings["iterations"], settings["seed"]) == (4, 96, 0)
    assert settings["adam_eps"] == 1e-7 and settings["adam_betas"] == [0.9, 0.999]
    assert settings["backbone"] == "scratch" and settings["backbone_sha256"] is None
    assert "recent_elo" in settings["targets"] and settings["sigma_floor"] == 0.5
    assert manifest["config"]["backbone"]["init"] == "scratch"
    assert [entry["phase"] for entry in manifest["history"]] == ["head"] * 4 + ["all"] * 96
    validation = manifest["results"]["validation"]
    assert validation["images"] == 6 and validation["references"] == 1
    assert "SRCC" in text and "KRCC" in text and "per reference" in text and str(folder) in text

    # the loss went down: mean squared EMD of the training images (centre crops, no dropout), before vs after
    by_name = {image.name: image for image in DistortedImage.objects.filter(study=noisy_study)}
    train_refs = set(data["train_references"])
    targets, _ = sp.mos_targets(
        [
            SimpleNamespace(name=n, reference=i.reference.name, mos=i.mos, recent_elo=i.recent_elo)
            for n, i in by_name.items()
        ]
    )
    samples = [
        sp.Sample(t.name, by_name[t.name].file.path, t.reference, SIZE, SIZE, t.mos, t.mean, t.sigma)
        for t in targets
        if t.reference in train_refs
    ]
    from iqa.learned.training import read_rgb

    torch.manual_seed(0)
    initial = sp_arch.build(manifest["config"])
    _, trained = store.build_trained(folder / "model.pt")
    before, after = sp.evaluate(initial, samples, read_rgb), sp.evaluate(trained, samples, read_rgb)
    print(f"training set: squared EMD {before['squared_emd']:.4f} -> {after['squared_emd']:.4f}, SRCC {after['srcc']}")
    assert after["squared_emd"] < 0.8 * before["squared_emd"]
    assert after["srcc"] > 0.5  # it ranks the noise levels it was trained on
    losses = [entry["loss"] for entry in manifest["history"]]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])  # what the optimiser minimised, train mode

    # a metric: no-reference, higher is better, versioned by model.pt's SHA-256
    info = metrics.metric_info(name)
    assert (info.source, info.full_reference, info.higher_is_better) == ("learned", False, True)
    assert name in metrics.metric_names()
    loaded = metrics.load_metric(name, device="cpu", weights_dir=weights_dir)
    assert loaded.version == f"learned+{manifest['model_sha256']}"
    held_out = sorted(
        (image for image in by_name.values() if image.reference.name in data["validation_references"]),
        key=lambda image: image.name,
    )
    scores = loaded.score(metrics.stack([metrics.read_image(image.file.path) for image in held_out]))
    assert len(scores) == 6 and all(1 <= score <= 10 for score in scores)
    from iqa.correlation import rank_agreement

    agreement = rank_agreement(scores, [image.mos for image in held_out], [image.reference.name for image in held_out])
    if validation["srcc"] is not None:
        assert agreement.srcc == pytest.approx(validation["srcc"])  # the manifest's figure is the metric's
    assert min(scores) == pytest.approx(validation["predicted_score_range"][0], abs=1e-5)

    # compute_scores takes it like any other metric
    from iqa.models import MetricScore

    call_command("compute_scores", "s1", metrics=name, device="cpu", stdout=io.StringIO())
    stored = MetricScore.objects.filter(metric=name, version=loaded.version)
    assert stored.count() == 24


def test_refusals_are_clear(noisy_study, weights_dir, study):
    common = {"name": "sp_x", "head_iterations": 1, "iterations": 1, **TINY}
    with pytest.raises(CommandError, match=r"mobilenet_v2-b0353104\.pth.*download\.pytorch\.org.*import_weights"):
        call_command("train_score_predictor", "s1", **common)  # the default backbone is the ImageNet one
    with pytest.raises(CommandError, match="is a metric already"):
        call_command("train_score_predictor", "s1", **{**common, "name": "lpips"}, backbone="scratch")
    with pytest.raises(CommandError, match="lower-case"):
        call_command("train_score_predictor", "s1", **{**common, "name": "../x"}, backbone="scratch")
    with pytest.raises(CommandError, match=r"smaller than the 64x64 crop, e\.g\. R0001"):
        call_command("train_score_predictor", "s1", **{**common, "crop": 64}, backbone="scratch")
    with pytest.raises(CommandError, match="--batch must be at least 2"):
        call_command("train_score_predictor", "s1", **{**common, "batch": 1}, backbone="scratch")

    call_command("train_score_predictor", "s1", **common, backbone="scratch", stdout=io.StringIO())
    with pytest.raises(CommandError, match="sp_x exists already .*--resume"):
        call_command("train_score_predictor", "s1", **common, backbone="scratch")
    with pytest.raises(CommandError, match="--resume of sp_x with other settings: seed 0 then, 3 now"):
        call_command("train_score_predictor", "s1", **common, backbone="scratch", seed=3, resume=True)
    out = io.StringIO()
    call_command(
        "train_score_predictor", "s1", **{**common, "iterations": 2}, backbone="scratch", resume=True, stdout=out
    )
    assert "(resumed)" in out.getvalue() and "1 steps in" in out.getvalue()
    assert [entry["step"] for entry in store.read_manifest(weights_dir / "learned" / "sp_x")["history"]] == [1, 2, 3]

    # one reference left with a ranking, then none judged at all
    DistortedImage.objects.filter(study=study).exclude(reference__name="R0001").update(mos=1400.0)
    with pytest.raises(CommandError, match=r"1 reference\(s\) with at least two judged images.*at least 2"):
        call_command("train_score_predictor", "s1", **{**common, "name": "sp_y"}, backbone="scratch")
    DistortedImage.objects.filter(study=study).update(judgment_count=0)
    with pytest.raises(CommandError, match="s1 has no judged images"):
        call_command("train_score_predictor", "s1", **{**common, "name": "sp_y"}, backbone="scratch")
