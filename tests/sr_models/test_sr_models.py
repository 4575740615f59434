"""Bundled SR networks: checkpoints, inference, commands and study distortions.

Checkpoints here hold random weights written by the tests (tests/factories.py):
they exercise the real loading, inference and generation path; their outputs are
not any real model's."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from annotation import generation
from annotation.models import DistortedImage
from core.errors import ApplicationError
from core.weights import file_sha256
from sr_models import archs, distortions, inference, runtime, weights
from tests.factories import import_folder, install_random_checkpoint, plain_study


@pytest.fixture
def weights_dir(settings, tmp_path) -> Path:
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"  # sr_models.apps reconfigures the runtime
    settings.PIPAL_SR_DEVICE = "cpu"
    assert runtime.current().weights_dir == settings.PIPAL_WEIGHTS_DIR
    return settings.PIPAL_WEIGHTS_DIR


def lr_image(size=(20, 24), seed=0) -> np.ndarray:
    """A smooth coloured pattern with a little noise (an LR input)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    planes = [128 + 50 * np.sin(x / 3.0), 128 + 40 * np.cos(y / 4.0), 128 + 30 * np.sin((x + y) / 5.0)]
    return np.clip(np.stack(planes, -1) + rng.normal(0, 5, (*size, 3)), 0, 255).astype(np.uint8)


# --- the registry ------------------------------------------------------------------


def test_every_checkpoint_names_a_registered_architecture_and_a_source():
    names = weights.checkpoint_names()
    for required in ("esrgan_x4", "ranksrgan_niqe_x4", "edsr_x4", "srcnn_x3", "esrgan_interp_x4", "eusr_4pp_pirm_x4"):
        assert required in names
    for name in names:
        checkpoint = weights.get_checkpoint(name)
        spec = archs.arch(checkpoint.arch)
        assert checkpoint.scale in spec.scales and checkpoint.source and checkpoint.licence, name
        assert checkpoint.sha256 is None or len(checkpoint.sha256) == 64  # never a made-up short hash


# --- loading -----------------------------------------------------------------------


def test_a_missing_checkpoint_names_the_file_and_both_commands(weights_dir):
    with pytest.raises(weights.WeightsMissing) as error:
        weights.load_checkpoint("esrgan_x4", weights_dir=weights_dir)
    message = str(error.value)
    assert "RRDB_ESRGAN_x4.pth" in message and str(weights_dir) in message and "github.com/xinntao/ESRGAN" in message
    # no direct download exists (a Google Drive folder): only import is offered
    assert "import_weights esrgan_x4" in message and "fetch_weights" not in message
    assert "download RRDB_ESRGAN_x4.pth by hand from https://github.com/xinntao/ESRGAN" in message
    with pytest.raises(weights.WeightsMissing, match="fetch_weights srcnn_x3 .*import_weights srcnn_x3"):
        weights.load_checkpoint("srcnn_x3", weights_dir=weights_dir)


def test_truncated_foreign_and_altered_files_are_refused(weights_dir, tmp_path):
    (path,) = install_random_checkpoint("srresnet_x4", weights_dir)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(weights.WeightsError, match="cannot be read as a PyTorch checkpoint"):
        weights.load_checkpoint("srresnet_x4", weights_dir=weights_dir)
    torch.save({"features.0.weight": torch.zeros(3)}, path)
    with pytest.raises(weights.WeightsError, match="not a srresnet checkpoint in a known layout"):
        weights.load_checkpoint("srresnet_x4", weights_dir=weights_dir)
    path.write_bytes(good)
    pinned = dataclasses.replace(weights.get_checkpoint("srresnet_x4"), sha256="0" * 64)
    with pytest.raises(weights.WeightsError, match="not the published"):
        pinned.load_into(path)
    assert weights.load_checkpoint("srresnet_x4", weights_dir=weights_dir).provenance["sha256"] == file_sha256(path)


def test_containers_and_dataparallel_prefixes_are_unwrapped(weights_dir):
    (path,) = install_random_checkpoint("srcnn_x3", weights_dir)
    state = torch.load(path, weights_only=True)
    torch.save({"params_ema": {f"module.{key}": value for key, value in state.items()}}, path)
    loaded = weights.load_checkpoint("srcnn_x3", weights_dir=weights_dir)
    assert torch.equal(loaded.model.state_dict()["conv1.weight"], state["conv1.weight"])


