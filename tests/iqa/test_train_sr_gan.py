"""train_sr_gan: tiny runs of each recipe (losses finite, of the documented signs), exact resume, the VGG19
refusal and the explicit scratch features, the patch check, a Ranker trained here, and the mechanism check
of RankSRGAN's rank-content loss; 4PP-EUSR's six losses, multi-pass outputs, resume and score-predictor
refusals; EUSR's L1 pre-training (eusr-l1): one drawn path per step, resume, and 4pp-eusr started from it.
Networks are tiny (generator nf 8, nb 1; discriminator width 8; Ranker width 4; score predictors
MobileNetV2 width 0.25 with random weights) and every run is a few steps on one CPU thread; VGG19 and the
score predictors have random (scratch) weights throughout, so no number here is a perceptual-quality result."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image
from scipy.ndimage import gaussian_filter

from iqa.learned import ranker_arch, store
from iqa.learned import score_predictor_arch as sp_arch
from iqa.learned.ranker_training import ranking_loss
from iqa.learned.training import TrainingError
from iqa.sr_gan import recipes, trainer
from sr_models import training as sr_training
from tests.factories import grating_texture

TINY = {"nf": 8, "nb": 1, "d_nf": 8, "patch": 32, "batch": 2, "feature_net": "scratch"}
TINY_FLAGS = ["--nf", "8", "--nb", "1", "--d-nf", "8", "--batch", "2", "--threads", "1"]
RANKER = "sharpness-ranker"
PREDICTORS = {"aesthetic_predictor": "aesthetic-scratch", "subjective_predictor": "subjective-scratch"}
EUSR_LOSSES = ("pixel", "adversarial", "aesthetic_score", "aesthetic_representation", "subjective_score",
               "subjective_representation")  # l_r, l_g, l_as, l_ar, l_ss, l_sr (003 Eq. 8)


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic for a fixed thread count, and fast on a shared machine
    yield
    torch.set_num_threads(previous)


def texture(seed: int, size: int = 64) -> np.ndarray:
    """A gradient plus gratings from coarse to fine (0.02-0.3 cycles/pixel): detail a x4 LR cannot hold."""
    return grating_texture(seed, size, gratings=4, frequencies=(0.02, 0.3))


IMAGES = {f"T{i:02d}": texture(i) for i in range(4)}


@pytest.fixture
def weights_dir(settings, tmp_path) -> Path:
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"  # sr_models.apps reconfigures the runtime
    return settings.PIPAL_WEIGHTS_DIR


@pytest.fixture
def hr_dir(tmp_path) -> Path:
    folder = tmp_path / "hr"
    folder.mkdir()
    for name, pixels in IMAGES.items():
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian_filter(image.astype(np.float64), sigma=(sigma, sigma, 0))


def train_sharpness_ranker(weights_dir: Path, name: str = RANKER, seed: int = 0, steps: int = 60) -> Path:
    """A tiny Ranker (nf 4) trained here, as train_ranker trains one (margin ranking, scores clamped), on
    32-pixel crops of the textures against Gaussian-blurred copies (sigma 0.5-2): blurred = the higher
    label, so it scores blurrier patches higher — lower is better, as the official Rankers. Written in
    train_ranker's folder layout, so the trainer finds it by name."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = ranker_arch.Ranker(nf=4)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    images = list(IMAGES.values())
    for _ in range(steps):
        sharp, blurred = [], []
        for _ in range(8):
            image = images[int(rng.integers(len(images)))]
            top, left = (int(v) for v in rng.integers(0, image.shape[0] - 32, size=2))
            crop = image[top : top + 32, left : left + 32].astype(np.float64)
            sharp.append(crop)
            blurred.append(blur(crop, float(rng.uniform(0.5, 2.0))))
        as_tensor = lambda crops: torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2) / 255.0).float()  # noqa: E731
        optimizer.zero_grad()
        loss = ranking_loss(network(as_tensor(blurred)), network(as_tensor(sharp)), torch.ones(8))
        loss.backward()
        optimizer.step()
    folder = store.learned_root(weights_dir) / name
    folder.mkdir(parents=True)
    config = {"arch": ranker_arch.ARCH, "nf": 4, "in_nc": 3}
    sha256 = store.save_model(folder, kind=ranker_arch.KIND, config=config, state_dict=network.state_dict())
    metric = {"higher_is_better": False, "full_reference": False, "description": "test Ranker: blurrier is worse"}
    store.write_json(folder / store.MANIFEST_FILE,
                     {"kind": ranker_arch.KIND, "name": name, "model_sha256": sha256, "metric": metric})
    return folder


