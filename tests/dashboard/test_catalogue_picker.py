"""The study's catalogue picker in the admin, code allocation when a catalogue code is taken,
the hand-made type form's parameter errors, the catalogue action on the demo study, and
generate_distortions refusing a type it cannot run without leaving anything behind."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from annotation import catalogue, generation
from annotation.imports.folders import plan_reference_patches, references_import
from annotation.models import DistortedImage, DistortionType, Study
from annotation.studies import study_create
from core.errors import ApplicationError
from sr_models import distortions
from tests.factories import DEMO

pytestmark = pytest.mark.django_db
CHEAP = ["01", "03", "05"]  # Gaussian blur, JPEG, Gaussian noise


@pytest.fixture
def no_weights(settings, tmp_path):
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"  # sr_models.apps points the runtime at it
    return settings.PIPAL_WEIGHTS_DIR


def study_with_references(slug, count=1, crop=48):
    study = study_create(slug=slug, training_trials=0, gold_every=0, min_vote_interval_ms=0)
    references = sorted((DEMO / "Ref").glob("*.png"))[:count]
    references_import(study=study, patches=plan_reference_patches(study, references, crop=crop, select="texture"))
    return study


def hand_made(study, code, generator="gaussian_blur", levels=None, name="Hand-made blur"):
    return DistortionType.objects.create(
        study=study,
        code=code,
        name=name,
        category="traditional",
        generator=generator,
        levels=levels or {"1": {"sigma": 5.0}},
    )


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- code allocation ------------------------------------------------------------------------


def test_a_taken_code_gets_the_first_code_the_catalogue_does_not_use_and_is_reused_after():
    study = study_create(slug="clash")
    hand_made(study, "02")  # the catalogue's 02 is motion blur
    installed = generation.catalogue_install(study=study, type_ids=["02"])
    (kind,) = installed.types
    last_catalogue_code = max(generation.catalogue_types())
    assert kind.catalogue_id == "02" and kind.code == f"{int(last_catalogue_code) + 1:02d}" and kind.moved
    assert "02 is the study's 'Hand-made blur'" in kind.note
    assert DistortionType.objects.get(study=study, code=kind.code).generator == "motion_blur"
    assert DistortionType.objects.get(study=study, code="02").generator == "gaussian_blur"  # untouched
    assert "catalogue type 02 (Motion blur) as" in installed.moved_summary()

    again = generation.catalogue_install(study=study, type_ids=["02"])
    assert again.codes == {"02": kind.code} and (again.created, again.updated) == (0, 0)
    assert DistortionType.objects.filter(study=study).count() == 2


def test_the_same_settings_keep_their_code_and_an_imageless_revision_is_updated_in_place():
    study = study_create(slug="same")
    generation.catalogue_install(study=study, type_ids=["01"])
    assert generation.catalogue_install(study=study, type_ids=["01"]).codes == {"01": "01"}
    # Same family, other levels, no images yet: the catalogue's levels replace them under the same code.
    DistortionType.objects.filter(study=study, code="01").update(levels={"1": {"sigma": 9.0}})
    revised = generation.catalogue_install(study=study, type_ids=["01"])
    assert revised.codes == {"01": "01"} and revised.updated == 1
    assert len(DistortionType.objects.get(study=study, code="01").levels) == 5


def test_a_clash_with_no_free_code_is_a_clear_refusal_that_installs_nothing():
    study = study_create(slug="full")
    hand_made(study, "02")
    for number in range(51, 100):
        hand_made(study, f"{number:02d}", name=f"blur {number}")
    before = DistortionType.objects.filter(study=study).count()
    with pytest.raises(ApplicationError) as error:
        generation.catalogue_install(study=study, type_ids=["01", "02"])
    message = error.value.message
    assert "catalogue type 02 (Motion blur)" in message and "no two-digit code from 01 to 99 is free" in message
    assert DistortionType.objects.filter(study=study).count() == before  # 01 was rolled back too


# --- the demo study ---------------------------------------------------------------------------


def test_the_demo_codes_follow_the_catalogue():
    catalogue_types = generation.catalogue_types()
    with (DEMO / "distortion_types.csv").open() as handle:
        demo = list(csv.DictReader(handle))
    assert len(demo) == 6
    for row in demo:
        same = catalogue_types[row["id"]][0]
        assert (same.category, same.subtype) == (row["category"], row["subtype"]), row
    codes = {row["id"] for row in demo}
    files = sorted((DEMO / "Dis").glob("*.png"))
    assert len(files) == 48 and {path.stem.split("_")[1] for path in files} == codes


def test_the_catalogue_action_works_on_the_demo_study(admin_client, settings):
    # Queue the jobs on commit (never, in a test) instead of making 600 images here.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    run("seed_demo")
    demo = Study.objects.get(slug="demo")
    demo_types = dict(DistortionType.objects.filter(study=demo).values_list("code", "name"))
    response = admin_client.post(
        "/admin/annotation/study/",
        {"action": "generate_catalogue_distortions", "_selected_action": [demo.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert response.status_code == 200 and "already has images made with other settings" not in page
    # The first code neither the demo nor the catalogue (01-56) uses.
    assert "Installed under other codes: catalogue type 01 (Gaussian blur) as 57" in page
    assert "follow the progress" in page
    # The demo's six types are as they were; the catalogue's whole list is installed beside them.
    for code, name in demo_types.items():
        assert DistortionType.objects.get(study=demo, code=code).name == name
    generated = DistortionType.objects.filter(study=demo).exclude(generator="")
    assert generated.count() == len(generation.catalogue_types())
    assert set(generated.filter(code__gt="56").values_list("name", flat=True)) == {
        generation.catalogue_types()[code][0].name for code in demo_types
    }


# --- generate_distortions refusing what cannot run --------------------------------------------


def test_generate_distortions_refuses_a_type_without_weights_and_leaves_the_study_unchanged(no_weights):
    study = study_with_references("sr")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("generate_distortions", "sr", "--types", "47", stdout=out, stderr=err)
    message = str(error.value)
    assert "type 47 (ESRGAN x4)" in message and "RRDB_ESRGAN_x4.pth" in message
    assert "import_weights esrgan_x4" in message
    assert "created" not in out.getvalue()
    assert not DistortionType.objects.filter(study=study).exists()


def test_generate_distortions_says_which_code_a_clashing_type_got_and_makes_its_images():
    study = study_with_references("moved")
    hand_made(study, "02")
    output = run("generate_distortions", "moved", "--types", "02")
    assert "Installed under other codes: catalogue type 02 (Motion blur) as 57, since 02 is the study's" in output
    motion = DistortionType.objects.get(study=study, code="57")  # the first code the catalogue (01-56) leaves
    assert motion.generator == "motion_blur" and motion.images.count() == len(motion.levels)
    assert not DistortionType.objects.get(study=study, code="02").images.exists()


def test_generate_distortions_refusing_an_unknown_reference_installs_nothing():
    study = study_with_references("refs")
    with pytest.raises(CommandError, match="no reference"):
        run("generate_distortions", "refs", "--types", "01", "--references", "Z9")
    assert not DistortionType.objects.filter(study=study).exists()


# --- the hand-made type form ------------------------------------------------------------------


def test_the_type_form_lists_the_valid_parameters(admin_client):
    study = study_create(slug="form")
    response = admin_client.post(
        "/admin/annotation/distortiontype/add/",
        {"study": study.pk, "code": "60", "name": "Shake", "generator": "motion_blur", "levels": '{"1": {"sigma": 2}}'},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "unknown parameter(s) sigma" in page
    assert "valid for motion_blur: length (float, 1.0 to 64.0), angle (float, 0.0 to 360.0, optional)" in page
    too_long = {"study": study.pk, "code": "60", "name": "Shake", "generator": "motion_blur"}
    too_long["levels"] = '{"1": {"length": 500}}'
    out_of_range = admin_client.post("/admin/annotation/distortiontype/add/", too_long).content.decode()
    assert "is above 64.0" in out_of_range and "length (float, 1.0 to 64.0)" in out_of_range
    assert not DistortionType.objects.filter(study=study).exists()
    form_page = admin_client.get("/admin/annotation/distortiontype/add/").content.decode()
    assert "motion_blur: length (float, 1.0 to 64.0)" in form_page  # the generator choices name their parameters


# --- the picker page --------------------------------------------------------------------------


def test_the_picker_lists_the_catalogue_with_previews_and_missing_weights(admin_client, no_weights):
    study = study_with_references("pick")
    hand_made(study, "02")
    page = admin_client.get(f"/admin/annotation/study/{study.pk}/catalogue/").content.decode()
    for type_id in generation.catalogue_types():
        assert f'id="pick-{type_id}"' in page
    assert f"/admin/annotation/study/{study.pk}/catalogue/01-1.png" in page
    assert "weights missing: type 47 (ESRGAN x4)" in page and "import_weights esrgan_x4" in page
    assert "02 is taken by 02 Hand-made blur: gets a free code" in page
    assert "/catalogue/47-1.png" not in page  # no preview for a type that cannot run
    change_page = admin_client.get(f"/admin/annotation/study/{study.pk}/change/").content.decode()
    assert f"/admin/annotation/study/{study.pk}/catalogue/" in change_page
    types_page = admin_client.get("/admin/annotation/distortiontype/").content.decode()
    assert f"/admin/annotation/study/{study.pk}/catalogue/" in types_page


def test_a_preview_is_a_small_png_made_once(admin_client, monkeypatch):
    study = study_with_references("thumbs", crop=128)
    url = f"/admin/annotation/study/{study.pk}/catalogue/05-3.png"
    response = admin_client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.size == (catalogue.PREVIEW_SIZE, catalogue.PREVIEW_SIZE)

    def no_generator(*args, **kwargs):
        raise AssertionError("the cached preview was made again")

    monkeypatch.setattr(distortions.DistortionFamily, "apply", no_generator)
    assert admin_client.get(url).content == response.content
    assert admin_client.get(f"/admin/annotation/study/{study.pk}/catalogue/05-9.png").status_code == 404


def test_a_preview_of_a_reference_whose_file_is_gone_is_a_message_not_a_500(admin_client):
    from django.core.files.storage import default_storage

    study = study_with_references("gone", crop=64)
    reference = catalogue.preview_reference(study)
    default_storage.delete(reference.file.name)
    response = admin_client.get(f"/admin/annotation/study/{study.pk}/catalogue/05-2.png")
    assert response.status_code == 409 and f"reference {reference.name}: cannot read" in response.content.decode()


def test_ticking_types_installs_them_under_free_codes_and_makes_their_images(admin_client):
    study = study_with_references("tick")
    hand_made(study, "03", name="My blur")  # no images, but another family: the catalogue's 03 moves
    response = admin_client.post(f"/admin/annotation/study/{study.pk}/catalogue/", {"types": CHEAP}, follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert "01 Gaussian blur as 01" in page and "05 Gaussian noise as 05" in page
    jpeg = DistortionType.objects.get(study=study, name="JPEG compression")
    assert jpeg.code == "57" and "03 JPEG compression as 57" in page
    made = DistortedImage.objects.filter(study=study)
    levels = sum(len(generation.catalogue_types()[code]) for code in CHEAP)
    assert made.count() == levels and "installed as 57" in page


def test_a_picked_type_without_weights_is_a_message_not_a_500(admin_client, no_weights):
    study = study_with_references("noweights")
    response = admin_client.post(f"/admin/annotation/study/{study.pk}/catalogue/", {"types": ["01", "47"]}, follow=True)
    page = response.content.decode()
    # (The admin capitalises a message's first letter.)
    assert response.status_code == 200 and "Nothing installed: type 47 (ESRGAN x4)" in page
    assert not DistortionType.objects.filter(study=study).exists()
    empty = admin_client.post(f"/admin/annotation/study/{study.pk}/catalogue/", {}, follow=True).content.decode()
    assert "Tick at least one catalogue type." in empty