def test_import_weights_checks_a_file_before_installing_it(weights_dir, tmp_path):
    (source,) = install_random_checkpoint("esrgan_x4", tmp_path / "lab")
    call_command("import_weights", "esrgan_x4", str(source), stdout=io.StringIO())
    assert (weights_dir / "RRDB_ESRGAN_x4.pth").read_bytes() == source.read_bytes()
    wrong = tmp_path / "wrong.pth"
    torch.save(archs.build("srresnet", 4).state_dict(), wrong)
    with pytest.raises(CommandError, match="not a rrdbnet checkpoint"):
        call_command("import_weights", "esrgan_psnr_x4", str(wrong))
    assert not (weights_dir / "RRDB_PSNR_x4.pth").exists()
    # torch.hub-style names carry the first digits of the real file's SHA-256
    (edsr,) = install_random_checkpoint("edsr_baseline_x4", tmp_path / "lab")
    with pytest.raises(CommandError, match="does not start with 6b446fab"):
        call_command("import_weights", "edsr_baseline_x4", str(edsr))


def test_fetch_weights_without_a_direct_url_says_where_to_get_the_file(weights_dir):
    with pytest.raises(CommandError, match="RRDB_ESRGAN_x4.pth.*import_weights esrgan_x4"):
        call_command("fetch_weights", "esrgan_x4")


def test_network_interpolation_is_the_exact_linear_blend(weights_dir):
    install_random_checkpoint("esrgan_interp_x4", weights_dir, seed=3)
    psnr = weights.load_checkpoint("esrgan_psnr_x4", weights_dir=weights_dir).model.state_dict()
    gan = weights.load_checkpoint("esrgan_x4", weights_dir=weights_dir).model.state_dict()
    blended = weights.load_interpolated("esrgan_interp_x4", 0.3, weights_dir=weights_dir)
    for key, value in blended.model.state_dict().items():
        assert torch.allclose(value, 0.7 * psnr[key] + 0.3 * gan[key], atol=1e-7), key
    assert blended.provenance["alpha"] == 0.3 and blended.provenance["gan"]["checkpoint"] == "esrgan_x4"
    ends = [
        weights.load_interpolated("esrgan_interp_x4", a, weights_dir=weights_dir).model.state_dict() for a in (0, 1)
    ]
    assert all(torch.equal(ends[0][k], psnr[k]) and torch.equal(ends[1][k], gan[k]) for k in psnr)
    with pytest.raises(weights.WeightsError, match="alpha"):
        weights.load_interpolated("esrgan_interp_x4", 1.5, weights_dir=weights_dir)


# --- inference ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["srcnn_x3", "fsrcnn_x3", "edsr_baseline_x4", "srresnet_x4", "esrgan_x4"])
def test_inference_gives_scale_times_larger_uint8(weights_dir, name, device):
    install_random_checkpoint(name, weights_dir)
    loaded = weights.load_checkpoint(name, weights_dir=weights_dir, device=device)
    image = lr_image((12, 12))
    (out,) = inference.upscale(loaded, [image], device=device)
    scale = loaded.checkpoint.scale
    assert out.dtype == np.uint8 and out.shape == (12 * scale, 12 * scale, 3)


def test_y_channel_models_keep_the_bicubic_chroma(weights_dir):
    """SRCNN works on Y of YCbCr (its official test script): Cb and Cr are the bicubic ones."""
    # an SRCNN whose Y output is a constant mid-grey, so no channel clips
    state = archs.build("srcnn", 3).state_dict()
    state = {key: torch.zeros_like(value) for key, value in state.items()}
    state["conv3.bias"] = torch.tensor([0.5])
    weights_dir.mkdir(parents=True)
    torch.save(state, weights_dir / "srcnn_x3.pth")
    loaded = weights.load_checkpoint("srcnn_x3", weights_dir=weights_dir)
    image = lr_image((10, 10))
    (out,) = inference.upscale(loaded, [image], device="cpu")
    from sr_models.imresize import imresize

    bicubic = imresize(image.astype(np.float64) / 255, output_shape=(30, 30), method="bicubic")
    expected = inference.rgb_to_ycbcr(bicubic)[..., 1:]
    got = inference.rgb_to_ycbcr(out.astype(np.float64) / 255)[..., 1:]
    assert (out > 0).all() and (out < 255).all()
    assert np.abs(got - expected).max() < 1.5 / 255  # uint8 rounding of R, G and B
    assert np.allclose(inference.rgb_to_ycbcr(out.astype(np.float64) / 255)[..., 0], 0.5, atol=1.5 / 255)
    assert np.allclose(inference.ycbcr_to_rgb(inference.rgb_to_ycbcr(bicubic)), bicubic)


