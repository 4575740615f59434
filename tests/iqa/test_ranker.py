"""RankSRGAN Rankers: the network in the official layout, official files, the loss's sign, rank datasets,
tiny training runs that become metrics, exact resume, and the two commands end to end."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from iqa import metrics
from iqa.learned import official, ranker_arch, ranker_training, store
from iqa.learned import rank_dataset as rd
from iqa.learned.training import TrainingError, TrainingRun, torch_threads
from iqa.models import MetricScore
from tests.factories import graded_study, grating_texture, install_random_checkpoint

TINY_NF = 4


def texture(seed: int, size: int = 40) -> np.ndarray:
    """A smooth RGB image (gradients and low-frequency gratings): noise and blur change it visibly."""
    return grating_texture(seed, size, gratings=3, frequencies=(0.03, 0.15))


def hr_images(count: int, size: int = 40) -> list[tuple[str, np.ndarray]]:
    return [(f"img{i:02d}", texture(i, size)) for i in range(count)]


def rows(folder: Path) -> list[dict]:
    with open(folder / rd.LABELS_FILE, newline="") as handle:
        return list(csv.DictReader(handle))


def tiny_settings(**changes) -> ranker_training.RankerSettings:
    values = {"iterations": 40, "batch": 8, "crop": 32, "lr": 1e-3, "nf": TINY_NF, "seed": 0}
    return ranker_training.RankerSettings(**{**values, **changes})


@pytest.fixture
def noise_dataset(tmp_path) -> rd.RankDataset:
    options = rd.PatchOptions(size=40, stride=8, validation=0.2)
    rd.build_distortion(tmp_path / "noise", hr_images(5, 48), kind="noise", options=options)
    return rd.load(tmp_path / "noise")


@pytest.fixture
def weights_dir(settings, tmp_path) -> Path:
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"  # iqa.apps and sr_models.apps follow the setting
    return settings.PIPAL_WEIGHTS_DIR


# --- the network and official files ------------------------------------------------------------------


def official_keys() -> list[str]:
    """The key layout of RankSRGAN_arch.Ranker_VGG12_296 (SPEC §4), written out independently."""
    keys = []
    for stage in range(5):
        for step in range(2):
            keys += [f"conv{stage}_{step}.weight", f"conv{stage}_{step}.bias"]
            if stage or step:
                keys += [f"bn{stage}_{step}.{n}" for n in ("weight", "bias", "running_mean", "running_var")]
                keys.append(f"bn{stage}_{step}.num_batches_tracked")
    return keys + ["classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"]


def test_the_official_width_has_the_papers_parameter_count_and_key_layout():
    network = ranker_arch.build({})
    # journal Table 2: 13,734K
    assert ranker_arch.parameter_count(network) == ranker_arch.OFFICIAL_PARAMETERS == 13_734_281
    assert list(network.state_dict()) == official_keys()
    shapes = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    assert shapes["conv0_1.weight"] == (64, 64, 4, 4) and shapes["conv4_1.weight"] == (512, 512, 4, 4)
    assert shapes["conv0_0.weight"] == (64, 3, 3, 3) and shapes["classifier.0.weight"] == (100, 512)
    tiny = ranker_arch.build({"nf": TINY_NF})
    assert list(tiny.state_dict()) == official_keys()
    assert tiny(torch.rand(2, 3, 37, 53)).shape == (2, 1)  # global average pooling: any size


def random_official_state(nf: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    state = ranker_arch.Ranker(nf=nf).state_dict()
    for key, value in state.items():
        if key.endswith("running_var"):
            value.uniform_(0.5, 1.5)
        elif value.is_floating_point():
            value.normal_(0, 0.05)
    return state


def test_official_files_load_strictly_with_or_without_the_dataparallel_prefix(tmp_path):
    state = random_official_state(ranker_arch.OFFICIAL_NF)
    torch.save(state, tmp_path / "Ranker_NIQE.pth")
    network = ranker_arch.load_official(tmp_path / "Ranker_NIQE.pth")
    assert network.nf == 64 and not network.training
    assert all(torch.equal(network.state_dict()[key], value) for key, value in state.items())

    small = random_official_state(8, seed=1)
    torch.save({f"module.{key}": value for key, value in small.items()}, tmp_path / "mmsr_Ranker_NIQE.pth")
    prefixed = ranker_arch.load_official(tmp_path / "mmsr_Ranker_NIQE.pth")
    reference = ranker_arch.Ranker(nf=8)
    reference.load_state_dict(small)
    x = torch.rand(3, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(prefixed(x), reference.eval()(x))
        # the metric callable: (N,) scores, references ignored, eval mode
        assert torch.equal(ranker_arch.as_metric(prefixed)(x, None), reference(x).reshape(3))

    old = {key: value for key, value in small.items() if not key.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old_pytorch.pth")  # PyTorch < 0.4.1 saved no num_batches_tracked
    ranker_arch.load_official(tmp_path / "old_pytorch.pth")


def test_a_file_of_another_layout_is_refused_with_a_message_that_names_it(tmp_path):
    state = random_official_state(8)
    broken = dict(state)
    del broken["bn2_0.weight"]
    broken["classifier.1.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "Ranker_Ma.pth")
    with pytest.raises(store.LearnedModelError, match="Ranker_Ma.pth does not fit") as error:
        ranker_arch.load_official(tmp_path / "Ranker_Ma.pth")
    assert "missing: bn2_0.weight" in str(error.value) and "unexpected: classifier.1.weight" in str(error.value)

    wrong = dict(state)
    wrong["classifier.0.weight"] = torch.zeros(100, 7)
    torch.save(wrong, tmp_path / "Ranker_PI.pth")
    with pytest.raises(store.LearnedModelError, match=r"Ranker_PI.pth .*wrong shape: classifier.0.weight"):
        ranker_arch.load_official(tmp_path / "Ranker_PI.pth")

    torch.save({"conv_first.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "SRGAN.pth")
    with pytest.raises(store.LearnedModelError, match="SRGAN.pth is not in the Ranker_VGG12_296 layout"):
        ranker_arch.load_official(tmp_path / "SRGAN.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(store.LearnedModelError, match="junk.pth cannot be read"):
        ranker_arch.load_official(tmp_path / "junk.pth")


def test_the_official_rankers_are_listed_with_lower_is_better():
    by_file = {entry.file: entry for entry in official.OFFICIAL_RANKERS}
    assert set(by_file) == {"Ranker_NIQE.pth", "Ranker_Ma.pth", "Ranker_PI.pth"}
    assert {entry.metric for entry in official.OFFICIAL_RANKERS} == {"ranker_niqe", "ranker_ma", "ranker_pi"}
    assert all(not entry.higher_is_better and entry.sha256 is None for entry in official.OFFICIAL_RANKERS)
    # The Google Drive folder is no direct download: the source names it, import_weights installs the file.
    assert all("github.com/XPixelGroup/RankSRGAN" in entry.source for entry in official.OFFICIAL_RANKERS)
    assert all("drive.google.com" in entry.source and entry.url is None for entry in official.OFFICIAL_RANKERS)


def test_an_official_ranker_file_in_the_weights_dir_is_a_metric(tmp_path):
    from core.weights import WeightsMissing

    weights_dir = tmp_path / "weights"
    with pytest.raises(WeightsMissing, match=r"Ranker_NIQE.pth, which is not in.*drive.google.com.*import_weights"):
        metrics.load_metric("ranker_niqe", device="cpu", weights_dir=weights_dir)
    weights_dir.mkdir()
    torch.save(random_official_state(ranker_arch.OFFICIAL_NF), weights_dir / "Ranker_NIQE.pth")
    loaded = metrics.load_metric("ranker_niqe", device="cpu", weights_dir=weights_dir)
    assert loaded.version.startswith("project+") and not loaded.info.higher_is_better
    scores = loaded.score(torch.rand(2, 3, 64, 64))
    assert len(scores) == 2 and all(np.isfinite(scores))


# --- the loss -------------------------------------------------------------------------------------------


def test_the_loss_pushes_the_higher_label_to_the_higher_score():
    high, low = torch.tensor([3.0]), torch.tensor([1.0])  # e.g. NIQE: the first image is worse
    target = ranker_training.rank_targets(high, low)
    assert target.tolist() == [1.0]
    # scores in the label's order by more than the margin: no loss; the other way round: margin + gap
    assert ranker_training.ranking_loss(torch.tensor([1.0]), torch.tensor([0.0]), target).item() == 0.0
    assert ranker_training.ranking_loss(torch.tensor([0.0]), torch.tensor([1.0]), target).item() == pytest.approx(1.5)
    # the official form: nn.MarginRankingLoss(margin=0.5)(s1, s2, +1 when label1 >= label2)
    s1, s2 = torch.randn(16), torch.randn(16)
    labels1, labels2 = torch.rand(16), torch.rand(16)
    official = torch.nn.MarginRankingLoss(margin=0.5)(s1, s2, ((labels1 >= labels2).float() - 0.5) * 2)
    targets = ranker_training.rank_targets(labels1, labels2)
    assert ranker_training.ranking_loss(s1, s2, targets) == pytest.approx(official.item())
    # a gradient step raises the score of the higher-label image
    score1 = torch.zeros(1, requires_grad=True)
    score2 = torch.zeros(1, requires_grad=True)
    ranker_training.ranking_loss(score1, score2, target).backward()
    assert score1.grad.item() < 0 < score2.grad.item()
    # scores are clamped to ±5 as in Ranker_model.py: no gradient beyond
    far = torch.tensor([-9.0], requires_grad=True)
    loss = ranker_training.ranking_loss(far, torch.tensor([0.0]), target)
    loss.backward()
    assert loss.item() == pytest.approx(5.5) and far.grad.item() == 0.0  # -9 counts as -5
    with pytest.raises(ValueError, match="tied labels"):
        ranker_training.rank_targets(torch.tensor([2.0]), torch.tensor([2.0]))


# --- rank datasets --------------------------------------------------------------------------------------


def test_patches_sharpness_and_positions():
    assert rd.patch_positions((40, 40, 3), 32, 8) == [(t, left, 32, 32) for t in (0, 8) for left in (0, 8)]
    assert rd.patch_positions((20, 50, 3), 32, 16) == [(0, 0, 20, 32), (0, 16, 20, 32)]  # a short side: whole
    assert rd.patch_positions((296, 592, 3), 296, 148) == [(0, 0, 296, 296), (0, 148, 296, 296), (0, 296, 296, 296)]
    flat = np.full((96, 96, 3), 120, np.uint8)
    assert rd.sharpness(flat) == pytest.approx(0.0, abs=1e-9)
    busy = np.random.default_rng(0).integers(0, 256, (296, 296, 3), dtype=np.uint8)
    assert rd.sharpness(busy) > rd.SR_MIN_SHARPNESS
    assert rd.sharpness(texture(0, 296)) < rd.sharpness(busy)


def test_distortion_levels_make_groups_split_by_source_image(tmp_path):
    options = rd.PatchOptions(size=32, stride=8, validation=0.2, seed=3)
    summary = rd.build_distortion(tmp_path / "blur", hr_images(5), kind="blur", options=options)
    table = rows(tmp_path / "blur")
    manifest = json.loads((tmp_path / "blur" / rd.MANIFEST_FILE).read_text())
    assert manifest["source"] == "distortion" and manifest["label"]["higher_is_worse"] is True
    assert manifest["parameters"] == {"kind": "blur", "sigmas": [0.1, 2.0, 4.0], "sigma_unit": "pixels"}
    assert manifest["counts"]["patches"] == len(table) == 5 * 4 * 3  # 4 positions, 3 levels
    assert manifest["patch"]["size"] == 32 and manifest["seed"] == 3 and manifest["validation_share"] == 0.2
    assert list(table[0]) == list(rd.COLUMNS)
    # a group = one position of one image at the three levels; labels = sigma
    groups: dict[str, list[dict]] = {}
    for row in table:
        groups.setdefault(row["group"], []).append(row)
    assert len(groups) == 20
    for members in groups.values():
        assert sorted(float(r["label"]) for r in members) == [0.1, 2.0, 4.0]
        assert len({(r["source_image"], r["split"]) for r in members}) == 1
    # the split is by source image: one of five images, all its patches
    splits = {}
    for row in table:
        assert splits.setdefault(row["source_image"], row["split"]) == row["split"]
    assert sorted(splits.values()).count("validation") == 1 and summary.split["validation"] == manifest["split"][
        "validation"
    ]
    # the blurrier patch is the smoother one, at the same position
    dataset = rd.load(tmp_path / "blur")
    members = dataset.groups("train")[next(iter(dataset.groups("train")))]
    by_label = {dataset.items[i].label: dataset.image(i).astype(float) for i in members}
    assert np.abs(np.diff(by_label[4.0], axis=1)).mean() < np.abs(np.diff(by_label[0.1], axis=1)).mean()
    assert len(dataset.pairs("train")[0]) == 3  # three levels, three pairs


def test_noise_levels_are_sigmas_on_the_0_255_scale(noise_dataset):
    manifest = noise_dataset.manifest
    assert manifest["parameters"]["sigmas"] == [1.0, 15.0, 30.0] and manifest["parameters"]["sigma_unit"] == "0-255"
    assert "not variance" in manifest["label"]["meaning"]
    clean = dict(hr_images(5, 48))
    for index, item in enumerate(noise_dataset.items):
        if item.group.endswith("@0_0") and item.label == 15.0:
            source = clean[item.source_image][:40, :40].astype(float)
            noise = noise_dataset.image(index).astype(float) - source
            assert noise.std() == pytest.approx(15.0, rel=0.1)


def test_interpolation_weights_the_sr_output_against_hr(tmp_path):
    seen = []

    def upscale(lr):  # nearest-neighbour x4: a stand-in SR model
        seen.append(lr.shape)
        return np.kron(lr, np.ones((4, 4, 1), np.uint8))

    images = hr_images(3, size=42)  # cropped to 40 (a multiple of the scale)
    rd.build_interpolation(
        tmp_path / "interp", images, upscale=upscale, model="nearest", include_ends=True,
        options=rd.PatchOptions(size=40, stride=8, validation=0.3),
    )
    assert seen == [(10, 10, 3)] * 3  # the LR images are HR / 4 (MATLAB bicubic)
    dataset = rd.load(tmp_path / "interp")
    assert dataset.manifest["parameters"]["lambdas"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert dataset.higher_is_worse and len(dataset.groups("train")) + len(dataset.groups("validation")) == 3
    group = dataset.groups("train")[next(iter(dataset.groups("train")))]
    assert dataset.items[group[0]].group == dataset.items[group[0]].source_image  # whole image: group = image
    by_label = {dataset.items[i].label: dataset.image(i).astype(float) for i in group}
    hr, sr = by_label[0.0], by_label[1.0]
    assert np.array_equal(hr, dict(images)[dataset.items[group[0]].source_image][:40, :40])
    assert np.array_equal(by_label[0.5], np.floor(0.5 * sr + 0.5 * hr + 0.5))


def test_sr_outputs_are_labelled_per_patch_by_the_metric_and_close_ones_dropped(tmp_path):
    def shifted(offset):
        return lambda lr: np.clip(np.kron(lr, np.ones((4, 4, 1))) + offset, 0, 255).astype(np.uint8)

    references = []

    def mean_level(patches, reference):  # a stand-in metric: mean grey level, lower is better
        references.append(reference.shape)
        return [float(p.mean()) for p in patches]

    metric = rd.PatchMetric("grey", higher_is_better=False, full_reference=True, score=mean_level)
    upscalers = {"a": shifted(0), "b": shifted(2), "c": shifted(40)}
    options = rd.PatchOptions(size=16, stride=8, validation=0.3, max_per_image=3)
    rd.build_sr(tmp_path / "sr", hr_images(4, 32), upscalers=upscalers, metric=metric, min_gap=0.5, options=options)
    dataset = rd.load(tmp_path / "sr")
    assert dataset.higher_is_worse and dataset.manifest["parameters"]["models"] == ["a", "b", "c"]
    assert set(references) == {(16, 16, 3)}  # full-reference: the HR patch
    counts = dataset.manifest["counts"]
    assert counts["dropped_over_limit_positions"] == 4 * (9 - 3)  # 9 positions, 3 kept per image
    for members in dataset.groups("train").values():
        labels = [dataset.items[i].label for i in members]
        assert len(labels) == 3 and labels[1] - labels[0] > 0.5 and labels[2] > labels[1]
    # a gap nobody meets leaves nothing to train on: refused with the reason
    with pytest.raises(rd.RankDatasetError, match="no train patches are left"):
        rd.build_sr(tmp_path / "sr2", hr_images(4, 32), upscalers=upscalers, metric=metric, min_gap=50, options=options)
    assert not (tmp_path / "sr2").exists()  # never half a dataset


def test_a_damaged_dataset_is_refused_with_the_file_named(noise_dataset, tmp_path):
    folder = noise_dataset.folder
    first = noise_dataset.path(0)
    first.write_bytes(b"garbage")
    with pytest.raises(rd.RankDatasetError, match=f"{first.name}: cannot read the patch"):
        rd.load(folder).image(0)
    table = rows(folder)
    table[0]["split"] = "validation" if table[0]["split"] == "train" else "train"
    with open(folder / rd.LABELS_FILE, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=rd.COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    with pytest.raises(rd.RankDatasetError, match="spans"):
        rd.load(folder)
    with pytest.raises(rd.RankDatasetError, match="manifest.json is missing"):
        rd.load(tmp_path)


# --- training ---------------------------------------------------------------------------------------------


def test_a_tiny_run_lowers_the_loss_and_becomes_a_metric(noise_dataset, weights_dir):
    folder = store.learned_root(weights_dir) / "tiny_noise"
    run = TrainingRun(folder, kind=ranker_arch.KIND, settings=tiny_settings().as_dict(), data={"d": 1})
    with torch_threads(1):
        result = ranker_training.train(noise_dataset, tiny_settings(), run, checkpoint_every=0)
    losses = result.losses
    assert len(losses) == 40 and np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    figures = result.results
    assert figures["srocc"] is not None and figures["srocc"] > 0.5  # noisier patches score higher
    assert figures["validation_patches"] == 12 and figures["pair_accuracy"] > 0.5  # 1 image x 4 positions x 3
    manifest = store.read_manifest(folder)
    assert manifest["results"]["srocc"] == figures["srocc"] and manifest["model_sha256"] == result.sha256
    assert manifest["metric"]["higher_is_better"] is False  # noise: a higher label is worse
    assert manifest["settings"]["lr_steps"] == [10, 20]  # 1/4 and 1/2 of the run

    info = metrics.metric_info("tiny_noise")
    assert info.source == "learned" and not info.higher_is_better and not info.full_reference
    loaded = metrics.load_metric("tiny_noise", device="cpu", weights_dir=weights_dir)
    assert loaded.version == f"learned+{result.sha256}"
    clean = torch.from_numpy(texture(9, 40)).permute(2, 0, 1).float()[None] / 255
    noisy = (clean + 0.12 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    scores = loaded.score(torch.cat([clean, noisy]))
    assert len(scores) == 2 and scores[1] > scores[0]  # the metric ranks like its training labels
    with pytest.raises(ValueError, match="at least 32 pixels a side"):
        loaded.score(clean[..., :31])
    # a validation subset: one of the four validation groups, seeded
    network = ranker_arch.build(result.config)
    network.load_state_dict(store.read_model(folder / store.MODEL_FILE)[2])
    subset = ranker_training.validate(network, noise_dataset, groups=1)
    assert subset["validation_patches"] == 3 and subset["validation_groups_available"] == 4
    assert ranker_training.validate(network, noise_dataset, groups=1) == subset


def test_resuming_equals_one_run_and_training_is_deterministic(noise_dataset, tmp_path):
    settings = tiny_settings(iterations=6, lr_steps=(2, 4), batch=4)

    def run(name, iterations, resume=False):
        folder = tmp_path / name
        train_run = TrainingRun(
            folder,
            kind=ranker_arch.KIND,
            settings=settings.as_dict() | {"iterations": iterations},
            data={},
            resume=resume,
        )
        with torch_threads(1):
            longer = replace(settings, iterations=iterations)
            return ranker_training.train(noise_dataset, longer, train_run, checkpoint_every=0)

    whole = run("whole", 6)
    again = run("again", 6)
    assert again.losses == whole.losses
    first = run("split", 3)
    second = run("split", 6, resume=True)
    assert second.steps_before == 3
    assert first.losses + second.losses == pytest.approx(whole.losses, rel=1e-5, abs=1e-7)
    states = [store.read_model(tmp_path / name / store.MODEL_FILE)[2] for name in ("whole", "split")]
    for key, value in states[0].items():
        assert torch.allclose(value.float(), states[1][key].float(), rtol=1e-5, atol=1e-6), key
    with pytest.raises(TrainingError, match="has done 6 iterations already"):
        run("split", 6, resume=True)


def test_a_dataset_without_validation_pairs_is_refused(noise_dataset, tmp_path):
    for index, item in enumerate(noise_dataset.items):
        if item.split == "validation":
            noise_dataset.items[index] = rd.Item(item.patch, item.group, item.source_image, 1.0, item.split)
    run = TrainingRun(tmp_path / "r", kind=ranker_arch.KIND, settings={}, data={})
    with pytest.raises(TrainingError, match="validation split has no group with two patches of different labels"):
        ranker_training.train(noise_dataset, tiny_settings(), run)


# --- the commands ------------------------------------------------------------------------------------------


def write_hr_folder(folder: Path, count: int = 4, size: int = 40) -> Path:
    folder.mkdir(parents=True)
    for name, pixels in hr_images(count, size):
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


@pytest.mark.django_db
def test_build_and_train_commands_make_a_metric_and_resume(tmp_path, weights_dir):
    hr = write_hr_folder(tmp_path / "hr", size=48)
    out = io.StringIO()
    call_command(
        "build_rank_dataset", str(tmp_path / "ds"), source="distortion", hr_dir=str(hr), kind="noise", patch=40,
        stride=8, validation=0.25, stdout=out,
    )
    assert "48 patches in 16 groups" in out.getvalue()
    out = io.StringIO()
    options = {"nf": TINY_NF, "crop": 32, "batch": 4, "threads": 1, "lr": 1e-3, "stdout": out}
    call_command("train_ranker", str(tmp_path / "ds"), name="rk_noise", iterations=4, **options)
    text = out.getvalue()
    assert "validation SROCC" in text and "metric rk_noise, no-reference, lower is better" in text
    folder = store.learned_root(weights_dir) / "rk_noise"
    assert {p.name for p in folder.iterdir()} >= {"model.pt", "manifest.json", "train_state.pt"}
    assert not metrics.metric_info("rk_noise").higher_is_better
    first_sha = store.read_manifest(folder)["model_sha256"]

    with pytest.raises(CommandError, match="exists already"):
        call_command("train_ranker", str(tmp_path / "ds"), name="rk_noise", iterations=4, **options)
    with pytest.raises(CommandError, match="has done 4 iterations already"):
        call_command("train_ranker", str(tmp_path / "ds"), name="rk_noise", resume=True, stdout=io.StringIO())
    out = io.StringIO()
    call_command("train_ranker", str(tmp_path / "ds"), name="rk_noise", resume=True, iterations=6, stdout=out,
                 threads=1)  # the other settings come from the earlier run
    assert "resumed at step 4" in out.getvalue()
    manifest = store.read_manifest(folder)
    assert manifest["settings"]["iterations"] == 6 and manifest["settings"]["nf"] == TINY_NF
    assert manifest["settings"]["lr_steps"] == [1, 2] and manifest["model_sha256"] != first_sha
    with pytest.raises(CommandError, match="--resume of rk_noise with other settings: batch 4 then, 8 now"):
        call_command("train_ranker", str(tmp_path / "ds"), name="rk_noise", resume=True, iterations=8, batch=8)


@pytest.mark.django_db
def test_command_errors_are_clear(tmp_path, weights_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CommandError, match="holds no image files"):
        call_command("build_rank_dataset", str(tmp_path / "a"), source="distortion", hr_dir=str(empty))
    hr = write_hr_folder(tmp_path / "hr", count=2)
    (hr / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CommandError, match="broken.png: cannot read the image"):
        call_command("build_rank_dataset", str(tmp_path / "a"), source="distortion", hr_dir=str(hr))
    with pytest.raises(CommandError, match="needs --hr-dir"):
        call_command("build_rank_dataset", str(tmp_path / "a"), source="sr")
    with pytest.raises(CommandError, match="not an empty folder"):
        call_command("build_rank_dataset", str(hr), source="distortion", hr_dir=str(hr))
    (hr / "broken.png").unlink()
    with pytest.raises(CommandError, match="unknown SR model 'nosuch_x4'"):
        call_command(
            "build_rank_dataset", str(tmp_path / "a"), source="sr", hr_dir=str(hr), models="nosuch_x4,srgan_x4"
        )
    with pytest.raises(CommandError, match="SRGAN.pth"):  # the checkpoint file is not installed
        call_command("build_rank_dataset", str(tmp_path / "a"), source="interpolation", hr_dir=str(hr))
    with pytest.raises(CommandError, match="not a rank dataset"):
        call_command("train_ranker", str(hr), name="rk")
    with pytest.raises(CommandError, match="is a metric already"):
        call_command("train_ranker", str(hr), name="psnr")


@pytest.mark.django_db
def test_sr_source_with_bundled_checkpoints_and_a_full_reference_metric(tmp_path, weights_dir):
    for seed, name in enumerate(("srresnet_x4", "srgan_x4")):
        install_random_checkpoint(name, weights_dir, seed=seed)  # different random weights: different outputs
    hr = write_hr_folder(tmp_path / "hr", count=3, size=32)
    out = io.StringIO()
    call_command(
        "build_rank_dataset", str(tmp_path / "ds"), source="sr", hr_dir=str(hr), models="srgan_x4,srresnet_x4",
        metric="psnr", min_gap=0, min_sharpness=0, patch=16, stride=16, validation=0.3, device="cpu", stdout=out,
    )
    assert "labels: psnr" in out.getvalue() and "full-reference" in out.getvalue()
    dataset = rd.load(tmp_path / "ds")
    assert dataset.manifest["parameters"]["models"] == ["srgan_x4", "srresnet_x4"]
    assert dataset.higher_is_worse is False  # PSNR: higher is better
    assert dataset.manifest["patch"]["min_sharpness"] == 0
    assert all(np.isfinite(item.label) for item in dataset.items)


@pytest.mark.django_db
def test_study_mos_ranker_is_scored_and_benchmarked(tmp_path, weights_dir):
    study = graded_study(tmp_path, references=3)  # 48x48 images whose MOS follows the distortion level
    out = io.StringIO()
    call_command("build_rank_dataset", str(tmp_path / "ds"), source="study", study=study.slug, stdout=out,
                 validation=0.3)
    dataset = rd.load(tmp_path / "ds")
    assert dataset.higher_is_worse is False and dataset.source == "study"
    assert sorted(dataset.groups("train")) + sorted(dataset.groups("validation")) == sorted(
        {item.group for item in dataset.items}
    )
    assert {item.group for item in dataset.items} == {"R000", "R001", "R002"}  # whole images, group = reference
    mos = {image.name.rsplit(".", 1)[0]: image.mos for image in study.images.all()}
    for item in dataset.items:
        assert item.label == mos[Path(item.patch).stem.split("_", 2)[2]]
    call_command("train_ranker", str(tmp_path / "ds"), name="rk_mos", iterations=3, nf=TINY_NF, crop=40, batch=4,
                 threads=1, stdout=io.StringIO())
    assert metrics.metric_info("rk_mos").higher_is_better  # MOS labels: higher is better
    call_command("compute_scores", study.slug, "--metrics", "rk_mos", "--device", "cpu", stdout=io.StringIO())
    scores = MetricScore.objects.filter(metric="rk_mos")
    assert scores.count() == 30 and all(np.isfinite(s.value) for s in scores)
    assert scores.first().version.startswith("learned+")
    report = io.StringIO()
    call_command("run_benchmark", study.slug, "--metrics", "rk_mos", "--resamples", "20", stdout=report)
    assert "rk_mos" in report.getvalue()
