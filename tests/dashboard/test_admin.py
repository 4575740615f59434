"""The staff admin: study progress and MOS download, image uploads, rater QC
and exclusion, and the read-only logs."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from annotation import admin_services
from annotation.analysis.exports import mos_csv
from annotation.analysis.replay import study_recompute_mos
from annotation.imaging import check_image
from annotation.models import DistortedImage, DistortionType, Judgment, Rater, ReferenceImage
from annotation.raters import rater_create, rater_set_excluded
from annotation.studies import study_create
from tests.factories import data_uri_pngs, png_bytes, rater, vote

pytestmark = pytest.mark.django_db

STUDIES = "/admin/annotation/study/"
REFERENCES = "/admin/annotation/referenceimage/"
IMAGES = "/admin/annotation/distortedimage/"
RATERS = "/admin/annotation/rater/"


def form_errors(response) -> str:
    """The add form's error messages as plain text (not HTML-escaped)."""
    return " ".join(
        str(message) for messages in response.context["adminform"].form.errors.values() for message in messages
    )


def gif_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, format="GIF")
    return buffer.getvalue()


def stored_files(media_root) -> set[str]:
    return (
        {str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file()} if media_root.exists() else set()
    )


# --- studies: list, progress page, MOS CSV ---------------------------------------------


def test_study_list_shows_counts_and_links_to_progress(admin_client, small_study):
    vote(small_study, rater(small_study, "r1"), 3)
    response = admin_client.get(STUDIES)
    assert response.status_code == 200
    row = re.search(r"<tr[^>]*>.*?</tr>", response.content.decode().split("<tbody>")[1], re.S).group(0)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
    # slug, name, protocol, references, images, raters, judgments
    assert cells[1:8] == ["s1", "Study one", "Pairwise, full reference (PIPAL)", "2", "8", "1", "3"]
    assert f"{STUDIES}{small_study.pk}/progress/" in response.content.decode()


def test_change_form_links_to_progress_and_locks_elo_parameters_once_images_exist(admin_client, small_study):
    response = admin_client.get(f"{STUDIES}{small_study.pk}/change/")
    html = response.content.decode()
    assert f'href="{STUDIES}{small_study.pk}/progress/"' in html
    assert 'name="elo_k"' not in html and 'name="trials_per_rater"' in html


def test_progress_page_shows_figures_and_plots(admin_client, small_study):
    vote(small_study, rater(small_study, "r1"), 5)
    rater_create(study=small_study, external_id="sim", synthetic=True)
    response = admin_client.get(f"{STUDIES}{small_study.pk}/progress/")
    assert response.status_code == 200
    progress = response.context["progress"]
    assert (progress.judgments, progress.images, progress.raters_real, progress.raters_synthetic) == (5, 8, 1, 1)
    pngs = data_uri_pngs(response.content.decode())
    assert len(pngs) == 2 and all(png.startswith(b"\x89PNG") for png in pngs)
    assert f"{STUDIES}{small_study.pk}/mos.csv" in response.content.decode()


def test_progress_page_of_an_empty_study(admin_client, study):
    response = admin_client.get(f"{STUDIES}{study.pk}/progress/")
    assert response.status_code == 200
    assert len(data_uri_pngs(response.content.decode())) == 2


def test_mos_csv_download(admin_client, small_study):
    vote(small_study, rater(small_study, "r1"), 4)
    response = admin_client.get(f"{STUDIES}{small_study.pk}/mos.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="s1-mos.csv"'
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.decode() == mos_csv(small_study)


@pytest.mark.parametrize("page", ["progress/", "mos.csv"])
def test_progress_and_csv_need_staff(client, django_user_model, small_study, page):
    url = f"{STUDIES}{small_study.pk}/{page}"
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=")
    client.force_login(django_user_model.objects.create_user("owner", password="x"))
    small_study.owners.add(django_user_model.objects.get(username="owner"))  # owning is not staff
    response = client.get(url)
    assert not 200 <= response.status_code < 300
    assert b"R0001" not in response.content


def test_unknown_study_progress_is_404(admin_client):
    assert admin_client.get(f"{STUDIES}999/progress/").status_code == 404


# --- reference upload ---------------------------------------------------------------------


def test_reference_upload_stores_content_addressed_file_and_thumbnail(admin_client, study):
    data = png_bytes(42, (300, 200))
    response = admin_client.post(
        f"{REFERENCES}add/", {"study": study.pk, "name": "A0009", "upload": SimpleUploadedFile("my photo.png", data)}
    )
    assert response.status_code == 302, form_errors(response)
    reference = ReferenceImage.objects.get(study=study, name="A0009")
    sha = check_image(data, label="x", formats=("PNG",), max_bytes=10**8, max_pixels=10**8).sha256
    assert reference.file.name == f"studies/s1/{sha}.png"
    assert (reference.sha256, reference.width, reference.height) == (sha, 300, 200)
    assert reference.original_filename == "my photo.png"
    with reference.file.open("rb") as handle:
        assert handle.read() == data
    assert re.fullmatch(r"studies/s1/thumbs/[0-9a-f]{64}\.png", reference.thumbnail.name)
    with reference.thumbnail.open("rb") as handle, Image.open(handle) as thumb:
        assert thumb.format == "PNG" and max(thumb.size) == 128
    listing = admin_client.get(REFERENCES).content.decode()
    assert f'src="{reference.thumbnail.url}"' in listing
    change = admin_client.get(f"{REFERENCES}{reference.pk}/change/").content.decode()
    assert f'src="{reference.thumbnail.url}"' in change and 'name="name"' not in change


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("broken.png", png_bytes(1)[:60], "corrupt or truncated image"),
        ("noise.png", b"definitely not an image" * 10, "not an image file"),
        ("anim.gif", gif_bytes(), "format GIF is not allowed"),
        ("empty.png", b"", "The submitted file is empty."),
    ],
    ids=["truncated", "not-an-image", "gif", "empty"],
)
def test_reference_upload_refuses_bad_files(admin_client, study, media_root, filename, data, message):
    response = admin_client.post(
        f"{REFERENCES}add/", {"study": study.pk, "name": "A0009", "upload": SimpleUploadedFile(filename, data)}
    )
    assert response.status_code == 200
    assert message in form_errors(response)
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert not ReferenceImage.objects.exists()
    assert stored_files(media_root) == set()


