"""The example-based SR family (PIPAL's traditional SR, catalogue types 51-53) on models the platform
trains: deterministic, a stronger level (a larger scale) loses more PSNR, refused with the training
command while a model is missing, and the provenance names the model file and says it is not official."""

from __future__ import annotations

import numpy as np
import pytest

from sr_models import distortions, example_sr
from sr_models.distortions import DistortionError
from sr_models.distortions.catalogue import load_catalogue
from tests.factories import edge_shapes

TINY = {"atoms": 32, "ksvd_iterations": 2, "anr_neighbours": 8, "aplus_samples": 128, "aplus_pool": 5_000,
        "aplus_scales": 2, "max_patches": 3_000}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


@pytest.fixture
def models_dir(tmp_path, settings):
    settings.PIPAL_WEIGHTS_DIR = tmp_path  # sr_models' setting_changed hook points the runtime here
    images = [edge_shapes(seed, 64) for seed in range(4)]
    for scale in (2, 4):
        config = example_sr.ExampleSRConfig(method="aplus", scale=scale, **TINY)
        model = example_sr.train_model(images, config)
        example_sr.save_model(model, example_sr.model_path(tmp_path, f"aplus_x{scale}"), {"label": "test model"})
    return tmp_path


def test_generation_is_deterministic_and_a_larger_scale_loses_more(models_dir):
    reference = edge_shapes(50, 96)
    family = distortions.get_family("example_based_sr")
    x2 = family.apply(reference, {"model": "aplus_x2"}, seed=1)
    assert np.array_equal(x2, family.apply(reference, {"model": "aplus_x2"}, seed=9))  # no randomness
    x4 = family.apply(reference, {"model": "aplus_x4"}, seed=1)
    assert x2.shape == x4.shape == reference.shape
    assert psnr(x2, reference) > psnr(x4, reference) + 1.0
    provenance = family.run_provenance({"model": "aplus_x4"})
    assert provenance["method"] == "aplus" and provenance["scale"] == 4 and provenance["official"] is False
    assert len(provenance["sha256"]) == 64 and provenance["file"] == "aplus_x4.npz"


def test_a_missing_model_is_refused_with_the_command_that_trains_it(models_dir):
    family = distortions.get_family("example_based_sr")
    with pytest.raises(DistortionError, match=r"'anr_x3' is not trained here .*train_example_sr anr --scale 3"):
        family.check_ready({"model": "anr_x3"})
    family.check_ready({"model": "aplus_x2"})  # trained: ready
    (models_dir / "example_sr" / "aplus_x2.npz").write_bytes(b"not a model")
    with pytest.raises(DistortionError, match="aplus_x2.npz"):
        family.check_ready({"model": "aplus_x2"})


def test_the_catalogue_has_each_example_based_method_at_three_scales():
    rows = [row for row in load_catalogue() if row.family == "example_based_sr"]
    assert {row.type_id for row in rows} == {"51", "52", "53"}
    assert sorted(row.params["model"] for row in rows) == sorted(
        f"{method}_x{scale}" for method in ("aplus", "anr", "zeyde") for scale in (2, 3, 4)
    )
    assert all(row.subtype == "traditional_sr" for row in rows)