def save_scratch_score_predictor(weights_dir: Path, name: str, seed: int) -> None:
    """A MobileNetV2 score predictor (width 0.25, random weights: a stand-in, not a trained predictor) in
    train_score_predictor's folder layout, so the trainer finds it by name."""
    torch.manual_seed(seed)
    config = {"dropout": 0.75, "crop": 32, "input_norm": "paper", "width_mult": 0.25}
    network = sp_arch.build(config)
    folder = store.learned_root(weights_dir) / name
    folder.mkdir(parents=True)
    sha256 = store.save_model(folder, kind=sp_arch.KIND, config=config, state_dict=network.state_dict())
    metric = {"higher_is_better": True, "full_reference": False, "description": "test stand-in, random weights"}
    store.write_json(folder / store.MANIFEST_FILE,
                     {"kind": sp_arch.KIND, "name": name, "model_sha256": sha256, "metric": metric})


def save_scratch_score_predictors(weights_dir: Path) -> None:
    for seed, name in enumerate(PREDICTORS.values()):
        save_scratch_score_predictor(weights_dir, name, seed)


def run(recipe: str, weights_dir: Path, name: str, *, init=None, resume=False, **changes):
    settings = recipes.recipe(recipe).settings(**{**TINY, "validate_every": 2, "checkpoint_every": 2, **changes})
    return trainer.train(list(IMAGES), list(IMAGES.values()), settings, name=name, weights_dir=weights_dir,
                         source="test textures", init=init, resume=resume, extra_metrics=())


# --- losses ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", ["srgan", "esrgan", "ranksrgan"])
def test_each_recipe_runs_with_finite_losses_of_the_documented_signs(recipe, tmp_path):
    rankers = ((RANKER, 1.0),) if recipe == "ranksrgan" else ()
    if rankers:
        train_sharpness_ranker(tmp_path, steps=5)
    result = run(recipe, tmp_path, f"{recipe}-signs", iterations=3, rankers=rankers)
    settings = recipes.recipe(recipe).settings(**TINY, rankers=rankers)
    losses = result.step_losses()
    assert len(losses) == 3
    for step in losses:
        assert all(math.isfinite(value) for value in step.values())
        # BCE terms and L1 distances are positive; the rank-content loss is a sum of sigmoids over the batch
        assert step["discriminator"] > 0 and step["adversarial"] > 0 and step["perceptual"] > 0
        assert ("pixel" in step) == (recipe == "esrgan") and ("rank" in step) == (recipe == "ranksrgan")
        if recipe == "ranksrgan":
            assert 0 < step["rank"] < TINY["batch"]
        weighted = (settings.perceptual_weight * step["perceptual"] + settings.adversarial_weight * step["adversarial"]
                    + settings.pixel_weight * step.get("pixel", 0.0) + settings.rank_weight * step.get("rank", 0.0))
        assert step["generator"] == pytest.approx(weighted, rel=1e-5)
    validation = result.validation
    assert math.isfinite(validation["psnr_y"]) and -1 <= validation["ssim_y"] <= 1
    assert (f"ranker:{RANKER}" in validation) == (recipe == "ranksrgan")
    assert (tmp_path / "trained" / "sr_gan_runs" / f"{recipe}-signs" / trainer.PLOT_FILE).stat().st_size > 1000


