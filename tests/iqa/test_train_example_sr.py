"""train_example_sr: a tiny real training run from a folder and from a study, the labelled model file,
the split by image, and the refusals."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from annotation.imports.folders import plan_reference_patches, references_import
from sr_models import example_sr
from tests.factories import edge_shapes as shapes
from tests.factories import plain_study

# x2 on 64x64 images: 196 training windows per image, enough for 32 atoms; every stage runs, briefly.
TINY = {
    "scale": 2,
    "atoms": 32,
    "ksvd_iterations": 2,
    "max_patches": 2000,
    "anr_neighbours": 8,
    "aplus_samples": 64,
    "aplus_pool": 4000,
    "aplus_scales": 2,
}


def write_images(folder: Path, count: int, size: int = 64) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for index in range(count):
        buffer = io.BytesIO()
        Image.fromarray(shapes(index, size)).save(buffer, format="PNG")
        files[f"S{index:02d}.png"] = buffer.getvalue()
        (folder / f"S{index:02d}.png").write_bytes(buffer.getvalue())
    return files


@pytest.fixture
def weights_dir(settings, tmp_path) -> Path:
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"  # sr_models.apps reconfigures the runtime
    return settings.PIPAL_WEIGHTS_DIR


def test_trains_from_a_folder_and_writes_labelled_files(weights_dir, tmp_path):
    files = write_images(tmp_path / "hr", 4)
    out = io.StringIO()
    call_command("train_example_sr", "zeyde", "aplus", hr_folder=tmp_path / "hr", stdout=out, **TINY)
    text = out.getvalue()
    print(text)
    for method in ("zeyde", "aplus"):
        path = weights_dir / "example_sr" / f"{method}_x2.npz"
        model, provenance = example_sr.load_model(path)
        assert model.method == method and model.scale == 2 and model.config.atoms == 32
        assert provenance["trained_by"] == "train_example_sr" and provenance["official"] is False
        label = "Zeyde" if method == "zeyde" else "A+"
        assert provenance["label"] == f"{label} x2 trained by the platform on folder hr — not the authors' MATLAB model"
        assert provenance["method"] == method and provenance["scale"] == 2
        assert provenance["config"] == model.config.as_dict() and provenance["trained_with"] == ["zeyde", "aplus"]
        assert provenance["source"] == {"kind": "folder", "path": str(tmp_path / "hr")}
        assert provenance["code_version"] == example_sr.CODE_VERSION and provenance["date"]
        trained, held = provenance["training_images"], provenance["held_out_images"]
        assert len(held) == 1 and len(trained) == 3  # split by image, holdout 0.25
        assert {item["name"] for item in trained + held} == set(files)
        for item in trained + held:
            assert item["sha256"] == hashlib.sha256(files[item["name"]]).hexdigest()
        psnr = provenance["psnr_y_held_out"]
        assert psnr["method"] > psnr["bicubic"] > 20 and psnr["gain_over_bicubic"] > 0
        assert "2 pixels cropped" in psnr["convention"]
        assert str(path) in text and provenance["label"] in text
    assert "bicubic (MATLAB imresize)" in text and "gain over bicubic" in text
    # both methods come from one dictionary
    zeyde, _ = example_sr.load_model(weights_dir / "example_sr" / "zeyde_x2.npz")
    aplus, _ = example_sr.load_model(weights_dir / "example_sr" / "aplus_x2.npz")
    np.testing.assert_array_equal(zeyde.anchors, aplus.anchors)

    # an existing name is refused unless --replace, before any training
    with pytest.raises(CommandError, match=r"aplus_x2.npz already exists .*--replace"):
        call_command("train_example_sr", "aplus", hr_folder=tmp_path / "hr", **TINY)
    before = (weights_dir / "example_sr" / "aplus_x2.npz").read_bytes()
    call_command(
        "train_example_sr", "aplus", hr_folder=tmp_path / "hr", replace=True, seed=1, stdout=io.StringIO(), **TINY
    )
    assert (weights_dir / "example_sr" / "aplus_x2.npz").read_bytes() != before


def test_trains_from_a_study_under_a_given_name(weights_dir, tmp_path, db):
    study = plain_study("shp", "Shapes")
    write_images(tmp_path / "refs", 3)
    files = sorted((tmp_path / "refs").iterdir())
    references_import(study=study, patches=plan_reference_patches(study, files, crop=0, select="center"))
    call_command("train_example_sr", "anr", study="shp", name="anr_small", stdout=io.StringIO(), **TINY)
    model, provenance = example_sr.load_model(weights_dir / "example_sr" / "anr_small.npz")
    assert model.method == "anr" and provenance["source"] == {"kind": "study", "study": "shp"}
    assert provenance["label"] == "ANR x2 trained by the platform on study shp — not the authors' MATLAB model"
    names = [item["name"] for item in provenance["training_images"] + provenance["held_out_images"]]
    assert sorted(names) == sorted(study.references.values_list("name", flat=True))
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        call_command("train_example_sr", "anr", study="nope", **TINY)


def test_refusals_are_clear(weights_dir, tmp_path):
    with pytest.raises(CommandError, match="--hr-folder .*missing: no such folder"):
        call_command("train_example_sr", "aplus", hr_folder=tmp_path / "missing", **TINY)
    write_images(tmp_path / "one", 1)
    with pytest.raises(CommandError, match="folder one has 1 image.*at least 2"):
        call_command("train_example_sr", "aplus", hr_folder=tmp_path / "one", **TINY)
    write_images(tmp_path / "small", 2, size=8)
    with pytest.raises(CommandError, match="S00.png: 8x8 is smaller than one x2 training window"):
        call_command("train_example_sr", "aplus", hr_folder=tmp_path / "small", **TINY)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(CommandError, match="bad.png: cannot be read as an image"):
        call_command("train_example_sr", "aplus", hr_folder=tmp_path / "broken", **TINY)
    with pytest.raises(CommandError, match="--name names one file"):
        call_command("train_example_sr", "zeyde", "anr", hr_folder=tmp_path / "one", name="both", **TINY)
    with pytest.raises(CommandError, match="a file name, no path"):
        call_command("train_example_sr", "zeyde", hr_folder=tmp_path / "one", name="../up", **TINY)
    with pytest.raises(CommandError, match=r"max_patches \(10\) must be at least the 32 atoms"):
        call_command("train_example_sr", "zeyde", hr_folder=tmp_path / "one", **{**TINY, "max_patches": 10})
    with pytest.raises(CommandError, match="--holdout must be between 0 and 1"):
        call_command("train_example_sr", "zeyde", hr_folder=tmp_path / "one", holdout=1.0, **TINY)
    with pytest.raises(CommandError, match="one of the arguments --study --hr-folder is required"):
        call_command("train_example_sr", "zeyde", scale=2)
    assert not (weights_dir / "example_sr").exists()
