"""Distortion generation through the study: catalogue types, idempotent
deterministic jobs with provenance, the commands, the admin action, and a
running study that gains a new type."""

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from annotation import generation, generation_job
from annotation.imports.folders import ImportFailed, plan_reference_patches, references_import
from annotation.models import DistortedImage, DistortionType, Judgment, ReferenceImage
from annotation.studies import study_create
from core.errors import ApplicationError
from dashboard.simulation import simulate_study
from tests.factories import ROOT

pytestmark = pytest.mark.django_db
DEMO_REFS = sorted((ROOT / "fixtures" / "demo" / "Ref").glob("*.png"))
CHEAP = ["01", "05", "17"]  # Gaussian blur, Gaussian noise, bicubic interpolation


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def study_with_references(slug, crop=64, count=2):
    study = study_create(slug=slug, training_trials=0, gold_every=0, min_vote_interval_ms=0)
    references_import(
        study=study, patches=plan_reference_patches(study, DEMO_REFS[:count], crop=crop, select="texture")
    )
    return study


def test_catalogue_install_creates_generated_types():
    study = study_create(slug="cat")
    report = generation.catalogue_install(study=study, type_ids=CHEAP)
    assert (report.created, report.updated) == (3, 0)
    blur = DistortionType.objects.get(study=study, code="01")
    assert (blur.generator, blur.category, blur.subtype) == ("gaussian_blur", "traditional", "gaussian_blur")
    assert sorted(blur.levels, key=int) == ["1", "2", "3", "4", "5"] and "sigma" in blur.levels["1"]
    assert generation.catalogue_install(study=study, type_ids=CHEAP).created == 0
    with pytest.raises(ApplicationError, match="unknown type id"):
        generation.catalogue_install(study=study, type_ids=["99"])


def test_generate_command_makes_every_image_once_with_provenance(media_root):
    study = study_with_references("gen")
    output = run("generate_distortions", "gen", "--types", ",".join(CHEAP))
    assert "3 created" in output and "done:" in output
    levels = sum(len(kind.levels) for kind in DistortionType.objects.filter(study=study))
    images = list(DistortedImage.objects.filter(study=study).select_related("reference"))
    assert len(images) == 2 * levels
    for image in images:
        assert (image.width, image.height) == (image.reference.width, image.reference.height) == (64, 64)
        assert image.file.name.endswith(".png") and (image.elo, image.judgment_count) == (1400, 0)
        assert image.name == f"{image.reference.name}_{image.distortion_type.code}_{image.level:02d}.png"
        provenance = image.provenance
        assert set(provenance) >= {"generator", "params", "seed", "code_version", "libraries", "reference_sha256"}
        with image.file.open("rb") as handle, Image.open(handle) as decoded:
            assert decoded.format == "PNG" and decoded.size == (64, 64)
    assert "nothing to generate" in run("generate_distortions", "gen", "--types", ",".join(CHEAP))
    assert DistortedImage.objects.filter(study=study).count() == len(images)


def test_generation_is_deterministic_and_levels_get_worse():
    first, second = study_with_references("one"), study_with_references("two")
    for study in (first, second):
        run("generate_distortions", study.slug, "--types", "01,05")
    hashes = [dict(DistortedImage.objects.filter(study=s).values_list("name", "sha256")) for s in (first, second)]
    assert hashes[0] == hashes[1]
    reference = ReferenceImage.objects.filter(study=first).first()
    with reference.file.open("rb") as handle, Image.open(handle) as image:
        ref = np.asarray(image.convert("RGB"), dtype=np.float64)

    def psnr(image):
        with image.file.open("rb") as handle, Image.open(handle) as decoded:
            error = np.mean((np.asarray(decoded.convert("RGB"), dtype=np.float64) - ref) ** 2)
        return 10 * np.log10(255**2 / error)

    for code in ("01", "05"):
        levels = DistortedImage.objects.filter(reference=reference, distortion_type__code=code).order_by("level")
        scores = [psnr(image) for image in levels]
        assert scores == sorted(scores, reverse=True), (code, scores)


def test_generation_job_is_idempotent():
    study = study_with_references("idem", count=1)
    generation.catalogue_install(study=study, type_ids=["01"])
    jobs = generation.generation_plan(study=study)
    first = generation_job.distortion_generate(reference_id=jobs[0][0], distortion_type_id=jobs[0][1], level=jobs[0][2])
    again = generation_job.distortion_generate(reference_id=jobs[0][0], distortion_type_id=jobs[0][1], level=jobs[0][2])
    assert first.pk == again.pk and DistortedImage.objects.count() == 1
    assert len(generation.generation_plan(study=study)) == len(jobs) - 1


def test_unknown_types_and_references_are_named():
    study = study_with_references("bad", count=1)
    with pytest.raises(CommandError, match="unknown type id"):
        run("generate_distortions", "bad", "--types", "77")
    generation.catalogue_install(study=study, type_ids=["01"])
    with pytest.raises(CommandError, match="no reference"):
        run("generate_distortions", "bad", "--types", "01", "--references", "Z9")