def test_recipes_carry_the_papers_constants():
    esrgan, ranksrgan, srgan = recipes.ESRGAN, recipes.RANKSRGAN, recipes.SRGAN
    assert (esrgan.adversarial, esrgan.adversarial_weight, esrgan.pixel_weight, esrgan.perceptual_weight) == (
        "relativistic", 5e-3, 1e-2, 1.0)
    assert (ranksrgan.adversarial_weight, ranksrgan.rank_weight, ranksrgan.pixel_weight) == (5e-3, 3e-2, 0.0)
    assert (srgan.adversarial, srgan.adversarial_weight, srgan.pixel_weight) == ("vanilla", 1e-3, 0.0)
    assert esrgan.settings(iterations=400_000).lr_steps == (50_000, 100_000, 200_000, 300_000)
    assert ranksrgan.settings(iterations=500_000).lr_steps == (50_000, 100_000, 200_000, 300_000)
    assert (esrgan.betas, ranksrgan.paper_batch, ranksrgan.paper_patch) == ((0.9, 0.99), 8, 296)
    eusr = recipes.recipe("4pp-eusr")
    assert (eusr.pixel_weight, eusr.adversarial_weight, eusr.aesthetic_score_weight,
            eusr.aesthetic_representation_weight, eusr.subjective_score_weight,
            eusr.subjective_representation_weight) == (0.05, 0.1, 0.01, 0.1, 0.01, 0.1)
    assert (eusr.score_alpha, eusr.lr_g, eusr.lr_d, eusr.paper_iterations) == (0.8, 1e-5, 2e-5, 400_000)
    assert (eusr.generator, eusr.discriminator, eusr.perceptual_weight, eusr.multi_pass) == ("eusr", "eusr", 0.0, True)
    assert eusr.settings(iterations=400_000).lr_steps == ()
    with pytest.raises(KeyError, match="unknown recipe"):
        recipes.recipe("no-such-recipe")


# --- resume ----------------------------------------------------------------------------------------------


def test_n_steps_then_n_more_equal_2n_steps(tmp_path):
    train_sharpness_ranker(tmp_path, steps=5)
    common = {"lr_steps": (2, 5), "rankers": ((RANKER, 1.0),)}  # the same schedule for both runs
    whole = run("ranksrgan", tmp_path, "whole", iterations=6, **common)
    run("ranksrgan", tmp_path, "halves", iterations=3, checkpoint_every=3, **common)
    resumed = run("ranksrgan", tmp_path, "halves", iterations=6, checkpoint_every=3, resume=True, **common)
    assert resumed.steps_before == 3
    assert resumed.step_losses() == whole.step_losses()
    assert set(resumed.state_dict) == set(whole.state_dict)
    assert all(torch.equal(resumed.state_dict[key], whole.state_dict[key]) for key in whole.state_dict)

    with pytest.raises(TrainingError, match="batch 2 then, 3 now"):
        run("ranksrgan", tmp_path, "halves", iterations=8, resume=True, **{**common, "batch": 3})
    with pytest.raises(TrainingError, match="exists already"):
        run("ranksrgan", tmp_path, "halves", iterations=8, **common)


# --- the command: refusals, scratch features, a Ranker trained here -------------------------------------


def test_without_vgg19_weights_the_run_is_refused_naming_the_file(hr_dir, weights_dir):
    with pytest.raises(CommandError) as refused:
        call_command("train_sr_gan", "srgan", "--hr-dir", str(hr_dir), "--iterations", "1", "--patch", "32",
                     *TINY_FLAGS, stdout=io.StringIO())
    message = str(refused.value)
    assert "vgg19-dcbb9e9d.pth" in message and "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert "--feature-net scratch" in message
    assert not (weights_dir / "trained").exists() or not list((weights_dir / "trained").glob("*.pth"))


