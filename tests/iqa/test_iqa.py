"""IQA metrics over a study: registry, weights, cached scores, benchmark reports."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image
from scipy import stats as scipy_stats

from iqa import metrics, scoring_job, weights
from iqa.models import BenchmarkRun, MetricScore
from tests.factories import REQUIRE_SERVICES, graded_study, import_folder, plain_study

pytestmark = pytest.mark.django_db
CALIBRATION = Path(__import__("pyiqa").__file__).resolve().parent.parent / "ResultsCalibra"
# pyiqa's formula metrics that need no downloaded file (SPEC §3).
OFFLINE = ("psnr", "ssim", "ms_ssim", "cw_ssim", "fsim", "vif", "gmsd", "vsi", "nlpd")
# pyiqa's own published values on its calibration pairs (ResultsCalibra/calibration_summary.csv,
# rows "(ours)"; images I03, I04, I06, I08, I19), to 4 decimals.
PUBLISHED = {
    "psnr": (21.1136, 20.9872, 27.0139, 23.3002, 21.6186),
    "fsim": (0.6891, 0.9702, 0.9927, 0.9575, 0.822),
    "gmsd": (0.2203, 0.0005, 0.0004, 0.1346, 0.205),
    "niqe": (15.6538, 3.6549, 3.2342, 3.1921, 9.0722),
}


@pytest.fixture(autouse=True)
def weights_dir(settings, tmp_path) -> Path:
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"
    scoring_job.metric_cache_clear()
    yield settings.PIPAL_WEIGHTS_DIR
    scoring_job.metric_cache_clear()


@pytest.fixture(scope="session")
def basicsr_sdist(tmp_path_factory) -> Path:
    """basicsr's sdist from PyPI (the package registry is reachable in CI and on user machines)."""
    folder = tmp_path_factory.mktemp("pypi")
    try:
        return weights.download_from_pypi("basicsr", weights.BASICSR_SDIST[1], folder)
    except OSError as error:
        if REQUIRE_SERVICES:
            pytest.fail(f"PyPI unreachable ({error}); PIPAL_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(f"PyPI unreachable: {error}")


def calibration_study(tmp_path):
    """pyiqa's calibration pairs imported through the platform: Ref/I03.bmp, Dis/I03_01_01.bmp, ..."""
    folder = tmp_path / "calibra"
    (folder / "Ref").mkdir(parents=True)
    (folder / "Dis").mkdir()
    for path in sorted((CALIBRATION / "ref_dir").glob("*.bmp")):
        shutil.copyfile(path, folder / "Ref" / path.name)
        shutil.copyfile(CALIBRATION / "dist_dir" / path.name, folder / "Dis" / f"{path.stem}_01_01.bmp")
    study = plain_study("calibra")
    import_folder(study, folder)
    return study


# --- registry -----------------------------------------------------------------


def test_every_pyiqa_metric_is_registered_with_its_direction():
    names = metrics.metric_names()
    assert {"psnr", "ssim", "lpips", "niqe", "dists", "pieapp", "nrqm", "pi", "fsim_gray"} <= set(names)
    assert "fid" not in names  # a dataset-level score, not per image
    assert metrics.metric_info("psnr").higher_is_better and metrics.metric_info("psnr").full_reference
    assert not metrics.metric_info("lpips").higher_is_better
    niqe = metrics.metric_info("niqe")
    assert not niqe.higher_is_better and not niqe.full_reference
    assert metrics.metric_info("fsim_gray").options == {"chromatic": False}


def test_no_project_metric_or_alias_shadows_a_pyiqa_metric():
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    own = metrics.builtin_names() - set(DEFAULT_CONFIGS)
    assert {"ranker_niqe", "ranker_ma", "ranker_pi", "fsim_gray", "psnr_sr_x4"} <= own
    assert metrics.metric_info("ranker_niqe").source == "project"


def test_starting_django_does_not_import_torch():
    """Registering the platform's metrics must not load pyiqa or torch (seconds at every start-up)."""
    import subprocess
    import sys

    code = "import django, sys; django.setup(); import iqa.metrics; print('torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


def test_unknown_metric_names_are_refused_with_suggestions():
    with pytest.raises(metrics.UnknownMetric, match="did you mean psnr"):
        metrics.metric_info("psnrr")
    with pytest.raises(metrics.UnknownMetric) as error:
        metrics.parse_metric_list("psnr,ssimm,bogus_metric_x")
    assert "ssimm" in str(error.value) and "bogus_metric_x" in str(error.value)


# --- correctness: the platform's scores are pyiqa's -----------------------------


@pytest.mark.published
def test_compute_scores_reproduces_pyiqa_on_its_calibration_pairs(tmp_path, capsys):
    import pyiqa

    study = calibration_study(tmp_path)
    call_command("compute_scores", study.slug, "--metrics", ",".join(OFFLINE), "--device", "cpu")
    images = {image.name: image for image in study.images.select_related("reference")}
    assert len(images) == 5
    for name in OFFLINE:
        direct = pyiqa.create_metric(name, device="cpu")
        for image_name, image in images.items():
            stored = MetricScore.objects.get(metric=name, image_sha256=image.sha256)
            stem = image_name.split("_")[0]
            expected = float(
                direct(str(CALIBRATION / "dist_dir" / f"{stem}.bmp"), str(CALIBRATION / "ref_dir" / f"{stem}.bmp"))
            )
            assert stored.value == pytest.approx(expected, rel=1e-6, abs=1e-9), (name, image_name)
            assert stored.version == f"pyiqa-{pyiqa.__version__}"
    for name, published in PUBLISHED.items():
        if name == "niqe":
            continue
        values = [
            MetricScore.objects.get(metric=name, image_sha256=images[f"{s}_01_01.bmp"].sha256).value
            for s in ("I03", "I04", "I06", "I08", "I19")
        ]
        assert np.round(values, 4) == pytest.approx(published, abs=1.5e-4)


@pytest.mark.published
def test_niqe_works_offline_from_basicsr_pristine_parameters(tmp_path, basicsr_sdist, weights_dir):
    path = weights.niqe_parameters_from_sdist(basicsr_sdist, weights_dir)
    assert path.name == "niqe_modelparameters.mat"
    study = calibration_study(tmp_path)
    call_command("compute_scores", study.slug, "--metrics", "niqe", "--device", "cpu")
    values = [
        MetricScore.objects.get(metric="niqe", image_sha256=study.images.get(name=f"{s}_01_01.bmp").sha256).value
        for s in ("I03", "I04", "I06", "I08", "I19")
    ]
    # pyiqa's published NIQE with its own copy of the MATLAB parameters: the same model. Plain pyiqa
    # gives 15.6558 for I03 (published 15.6538) on some machines and within 1e-3 on others: NIQE's
    # covariance inversion amplifies CPU-dependent float rounding on this heavily distorted image.
    assert values == pytest.approx(PUBLISHED["niqe"], rel=2e-4, abs=1e-3)
    version = MetricScore.objects.filter(metric="niqe").values_list("version", flat=True).distinct()
    assert list(version) == [f"pyiqa-{metrics.pyiqa_version()}+{weights.weights_checksum([str(path)])}"]


def test_batched_scores_equal_one_at_a_time(tmp_path):
    study = graded_study(tmp_path, references=1)
    call_command("compute_scores", study.slug, "--metrics", "psnr,ssim,gmsd", "--batch", "4", "--device", "cpu")
    batched = {(s.metric, s.image_sha256): s.value for s in MetricScore.objects.all()}
    MetricScore.objects.all().delete()
    call_command("compute_scores", study.slug, "--metrics", "psnr,ssim,gmsd", "--batch", "1", "--device", "cpu")
    single = {(s.metric, s.image_sha256): s.value for s in MetricScore.objects.all()}
    assert batched.keys() == single.keys() and len(single) == 30
    # float32 reductions over a batch round differently: equal to float32 precision, not bit for bit
    worst = max(abs(batched[key] - value) / max(abs(value), 1e-12) for key, value in single.items())
    assert worst < 1e-5


# --- caching, resuming, errors --------------------------------------------------


def test_a_rerun_computes_nothing_and_a_partial_run_resumes(tmp_path, capsys):
    study = graded_study(tmp_path, references=2)
    call_command("compute_scores", study.slug, "--metrics", "psnr", "--device", "cpu")
    assert MetricScore.objects.filter(metric="psnr").count() == 20
    first = {row.image_sha256: (row.pk, row.value) for row in MetricScore.objects.all()}
    capsys.readouterr()
    call_command("compute_scores", study.slug, "--metrics", "psnr", "--device", "cpu")
    assert "0 to score" in capsys.readouterr().out
    assert {row.image_sha256: (row.pk, row.value) for row in MetricScore.objects.all()} == first
    MetricScore.objects.filter(pk__in=[pk for pk, _ in list(first.values())[:7]]).delete()
    call_command("compute_scores", study.slug, "--metrics", "psnr", "--device", "cpu")
    assert "7 to score" in capsys.readouterr().out
    assert MetricScore.objects.count() == 20


def test_the_same_images_in_a_second_study_reuse_their_scores(tmp_path, capsys):
    graded_study(tmp_path, slug="first", references=1)
    call_command("compute_scores", "first", "--metrics", "psnr", "--device", "cpu")
    graded_study(tmp_path, slug="second", references=1)
    capsys.readouterr()
    call_command("compute_scores", "second", "--metrics", "psnr", "--device", "cpu")
    assert "0 to score" in capsys.readouterr().out


def test_bad_arguments_are_refused_clearly(tmp_path):
    graded_study(tmp_path, references=1)
    with pytest.raises(CommandError, match="unknown metric 'psnrx'"):
        call_command("compute_scores", "graded", "--metrics", "psnr,psnrx")
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        call_command("compute_scores", "nope", "--metrics", "psnr")
    if not torch.cuda.is_available():
        with pytest.raises(CommandError, match="no CUDA GPU"):
            call_command("compute_scores", "graded", "--metrics", "psnr", "--device", "cuda")
    assert MetricScore.objects.count() == 0


def test_a_missing_weight_file_is_named_with_where_to_get_it(weights_dir):
    with pytest.raises(weights.WeightsMissing) as error:
        metrics.load_metric("lpips", device="cpu", weights_dir=weights_dir)
    message = str(error.value)
    assert "alexnet-owt-7be5be79.pth" in message and "https://download.pytorch.org/models/" in message
    assert str(weights_dir) in message and "import_weights" in message
    with pytest.raises(CommandError, match="alexnet-owt-7be5be79.pth"):
        call_command("fetch_weights", "lpips")


def test_a_torchvision_file_with_the_wrong_content_is_refused(weights_dir, tmp_path):
    fake = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save({"not": torch.zeros(1)}, fake)
    with pytest.raises(CommandError, match="does not start with 7be5be79"):
        call_command("import_weights", str(fake))
    weights_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fake, weights_dir / fake.name)  # placed by hand: still caught when loading
    with pytest.raises(weights.WeightsMissing, match="fails its checksum"):
        metrics.load_metric("lpips", device="cpu", weights_dir=weights_dir)