def textured_square(tmp_path) -> Path:
    pixels = np.full((300, 400, 3), 128, dtype=np.uint8)
    pixels[150:250, 250:350] = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    path = tmp_path / "scene_01.png"
    Image.fromarray(pixels).save(path)
    return path


def test_import_references_crops_the_textured_window(tmp_path):
    study_create(slug="refs")
    output = run("import_references", "refs", str(textured_square(tmp_path)), "--crop", "96")
    reference = ReferenceImage.objects.get()
    assert reference.name == "scene-01" and (reference.width, reference.height) == (96, 96)
    left, top = (int(v) for v in output.split("box (")[1].split(",")[:2])
    # The chosen window lies inside the textured square.
    assert 250 <= left <= 350 - 96 + 16 and 150 <= top <= 250 - 96 + 16


def test_import_references_refuses_bad_files_whole(tmp_path, media_root):
    study_create(slug="refs")
    good = textured_square(tmp_path)
    (tmp_path / "broken.png").write_bytes(good.read_bytes()[:200])
    small = tmp_path / "small.png"
    Image.new("RGB", (50, 50)).save(small)
    with pytest.raises(CommandError) as error:
        run("import_references", "refs", str(tmp_path), "--crop", "96")
    assert "broken.png" in str(error.value) and "small.png" in str(error.value) and "smaller than" in str(error.value)
    assert ReferenceImage.objects.count() == 0
    assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*"))
    with pytest.raises(ImportFailed, match="no image files"):
        plan_reference_patches(study_create(slug="empty"), [], crop=96, select="texture")


def test_admin_action_generates_and_shows_progress(admin_client):
    study = study_with_references("adm", count=1, crop=48)
    response = admin_client.post(
        "/admin/annotation/study/",
        {"action": "generate_catalogue_distortions", "_selected_action": [study.pk]},
        follow=True,
    )
    assert "follow the progress" in response.content.decode()
    made, expected = generation.generation_progress(study)
    assert made == expected > 100  # the whole default catalogue for one reference
    page = admin_client.get(f"/admin/annotation/study/{study.pk}/progress/").content.decode()
    assert f"{made} of {expected}" in page and "refreshes itself" not in page


@pytest.mark.slow
def test_a_new_type_joins_a_running_study_and_catches_up(capsys):
    study = study_with_references("grow", count=3, crop=64)
    run("generate_distortions", "grow", "--types", "01,05")
    simulate_study(study=study, judgments_per_image=30, seed=1)
    old = dict(DistortedImage.objects.filter(study=study).values_list("id", "judgment_count"))
    judged_before = Judgment.objects.filter(study=study).count()

    run("generate_distortions", "grow", "--types", "17")  # a new distortion type, mid-study
    new = DistortedImage.objects.filter(study=study, distortion_type__code="17")
    assert new.count() == 9 and set(new.values_list("elo", "judgment_count")) == {(1400.0, 0)}
    assert dict(DistortedImage.objects.filter(id__in=old).values_list("id", "judgment_count")) == old

    report = simulate_study(study=study, judgments_per_image=30, seed=1)
    counts = dict(DistortedImage.objects.filter(study=study).values_list("id", "judgment_count"))
    new_mean = np.mean([counts[i] for i in new.values_list("id", flat=True)])
    old_added = np.mean([counts[i] - old[i] for i in old])
    with capsys.disabled():
        print(
            f"\nnew type: {new_mean:.1f} judgments per image after top-up ({report.judgments_added} added, "
            f"{judged_before} before); old images gained {old_added:.1f} each; "
            f"per-type SRCC: {', '.join(f'{k} {v.srcc:.3f}' for k, v in report.by_type.items())}"
        )
    # The scheduler served the newcomers first: they caught up with far fewer
    # extra judgments on the old images than the newcomers received.
    assert new_mean > 3 * old_added
    assert report.by_type["17"].srcc > 0.5


def test_admin_adds_a_generated_type_to_a_running_study(admin_client):
    study = study_with_references("live", count=2, crop=48)
    url = "/admin/annotation/distortiontype/add/"
    bad = admin_client.post(
        url, {"study": study.pk, "code": "50", "name": "Blur", "generator": "gaussian_blur", "levels": '{"1": {}}'}
    )
    assert "level 1" in bad.content.decode() and not DistortionType.objects.filter(code="50").exists()
    levels = '{"1": {"sigma": 1.0}, "2": {"sigma": 3.0}}'
    created = admin_client.post(
        url,
        {
            "study": study.pk,
            "code": "50",
            "name": "Blur",
            "category": "traditional",
            "subtype": "gaussian_blur",
            "generator": "gaussian_blur",
            "levels": levels,
        },
    )
    assert created.status_code == 302
    kind = DistortionType.objects.get(study=study, code="50")
    response = admin_client.post(
        "/admin/annotation/distortiontype/", {"action": "generate_images", "_selected_action": [kind.pk]}, follow=True
    )
    assert "generating 4 image(s)" in response.content.decode()
    images = DistortedImage.objects.filter(distortion_type=kind)
    assert images.count() == 4 and set(images.values_list("elo", flat=True)) == {1400.0}