def test_scratch_features_are_accepted_only_explicitly_and_recorded(hr_dir, weights_dir):
    out = io.StringIO()
    call_command("train_sr_gan", "esrgan", "--hr-dir", str(hr_dir), "--iterations", "2", "--patch", "32",
                 "--feature-net", "scratch", "--name", "esr-scratch", *TINY_FLAGS, stdout=out)
    text = out.getvalue()
    assert trainer.SCRATCH_NOTE in text
    number_lines = [line for line in text.splitlines() if "psnr_y" in line]
    assert number_lines and all(trainer.SCRATCH_NOTE in line for line in number_lines)
    manifest = json.loads((weights_dir / "trained" / "sr_gan_runs" / "esr-scratch" / "manifest.json").read_text())
    assert manifest["settings"]["feature_net"] == "scratch"
    assert manifest["feature_net"] == {"net": "scratch", "pretrained": False, "note": trainer.SCRATCH_NOTE}
    assert set(manifest["results"]["skipped"]) == set(trainer.EXTRA_METRICS)  # no NIQE/Ma/PI/LPIPS files here
    saved = torch.load(weights_dir / "trained" / "esr-scratch.pth", map_location="cpu", weights_only=True)
    provenance = saved["provenance"]
    assert provenance["official"] is False and provenance["trained_by"] == "train_sr_gan"
    assert "trained by the platform on folder" in provenance["label"] and "not an official" in provenance["label"]
    assert provenance["feature_net"]["pretrained"] is False
    assert {"patch 32 (paper 128)", "iterations 2 (paper 400000)"} <= set(provenance["deviations"])
    from sr_models import archs  # the file loads strictly into the generator its provenance names

    generator = archs.build(provenance["arch"], provenance["scale"], **provenance["build_options"])
    generator.load_state_dict(saved["params"], strict=True)


def test_a_patch_too_small_is_refused_before_training(hr_dir, weights_dir):
    with pytest.raises(CommandError, match="at least 32 pixels"):
        call_command("train_sr_gan", "esrgan", "--hr-dir", str(hr_dir), "--patch", "16", "--feature-net", "scratch",
                     *TINY_FLAGS, stdout=io.StringIO())
    with pytest.raises(CommandError, match="BatchNorm needs more than one value"):
        call_command("train_sr_gan", "srgan", "--hr-dir", str(hr_dir), "--patch", "32", "--feature-net", "scratch",
                     *TINY_FLAGS, "--batch", "1", stdout=io.StringIO())
    with pytest.raises(CommandError, match="multiple of the scale"):
        call_command("train_sr_gan", "esrgan", "--hr-dir", str(hr_dir), "--patch", "34", "--feature-net", "scratch",
                     *TINY_FLAGS, stdout=io.StringIO())


def test_ranksrgan_with_a_ranker_trained_here_and_the_ranker_refusals(hr_dir, weights_dir):
    with pytest.raises(CommandError, match="needs at least one Ranker"):
        call_command("train_sr_gan", "ranksrgan", "--hr-dir", str(hr_dir), "--patch", "32", "--feature-net",
                     "scratch", *TINY_FLAGS, stdout=io.StringIO())
    with pytest.raises(CommandError, match="Ranker no-such-ranker"):
        call_command("train_sr_gan", "ranksrgan", "--hr-dir", str(hr_dir), "--patch", "32", "--feature-net",
                     "scratch", "--ranker", "no-such-ranker", "--iterations", "1", *TINY_FLAGS, stdout=io.StringIO())
    train_sharpness_ranker(weights_dir, steps=5)
    out = io.StringIO()
    call_command("train_sr_gan", "ranksrgan", "--hr-dir", str(hr_dir), "--patch", "32", "--feature-net", "scratch",
                 "--ranker", f"{RANKER}:2", "--iterations", "2", "--name", "rank-run", *TINY_FLAGS, stdout=out)
    manifest = json.loads((weights_dir / "trained" / "sr_gan_runs" / "rank-run" / "manifest.json").read_text())
    assert manifest["settings"]["rankers"] == [[RANKER, 2.0]]
    assert manifest["rankers"] == [
        {"name": RANKER, "weight": 2.0, "lower_is_better": True, "source": "trained by train_ranker"}]
    assert f"ranker:{RANKER}" in manifest["results"]["validation"]
    assert f"ranker:{RANKER}" in out.getvalue()


# --- the mechanism check ------------------------------------------------------------------------------


MECHANISM_SEEDS = (0, 1)  # the runs' seed (split, crops, discriminator); the Ranker and the initial G use seed 0
MECHANISM_STEPS = 20
# In Ranker score units. For scale: this Ranker scores the sharp HR images -0.72 and copies blurred with
# sigma 1 -0.36 (mean of the four); the initial generator's outputs -0.04. Seen here (torch CPU, one thread):
# the score moved by -0.016 with L_R and +0.010 without (seed 0), -0.005 and +0.017 (seed 1).
MECHANISM_MARGIN = 0.015