def test_a_file_placed_in_the_weights_dir_is_loaded_and_versioned(weights_dir, tmp_path):
    """PieAPP has no offline source here: a checkpoint in its official key layout (built from
    pyiqa's own architecture) placed under its published name is found and versioned."""
    from pyiqa.archs.pieapp_arch import PieAPP

    checkpoint = tmp_path / "PieAPPv0.1-0937b014.pth"
    torch.manual_seed(0)
    torch.save(PieAPP(pretrained=False).state_dict(), checkpoint)
    # The name carries the first hex digits of the real file's SHA-256: import_weights checks them ...
    with pytest.raises(CommandError, match="does not start with 0937b014"):
        call_command("import_weights", str(checkpoint))
    # ... a file placed by hand is taken as it is (pyiqa itself does not check).
    weights_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, weights_dir / checkpoint.name)
    loaded = metrics.load_metric("pieapp", device="cpu", weights_dir=weights_dir)
    assert loaded.version == f"pyiqa-{metrics.pyiqa_version()}+{weights.weights_checksum([str(checkpoint)])}"
    image = torch.rand(1, 3, 64, 64)
    assert np.isfinite(loaded.score(image, image)).all()


# --- exports and benchmark --------------------------------------------------------


def test_export_scores_writes_every_score_with_its_version(tmp_path):
    study = graded_study(tmp_path, references=1)
    call_command("compute_scores", study.slug, "--metrics", "psnr,gmsd", "--device", "cpu")
    out = tmp_path / "scores.csv"
    call_command("export_scores", study.slug, "--out", str(out), stdout=io.StringIO())
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 20 and set(rows[0]) == {"image", "reference", "metric", "value", "version"}
    image = study.images.get(name="R000_01_03.png")
    stored = MetricScore.objects.get(metric="gmsd", image_sha256=image.sha256)
    row = next(r for r in rows if r["image"] == "R000_01_03.png" and r["metric"] == "gmsd")
    assert float(row["value"]) == stored.value and row["version"] == stored.version


