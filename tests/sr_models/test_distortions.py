"""Distortion generators and the imresize-compatible bicubic (pure numpy; no database)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_models import distortions, runtime
from sr_models.distortions import CatalogueError, DistortionError, load_catalogue
from sr_models.imresize import imresize, output_size
from tests.factories import ROOT, install_random_checkpoint

REF = ROOT / "fixtures" / "demo" / "Ref" / "D0001.png"
CATALOGUE = load_catalogue()
TYPES = sorted({entry.type_id for entry in CATALOGUE})

# Families that draw from the seed; the others must ignore it.
STOCHASTIC = {
    "motion_blur",
    "gaussian_noise",
    "spatial_warping",
    "comfort_noise",
    "mean_filter_denoising",
    "nlm_denoising",
    "bm3d_denoising",
    "sr_of_noisy",
    "sr_after_denoising",
    "deep_denoising",
}


# Families that run a bundled SR network: here on random weights (tests/factories.py), so they
# prove the path runs and is deterministic, not what the real models output.
# The deep denoisers likewise run official-layout files of random tensors (their learning is checked in
# tests/sr_models/test_deep_denoising_family.py); the example-based SR models are trained here, tiny.
NETWORKS = {"sr_network", "gan_sr_network", "esrgan_interpolation", "deep_denoising", "deep_jpeg_removal"}
TINY_EXAMPLE_SR = {"atoms": 32, "ksvd_iterations": 2, "anr_neighbours": 8, "aplus_samples": 128,
                   "aplus_pool": 5_000, "aplus_scales": 2, "max_patches": 3_000}


def _install_weights_and_models(folder: Path) -> None:
    import torch

    from sr_models import denoisers, example_sr
    from tests.factories import edge_shapes

    example_models: dict[int, set[str]] = {}
    for entry in CATALOGUE:
        if entry.family in {"sr_network", "gan_sr_network", "esrgan_interpolation"}:
            install_random_checkpoint(entry.params["checkpoint"], folder)
        elif entry.family in NETWORKS:
            record = denoisers.DENOISERS.get(entry.params["network"])
            if not (folder / record.file).is_file():
                torch.save(record.build().state_dict(), folder / record.file)
        elif entry.family == "example_based_sr":
            method, scale = entry.params["model"].split("_x")
            example_models.setdefault(int(scale), set()).add(method)
    images = [edge_shapes(seed, 64) for seed in range(4)]
    for scale, methods in example_models.items():
        configs = [example_sr.ExampleSRConfig(method=m, scale=scale, **TINY_EXAMPLE_SR) for m in sorted(methods)]
        for model in example_sr.train_models(images, configs):
            path = example_sr.model_path(folder, f"{model.method}_x{scale}")
            example_sr.save_model(model, path, {"label": "tiny test model"})


@pytest.fixture(scope="module", autouse=True)
def sr_weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sr-weights")
    _install_weights_and_models(folder)
    saved = runtime.current()
    runtime.configure(weights_dir=folder, device="cpu")
    yield folder
    runtime.configure(weights_dir=saved.weights_dir, device=saved.device)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.asarray(Image.open(REF).convert("RGB"))


@pytest.fixture(scope="module")
def small(reference) -> np.ndarray:
    return reference[120:168, 120:168].copy()


@pytest.fixture(scope="module")
def textured(reference) -> np.ndarray:
    # 96 px keeps the BM3D types to about a second a level.
    return reference[100:196, 100:196].copy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def entries_of(type_id: str) -> list[distortions.CatalogueEntry]:
    return [entry for entry in CATALOGUE if entry.type_id == type_id]


# --- every catalogue level runs -------------------------------------------------


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: f"{e.code}-{e.family}")
def test_every_catalogue_level_gives_uint8_of_the_input_size(entry, small):
    out = entry.apply(small, seed=11)
    assert out.dtype == np.uint8
    assert out.shape == small.shape
    assert not np.array_equal(out, small)


@pytest.mark.parametrize(
    "family, params",
    [
        ("gaussian_blur", {"sigma": 2.0}),
        ("spatial_warping", {"amplitude": 1.5}),
        ("jpeg2000", {"ratio": 64.0}),
        ("interpolation_sr", {"scale": 3, "method": "lanczos"}),
        ("sr_after_jpeg_removal", {"scale": 4, "quality": 20, "strength": 6.0}),
    ],
)
def test_full_size_patch(family, params, reference):
    out = distortions.apply(family, reference, params, seed=5)
    assert out.dtype == np.uint8 and out.shape == (288, 288, 3)


def test_odd_sizes_come_back_exactly(reference):
    image = reference[:37, :50].copy()
    for family, params in [
        ("interpolation_sr", {"scale": 4, "method": "bicubic"}),
        ("kernel_mismatch_sr", {"scale": 3, "sigma_true": 2.0}),
    ]:
        assert distortions.apply(family, image, params, seed=0).shape == image.shape


# --- determinism ----------------------------------------------------------------


@pytest.mark.parametrize("family", distortions.family_names())
def test_same_seed_same_bytes(family, small):
    entry = next(entry for entry in CATALOGUE if entry.family == family)
    first = entry.apply(small, seed=3)
    assert np.array_equal(first, entry.apply(small.copy(), seed=3))
    other = entry.apply(small, seed=4)
    assert np.array_equal(first, other) is (family not in STOCHASTIC)


# --- stronger level, more degradation ---------------------------------------------


# Network types run on random weights here: how their levels rank needs the real ones. The example-based
# SR types are graded: their tiny models are trained.
GRADED_TYPES = [t for t in TYPES if entries_of(t)[0].family not in NETWORKS]


@pytest.mark.parametrize("type_id", GRADED_TYPES, ids=lambda t: f"{t}-{entries_of(t)[0].family}")
def test_stronger_level_lowers_psnr(type_id, textured):
    scores = [psnr(textured, entry.apply(textured, seed=1)) for entry in entries_of(type_id)]
    assert all(later < earlier for earlier, later in zip(scores, scores[1:], strict=False)), scores


# --- imresize ---------------------------------------------------------------------


@pytest.mark.parametrize("factor", [2, 4])
def test_bicubic_downscale_matches_pillow(reference, factor):
    # Pillow's BICUBIC is the same a = -0.5 cubic, stretched when shrinking; it clips the
    # window at the border instead of mirroring, so compare away from it.
    ours = imresize(reference, 1 / factor)
    size = 288 // factor
    theirs = np.asarray(Image.fromarray(reference).resize((size, size), Image.Resampling.BICUBIC, reducing_gap=None))
    assert ours.shape == theirs.shape
    diff = np.abs(ours.astype(int) - theirs.astype(int))[3:-3, 3:-3]
    assert (diff <= 1).mean() > 0.99
    assert diff.mean() < 0.3


def test_bicubic_upscale_by_hand():
    # x2: output column 4 (0-based) samples u = 1.75; cubic(a=-0.5) weights at distances
    # 1.75, 0.75, 0.25, 1.25 are -0.0234375, 0.2265625, 0.8671875, -0.0703125.
    f = np.arange(6, dtype=np.float64) ** 2
    out = imresize(np.tile(f, (6, 1)), 2)
    assert out.shape == (12, 12)
    assert out[5, 4] == pytest.approx(-0.0234375 * 0 + 0.2265625 * 1 + 0.8671875 * 4 - 0.0703125 * 9)
    assert out[5, 4] == pytest.approx(1.75**2)  # Keys' cubic reproduces quadratics
    # Column 5 samples u = 2.25 over source pixels 1..4 with the mirrored weights.
    assert out[5, 5] == pytest.approx(-0.0703125 * 1 + 0.8671875 * 4 + 0.2265625 * 9 - 0.0234375 * 16)
    # A linear ramp comes back exactly inside: row 4 -> 1.75, column 5 -> 2.25.
    ramp = np.add.outer(6.0 * np.arange(6), np.arange(6.0))
    assert imresize(ramp, 2)[4, 5] == pytest.approx(1.75 * 6 + 2.25)


def test_imresize_size_rule_and_types(reference):
    assert output_size((10, 7), 0.35) == (4, 3)  # MATLAB: ceil(scale * size)
    assert imresize(np.zeros((10, 7, 3), np.uint8), 0.35).shape == (4, 3, 3)
    assert imresize(reference, output_shape=(50, 70)).shape == (50, 70, 3)
    assert imresize(reference[:, :, 0].astype(np.float32), 0.5).dtype == np.float32
    # Nearest x2 repeats every pixel twice.
    tiny = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(imresize(tiny, 2, method="nearest"), tiny.repeat(2, 0).repeat(2, 1))
    with pytest.raises(ValueError):
        imresize(reference, 0.5, output_shape=(10, 10))


# --- registry metadata and validation -------------------------------------------------


def test_every_family_is_described_and_in_the_catalogue():
    described = distortions.describe()
    assert {d["name"] for d in described} == set(distortions.family_names())
    for info in described:
        assert info["category"] in distortions.CATEGORIES
        assert info["subtype"] and info["summary"]
        assert all(param["doc"] for param in info["params"].values())
        assert info["code_version"] == distortions.CODE_VERSION
    assert {entry.family for entry in CATALOGUE} == set(distortions.family_names())
    assert set(distortions.library_versions()) >= {"code", "numpy", "pillow", "opencv-python"}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"sigma": 1.0, "radius": 2}, "unknown parameter"),
        ({}, "missing required parameter"),
        ({"sigma": "wide"}, "must be float"),
        ({"sigma": 99.0}, "above"),
    ],
)
def test_bad_params_are_refused(params, message, small):
    with pytest.raises(DistortionError, match=message):
        distortions.apply("gaussian_blur", small, params, seed=0)


def test_bad_images_and_names_are_refused(small):
    with pytest.raises(DistortionError, match="uint8 HxWx3"):
        distortions.apply("gaussian_blur", small.astype(np.float32), {"sigma": 1.0}, seed=0)
    with pytest.raises(DistortionError, match="uint8 HxWx3"):
        distortions.apply("gaussian_blur", small[:, :, 0], {"sigma": 1.0}, seed=0)
    with pytest.raises(DistortionError, match="seed must be"):
        distortions.apply("gaussian_blur", small, {"sigma": 1.0}, seed=-1)
    with pytest.raises(DistortionError, match="unknown distortion family 'gaussian_blurr'"):
        distortions.apply("gaussian_blurr", small, {"sigma": 1.0}, seed=0)


# --- catalogue ------------------------------------------------------------------------


def test_default_catalogue_shape():
    assert len(TYPES) >= 35
    assert [f"{n:02d}" for n in range(1, len(TYPES) + 1)] == TYPES
    for type_id in TYPES:
        levels = [entry.level for entry in entries_of(type_id)]
        assert levels == [f"{n:02d}" for n in range(1, len(levels) + 1)]
        # an SR network is one method, one level (PIPAL Table 4); the interpolation has alpha levels
        low = 1 if entries_of(type_id)[0].family in NETWORKS else 2
        assert low <= len(levels) <= 5
    assert {entry.category for entry in CATALOGUE} == set(distortions.CATEGORIES)


def write_catalogue(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["type_id", "name", "family", "category", "subtype", "level", "params_json"])
        writer.writerows(rows)
    return path


def row(type_id="01", family="gaussian_blur", level="01", params=None, category="traditional", subtype="gaussian_blur"):
    raw = params if isinstance(params, str) else json.dumps(params or {"sigma": 1.0})
    return [type_id, "Blur", family, category, subtype, level, raw]


@pytest.mark.parametrize(
    "rows, message",
    [
        ([row(family="gaussian_blurr")], r"line 2 \(type '01' level '01'\): unknown distortion family"),
        ([row(), row(level="02", params={"sigma": -1.0})], r"line 3 .*'sigma' = -1.0 is below"),
        ([row(), row(level="02", params={"size": 3})], r"line 3 .*unknown parameter"),
        ([row(params="{sigma: 1}")], r"line 2 .*params_json is not valid JSON"),
        ([row(params="[1.0]")], r"line 2 .*params_json must be a JSON object"),
        ([row(), row(level="03")], r"type 01 has levels \['01', '03'\]"),
        ([row(level="00")], r"level must be two digits from 01"),
        ([row(subtype="motion_blur")], r"line 2 .*subtype 'motion_blur' does not match"),
    ],
)
def test_catalogue_errors_name_the_row(tmp_path, rows, message):
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(write_catalogue(tmp_path / "bad.csv", rows))