def test_the_rank_content_loss_moves_the_rankers_score_the_preferred_way(tmp_path):
    """From the same initial generator (an SRResNet trained 100 L1 steps here) and the same data,
    MECHANISM_STEPS steps of ranksrgan as the recipe sets it (L_R weight 3e-2, the Ranker's weight 1) on a Ranker
    trained here to score blurrier patches higher lower the Ranker's mean score of the outputs (all four images)
    by at least MECHANISM_MARGIN more than the same steps without L_R, for each seed in MECHANISM_SEEDS."""
    train_sharpness_ranker(tmp_path)
    pretrained = sr_training.train_srresnet(
        list(IMAGES.values()), sr_training.TrainConfig(patch=32, batch=4, iterations=100, nf=8, nb=1, seed=0))
    init = tmp_path / "srresnet-init.pth"
    torch.save({"params": pretrained.state_dict}, init)
    (ranker,) = trainer.load_rankers(((RANKER, 1.0),), tmp_path, "cpu")
    sharp = np.mean([trainer.ranker_score(ranker, image, "cpu") for image in IMAGES.values()])
    blurred = np.mean([trainer.ranker_score(ranker, np.clip(np.round(blur(image, 1.0)), 0, 255).astype(np.uint8),
                                            "cpu") for image in IMAGES.values()])
    assert sharp < blurred  # the premise: this Ranker prefers sharper images (lower is better)
    settings = recipes.recipe("ranksrgan").settings(**TINY)
    pairs = SimpleNamespace(scale_pairs={}, validation_pairs=[
        (sr_training.make_lr(image, 4), image) for image in IMAGES.values()])

    def ranker_score(state: dict) -> float:
        generator = trainer.build_generator(settings)
        generator.load_state_dict(state)
        return trainer.validate(generator, pairs, settings, [ranker], [], "cpu")[f"ranker:{RANKER}"]

    start = ranker_score(pretrained.state_dict)
    for seed in MECHANISM_SEEDS:
        common = {"iterations": MECHANISM_STEPS, "batch": 4, "seed": seed, "validate_every": MECHANISM_STEPS,
                  "checkpoint_every": MECHANISM_STEPS}
        with_rank = run("ranksrgan", tmp_path, f"with-{seed}", init=str(init), rankers=((RANKER, 1.0),), **common)
        without = run("ranksrgan", tmp_path, f"without-{seed}", init=str(init), rank_weight=0.0, **common)
        moved_with = ranker_score(with_rank.state_dict) - start
        moved_without = ranker_score(without.state_dict) - start
        print(f"\nseed {seed}: Ranker score {start:.4f} at the start; {moved_with:+.4f} with L_R, "
              f"{moved_without:+.4f} without")
        assert moved_with < moved_without - MECHANISM_MARGIN


def test_a_study_s_references_are_the_data_and_the_label_names_the_study(db, tmp_path, weights_dir):
    from tests.factories import plain_study
    from tests.iqa.test_train_sr import add_references

    add_references(plain_study("gans", "GAN data"), tmp_path / "refs", IMAGES)
    out = io.StringIO()
    call_command("train_sr_gan", "srgan", "--study", "gans", "--iterations", "1", "--patch", "32", "--feature-net",
                 "scratch", "--name", "from-study", *TINY_FLAGS, stdout=out)
    provenance = torch.load(weights_dir / "trained" / "from-study.pth", weights_only=True)["provenance"]
    assert provenance["label"] == "srgan generator trained by the platform on study gans — not an official checkpoint"
    assert sorted(provenance["data"]["images"]) == sorted(IMAGES)
    split = provenance["data"]["split"]
    assert not set(split["train"]) & set(split["validation"]) and len(split["validation"]) == 1


# --- 4PP-EUSR ------------------------------------------------------------------------------------------