def test_run_benchmark_writes_tables_that_equal_scipy(tmp_path, settings, capsys):
    study = graded_study(tmp_path)
    call_command("compute_scores", study.slug, "--metrics", "psnr,gmsd", "--device", "cpu")
    out = tmp_path / "report"
    call_command(
        "run_benchmark",
        study.slug,
        "--metrics",
        "psnr,gmsd",
        "--out",
        str(out),
        "--min-images",
        "10",
        "--resamples",
        "200",
    )
    printed = capsys.readouterr().out
    assert "PIPAL Table 3 layout" in printed and "| psnr ↑ |" in printed
    table = pd.read_csv(out / "benchmark.csv")
    images = list(study.images.select_related("distortion_type"))
    mos = np.array([image.mos for image in images])
    for name, sign in (("psnr", 1), ("gmsd", -1)):
        values = np.array([MetricScore.objects.get(metric=name, image_sha256=i.sha256).value for i in images])
        row = table[(table.metric == name) & (table.group == "All")].iloc[0]
        assert row.srcc == pytest.approx(scipy_stats.spearmanr(sign * values, mos).statistic, abs=1e-12)
        assert row.krcc == pytest.approx(scipy_stats.kendalltau(sign * values, mos).statistic, abs=1e-12)
        assert row.srcc_low <= row.srcc <= row.srcc_high and row.n == 30
        sr = np.array([i.distortion_type.category == "super_resolution" for i in images])
        cell = table[(table.metric == name) & (table.group == "SR full")].iloc[0]
        assert cell.srcc == pytest.approx(scipy_stats.spearmanr(sign * values[sr], mos[sr]).statistic, abs=1e-12)
    # MOS follows the distortion strength, and so do PSNR and GMSD: strong agreement.
    assert table[(table.group == "All")].srcc.min() > 0.3
    # Groups: the categories present with their PIPAL sub-types (bicubic up-sampling is interpolation, not
    # traditional SR: the SR sub-types the study lacks are "none in this study") and the other subtypes.
    assert set(table.group) == {
        "All", "Traditional", "SR full", "Interpolation", "Traditional SR", "Kernel-mismatch SR",
        "PSNR-oriented SR", "GAN-based SR", "subtype: gaussian_noise",
        "type: 01 Gaussian noise", "type: 02 Bicubic up-sampling",
    }
    empty = table[(table.metric == "psnr") & (table.group == "Traditional SR")].iloc[0]
    assert empty.n == 0 and np.isnan(empty.srcc)
    assert "none in this study" in (out / "benchmark.md").read_text()
    # Per distortion type: pooled over the type's images, as scipy computes it.
    values = np.array([MetricScore.objects.get(metric="psnr", image_sha256=i.sha256).value for i in images])
    noise = np.array([i.distortion_type.code == "01" for i in images])
    cell = table[(table.metric == "psnr") & (table.group == "type: 01 Gaussian noise")].iloc[0]
    assert cell.srcc == pytest.approx(scipy_stats.spearmanr(values[noise], mos[noise]).statistic, abs=1e-12)
    # KRCC per reference beside SRCC per reference (MOS is identified only within a reference).
    references = np.array([i.reference_id for i in images])
    expected = np.mean([scipy_stats.kendalltau(values[references == r], mos[references == r]).statistic
                        for r in sorted(set(references))])
    row = table[(table.metric == "psnr") & (table.group == "All")].iloc[0]
    assert row.krcc_per_reference == pytest.approx(expected, abs=1e-12)
    assert "SRCC per distortion type" in printed and "KRCC per reference" in printed
    sr_methods = pd.read_csv(out / "sr_methods.csv")
    assert list(sr_methods.type_code) == [2] and sr_methods.mos_rank.tolist() == [1]
    for name in ("benchmark.md", "index.html", "scatter_psnr.png", "scatter_gmsd.png", "srcc.png"):
        assert (out / name).stat().st_size > 0, name
    assert Image.open(out / "scatter_psnr.png").size[0] >= 400
    run = BenchmarkRun.objects.get(study=study)
    assert run.metrics["psnr"].startswith("pyiqa-") and run.images == 30
    assert (Path(settings.PIPAL_PRIVATE_ROOT) / run.folder / "index.html").is_file()


