"""Example-based SR (Zeyde, ANR, A+, GR) trained by the platform: features as the authors' MATLAB code
computes them, OMP against scikit-learn's, K-SVD, a tiny real training run that beats bicubic on
held-out images, determinism, and the model file format."""

from __future__ import annotations

import json
import warnings
import zipfile

import numpy as np
import pytest
from scipy.signal import convolve2d
from sklearn.linear_model import orthogonal_mp_gram

from sr_models import example_sr
from sr_models.evaluation import bicubic
from sr_models.example_sr import features as feat
from sr_models.example_sr import ksvd
from sr_models.example_sr.model import ExampleSRConfig, ExampleSRError, ExampleSRModel
from sr_models.training import make_lr, modcrop
from tests.factories import edge_shapes as shapes

SCALE = 4
# Tiny settings: 64 atoms, 5 K-SVD iterations, small neighbourhoods and pool (the real ones: 1024, 20, 40, 2048).
TINY = {
    "atoms": 64,
    "ksvd_iterations": 5,
    "anr_neighbours": 16,
    "aplus_samples": 256,
    "aplus_pool": 20_000,
    "aplus_scales": 3,
    "max_patches": 5_000,
}


TRAIN = [shapes(seed) for seed in range(6)]
HELD_OUT = [shapes(100 + seed) for seed in range(3)]


def configs(seed: int = 0, methods=("zeyde", "anr", "aplus")) -> list[ExampleSRConfig]:
    return [ExampleSRConfig(method=method, scale=SCALE, seed=seed, **TINY) for method in methods]


@pytest.fixture(scope="module")
def trained() -> dict[str, ExampleSRModel]:
    return {model.method: model for model in example_sr.train_models(TRAIN, configs())}


# --- features ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4])
def test_filters_are_matlab_conv2_same_for_odd_kernels(scale):
    image = np.random.default_rng(scale).random((20, 24))
    for kernel, axis in feat.filters(scale):
        expected = convolve2d(image, kernel[None, :] if axis == 1 else kernel[:, None], mode="same")
        np.testing.assert_allclose(feat._conv_same(image, kernel, axis), expected, atol=1e-12)


def test_even_gradient_filter_follows_matlab_not_scipy():
    # x3: G = [1 0 0 -1]; MATLAB's conv2 'same' keeps the full result from floor(4/2)+1 (1-based), so the
    # output at i is X(i+2) - X(i-1); scipy centres even kernels the other way (X(i+1) - X(i-2))
    image = np.random.default_rng(3).random((12, 12))
    gradient, axis = feat.filters(3)[0]
    assert axis == 1 and gradient.tolist() == [1, 0, 0, -1]
    out = feat._conv_same(image, gradient, axis)
    np.testing.assert_allclose(out[:, 1:-2], image[:, 3:] - image[:, :-3])
    np.testing.assert_allclose(out[:, 0], image[:, 2])  # X(i-1) is zero padding at the left edge


def test_grid_covers_all_but_the_border_and_overlap_average_is_a_mean():
    shape = (40, 48)
    for overlap, step in ((feat.TRAIN_OVERLAP_LR, 8), (feat.TEST_OVERLAP_LR, 4)):
        starts = feat.grid_starts(shape[0], SCALE, overlap)
        assert starts[0] == SCALE and np.all(np.diff(starts) == step)  # border 1 LR pixel, window 3, overlap
        assert starts[-1] + feat.window(SCALE) <= shape[0] - SCALE
    rows, cols = feat.grid_positions(shape, SCALE, feat.TEST_OVERLAP_LR)
    values = np.full((len(rows), feat.patch_size(SCALE)), 2.5)
    average = feat.overlap_average(values, shape, SCALE, feat.TEST_OVERLAP_LR)
    assert np.all(average[SCALE:-SCALE, SCALE:-SCALE] == 2.5)
    assert np.all(average[:SCALE] == 0) and np.all(average[:, -SCALE:] == 0)  # uncovered frame
    assert feat.features(np.zeros(shape), SCALE, rows, cols).shape == (len(rows), 4 * 12 * 12)


def test_pca_drops_the_last_tenth_of_a_percent_of_energy():
    energies = np.array([0.0004, 0.0005, 0.0011, 0.998])  # cumulative: .0004, .0009, .002, 1
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))[0]
    kept = feat.pca_basis(basis @ np.diag(energies) @ basis.T)
    assert kept.shape == (4, 2)  # the two directions whose cumulative energy is below 1e-3 go
    np.testing.assert_allclose(np.abs(kept.T @ basis[:, 2:]), np.eye(2), atol=1e-9)


# --- OMP and K-SVD ----------------------------------------------------------------------------------