def test_4pp_eusr_records_its_six_losses_finite_and_of_the_documented_signs(tmp_path):
    save_scratch_score_predictors(tmp_path)
    result = run("4pp-eusr", tmp_path, "eusr-signs", iterations=2, **PREDICTORS)
    settings = recipes.recipe("4pp-eusr").settings(**TINY, **PREDICTORS)
    losses = result.step_losses()
    assert len(losses) == 2
    for step in losses:
        assert set(step) == {*EUSR_LOSSES, "generator", "discriminator", "lr_g"}
        assert all(math.isfinite(value) for value in step.values())
        # L1, BCE and mean squares are positive; the score losses are hinges, never negative
        assert step["pixel"] > 0 and step["adversarial"] > 0 and step["discriminator"] > 0
        assert step["aesthetic_representation"] > 0 and step["subjective_representation"] > 0
        assert step["aesthetic_score"] >= 0 and step["subjective_score"] >= 0
        weighted = sum(getattr(settings, {"pixel": "pixel_weight", "adversarial": "adversarial_weight"}.get(
            key, f"{key}_weight")) * step[key] for key in EUSR_LOSSES)
        assert step["generator"] == pytest.approx(weighted, rel=1e-5)
    assert step["lr_g"] == 1e-5
    validation = result.validation
    assert math.isfinite(validation["psnr_y"])
    assert all(1 <= validation[f"{role}:{role}-scratch"] <= 10 for role in ("aesthetic", "subjective"))
    assert [p["role"] for p in result.predictors] == ["aesthetic", "subjective"]


def test_multi_pass_gives_the_three_x4_outputs_of_the_paths():
    torch.manual_seed(0)
    settings = recipes.recipe("4pp-eusr").settings(**TINY)
    generator = trainer.build_generator(settings)
    lr = torch.rand(2, 3, 6, 5) * 255
    with torch.no_grad():
        outputs = trainer.multi_pass(generator, lr)
        assert outputs.shape == (3 * 2, 3, 24, 20)
        by_path = {}
        for path in ("x4", "x2x2", "x8down"):
            generator.path = path
            by_path[path] = generator(lr)
    assert torch.allclose(outputs[:2], by_path["x4"]) and torch.allclose(outputs[2:4], by_path["x2x2"])
    assert torch.allclose(outputs[4:], by_path["x8down"], atol=1e-3)


def test_the_score_loss_is_the_papers_hinge_on_mean_scores():
    # 003 Eq. 4 with S_max 10, alpha 0.8: max(0, (10 - S~) - 0.8 (10 - S))
    sr, hr = torch.tensor([9.0, 5.0, 8.0]), torch.tensor([8.0, 8.0, 10.0])
    assert float(trainer.score_loss(sr, hr, 0.8)) == pytest.approx((0.0 + 3.4 + 2.0) / 3)
    features = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    assert float(trainer.representation_loss(features, torch.zeros(2, 2))) == pytest.approx(5.0 / 4)


def test_4pp_eusr_n_steps_then_n_more_equal_2n_steps(tmp_path):
    save_scratch_score_predictors(tmp_path)
    whole = run("4pp-eusr", tmp_path, "eusr-whole", iterations=4, **PREDICTORS)
    run("4pp-eusr", tmp_path, "eusr-halves", iterations=2, **PREDICTORS)
    resumed = run("4pp-eusr", tmp_path, "eusr-halves", iterations=4, resume=True, **PREDICTORS)
    assert resumed.steps_before == 2
    assert resumed.step_losses() == whole.step_losses()
    assert all(torch.equal(resumed.state_dict[key], whole.state_dict[key]) for key in whole.state_dict)