def test_run_benchmark_plots_two_types_and_lists_pipal_table3(tmp_path, capsys):
    study = graded_study(tmp_path)
    call_command("compute_scores", study.slug, "--metrics", "psnr,gmsd", "--device", "cpu")
    out = tmp_path / "report"
    call_command(
        "run_benchmark", study.slug, "--metrics", "psnr,gmsd", "--out", str(out), "--resamples", "50",
        "--type-pair", "01,02", "--type-pair-metric", "gmsd",
    )
    plot = out / "types_01_02_gmsd.png"
    assert plot.stat().st_size > 0 and Image.open(plot).size[0] >= 400
    assert "types_01_02_gmsd.png" in (out / "index.html").read_text()
    with pytest.raises(CommandError, match="unknown: 99"):
        call_command("run_benchmark", study.slug, "--metrics", "psnr", "--type-pair", "01,99")
    with pytest.raises(CommandError, match="--type-pair-metric ssim is not one of the benchmarked metrics"):
        call_command("run_benchmark", study.slug, "--metrics", "psnr", "--type-pair", "01,02",
                     "--type-pair-metric", "ssim")
    capsys.readouterr()
    call_command("run_benchmark", study.slug, "--list-table3")
    listing = capsys.readouterr().out
    assert "FSIM_c      fsim" in listing and "FSIM        fsim_gray" in listing
    assert "NQM         —  not available" in listing and "PSNR        psnr        30/30 images scored" in listing
    assert "Ma          nrqm        not scored yet" in listing
    # "table3" names every available method; unscored ones are named with the command to run.
    with pytest.raises(CommandError, match="scores missing for ssim .*compute_scores graded --metrics ssim,ms_ssim"):
        call_command("run_benchmark", study.slug, "--metrics", "table3")
    # --compute-missing with a named metric whose weights are missing: refused by name, nothing computed.
    with pytest.raises(CommandError, match="lpips: .*alexnet-owt-7be5be79.pth"):
        call_command("run_benchmark", study.slug, "--metrics", "psnr,lpips", "--compute-missing")
    assert not MetricScore.objects.filter(metric="lpips").exists()