def test_reference_upload_refuses_bad_and_taken_names(admin_client, small_study):
    for name, message in [("A_1", "without '_'"), ("R0001", "already exists")]:
        upload = SimpleUploadedFile("r.png", png_bytes(5))
        response = admin_client.post(f"{REFERENCES}add/", {"study": small_study.pk, "name": name, "upload": upload})
        assert response.status_code == 200
        assert message in form_errors(response)
    assert ReferenceImage.objects.filter(study=small_study).count() == 2


def test_upload_service_removes_written_files_when_the_transaction_fails(study, media_root, monkeypatch):
    checked = check_image(png_bytes(3), label="r.png", formats=("PNG",), max_bytes=10**8, max_pixels=10**8)

    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(ReferenceImage, "save", fail)
    with pytest.raises(RuntimeError):
        admin_services.reference_image_upload(study=study, name="A1", checked=checked, original_filename="r.png")
    assert stored_files(media_root) == set()


# --- distorted-image upload ------------------------------------------------------------------


def distorted_post(admin_client, study, *, reference="R0001", code="01", level=3, data=None, filename="x.png"):
    return admin_client.post(
        f"{IMAGES}add/",
        {
            "reference": ReferenceImage.objects.get(study=study, name=reference).pk,
            "distortion_type": DistortionType.objects.get(study=study, code=code).pk,
            "level": level,
            "upload": SimpleUploadedFile(filename, data if data is not None else png_bytes(99)),
        },
    )


def test_distorted_upload_joins_the_running_study_at_elo_initial(admin_client, small_study):
    vote(small_study, rater(small_study, "r1"), 12)
    before = dict(DistortedImage.objects.values_list("name", "elo"))
    response = distorted_post(admin_client, small_study, code="02", level=3)
    assert response.status_code == 302, form_errors(response)
    image = DistortedImage.objects.get(name="R0001_02_03.png")
    assert image.study == small_study and image.reference.name == "R0001" and image.level == 3
    assert image.elo == image.mos == small_study.elo_initial and image.judgment_count == 0
    assert image.recent_elo == []
    assert image.file.name == f"studies/s1/{image.sha256}.png"
    assert dict(DistortedImage.objects.exclude(pk=image.pk).values_list("name", "elo")) == before
    assert study_recompute_mos(study=small_study, write=False).differences == []
    assert f'src="{image.file.url}"' in admin_client.get(IMAGES).content.decode()


def test_a_new_distortion_type_and_its_first_image(admin_client, small_study):
    response = admin_client.post(
        "/admin/annotation/distortiontype/add/",
        {"study": small_study.pk, "code": "30", "name": "ESRGAN", "category": "super_resolution", "subtype": "gan_sr"},
    )
    assert response.status_code == 302
    assert distorted_post(admin_client, small_study, code="30", level=0).status_code == 302
    assert DistortedImage.objects.get(name="R0001_30_00.png").distortion_type.subtype == "gan_sr"


def test_distortion_type_code_must_not_break_file_names(admin_client, small_study):
    response = admin_client.post(
        "/admin/annotation/distortiontype/add/", {"study": small_study.pk, "code": "3_1", "name": "x"}
    )
    assert response.status_code == 200 and "without '_'" in form_errors(response)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": png_bytes(7, (48, 32))}, "48x32 does not match its reference R0001 (32x32)"),
        ({"level": 1}, "already exists"),
        ({"data": gif_bytes()}, "format GIF is not allowed"),
    ],
    ids=["size-mismatch", "level-taken", "gif"],
)
def test_distorted_upload_refusals(admin_client, small_study, media_root, kwargs, message):
    files_before = stored_files(media_root)
    response = distorted_post(admin_client, small_study, **kwargs)
    assert response.status_code == 200
    assert message in form_errors(response)
    assert DistortedImage.objects.count() == 8
    assert stored_files(media_root) == files_before