def test_vectorised_omp_matches_scikit_learn():
    rng = np.random.default_rng(0)
    dictionary = rng.standard_normal((128, 20))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    signals = rng.standard_normal((300, 20))
    signals[:5] = 0  # flat patches: no atom at all
    gram, correlations = dictionary @ dictionary.T, signals @ dictionary.T
    codes = ksvd.omp_gram(gram, correlations, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "ended prematurely" on the zero signals
        expected = orthogonal_mp_gram(gram, correlations.T, n_nonzero_coefs=3).T
    dense = np.zeros_like(expected)
    np.add.at(dense, (np.arange(300)[:, None], codes.atoms), codes.values)
    np.testing.assert_allclose(dense, expected, atol=1e-10)
    assert np.all(codes.values[:5] == 0)


def test_ksvd_recovers_a_planted_dictionary_repeatably():
    # Aharon et al.'s synthetic check: signals made of 3 of 48 unit atoms in 24 dimensions
    rng = np.random.default_rng(1)
    truth = rng.standard_normal((48, 24))
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    codes = np.zeros((2000, 48))
    for row in codes:
        row[rng.choice(48, 3, replace=False)] = rng.standard_normal(3)
    signals = codes @ truth

    def run(iterations: int, seed: int = 0) -> tuple[float, np.ndarray]:
        dictionary, found = ksvd.ksvd(signals, 48, iterations, 3, np.random.default_rng(seed))
        assert np.allclose(np.linalg.norm(dictionary, axis=1), 1)
        return float(np.mean((signals - found.dense_rows(dictionary)) ** 2) / np.mean(signals**2)), dictionary

    first, _ = run(1)
    last, dictionary = run(15)
    recovered = float(np.mean(np.abs(dictionary @ truth.T).max(axis=0) > 0.99))
    print(f"\nK-SVD relative error {first:.3f} after 1 iteration, {last:.4f} after 15; {recovered:.0%} atoms found")
    assert last < first / 20 and recovered >= 0.9  # measured (seed 0): 0.162 -> 0.0010, 100 % of the atoms
    np.testing.assert_array_equal(dictionary, run(15)[1])
    assert not np.array_equal(dictionary, run(15, seed=1)[1])


# --- training and upscaling --------------------------------------------------------------------------


def test_each_method_beats_bicubic_on_held_out_images(trained):
    scores = example_sr.held_out_psnr(list(trained.values()), HELD_OUT)
    gains = {method: float(np.mean(np.subtract(scores[method], scores["bicubic"]))) for method in trained}
    print(f"\nheld-out PSNR-Y gain over bicubic (x4, 64 atoms, 5 K-SVD iterations, 6 training images): {gains}")
    # measured (seed 0): zeyde +1.34 dB, anr +1.00 dB, aplus +2.79 dB; bicubic 28.9-32.0 dB
    assert gains["zeyde"] > 0.6
    assert gains["anr"] > 0.5
    assert gains["aplus"] > 1.5
    for method in trained:  # on every image, not only on average
        assert all(ours > base for ours, base in zip(scores[method], scores["bicubic"], strict=True))


def test_training_and_upscaling_are_deterministic(trained):
    again = {model.method: model for model in example_sr.train_models(TRAIN, configs())}
    other = example_sr.train_model(TRAIN, configs(seed=1, methods=("aplus",))[0])
    for method, model in trained.items():
        for name in ("pca", "anchors", "dict_hires", "projections"):
            first, second = getattr(model, name), getattr(again[method], name)
            assert (first is None) == (second is None)
            if first is not None:
                np.testing.assert_array_equal(first, second)
    assert not np.array_equal(other.anchors, trained["aplus"].anchors)
    lr = make_lr(modcrop(HELD_OUT[0], SCALE), SCALE)
    out = trained["aplus"].upscale(lr)
    assert out.dtype == np.uint8 and out.shape == (lr.shape[0] * SCALE, lr.shape[1] * SCALE, 3)
    assert out.tobytes() == trained["aplus"].upscale(lr).tobytes() == again["aplus"].upscale(lr).tobytes()


def test_methods_share_the_dictionary_and_a_single_method_trains_the_same(trained):
    assert trained["zeyde"].anchors is trained["aplus"].anchors
    alone = example_sr.train_model(TRAIN, configs(methods=("anr",))[0])
    np.testing.assert_array_equal(alone.projections, trained["anr"].projections)
    assert trained["anr"].projections.shape == (64, 144, trained["anr"].pca.shape[1])
    assert trained["anr"].projections.dtype == np.float32 and trained["zeyde"].projections is None


def test_frame_and_small_inputs_stay_bicubic(trained):
    lr = make_lr(modcrop(HELD_OUT[1], SCALE), SCALE)
    reference = bicubic(SCALE).upscale(lr).astype(int)
    for model in trained.values():
        out = model.upscale(lr).astype(int)
        frame = np.ones(out.shape[:2], dtype=bool)
        frame[SCALE:-SCALE, SCALE:-SCALE] = False  # no 3x3-LR-pixel window covers the 1-LR-pixel border
        assert np.abs(out[frame] - reference[frame]).max() <= 1  # Y/Cb/Cr vs RGB bicubic: rounding only
        assert np.abs(out[~frame] - reference[~frame]).max() > 10
    tiny = lr[:4, :4]  # smaller than one window plus border: nothing to predict
    assert np.abs(trained["zeyde"].upscale(tiny).astype(int) - bicubic(SCALE).upscale(tiny)).max() <= 1


def test_gr_trains_and_runs():
    model = example_sr.train_model(TRAIN[:3], ExampleSRConfig(method="gr", scale=3, **TINY))
    assert model.projections.shape[0] == 1
    lr = make_lr(modcrop(HELD_OUT[0], 3), 3)
    scores = example_sr.held_out_psnr([model], HELD_OUT[:1])
    assert model.upscale(lr).shape == (lr.shape[0] * 3, lr.shape[1] * 3, 3)
    assert scores["gr"][0] > scores["bicubic"][0]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"method": "yang"}, "unknown method 'yang'"),
        ({"scale": 8}, "supports scales x2, x3, x4, not x8"),
        ({"atoms": 1}, "atoms must be 2 or more"),
        ({"sparsity": 0}, "sparsity must be between 1"),
        ({"ksvd_iterations": 0}, "ksvd_iterations must be 1 or more"),
        ({"anr_neighbours": 2000}, "anr_neighbours must be between 1 and the 1024 atoms"),
        ({"max_patches": 100}, r"max_patches \(100\) must be at least the 1024 atoms"),
        ({"aplus_pool": 100}, "aplus_pool must be between aplus_samples"),
        ({"aplus_scale_step": 1.5}, r"aplus_scale_step must be in \(0, 1\]"),
        ({"seed": 1.5}, "seed must be an integer"),
    ],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ExampleSRError, match=message):
        example_sr.check_config(ExampleSRConfig(**{"method": "aplus", "scale": 4, **changes}))


