"""Anti-aliased LPIPS: the network against pyiqa's, shift consistency, train_lpips end to end."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from django.core.management import CommandError, call_command
from PIL import Image

from iqa import metrics
from iqa.learned import lpips_arch, lpips_training, store
from iqa.learned.training import TrainingError, TrainingRun
from iqa.models import MetricScore
from tests.factories import ROOT, make_learnable_study, pipal_set

DEMO_REFERENCES = sorted((ROOT / "fixtures" / "demo" / "Ref").glob("*.png"))


def random_official_files(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """torchvision AlexNet and LPIPS lin files in the official key layouts, with random weights."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    alexnet = folder / lpips_arch.ALEXNET_FILE
    torch.save(torchvision.models.alexnet().state_dict(), alexnet)
    lin = folder / lpips_arch.LIN_FILES[0]
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(lpips_arch.CHANNELS)}, lin)
    return alexnet, lin


@pytest.fixture
def weights_dir(settings, tmp_path) -> Path:
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"
    return settings.PIPAL_WEIGHTS_DIR


def test_the_max_pooling_baseline_reproduces_pyiqa_lpips_for_the_same_weights(tmp_path, monkeypatch):
    import pyiqa
    from pyiqa.utils import download_util

    from iqa import weights

    hub = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(hub))
    monkeypatch.setattr(download_util, "DEFAULT_CACHE_DIR", str(hub / "pyiqa"))
    alexnet, lin = random_official_files(hub / "hub" / "checkpoints")
    with weights.weight_sources(hub / "hub" / "checkpoints"):
        theirs = pyiqa.create_metric("lpips", device="cpu")
    ours = lpips_arch.load_official(alexnet, lin)
    torch.manual_seed(1)
    images, reference = torch.rand(3, 3, 80, 96), torch.rand(1, 3, 80, 96).expand(3, -1, -1, -1)
    with torch.no_grad():
        expected = theirs(images, reference).flatten()
        got = ours(images, reference)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    # A reference broadcast from one image (how scoring jobs call it) gives the same as a full batch.
    with torch.no_grad():
        assert torch.allclose(ours(images, reference.contiguous()), got, rtol=1e-6, atol=1e-7)


def test_every_pooling_variant_loads_the_same_weights_and_keeps_the_output_size(tmp_path):
    alexnet, lin = random_official_files(tmp_path)
    images = torch.rand(2, 3, 64, 64)
    for pooling in lpips_arch.POOLINGS:
        network = lpips_arch.load_official(alexnet, lin, pooling=pooling)
        assert set(network.state_dict()) == set(lpips_arch.LPIPS().state_dict())
        with torch.no_grad():
            distances = network(images, torch.rand(2, 3, 64, 64))
        assert distances.shape == (2,) and bool((distances > 0).all())
        with torch.no_grad():
            assert torch.allclose(network(images, images), torch.zeros(2))


def test_blur_and_l2_pooling_filters():
    assert lpips_arch.binomial(3).tolist() == [1, 2, 1] and lpips_arch.binomial(4).tolist() == [1, 3, 3, 1]
    flat = torch.full((1, 4, 10, 10), 0.7)
    assert torch.allclose(lpips_arch.BlurPool(4, 4)(flat), torch.full((1, 4, 5, 5), 0.7))
    assert torch.allclose(lpips_arch.L2Pool(4)(flat)[..., 1:-1, 1:-1], torch.full((1, 4, 3, 3), 0.7), atol=1e-6)
    # A one-pixel checkerboard is what max pooling aliases; the binomial low-pass removes it.
    board = torch.tensor([[(i + j) % 2 for j in range(12)] for i in range(12)], dtype=torch.float32)[None, None]
    assert float(lpips_arch.BlurPool(1, 4)(board).std()) < 0.05 < float(board.std())


def test_anti_aliased_variants_move_less_under_small_shifts_for_the_same_weights():
    """Zhang 2019's shift consistency, independent of training: random AlexNet and lin weights
    (three seeds), the demo references, shifts of 1-4 px."""
    images = [
        torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255
        for path in DEMO_REFERENCES
    ]
    for seed in range(3):
        torch.manual_seed(seed)
        trunk = {k: v for k, v in torchvision.models.alexnet().state_dict().items() if k.startswith("features.")}
        lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(lpips_arch.CHANNELS)}
        sensitivity = {}
        for pooling in lpips_arch.POOLINGS:
            network = lpips_arch.LPIPS(pooling)
            network.load_state_dict({**trunk, **lin})
            sensitivity[pooling] = lpips_training.shift_sensitivity(network, images, size=128)
        assert sensitivity["blurpool"] < 0.9 * sensitivity["max"], sensitivity
        assert sensitivity["l2"] < 0.9 * sensitivity["max"], sensitivity