def test_4pp_eusr_refuses_a_missing_score_predictor_by_name_and_runs_with_both(hr_dir, weights_dir):
    flags = ["--hr-dir", str(hr_dir), "--patch", "32", "--iterations", "1", *TINY_FLAGS]
    with pytest.raises(CommandError, match="needs --subjective-predictor NAME"):
        call_command("train_sr_gan", "4pp-eusr", *flags, "--aesthetic-predictor", "aesthetic-scratch",
                     stdout=io.StringIO())
    with pytest.raises(CommandError) as refused:
        call_command("train_sr_gan", "4pp-eusr", *flags, "--aesthetic-predictor", "no-such-predictor",
                     "--subjective-predictor", "subjective-scratch", "--name", "eusr-missing", stdout=io.StringIO())
    assert "aesthetic score predictor no-such-predictor" in str(refused.value)
    assert "train_score_predictor" in str(refused.value)
    assert not (weights_dir / "trained" / "sr_gan_runs" / "eusr-missing").exists()
    with pytest.raises(CommandError, match="is for 4pp-eusr"):
        call_command("train_sr_gan", "srgan", *flags, "--feature-net", "scratch", "--aesthetic-predictor",
                     "aesthetic-scratch", stdout=io.StringIO())

    save_scratch_score_predictors(weights_dir)
    out = io.StringIO()
    call_command("train_sr_gan", "4pp-eusr", *flags, "--aesthetic-predictor", "aesthetic-scratch",
                 "--subjective-predictor", "subjective-scratch", "--name", "eusr-run", stdout=out)
    assert "score predictors aesthetic aesthetic-scratch, subjective subjective-scratch" in out.getvalue()
    assert trainer.SCRATCH_NOTE not in out.getvalue()  # no VGG19 loss in this recipe
    saved = torch.load(weights_dir / "trained" / "eusr-run.pth", map_location="cpu", weights_only=True)
    provenance = saved["provenance"]
    assert provenance["recipe"] == "4pp-eusr" and provenance["official"] is False
    assert [p["name"] for p in provenance["score_predictors"]] == list(PREDICTORS.values())
    from sr_models import archs  # the file loads strictly into the EUSR its provenance names

    generator = archs.build(provenance["arch"], provenance["scale"], **provenance["build_options"])
    generator.load_state_dict(saved["params"], strict=True)


def test_an_extra_metric_that_cannot_score_small_images_is_skipped_not_fatal(weights_dir, monkeypatch):
    """NIQE's 96-pixel blocks do not fit a small study's validation images (seen in CI once pyiqa's NIQE
    parameters were installed): the run goes on and records why the metric is missing."""

    def too_small(output, hr):
        raise RuntimeError("Expected 3D or 4D (batch mode) tensor with non-zero dimensions")

    def lookalike(names, device, weights_dir):
        return [trainer.ExtraMetric("niqe", False, too_small)], {}

    monkeypatch.setattr(trainer, "load_extra_metrics", lookalike)
    result = run("srgan", weights_dir, "small-images", iterations=2)
    assert "niqe" not in result.validation and "psnr_y" in result.validation
    assert result.skipped["niqe"].startswith("skipped: cannot score a")


# --- EUSR's pre-training (eusr-l1) ----------------------------------------------------------------------


def _changed_paths(before: dict, after: dict) -> set[int]:
    """The EUSR paths (2, 4, 8) whose scale-specific weights differ between two state dicts."""
    return {scale for scale in (2, 4, 8) if any(
        not torch.equal(before[key], after[key]) for key in before
        if key.startswith((f"initial_blocks.x{scale}.", f"upscaling.x{scale}."))
    )}


def test_eusr_l1_trains_one_randomly_drawn_path_per_step_with_l1_alone(tmp_path):
    eusr_l1 = recipes.recipe("eusr-l1")  # 003 §4.1; tf-perceptual-eusr train.py / eusr.py
    assert (eusr_l1.generator, eusr_l1.discriminator, eusr_l1.pixel_weight, eusr_l1.adversarial_weight) == (
        "eusr", "", 1.0, 0.0)
    assert (eusr_l1.lr_g, eusr_l1.betas, eusr_l1.paper_iterations, eusr_l1.paper_batch, eusr_l1.paper_patch) == (
        1e-4, (0.9, 0.999), 1_000_000, 16, 192)
    assert eusr_l1.settings(iterations=1_000_000).lr_steps == (200_000, 400_000, 600_000, 800_000)

    common = {"patch": 16, "lr_g": 1e-3}  # LR crops of 4 pixels (HR 8/16/32); a larger rate for 24 steps
    start = run("eusr-l1", tmp_path, "eusr-start", iterations=0, **common)
    first = run("eusr-l1", tmp_path, "eusr-first", iterations=1, **common)
    result = run("eusr-l1", tmp_path, "eusr-pre", iterations=24, **common)
    drawn = [entry["scale"] for entry in result.history if "losses" in entry]
    assert set(drawn) == {2, 4, 8}  # every path drawn (seed 0), and nothing else
    # one step trains the drawn path's own layers only (the shared trunk learns at every step)
    assert _changed_paths(start.state_dict, first.state_dict) == {drawn[0]}
    assert not torch.equal(start.state_dict["shared.conv2d.weight"], first.state_dict["shared.conv2d.weight"])
    for step in result.step_losses():
        assert set(step) == {"pixel", "generator", "lr_g"}  # no discriminator, no adversarial term
        assert step["generator"] == step["pixel"] > 0
    assert set(result.bicubic) == {"psnr_y", "ssim_y", "psnr_y_x2", "psnr_y_x8"}
    before = next(entry["validation"] for entry in result.history if "validation" in entry)
    for key in ("psnr_y", "psnr_y_x2", "psnr_y_x8"):  # each path's PSNR-Y on the held-out image rises
        assert result.validation[key] > before[key] + 0.3, key


