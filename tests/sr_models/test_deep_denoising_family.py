"""The deep denoising families (PIPAL's deep-learning-based denoising, catalogue types 54-56): a network
the platform trained (tiny, here) or an official KAIR file; deterministic, a stronger level loses more
PSNR, refused with how to get the weights while they are missing, and the provenance says whether
the network is official."""

from __future__ import annotations

import numpy as np
import pytest

from sr_models import denoisers, distortions
from sr_models.denoisers.training import DenoiserTrainConfig, train_denoiser
from sr_models.distortions import DistortionError
from sr_models.distortions.catalogue import load_catalogue
from tests.factories import edge_shapes


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def _train(weights_dir, name: str, task: str, levels: tuple) -> None:
    config = DenoiserTrainConfig(arch="dncnn", channels=3, nb=4, nc=16, task=task, levels=levels, iterations=120,
                                 batch=8, patch=32, seed=0)
    result = train_denoiser([edge_shapes(seed, 64) for seed in range(4)], config)
    denoisers.save_trained(denoisers.trained_path(name, weights_dir), result.state_dict, result.options,
                           {"label": f"{name}: tiny test network"})


@pytest.fixture
def weights_dir(tmp_path, settings):
    settings.PIPAL_WEIGHTS_DIR = tmp_path  # sr_models' setting_changed hook points the runtime here
    denoisers.clear_cache()
    yield tmp_path
    denoisers.clear_cache()


def test_gaussian_denoising_with_a_trained_network(weights_dir):
    _train(weights_dir, "tiny_dncnn", "gaussian", (15.0, 35.0))
    reference = edge_shapes(77, 80)
    family = distortions.get_family("deep_denoising")
    outputs = {sigma: family.apply(reference, {"network": "tiny_dncnn", "noise_sigma": sigma}, seed=3)
               for sigma in (10.0, 30.0, 50.0)}
    again = family.apply(reference, {"network": "tiny_dncnn", "noise_sigma": 30.0}, seed=3)
    assert np.array_equal(outputs[30.0], again)
    quality = [psnr(outputs[sigma], reference) for sigma in (10.0, 30.0, 50.0)]
    assert quality[0] > quality[1] > quality[2]
    # The network removes noise: better than the noisy input it was given (same seed, same noise).
    noisy = distortions.get_family("gaussian_noise").apply(reference, {"sigma": 30.0}, seed=3)
    assert quality[1] > psnr(noisy, reference) + 2.0
    provenance = family.run_provenance({"network": "tiny_dncnn", "noise_sigma": 30.0})["denoiser"]
    assert provenance["official"] is False and "tiny test network" in provenance["label"]


def test_jpeg_removal_with_a_trained_network(weights_dir):
    _train(weights_dir, "tiny_deblock", "jpeg", (10, 30))
    reference = edge_shapes(78, 80)
    family = distortions.get_family("deep_jpeg_removal")
    strong = family.apply(reference, {"network": "tiny_deblock", "quality": 5}, seed=0)
    assert np.array_equal(strong, family.apply(reference, {"network": "tiny_deblock", "quality": 5}, seed=1))
    mild = family.apply(reference, {"network": "tiny_deblock", "quality": 40}, seed=0)
    assert psnr(mild, reference) > psnr(strong, reference)


def test_missing_official_weights_are_refused_with_how_to_get_them(weights_dir):
    with pytest.raises(DistortionError, match=r"dncnn_color_blind\.pth.*fetch_weights dncnn_color_blind"):
        distortions.get_family("deep_denoising").check_ready({"network": "dncnn_color_blind", "noise_sigma": 25.0})
    with pytest.raises(DistortionError, match="unknown denoiser 'nope'"):
        distortions.get_family("deep_jpeg_removal").check_ready({"network": "nope", "quality": 10})


def test_an_official_layout_file_runs_through_the_family(weights_dir):
    # A file in KAIR's layout (random tensors: this checks the loading path, not the quality).
    import torch

    record = denoisers.DENOISERS.get("dncnn_color_blind")
    torch.save(record.build().state_dict(), weights_dir / record.file)
    family = distortions.get_family("deep_denoising")
    family.check_ready({"network": "dncnn_color_blind", "noise_sigma": 25.0})
    out = family.apply(edge_shapes(5, 40), {"network": "dncnn_color_blind", "noise_sigma": 25.0}, seed=0)
    assert out.shape == (40, 40, 3) and out.dtype == np.uint8
    provenance = family.run_provenance({"network": "dncnn_color_blind", "noise_sigma": 25.0})["denoiser"]
    assert provenance["official"] is True and provenance["file"] == record.file and len(provenance["sha256"]) == 64


def test_the_catalogue_has_the_deep_denoisers():
    rows = [row for row in load_catalogue() if row.subtype == "deep_denoising"]
    assert {(row.type_id, row.params["network"]) for row in rows} == {
        ("54", "dncnn_color_blind"), ("55", "ffdnet_color"), ("56", "dncnn3")
    }