def test_a_group_with_too_few_images_shows_its_count(tmp_path):
    study = graded_study(tmp_path, references=1)
    call_command("compute_scores", study.slug, "--metrics", "psnr", "--device", "cpu")
    out = tmp_path / "report"
    call_command(
        "run_benchmark", study.slug, "--metrics", "psnr", "--out", str(out), "--resamples", "50", stdout=io.StringIO()
    )
    markdown = (out / "benchmark.md").read_text()
    assert "n=5 (too few)" in markdown  # 5 images per type with one reference, minimum 10
    table = pd.read_csv(out / "benchmark.csv")
    assert np.isnan(table[(table.group == "Traditional")].srcc.iloc[0])


def test_run_benchmark_refuses_unscored_metrics(tmp_path):
    study = graded_study(tmp_path, references=1)
    with pytest.raises(CommandError, match="scores missing for ssim .*compute_scores graded --metrics ssim"):
        call_command("run_benchmark", study.slug, "--metrics", "ssim")
    assert not BenchmarkRun.objects.exists()


def test_the_report_is_on_the_study_dashboard(tmp_path, client, django_user_model):
    study = graded_study(tmp_path, references=1)
    call_command("compute_scores", study.slug, "--metrics", "psnr", "--device", "cpu")
    call_command(
        "run_benchmark", study.slug, "--metrics", "psnr", "--resamples", "50", "--min-images", "3", stdout=io.StringIO()
    )
    url = f"/study/{study.slug}/benchmark/"
    assert client.get(url).status_code == 302  # sign in first
    stranger = django_user_model.objects.create_user("stranger", password="pw")
    client.force_login(stranger)
    assert client.get(url).status_code == 403
    owner = django_user_model.objects.create_user("owner", password="pw")
    study.owners.add(owner)
    client.force_login(owner)
    page = client.get(url)
    assert page.status_code == 200 and b"PIPAL Table 3 layout" in page.content
    plot = client.get(url + "scatter_psnr.png")
    assert plot.status_code == 200 and plot["Content-Type"] == "image/png"
    assert client.get(url + "secrets.txt").status_code == 404
    dashboard = client.get(f"/study/{study.slug}/dashboard/")
    assert url.encode() in dashboard.content