def test_bad_training_inputs_are_refused():
    config = configs(methods=("zeyde",))[0]
    with pytest.raises(ExampleSRError, match=r"small: 18x18 is smaller than one x4 training window .*20x20"):
        example_sr.train_model([TRAIN[0], TRAIN[1][:18, :18]], config, names=["big", "small"])
    with pytest.raises(ExampleSRError, match="image 0: expected an HxWx3 uint8 RGB image, got float32"):
        example_sr.train_model([TRAIN[0].astype(np.float32)], config)
    with pytest.raises(ExampleSRError, match="at least 64 non-flat training patches for 64 atoms"):
        example_sr.train_model([np.full((40, 40, 3), 128, np.uint8)], config)
    with pytest.raises(ExampleSRError, match="share one dictionary"):
        example_sr.train_models(TRAIN, [config, ExampleSRConfig(method="anr", scale=SCALE)])
    model = ExampleSRModel(config=config, pca=np.zeros((576, 2)), anchors=np.zeros((64, 2)))
    with pytest.raises(ExampleSRError, match="HxWx3 uint8 RGB image, got uint8 \\(8, 8\\)"):
        model.upscale(np.zeros((8, 8), np.uint8))


# --- files -------------------------------------------------------------------------------------------


def test_save_load_round_trip(trained, tmp_path):
    lr = make_lr(modcrop(HELD_OUT[2], SCALE), SCALE)
    provenance = {"trained_by": "test", "images": ["a", "b"], "psnr": 31.5}
    for method, model in trained.items():
        path = example_sr.model_path(tmp_path, f"{method}_x4")
        assert path == tmp_path / "example_sr" / f"{method}_x4.npz"
        digest = example_sr.save_model(model, path, provenance)
        assert len(digest) == 64 and not list(path.parent.glob(".*partial"))
        loaded, back = example_sr.load_model(path)
        assert back == provenance and loaded.config == model.config and loaded.method == method
        assert loaded.upscale(lr).tobytes() == model.upscale(lr).tobytes()
        with np.load(path, allow_pickle=False) as archive:  # plain arrays, JSON metadata
            metadata = json.loads(str(archive["metadata"][()]))
        assert metadata["format"] == "pipal-example-sr" and metadata["code_version"] == example_sr.CODE_VERSION


def test_corrupt_and_foreign_files_are_refused_by_name(trained, tmp_path):
    path = tmp_path / "good.npz"
    example_sr.save_model(trained["anr"], path, {})
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    for bad in (truncated, foreign, text, tmp_path / "missing.npz"):
        with pytest.raises(ExampleSRError, match=str(bad)):
            example_sr.load_model(bad)

    # right format, wrong contents: a projection of the wrong shape, a NaN
    with np.load(path, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    shaped = tmp_path / "shaped.npz"
    np.savez(shaped, **{**contents, "projections": contents["projections"][:, :100]})
    with pytest.raises(ExampleSRError, match=r"shaped.npz: .*projections have shape"):
        example_sr.load_model(shaped)
    poisoned = contents["anchors"].copy()
    poisoned[0, 0] = np.nan
    nan = tmp_path / "nan.npz"
    np.savez(nan, **{**contents, "anchors": poisoned})
    with pytest.raises(ExampleSRError, match=r"nan.npz: .*anchors must be a finite"):
        example_sr.load_model(nan)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["anchors.npy", "metadata.npy", "pca.npy", "projections.npy"]

    with pytest.raises(ExampleSRError, match="a file name, no path"):
        example_sr.model_path(tmp_path, "../escape")
    with pytest.raises(ExampleSRError, match="not plain JSON"):
        example_sr.save_model(trained["anr"], tmp_path / "x.npz", {"when": object()})
