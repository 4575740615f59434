"""train_sr: a short real SRResNet training run on textured references, its labelled weight file,
the split by image, the PSNR convention and the refusals."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from annotation.imports.folders import plan_reference_patches, references_import
from core.weights import read_state
from sr_models import archs, training
from sr_models.checkpoints import CHECKPOINTS
from tests.factories import grating_texture, plain_study

TINY = {"nf": 16, "nb": 2}


def texture(seed: int, size: int = 96) -> np.ndarray:
    """A smooth-but-detailed RGB image: a colour gradient plus three sinusoid gratings per channel
    (frequencies 0.02-0.12 cycles/pixel, below the x4 LR Nyquist limit of 0.125)."""
    return grating_texture(seed, size, gratings=3, frequencies=(0.02, 0.12), amplitude=0.12, slope=0.35,
                           phase_max=2 * np.pi)


def add_references(study, folder: Path, images: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, pixels in images.items():
        path = folder / f"{name}.png"
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        path.write_bytes(buffer.getvalue())
        files.append(path)
    references_import(study=study, patches=plan_reference_patches(study, files, crop=0, select="center"))


@pytest.fixture
def weights_dir(settings, tmp_path) -> Path:
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"  # sr_models.apps reconfigures the runtime
    return settings.PIPAL_WEIGHTS_DIR


@pytest.fixture
def textured_study(db, tmp_path, weights_dir):
    study = plain_study("grat", "Gratings")
    add_references(study, tmp_path / "refs", {f"T{i:02d}": texture(i) for i in range(4)})
    return study


def test_short_run_raises_the_gain_over_bicubic_and_writes_a_labelled_file(textured_study, weights_dir):
    out = io.StringIO()
    call_command("train_sr", "grat", iterations=300, threads=1, name="tiny", stdout=out, **TINY)
    path = weights_dir / "trained" / "tiny.pth"
    saved = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    provenance = saved["provenance"]
    psnr = provenance["psnr_y_validation"]
    print(f"\ntrain_sr tiny (nf 16, nb 2, 300 it): {psnr}, {provenance['wall_seconds']} s")

    # the training path works: the gain over bicubic goes up, and by a lot
    assert psnr["gain_over_bicubic_end"] > psnr["gain_over_bicubic_start"]
    assert psnr["end"] - psnr["start"] > 5.0
    assert math.isfinite(psnr["bicubic"]) and 20 < psnr["bicubic"] < 50

    # labelled as a local run, never as an official checkpoint
    assert provenance["trained_by"] == "train_sr"
    assert provenance["official"] is False
    assert provenance["label"] == "SRResNet trained by train_sr on study grat — not an official checkpoint"
    assert provenance["study"] == "grat" and provenance["references"] == ["T00", "T01", "T02", "T03"]
    assert provenance["config"] == {**training.TrainConfig(iterations=300, **TINY).as_dict()}
    assert provenance["build_options"] == TINY and provenance["arch"] == "srresnet"
    assert provenance["torch"] == torch.__version__ and provenance["date"]
    # split by image: no reference on both sides
    split = provenance["split"]
    assert set(split["train"]).isdisjoint(split["validation"])
    assert sorted(split["train"] + split["validation"]) == provenance["references"]
    assert len(split["validation"]) == 1 and psnr["images"] == split["validation"]
    assert path.name not in {checkpoint.file for checkpoint in CHECKPOINTS.values()}

    # loads through the platform's reader, strictly, into the tiny SRResNet
    model = archs.build("srresnet", 4, **TINY)
    model.load_state_dict(read_state(path), strict=True)
    model.load_state_dict(archs.arch("srresnet").convert(saved["params"]), strict=True)

    text = out.getvalue()
    assert "bicubic (MATLAB imresize)" in text and "gain over bicubic" in text
    assert "not an official checkpoint" in text and str(path) in text


def test_training_is_deterministic_for_a_seed():
    images = [texture(i, 48) for i in range(3)]
    config = training.TrainConfig(iterations=4, batch=2, patch=16, nf=8, nb=1, seed=3)
    with training.torch_threads(1):
        first = training.train_srresnet(images, config)
        second = training.train_srresnet(images, config)
        other = training.train_srresnet(images, training.TrainConfig(**{**config.as_dict(), "seed": 4}))
    assert first.losses == second.losses and len(first.losses) == 4
    assert first.state_dict.keys() == second.state_dict.keys()
    assert all(torch.equal(first.state_dict[key], second.state_dict[key]) for key in first.state_dict)
    assert (first.psnr_bicubic, first.psnr_start, first.psnr_end) == (
        second.psnr_bicubic,
        second.psnr_start,
        second.psnr_end,
    )
    assert first.losses != other.losses


@pytest.mark.parametrize("count, holdout, validation", [(2, 0.25, 1), (4, 0.25, 1), (8, 0.25, 2), (3, 0.9, 2)])
def test_split_is_by_image(count, holdout, validation):
    train, val = training.split_by_image(count, holdout, seed=0)
    assert set(train).isdisjoint(val) and sorted(train + val) == list(range(count))
    assert len(val) == validation and train
    assert training.split_by_image(count, holdout, seed=0) == (train, val)


def test_crops_stay_aligned_through_augmentation():
    # HR = LR with every pixel repeated 4x4: an aligned crop (flipped or rotated alike) keeps that relation
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    hr = np.kron(lr, np.ones((4, 4, 1), dtype=np.uint8))
    config = training.TrainConfig(patch=32, batch=16)
    lr_batch, hr_batch = training.sample_batch([(lr, hr)], config, rng)
    assert lr_batch.shape == (16, 3, 8, 8) and hr_batch.shape == (16, 3, 32, 32) and lr_batch.dtype == np.float32
    assert np.array_equal(np.kron(lr_batch, np.ones((1, 1, 4, 4), dtype=np.float32)), hr_batch)
    assert lr_batch.min() >= 0.0 and lr_batch.max() <= 1.0


def test_psnr_is_on_y_with_the_border_cropped():
    image = texture(7, 32)
    assert training.psnr_y(image, image, 4) == math.inf
    framed = image.copy()
    framed[:4] = 0
    framed[:, -4:] = 255
    assert training.psnr_y(image, framed, 4) == math.inf  # only the cropped border differs
    assert training.psnr_y(image, framed, 0) < 20
    flat = np.random.default_rng(1).integers(50, 200, (32, 32, 3), dtype=np.uint8)
    brighter = flat.copy()
    brighter[..., 1] += 10  # G + 10 moves Y by 10 * 128.553 / 255 (MATLAB rgb2ycbcr), everywhere
    assert training.psnr_y(flat, brighter, 4) == pytest.approx(20 * math.log10(255 / (10 * 128.553 / 255)))


def test_refusals_are_clear(textured_study, weights_dir, tmp_path, db):
    with pytest.raises(CommandError, match="supports scales x2, x3, x4, not x8"):
        call_command("train_sr", "grat", scale=8, patch=64, **TINY)
    with pytest.raises(CommandError, match=r"T00: 96x96 is smaller than the 128x128 patch"):
        call_command("train_sr", "grat", patch=128, iterations=1, **TINY)
    with pytest.raises(CommandError, match="multiple of the scale"):
        call_command("train_sr", "grat", patch=50, **TINY)
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        call_command("train_sr", "nope")
    with pytest.raises(CommandError, match="--name"):
        call_command("train_sr", "grat", name="../escape", **TINY)

    lonely = plain_study("lonely")
    add_references(lonely, tmp_path / "one", {"only": texture(9)})
    with pytest.raises(CommandError, match="lonely has 1 reference.*at least 2"):
        call_command("train_sr", "lonely", **TINY)
    plain_study("empty")
    with pytest.raises(CommandError, match="empty has 0 reference"):
        call_command("train_sr", "empty", **TINY)

    call_command("train_sr", "grat", iterations=1, name="taken", stdout=io.StringIO(), **TINY)
    with pytest.raises(CommandError, match="already exists"):
        call_command("train_sr", "grat", iterations=1, name="taken", **TINY)

    with pytest.raises(training.TrainingError, match="at least 2 reference images"):
        training.train_srresnet([texture(1)], training.TrainConfig(iterations=1, **TINY))
    with pytest.raises(training.TrainingError, match="uint8"):
        training.train_srresnet([texture(1).astype(np.float32)] * 2, training.TrainConfig(iterations=1, **TINY))
