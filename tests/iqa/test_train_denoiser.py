"""train_denoiser: a short real DnCNN run on a study's references, its labelled weight file (KAIR's
layout, official False), loading it back by name, and the refusals."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError

from sr_models.denoisers import DENOISERS, arch, denoise, load_denoiser, unready
from sr_models.denoisers.training import DenoiserTrainConfig
from tests.factories import plain_study
from tests.iqa.test_train_sr import add_references
from tests.sr_models.test_denoisers import kair_state, smooth_image

TINY = {"nb": 4, "nc": 16, "batch": 8, "patch": 32, "threads": 1}


@pytest.fixture
def weights_dir(settings, tmp_path) -> Path:
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"  # sr_models.apps reconfigures the runtime
    return settings.PIPAL_WEIGHTS_DIR


@pytest.fixture
def smooth_study(db, tmp_path, weights_dir):
    study = plain_study("smooth", "Smooth")
    add_references(study, tmp_path / "refs", {f"S{i:02d}": smooth_image(i) for i in range(4)})
    return study


def test_short_run_writes_a_labelled_file_that_loads_by_name(smooth_study, weights_dir):
    out = io.StringIO()
    call_command("train_denoiser", "dncnn", "smooth", iterations=200, levels="25", name="tiny", stdout=out, **TINY)
    path = weights_dir / "trained" / "tiny.pth"
    saved = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    provenance = saved["provenance"]
    psnr = provenance["psnr_validation"]
    print(f"\ntrain_denoiser tiny (nb 4, nc 16, 200 it, σ 25): {psnr['degraded']} -> {psnr['denoised']} dB")
    # the pure test of the same run measured +7.8 to +9.3 dB over seeds 0-3
    assert psnr["gain"] > 4.0 and psnr["denoised"] > psnr["degraded"]

    # labelled as the platform's own training, never as the official weights
    assert provenance["trained_by"] == "train_denoiser" and provenance["official"] is False
    assert provenance["label"] == (
        "DnCNN trained by the platform on study smooth with Gaussian noise σ 25 — not the official weights"
    )
    assert provenance["study"] == "smooth" and provenance["references"] == ["S00", "S01", "S02", "S03"]
    split = provenance["split"]
    assert set(split["train"]).isdisjoint(split["validation"]) and len(split["validation"]) == 1
    assert sorted(split["train"] + split["validation"]) == provenance["references"]
    assert psnr["images"] == split["validation"] and [entry["level"] for entry in psnr["per_level"]] == [25.0]
    expected = DenoiserTrainConfig(levels=(25.0,), iterations=200, nb=4, nc=16, batch=8, patch=32).resolved()
    assert provenance["config"] == expected.as_dict()
    assert provenance["arch_options"] == {
        "arch": "dncnn",
        "channels": 3,
        "nb": 4,
        "nc": 16,
        "tasks": ["gaussian"],
        "blind": True,
        "sigma_range": [25.0, 25.0],
        "quality_range": None,
    }
    assert provenance["torch"] == torch.__version__ and provenance["date"]
    assert list(saved["params"]) == arch.expected_keys(4)  # KAIR's layout, batch norm merged

    # loads by name, strictly, as a non-official network the distortions can use
    assert unready("tiny", weights_dir) == ""
    loaded = load_denoiser("tiny", weights_dir=weights_dir)
    assert not loaded.official and loaded.provenance["official"] is False
    assert loaded.provenance["label"] == provenance["label"] and loaded.provenance["file"] == "trained/tiny.pth"
    image = smooth_image(7)
    assert denoise(loaded, image, sigma=25.0).shape == image.shape

    text = out.getvalue()
    assert "σ 25" in text and "degraded" in text and "denoised" in text and "mean" in text
    assert "not the official weights" in text and str(path) in text


def test_refusals_are_clear(smooth_study, weights_dir, tmp_path):
    with pytest.raises(CommandError, match="FFDNet takes a noise level"):
        call_command("train_denoiser", "ffdnet", "smooth", task="jpeg", **TINY)
    with pytest.raises(CommandError, match="--levels 'a,b'"):
        call_command("train_denoiser", "dncnn", "smooth", levels="a,b", **TINY)
    with pytest.raises(CommandError, match="JPEG qualities must be within 1-100"):
        call_command("train_denoiser", "dncnn", "smooth", task="jpeg", levels="0,10", **TINY)
    with pytest.raises(CommandError, match="S00: 64x64 is smaller than the 96x96 patch"):
        call_command("train_denoiser", "dncnn", "smooth", **{**TINY, "patch": 96, "iterations": 1})
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        call_command("train_denoiser", "dncnn", "nope")
    with pytest.raises(CommandError, match="--name"):
        call_command("train_denoiser", "dncnn", "smooth", name="../escape", **TINY)
    with pytest.raises(CommandError, match="official denoiser's name"):
        call_command("train_denoiser", "dncnn", "smooth", name="dncnn_25", **TINY)
    assert "dncnn_25" in DENOISERS

    lonely = plain_study("lonely")
    add_references(lonely, tmp_path / "one", {"only": smooth_image(9)})
    with pytest.raises(CommandError, match="lonely has 1 reference.*at least 2"):
        call_command("train_denoiser", "dncnn", "lonely", **TINY)

    call_command("train_denoiser", "dncnn", "smooth", iterations=1, name="taken", stdout=io.StringIO(), **TINY)
    with pytest.raises(CommandError, match="already exists"):
        call_command("train_denoiser", "dncnn", "smooth", iterations=1, name="taken", **TINY)


def test_jpeg_task_on_y_with_the_catalogue_qualities(smooth_study, weights_dir):
    call_command(
        "train_denoiser", "dncnn", "smooth", task="jpeg", channels=1, iterations=2, name="jpeg", stdout=io.StringIO(),
        **TINY,
    )  # fmt: skip
    provenance = torch.load(weights_dir / "trained" / "jpeg.pth", weights_only=True)["provenance"]
    assert provenance["config"]["levels"] == [30, 20, 10, 5]
    assert provenance["label"] == (
        "DnCNN trained by the platform on study smooth with JPEG quality 30, 20, 10, 5 — not the official weights"
    )
    loaded = load_denoiser("jpeg", weights_dir=weights_dir)
    assert loaded.options.tasks == ("jpeg",) and loaded.options.channels == 1
    image = smooth_image(5)
    assert denoise(loaded, image, sigma=None).shape == image.shape
    assert np.isfinite(provenance["final_loss"])


def test_import_weights_installs_a_kair_file_and_refuses_a_foreign_one(weights_dir, tmp_path):
    source = tmp_path / "download" / "dncnn_25.pth"
    source.parent.mkdir()
    torch.save(kair_state(in_conv=1, out_conv=1, nc=64, nb=17), source)
    with pytest.raises(CommandError, match="does not fit"):
        call_command("import_weights", "ffdnet_gray", str(source), stdout=io.StringIO())
    assert "import_weights ffdnet_gray" in unready("ffdnet_gray", weights_dir)
    call_command("import_weights", "dncnn_25", str(source), stdout=io.StringIO())
    assert (weights_dir / "dncnn_25.pth").is_file() and unready("dncnn_25", weights_dir) == ""
    assert load_denoiser("dncnn_25", weights_dir=weights_dir).provenance["official"] is True