def test_eusr_l1_n_steps_then_n_more_equal_2n_steps(tmp_path):
    whole = run("eusr-l1", tmp_path, "pre-whole", iterations=6, patch=16, lr_steps=(3,))
    run("eusr-l1", tmp_path, "pre-halves", iterations=3, patch=16, lr_steps=(3,), checkpoint_every=3)
    resumed = run("eusr-l1", tmp_path, "pre-halves", iterations=6, patch=16, lr_steps=(3,), checkpoint_every=3,
                  resume=True)
    assert resumed.steps_before == 3
    drawn = lambda result: [e["scale"] for e in result.history if "losses" in e]  # noqa: E731
    assert drawn(resumed) == drawn(whole)
    assert resumed.step_losses() == whole.step_losses()
    assert all(torch.equal(resumed.state_dict[key], whole.state_dict[key]) for key in whole.state_dict)


def test_eusr_l1_then_4pp_eusr_from_it_through_the_command(hr_dir, weights_dir):
    flags = ["--hr-dir", str(hr_dir), "--iterations", "2", "--nf", "8", "--nb", "1", "--batch", "2",
             "--threads", "1"]
    with pytest.raises(CommandError, match="eusr-l1 has no discriminator"):
        call_command("train_sr_gan", "eusr-l1", *flags, "--patch", "16", "--d-nf", "8", stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"smaller than the 96x96 patch \(the x8 path's HR crop"):
        call_command("train_sr_gan", "eusr-l1", *flags, "--patch", "48", stdout=io.StringIO())
    out = io.StringIO()
    call_command("train_sr_gan", "eusr-l1", *flags, "--patch", "16", "--name", "eusr-pre", stdout=out)
    assert "without a discriminator" in out.getvalue() and "one of the x2/x4/x8 paths per step" in out.getvalue()
    assert "psnr_y_x2" in out.getvalue() and "psnr_y_x8" in out.getvalue()
    assert "eusr-l1 step 0 " in out.getvalue() and "eusr-l1 step 2 " in out.getvalue()  # before and after
    pre = torch.load(weights_dir / "trained" / "eusr-pre.pth", map_location="cpu", weights_only=True)
    assert pre["provenance"]["recipe"] == "eusr-l1" and pre["provenance"]["official"] is False
    assert pre["provenance"]["init"]["init"].startswith("scratch (EUSR's initialisation")

    save_scratch_score_predictors(weights_dir)
    fine_tune = [*flags, "--d-nf", "8", "--patch", "32", "--aesthetic-predictor", "aesthetic-scratch",
                 "--subjective-predictor", "subjective-scratch"]
    with pytest.raises(CommandError, match="trained:no-such-run"):
        call_command("train_sr_gan", "4pp-eusr", *fine_tune, "--init", "trained:no-such-run", stdout=io.StringIO())
    call_command("train_sr_gan", "4pp-eusr", *fine_tune, "--init", "trained:eusr-pre", "--name", "eusr-fine",
                 stdout=io.StringIO())
    fine = torch.load(weights_dir / "trained" / "eusr-fine.pth", map_location="cpu", weights_only=True)
    assert fine["provenance"]["init"]["init"] == "trained:eusr-pre"
    from core.weights import file_sha256

    assert fine["provenance"]["init"]["init_sha256"] == file_sha256(weights_dir / "trained" / "eusr-pre.pth")