def test_distorted_upload_refuses_a_type_of_another_study(admin_client, small_study):
    other = study_create(slug="other")
    foreign = DistortionType.objects.create(study=other, code="01", name="foreign")
    response = admin_client.post(
        f"{IMAGES}add/",
        {
            "reference": ReferenceImage.objects.get(study=small_study, name="R0001").pk,
            "distortion_type": foreign.pk,
            "level": 5,
            "upload": SimpleUploadedFile("x.png", png_bytes(8)),
        },
    )
    assert response.status_code == 200 and "belongs to another study" in form_errors(response)


def test_existing_images_are_read_only(admin_client, small_study):
    image = DistortedImage.objects.first()
    html = admin_client.get(f"{IMAGES}{image.pk}/change/").content.decode()
    for field in ("elo", "mos", "judgment_count", "level", "reference", "file"):
        assert f'name="{field}"' not in html
    admin_client.post(f"{IMAGES}{image.pk}/change/", {"elo": "9999", "level": "7"})
    image.refresh_from_db()
    assert image.elo == small_study.elo_initial and image.level != 7


# --- raters: QC figures, exclusion --------------------------------------------------------


def test_rater_list_shows_qc_figures_and_flags(admin_client, small_study, django_assert_max_num_queries):
    vote(small_study, rater(small_study, "lefty"), 20, left_wins=True)
    vote(small_study, rater(small_study, "fair"), 3)
    for n in range(10):
        rater(small_study, f"idle{n}")
    with django_assert_max_num_queries(12):  # per page, not per row (12 raters here)
        response = admin_client.get(RATERS)
    html = response.content.decode()
    assert "one side in 100% of trials" in html
    assert html.count("one side in") == 1
    assert admin_client.get(RATERS, {"excluded__exact": "1"}).context["cl"].result_count == 0
    assert admin_client.get(RATERS, {"synthetic__exact": "0"}).context["cl"].result_count == 12


def test_raters_cannot_be_added_or_edited_by_hand(admin_client, small_study):
    someone = rater(small_study, "r1")
    assert admin_client.get(f"{RATERS}add/").status_code == 403
    html = admin_client.get(f"{RATERS}{someone.pk}/change/").content.decode()
    assert 'name="excluded"' not in html and "0 trials" in html


def test_exclude_action_excludes_and_recomputes_the_mos(admin_client, small_study, django_capture_on_commit_callbacks):
    good, bad = rater(small_study, "good"), rater(small_study, "bad")
    vote(small_study, good, 10, left_wins=True)
    vote(small_study, bad, 10, left_wins=False)
    elo_with_both = dict(DistortedImage.objects.values_list("id", "elo"))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(
            RATERS, {"action": "exclude_selected", "_selected_action": [bad.pk, good.pk]}, follow=True
        )
    assert callbacks, "excluding a rater schedules the MOS recompute after the commit"
    assert "2 rater(s) excluded; the MOS is being recomputed." in response.content.decode()
    # Now bring the good rater back: only the bad rater's votes stay out.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(RATERS, {"action": "include_selected", "_selected_action": [good.pk]}, follow=True)
    assert "1 rater(s) included again; the MOS is being recomputed." in response.content.decode()

    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.excluded and bad.exclusion_reason == "excluded by admin"
    assert not good.excluded and good.exclusion_reason == ""
    assert study_recompute_mos(study=small_study, write=False).differences == []
    images = DistortedImage.objects.all()
    assert sum(image.judgment_count for image in images) == 2 * Judgment.objects.filter(rater=good).count()
    assert dict(images.values_list("id", "elo")) != elo_with_both


def test_exclude_action_reports_raters_already_excluded(admin_client, small_study):
    someone = rater(small_study, "r1")
    rater_set_excluded(rater=someone, excluded=True, reason="by hand")
    response = admin_client.post(RATERS, {"action": "exclude_selected", "_selected_action": [someone.pk]}, follow=True)
    assert "0 rater(s) excluded; 1 already were." in response.content.decode()
    assert Rater.objects.get(pk=someone.pk).exclusion_reason == "by hand"


# --- the logs -----------------------------------------------------------------------------


def test_logs_are_read_only(admin_client, small_study):
    someone = rater(small_study, "r1")
    vote(small_study, someone, 1)
    judgment = Judgment.objects.get()
    for model in ("judgment", "assignment", "controltrial"):
        base = f"/admin/annotation/{model}/"
        assert admin_client.get(base).status_code == 200
        assert admin_client.get(f"{base}add/").status_code == 403
    change = admin_client.get(f"/admin/annotation/judgment/{judgment.pk}/change/")
    assert change.status_code == 200 and b'name="_save"' not in change.content
    assert admin_client.post(f"/admin/annotation/judgment/{judgment.pk}/delete/").status_code == 403
    assert Judgment.objects.count() == 1