def test_the_admin_progress_page_shows_score_coverage_and_reports(tmp_path, admin_client):
    study = graded_study(tmp_path, references=1)
    call_command("compute_scores", study.slug, "--metrics", "psnr,gmsd", "--device", "cpu")
    MetricScore.objects.filter(metric="gmsd").first().delete()
    call_command(
        "run_benchmark", study.slug, "--metrics", "psnr", "--resamples", "50", "--logistic", "4", stdout=io.StringIO()
    )
    page = admin_client.get(f"/admin/annotation/study/{study.pk}/progress/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "10 of 10 (100%)" in text and "9 of 10 (90%)" in text
    assert f"/study/{study.slug}/benchmark/" in text


def test_fetch_weights_builds_niqe_from_the_package_registry(weights_dir, basicsr_sdist, capsys):
    (weights_dir / "downloads").mkdir(parents=True)
    shutil.copyfile(basicsr_sdist, weights_dir / "downloads" / basicsr_sdist.name)
    call_command("fetch_weights", "niqe")
    out = capsys.readouterr().out
    assert "niqe_modelparameters.mat built from basicsr's sdist" in out and "niqe: ready (pyiqa-" in out
    assert (weights_dir / "niqe_modelparameters.mat").is_file()


def test_sr_convention_metrics_use_y_and_crop_the_border(weights_dir, device):
    """4PP-EUSR Sec. 5 / ESRGAN Sec. 4.2: PSNR and SSIM on Y with `scale` border pixels cropped."""
    psnr = metrics.load_metric("psnr_sr_x4", device=device, weights_dir=weights_dir)
    plain = metrics.load_metric("psnr", device=device, weights_dir=weights_dir)
    torch.manual_seed(0)
    reference = torch.rand(1, 3, 32, 32, device=device)
    damaged = reference.clone()
    damaged[..., :4, :] = 0  # only inside the cropped border
    assert psnr.score(damaged, reference)[0] > 60 > plain.score(damaged, reference)[0]
    options = metrics.metric_info("ssim_sr_x4").options
    assert options == {"test_y_channel": True, "color_space": "ycbcr", "crop_border": 4}
    # Y of YCbCr as MATLAB's rgb2ycbcr (the papers' convention), not pyiqa's default Y of YIQ:
    # the same figure as sr_models.training's independent numpy PSNR.
    from sr_models import training

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8)

    def tensor(x):
        return torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255

    assert psnr.score(tensor(b), tensor(a))[0] == pytest.approx(training.psnr_y(a, b, 4), abs=1e-3)


# --- the registries, entry by entry ----------------------------------------------


def _iqa_weight_records():
    from iqa import weights as iqa_weights

    return iqa_weights.weight_records()