@pytest.mark.parametrize("name", ["srresnet_x4", "edsr_baseline_x4", "srcnn_x3"])
def test_tiled_inference_equals_whole_image_within_tolerance(weights_dir, name, device):
    install_random_checkpoint(name, weights_dir)
    loaded = weights.load_checkpoint(name, weights_dir=weights_dir, device=device)
    image = lr_image((40, 36), seed=2)
    (whole,) = inference.upscale(loaded, [image], device=device)
    (tiled,) = inference.upscale(loaded, [image], device=device, tile=16, overlap=12)
    difference = np.abs(whole.astype(int) - tiled.astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.05


def test_batched_inference_equals_one_at_a_time(weights_dir, device):
    install_random_checkpoint("srresnet_x4", weights_dir)
    loaded = weights.load_checkpoint("srresnet_x4", weights_dir=weights_dir, device=device)
    images = [lr_image((12, 12), seed=s) for s in range(3)]
    batched = inference.upscale(loaded, images, device=device)
    for image, out in zip(images, batched, strict=True):
        assert np.abs(inference.upscale(loaded, [image], device=device)[0].astype(int) - out).max() <= 1


def test_bad_devices_and_precisions_are_refused(weights_dir):
    install_random_checkpoint("srcnn_x3", weights_dir)
    loaded = weights.load_checkpoint("srcnn_x3", weights_dir=weights_dir)
    with pytest.raises(inference.InferenceError, match="fp16 needs CUDA"):
        inference.upscale(loaded, [lr_image()], device="cpu", dtype="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(inference.InferenceError, match="no CUDA GPU"):
            inference.upscale(loaded, [lr_image()], device="cuda")
    (bf16,) = inference.upscale(loaded, [lr_image((8, 8))], device="cpu", dtype="bf16")
    (fp32,) = inference.upscale(loaded, [lr_image((8, 8))], device="cpu")
    assert np.abs(bf16.astype(int) - fp32).mean() < 3  # bfloat16 keeps ~3 significant digits


def test_sr_infer_command(weights_dir, tmp_path, capsys):
    install_random_checkpoint("srresnet_x4", weights_dir)
    source = tmp_path / "lr.png"
    Image.fromarray(lr_image((10, 14))).save(source)
    call_command("sr_infer", "srresnet_x4", str(source), str(tmp_path / "sr.png"), "--device", "cpu")
    assert Image.open(tmp_path / "sr.png").size == (56, 40)
    call_command("sr_infer", "--list")
    listing = capsys.readouterr().out
    assert "srresnet_x4" in listing and "installed" in listing and "missing RRDB_ESRGAN_x4.pth" in listing
    with pytest.raises(CommandError, match="RRDB_ESRGAN_x4.pth"):
        call_command("sr_infer", "esrgan_x4", str(source), str(tmp_path / "x.png"))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(CommandError, match="not a readable image"):
        call_command("sr_infer", "srresnet_x4", str(tmp_path / "bad.png"), str(tmp_path / "x.png"))
    with pytest.raises(CommandError, match="unknown SR checkpoint 'nope'"):
        call_command("sr_infer", "nope", str(source), str(tmp_path / "x.png"))


# --- study distortions ------------------------------------------------------------------


def sr_study(tmp_path, size=48):
    folder = tmp_path / "refs"
    (folder / "Ref").mkdir(parents=True)
    (folder / "Dis").mkdir()
    for index in range(2):
        Image.fromarray(lr_image((size, size), seed=index)).save(folder / "Ref" / f"R{index:03d}.png")
    study = plain_study("sr")
    import_folder(study, folder)
    return study


SR_TYPES = ["40", "43", "47", "48", "50"]  # SRCNN x3, EDSR x4, ESRGAN x4, RankSRGAN (NIQE), interpolation


@pytest.mark.django_db
def test_sr_types_without_weights_are_refused_with_the_files_and_commands(weights_dir, tmp_path):
    study = sr_study(tmp_path)
    with pytest.raises(CommandError) as error:
        call_command("generate_distortions", study.slug, "--types", ",".join(SR_TYPES))
    message = str(error.value)
    for file in ("srcnn_x3.pth", "edsr_x4-4f62e9ef.pt", "RRDB_ESRGAN_x4.pth", "RankSRGAN_NIQE.pth", "RRDB_PSNR_x4.pth"):
        assert file in message
    assert "fetch_weights srcnn_x3" in message and "import_weights ranksrgan_niqe_x4" in message
    assert not DistortedImage.objects.exists()
    with pytest.raises(ApplicationError, match="srcnn_x3.pth"):
        generation.generation_start(study=study, type_ids=["40"])


@pytest.mark.django_db
def test_sr_types_make_images_with_provenance_when_weights_are_present(weights_dir, tmp_path, capsys):
    study = sr_study(tmp_path)
    for code in SR_TYPES:
        entry = next(e for e in distortions.load_catalogue() if e.type_id == code)
        install_random_checkpoint(entry.params["checkpoint"], weights_dir)
    call_command("generate_distortions", study.slug, "--types", ",".join(SR_TYPES))
    images = DistortedImage.objects.filter(study=study).select_related("distortion_type")
    assert images.count() == 2 * (4 + 3)  # four one-level types and three alpha levels, two references
    esrgan = images.get(name="R000_47_01.png")
    sr = esrgan.provenance["sr_model"]
    assert sr["checkpoint"] == "esrgan_x4" and sr["sha256"] == file_sha256(weights_dir / "RRDB_ESRGAN_x4.pth")
    assert esrgan.provenance["device"] == "cpu" and esrgan.provenance["dtype"] == "fp32"
    assert esrgan.distortion_type.subtype == "gan_sr" and (esrgan.width, esrgan.height) == (48, 48)
    alphas = [images.get(name=f"R000_50_0{level}.png").provenance["sr_model"]["alpha"] for level in (1, 2, 3)]
    assert alphas == [0.2, 0.5, 0.8]


@pytest.mark.django_db
def test_generating_everything_leaves_out_unready_sr_types_with_a_notice(weights_dir, tmp_path, capsys):
    study = sr_study(tmp_path, size=24)
    install_random_checkpoint("srcnn_x3", weights_dir)
    rows = [
        line
        for line in distortions.DEFAULT_CATALOGUE.read_text().splitlines()
        if line[:3] in ("typ", "01,", "40,", "47,")
    ]
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("\n".join(rows) + "\n")
    call_command("generate_distortions", study.slug, "--catalogue", str(catalogue))
    err = capsys.readouterr().err
    assert "left out: type 47 (ESRGAN x4)" in err and "RRDB_ESRGAN_x4.pth" in err
    assert "type 40" not in err  # installed: generated
    made, expected = generation.generation_progress(study)
    assert made == expected  # unready types are not counted as pending


def test_a_gpu_queue_takes_network_jobs_when_configured(settings, monkeypatch):
    from annotation import tasks

    sent = []
    monkeypatch.setattr(tasks.generate_distortions, "apply_async", lambda args, **kw: sent.append(kw.get("queue")))

    class Kind:
        def __init__(self, pk, generator):
            self.id, self.generator = pk, generator

    kinds = [Kind(1, "gaussian_blur"), Kind(2, "gan_sr_network")]
    monkeypatch.setattr(generation.DistortionType.objects, "filter", lambda **kw: kinds)
    settings.PIPAL_GPU_QUEUE = "gpu"
    generation.generation_enqueue([(1, 1, 1), (1, 2, 1), (2, 2, 1)], chunk=4)
    assert sorted(sent, key=str) == [None, "gpu"]
    settings.PIPAL_GPU_QUEUE = ""
    sent.clear()
    generation.generation_enqueue([(1, 1, 1), (1, 2, 1)], chunk=4)
    assert sent == [None]


@pytest.mark.django_db
def test_an_admin_adds_esrgan_to_a_running_study(weights_dir, tmp_path, admin_client):
    study = sr_study(tmp_path, size=24)
    add = "/admin/annotation/distortiontype/add/"
    fields = {
        "study": study.pk,
        "code": "60",
        "name": "ESRGAN x4",
        "category": "super_resolution",
        "subtype": "gan_sr",
        "generator": "gan_sr_network",
    }
    refused = admin_client.post(add, {**fields, "levels": '{"1": {"checkpoint": "esrgan_x5"}}'})
    assert "unknown SR checkpoint &#x27;esrgan_x5&#x27;" in refused.content.decode()
    created = admin_client.post(add, {**fields, "levels": '{"1": {"checkpoint": "esrgan_x4"}}'})
    assert created.status_code == 302
    kind = study.distortion_types.get(code="60")
    action = {"action": "generate_images", "_selected_action": [kind.pk]}
    page = admin_client.post("/admin/annotation/distortiontype/", action, follow=True).content.decode()
    assert "RRDB_ESRGAN_x4.pth" in page and "import_weights esrgan_x4" in page
    assert not kind.images.exists()
    install_random_checkpoint("esrgan_x4", weights_dir)
    admin_client.post("/admin/annotation/distortiontype/", action, follow=True)
    assert kind.images.count() == 2
    assert kind.images.first().provenance["sr_model"]["checkpoint"] == "esrgan_x4"
