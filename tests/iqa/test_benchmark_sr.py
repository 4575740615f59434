"""benchmark_sr: the SR papers' protocol end to end on checkpoints the tests build (random weights:
the figures test the path, not any model's quality)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from sr_models import evaluation, training
from tests.factories import install_random_checkpoint


@pytest.fixture
def weights_dir(settings, tmp_path, monkeypatch) -> Path:
    from pyiqa.utils import download_util

    # pyiqa also finds weights in its own cache, which other tests may have filled (NIQE's parameters).
    monkeypatch.setattr(download_util, "DEFAULT_CACHE_DIR", str(tmp_path / "pyiqa-cache"))
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"
    return settings.PIPAL_WEIGHTS_DIR


def textured(seed: int, size: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    base = 128 + 60 * np.sin(x / (3 + seed)) * np.cos(y / 5)
    return np.clip(base[..., None] + rng.normal(0, 12, (*size, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def hr_folders(tmp_path) -> list[Path]:
    folders = []
    for name, sizes in (("SetA", [(50, 42), (40, 40)]), ("SetB", [(36, 44)])):
        folder = tmp_path / name
        folder.mkdir()
        for index, size in enumerate(sizes):
            Image.fromarray(textured(index + len(folders) * 7, size)).save(folder / f"img{index}.png")
        folders.append(folder)
    return folders


def test_benchmark_sr_runs_the_protocol_and_names_what_is_missing(weights_dir, hr_folders, tmp_path):
    install_random_checkpoint("fsrcnn_x4", weights_dir)
    install_random_checkpoint("srresnet_x4", weights_dir)
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "benchmark_sr", "fsrcnn_x4,srresnet_x4,esrgan_x4", *map(str, hr_folders), "--metrics", "psnr,ssim,niqe",
        "--out", str(tmp_path / "report"), "--device", "cpu", stdout=out, stderr=err,
    )
    assert "left out: esrgan_x4 needs RRDB_ESRGAN_x4.pth" in err.getvalue()
    assert "metric left out: niqe" in err.getvalue() and "niqe_modelparameters.mat" in err.getvalue()
    table = pd.read_csv(tmp_path / "report" / "benchmark_sr.csv")
    assert list(table["method"]) == ["bicubic", "fsrcnn_x4", "srresnet_x4"] * 2
    assert set(table.columns) >= {"psnr", "ssim", "psnr_rank", "ssim_rank", "images"}
    per_image = pd.read_csv(tmp_path / "report" / "per_image.csv")
    assert len(per_image) == 3 * 3
    # The bicubic row is PSNR on Y with 4 pixels cropped of MATLAB-bicubic down- and up-sampling,
    # computed independently here (sr_models.training's numpy PSNR).
    for name, hr in evaluation.read_hr_folder(hr_folders[0]):
        hr = evaluation.modcrop(hr, 4)
        lr = evaluation.make_lr(hr, 4)
        expected = training.psnr_y(hr, evaluation.bicubic(4).upscale(lr), 4)
        row = per_image[(per_image.dataset == "SetA") & (per_image.image == name) & (per_image.method == "bicubic")]
        got = row["psnr"].item()
        assert got == pytest.approx(expected, abs=1e-4)
    # Ranks: 1 = best within each dataset.
    for _, group in table.groupby("dataset"):
        best = group.loc[group["psnr"].idxmax()]
        assert best["psnr_rank"] == 1 and sorted(group["psnr_rank"]) == [1, 2, 3]
    text = (tmp_path / "report" / "benchmark_sr.md").read_text()
    assert "## SetA (2 images)" in text and "PSNR ↑" in text and "¹" in text
    assert "left out (weights missing): esrgan_x4" in text


def niqe_parameter_file(tmp_path) -> Path:
    """A file under NIQE's parameter name in the MATLAB layout (random statistics: enough to run)."""
    import scipy.io

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(36, 36))
    path = tmp_path / "niqe_modelparameters.mat"
    scipy.io.savemat(path, {"mu_prisparam": rng.normal(size=(1, 36)), "cov_prisparam": matrix @ matrix.T})
    return path


def test_benchmark_sr_refuses_clearly(weights_dir, hr_folders, tmp_path):
    with pytest.raises(CommandError, match="unknown checkpoint\\(s\\) nope"):
        call_command("benchmark_sr", "nope", str(hr_folders[0]))
    with pytest.raises(CommandError, match="upscales x2, not x4"):
        call_command("benchmark_sr", "fsrcnn_x2", str(hr_folders[0]))
    with pytest.raises(CommandError, match="blends two networks"):
        call_command("benchmark_sr", "esrgan_interp_x4", str(hr_folders[0]))
    with pytest.raises(CommandError, match="every model's weights are missing"):
        call_command("benchmark_sr", "srresnet_x4", str(hr_folders[0]), "--no-bicubic", stderr=io.StringIO())
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png")
    # A metric that cannot score an image says which and why (NIQE needs 96-px blocks).
    weights_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(niqe_parameter_file(tmp_path), weights_dir / "niqe_modelparameters.mat")
    with pytest.raises(CommandError, match="niqe failed on SetA/img0.png \\(32x40 after cropping\\)"):
        call_command("benchmark_sr", "srresnet_x4", str(hr_folders[0]), "--metrics", "psnr,niqe",
                     stderr=io.StringIO(), stdout=io.StringIO())
    with pytest.raises(CommandError, match="broken.png: cannot be read as an image"):
        call_command("benchmark_sr", "srresnet_x4", str(tmp_path / "bad"), "--metrics", "psnr", stderr=io.StringIO())