@pytest.mark.parametrize("name", sorted(metrics.PROJECT_METRICS.names()))
def test_every_project_metric_states_direction_mode_range_and_weights(name):
    from core.weights import WEIGHTS

    info = metrics.metric_info(name)
    assert info.source == "project" and info.name == name
    assert isinstance(info.higher_is_better, bool) and info.mode in ("FR", "NR")
    assert info.score_range and info.description
    assert info.weights and all(record in WEIGHTS for record in info.weights)


@pytest.mark.parametrize("record", _iqa_weight_records(), ids=lambda record: record.name)
def test_every_iqa_weight_record_says_what_it_is_and_how_to_get_it(record):
    from core.weights import WEIGHTS

    assert WEIGHTS.get(record.name) is record  # registered at app start (IqaConfig.ready)
    assert record.file and record.source and record.licence and record.layout and record.label
    how = record.how_to_get()
    assert f"import_weights {record.name} /path/to/{record.file}" in how
    assert ("fetch_weights" in how) == bool(record.url or record.make)
    if record.hash_prefix:  # torch.hub-style names carry their checksum's first digits
        assert record.url and record.url.endswith(record.file)


def test_metrics_that_need_a_made_file_declare_it_and_list_their_range():
    assert metrics.metric_info("niqe").weights == ("niqe_parameters",) == metrics.metric_info("pi").weights
    assert metrics.metric_info("psnr").score_range  # pyiqa's table states every range
    out = io.StringIO()
    call_command("list_metrics", "--filter", "ranker_", stdout=out)
    assert "ranker_niqe" in out.getvalue() and "[unbounded]" in out.getvalue()


def test_a_published_weight_file_is_imported_by_its_record_name(weights_dir, tmp_path):
    from iqa.learned import ranker_arch

    source = tmp_path / "downloaded.pth"
    torch.manual_seed(0)
    # a small Ranker in the official layout, saved as DataParallel did ("module." prefix)
    state = ranker_arch.Ranker(nf=4).state_dict()
    torch.save({f"module.{key}": value for key, value in state.items()}, source)
    out = io.StringIO()
    call_command("import_weights", "ranker_pi", str(source), stdout=out)
    assert (weights_dir / "Ranker_PI.pth").read_bytes() == source.read_bytes()
    assert "checked and installed" in out.getvalue()
    with pytest.raises(CommandError, match="import_weights ranker_pi FILE"):
        call_command("import_weights", "ranker_pi")


def _official_layout(record: str) -> dict:
    """A small file in the record's published layout."""
    from torchvision.models import alexnet

    from iqa.learned import ranker_arch

    torch.manual_seed(0)
    if record == "alexnet_imagenet":
        return alexnet(weights=None).state_dict()
    if record == "lpips_alex_lin":
        return {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate((64, 192, 384, 256, 256))}
    return ranker_arch.Ranker(nf=4).state_dict()


@pytest.mark.parametrize("record", ["ranker_niqe", "ranker_ma", "ranker_pi", "alexnet_imagenet", "lpips_alex_lin"])
def test_an_iqa_weight_record_checks_a_candidate_file_by_loading_it_strictly(tmp_path, record):
    from core import weights as core_weights

    check = core_weights.WEIGHTS.get(record).check
    good = tmp_path / "official.pth"
    torch.save(_official_layout(record), good)
    check(good)
    foreign = tmp_path / "foreign.pth"
    torch.save({"conv0_0.weight": torch.zeros(1), "body.0.weight": torch.zeros(3, 3)}, foreign)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:200])
    for source in (foreign, truncated):
        with pytest.raises(core_weights.WeightsError, match=source.name):
            check(source)


def test_a_foreign_file_is_refused_by_import_weights_and_nothing_is_installed(weights_dir, tmp_path):
    foreign = tmp_path / "foreign.pth"
    torch.save({"conv0_0.weight": torch.zeros(1), "body.0.weight": torch.zeros(3, 3)}, foreign)
    with pytest.raises(CommandError, match=r"foreign\.pth is not RankSRGAN's Ranker \(NIQE\)"):
        call_command("import_weights", "ranker_niqe", str(foreign))
    assert not weights_dir.exists() or not any(weights_dir.iterdir())