def test_official_files_of_the_wrong_layout_are_refused_by_name(tmp_path):
    alexnet, lin = random_official_files(tmp_path)
    with pytest.raises(TrainingError, match=f"{lin.name} is not a torchvision AlexNet file"):
        lpips_arch.load_official(lin, lin)
    with pytest.raises(TrainingError, match=f"{alexnet.name} is not an LPIPS-Alex lin file"):
        lpips_arch.load_official(alexnet, alexnet)
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="broken.pth is not a readable PyTorch weight file"):
        lpips_arch.load_official(broken, lin)


@pytest.mark.django_db
def test_train_lpips_from_scratch_learns_and_becomes_a_metric(tmp_path, weights_dir, capsys):
    study, _ = make_learnable_study("learn", tmp_path / "data", references=5)
    call_command(
        "train_lpips", "learn", "--name", "lpips_l2_test", "--pooling", "l2", "--backbone", "scratch",
        "--iterations", "40", "--batch", "8", "--lr", "1e-3", "--checkpoint-every", "20", "--holdout", "0.4",
    )
    out = capsys.readouterr().out
    assert "held-out references" in out and "after training: 2AFC" in out
    folder = weights_dir / "learned" / "lpips_l2_test"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "lpips" and manifest["settings"]["pooling"] == "l2"
    assert set(manifest["data"]["train_references"]).isdisjoint(manifest["data"]["validation_references"])
    assert len(manifest["data"]["validation_references"]) == 2
    losses = [entry["loss"] for entry in manifest["history"]]
    assert len(losses) == 40 and np.mean(losses[-10:]) < np.mean(losses[:10])
    after = manifest["results"]["validation_after"]
    assert 0 <= after["two_afc"] <= 1 and after["images"] == 12

    info = metrics.metric_info("lpips_l2_test")
    assert info.full_reference and not info.higher_is_better and info.source == "learned"
    assert "lpips_l2_test" in metrics.metric_names()
    loaded = metrics.load_metric("lpips_l2_test", device="cpu", weights_dir=weights_dir)
    assert loaded.version == f"learned+{manifest['model_sha256']}"
    call_command("compute_scores", "learn", "--metrics", "lpips_l2_test,psnr")
    assert MetricScore.objects.filter(metric="lpips_l2_test", version=loaded.version).count() == 30
    call_command("run_benchmark", "learn", "--metrics", "lpips_l2_test,psnr", "--out", str(tmp_path / "report"))
    table = (tmp_path / "report" / "benchmark.csv").read_text()
    assert "lpips_l2_test" in table


class Interrupted(Exception):
    pass


@pytest.mark.django_db
def test_a_resumed_run_continues_exactly_where_it_stopped(tmp_path, weights_dir):
    from iqa.services import train_lpips as lpips_service

    study, _ = make_learnable_study("resume", tmp_path / "data", references=3)
    config = lpips_training.Settings(backbone="scratch", iterations=6, batch=4, checkpoint_every=3, holdout=0.34)

    def stop_after_three(step, loss):
        if step == 3:
            raise Interrupted

    straight = lpips_service.train_lpips(study, config, name="straight", weights_dir=weights_dir)
    with pytest.raises(Interrupted):
        lpips_service.train_lpips(study, config, name="halves", weights_dir=weights_dir, progress=stop_after_three)
    assert not (weights_dir / "learned" / "halves" / "model.pt").exists()
    assert "halves" not in metrics.metric_names()  # a run still training is not a metric
    resumed = lpips_service.train_lpips(study, config, name="halves", weights_dir=weights_dir, resume=True)
    assert resumed.result.steps == 3
    for key, value in straight.result.state_dict.items():
        assert torch.allclose(value, resumed.result.state_dict[key], rtol=1e-5, atol=1e-7), key
    assert resumed.result.losses == pytest.approx(straight.result.losses, rel=1e-5)
    manifest = json.loads((weights_dir / "learned" / "halves" / "manifest.json").read_text())
    assert [entry["step"] for entry in manifest["history"]] == [1, 2, 3, 4, 5, 6]
    # Only the iteration count may change on resume (a longer run continues the schedule).
    with pytest.raises(CommandError, match="--resume of halves with other settings: batch 4 then, 8 now"):
        call_command("train_lpips", "resume", "--name", "halves", "--iterations", "9", "--resume",
                     "--backbone", "scratch", "--batch", "8", "--checkpoint-every", "3", "--holdout", "0.34")


@pytest.mark.django_db
def test_train_lpips_refuses_a_patch_too_small_for_its_pooling_before_it_starts(tmp_path, weights_dir):
    # Issue 21's "also": --pooling blurpool --patch 32 died with a raw torch padding error (a 1x1 map).
    make_learnable_study("small", tmp_path / "data", references=3)
    too_small = r"patch 32 is too small for LPIPS-Alex with blurpool pooling, blur size 4: .*at least 47"
    with pytest.raises(CommandError, match=too_small):
        call_command("train_lpips", "small", "--name", "tiny_blur", "--pooling", "blurpool", "--patch", "32",
                     "--backbone", "scratch", "--iterations", "1", "--batch", "2", "--holdout", "0.34")
    assert not (weights_dir / "learned" / "tiny_blur").exists()


@pytest.mark.django_db
def test_train_lpips_refuses_clearly(tmp_path, weights_dir):
    make_learnable_study("refuse", tmp_path / "data", references=3)
    with pytest.raises(CommandError, match="'lpips' is a metric already"):
        call_command("train_lpips", "refuse", "--name", "lpips", "--backbone", "scratch")
    with pytest.raises(CommandError, match=r"alexnet-owt-7be5be79\.pth is missing.*import_weights"):
        call_command("train_lpips", "refuse", "--name", "needs_alexnet", "--iterations", "1")
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        call_command("train_lpips", "nope", "--name", "x1")
    call_command("train_lpips", "refuse", "--name", "once", "--backbone", "scratch", "--iterations", "1",
                 "--batch", "2", "--holdout", "0.34")
    with pytest.raises(CommandError, match="once exists already"):
        call_command("train_lpips", "refuse", "--name", "once", "--backbone", "scratch", "--iterations", "1")
    with pytest.raises(CommandError, match="holds no earlier run"):
        call_command("train_lpips", "refuse", "--name", "never", "--resume", "--backbone", "scratch")


@pytest.mark.django_db
def test_a_pretrained_backbone_from_a_file_is_recorded_as_unverified(tmp_path, weights_dir):
    make_learnable_study("pre", tmp_path / "data", references=3)
    alexnet, _ = random_official_files(tmp_path / "files")
    call_command("train_lpips", "pre", "--name", "lpips_pre", "--backbone-file", str(alexnet), "--iterations", "2",
                 "--batch", "2", "--holdout", "0.34")
    manifest = json.loads((weights_dir / "learned" / "lpips_pre" / "manifest.json").read_text())
    assert manifest["data"]["backbone"]["verified"] is False
    # Only the lin layers trained: the trunk is the file's.
    state = store.read_model(weights_dir / "learned" / "lpips_pre" / "model.pt")[2]
    assert torch.equal(state["features.0.weight"], torch.load(alexnet)["features.0.weight"])
    # A file under torchvision's name whose content is not torchvision's is refused when found.
    weights_dir.mkdir(parents=True, exist_ok=True)
    (weights_dir / lpips_arch.ALEXNET_FILE).write_bytes(alexnet.read_bytes())
    with pytest.raises(CommandError, match="does not have the SHA-256 prefix 7be5be79"):
        call_command("train_lpips", "pre", "--name", "lpips_pre2", "--iterations", "1")


def test_a_run_folder_is_never_overwritten(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match="exists and is not a training run"):
        TrainingRun(folder, kind="lpips", settings={}, data={})


@pytest.mark.django_db
def test_a_worker_loads_a_retrained_metric_again(tmp_path, weights_dir):
    import shutil

    from iqa import scoring_job

    make_learnable_study("again", tmp_path / "data", references=3)
    common = ["--backbone", "scratch", "--iterations", "1", "--batch", "2", "--holdout", "0.34"]
    call_command("train_lpips", "again", "--name", "lpips_again", "--seed", "1", *common)
    first = scoring_job.metric_load("lpips_again", "cpu")
    assert scoring_job.metric_load("lpips_again", "cpu") is first  # kept between jobs
    shutil.rmtree(weights_dir / "learned" / "lpips_again")
    call_command("train_lpips", "again", "--name", "lpips_again", "--seed", "2", *common)
    second = scoring_job.metric_load("lpips_again", "cpu")
    assert second.version != first.version
    assert second.version == "learned+" + store.file_sha256(weights_dir / "learned" / "lpips_again" / "model.pt")
    scoring_job.metric_cache_clear()


@pytest.mark.django_db
def test_a_study_of_imported_labels_trains_on_the_pairs_its_labels_imply(tmp_path, weights_dir):
    from annotation.analysis import elo
    from annotation.models import Study
    from iqa import learned_data

    folder = pipal_set(tmp_path / "PIPAL", references=3, size=(48, 48))
    call_command("import_labels", "labelled", str(folder), "--format", "pipal", stdout=io.StringIO())
    study = Study.objects.get(slug="labelled")
    triplets = learned_data.study_triplets(study)
    assert len(triplets) == 3 * 6  # every pair of each reference's 4 images
    mos = dict(study.images.values_list("name", "mos"))
    for t in triplets:
        assert t.judge == pytest.approx(elo.win_probability(mos[t.p1], mos[t.p0], study.elo_m))
    call_command("train_lpips", "labelled", "--name", "lpips_labels", "--backbone", "scratch", "--iterations", "2",
                 "--batch", "4", "--holdout", "0.34", stdout=io.StringIO())
    assert metrics.metric_info("lpips_labels").full_reference
