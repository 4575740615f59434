"""The owner API (/api/owner/): owner tokens, what each token reaches, every endpoint, CSV,
cursor pages, and jobs started and polled to done on the embedded default (in-process Celery)."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import DistortedImage, Judgment, Study
from dashboard.models import OwnerJob, OwnerToken
from dashboard.owner_api.tokens import token_create, token_revoke
from iqa.models import BenchmarkRun, MetricScore
from tests.factories import import_folder, join, make_pipal_folder, plain_study, png_bytes, rater, vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path, django_user_model):
    """s1 (owned by 'owner', judged by two raters), s2 (owned by 'other'), s3 (owned by 'owner' too)."""
    s1 = plain_study("s1", "Study one")
    import_folder(s1, make_pipal_folder(tmp_path / "a"))
    s2 = plain_study("s2", "Study two")
    import_folder(s2, make_pipal_folder(tmp_path / "b"))
    s3 = plain_study("s3", "Study three")
    owner = django_user_model.objects.create_user("owner", password="pw-owner-1")
    other = django_user_model.objects.create_user("other", password="pw-other-1")
    django_user_model.objects.create_superuser("staff", "staff@example.org", "pw-staff-1")
    s1.owners.add(owner)
    s3.owners.add(owner)
    s2.owners.add(other)
    first, second = rater(s1, "r-one"), rater(s1, "r-two")
    vote(s1, first, 6)
    vote(s1, second, 4, left_wins=False)
    return {"s1": s1, "s2": s2, "s3": s3, "first": first, "second": second}


def client_for(username: str, studies: list[str] | None = None) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(username=username, study_slugs=studies).secret}")
    return client


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]["code"]


def read_csv(response) -> pd.DataFrame:
    assert response["Content-Type"].startswith("text/csv"), response["Content-Type"]
    return pd.read_csv(io.BytesIO(response.content))


# --- credentials and what they reach ----------------------------------------------------


def test_without_a_token_or_with_an_unknown_one_the_api_answers_401(world):
    anonymous = APIClient()
    response = anonymous.get("/api/owner/studies/")
    assert response.status_code == 401 and error_code(response) == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"
    anonymous.credentials(HTTP_AUTHORIZATION="Token pipal_owner_not-a-real-one")
    assert anonymous.get("/api/owner/studies/s1/").status_code == 401


def test_a_revoked_token_answers_401_and_only_its_hash_is_stored(world):
    made = token_create(username="owner")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {made.secret}")
    assert client.get("/api/owner/studies/").status_code == 200
    stored = OwnerToken.objects.get(pk=made.token.pk)
    assert made.secret not in stored.secret_hash and len(stored.secret_hash) == 64
    assert stored.last_used_at is not None
    token_revoke(token_id=made.token.pk)
    response = client.get("/api/owner/studies/")
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_a_rater_token_gets_403_in_the_error_shape(world, api):
    rater_client = join(api, "s1", "api-rater")
    secret = rater_client._credentials["HTTP_AUTHORIZATION"].split()[1]
    for header in (f"Bearer {secret}", f"Token {secret}"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get("/api/owner/studies/s1/mos/")
        assert response.status_code == 403, header
        assert error_code(response) == "permission_denied"
        assert "rater token" in response.json()["error"]["message"]


def test_an_owner_sees_only_their_studies_and_another_owners_study_is_404(world):
    client = client_for("owner")
    assert [row["slug"] for row in client.get("/api/owner/studies/").json()] == ["s1", "s3"]
    for path in ("/api/owner/studies/s2/", "/api/owner/studies/s2/judgments/", "/api/owner/studies/s2/mos/"):
        response = client.get(path)
        assert response.status_code == 404 and error_code(response) == "not_found", path
    # The same answer as a study that does not exist: a token learns nothing about others' studies.
    assert client.get("/api/owner/studies/nope/").json()["error"]["message"].startswith("no study 'nope'")
    staff = client_for("staff")
    assert [row["slug"] for row in staff.get("/api/owner/studies/").json()] == ["s1", "s2", "s3"]


def test_a_scoped_token_reaches_only_its_studies_and_cannot_create_one(world):
    scoped = client_for("owner", ["s1"])
    assert [row["slug"] for row in scoped.get("/api/owner/studies/").json()] == ["s1"]
    assert scoped.get("/api/owner/studies/s3/").status_code == 404
    response = scoped.post("/api/owner/studies/", {"slug": "s9"}, format="json")
    assert response.status_code == 403 and "scoped" in response.json()["error"]["message"]
    assert not Study.objects.filter(slug="s9").exists()


def test_a_token_cannot_be_scoped_to_a_study_its_user_does_not_own(world):
    from core.errors import ApplicationError

    with pytest.raises(ApplicationError, match="does not own s2"):
        token_create(username="owner", study_slugs=["s2"])


def test_a_path_that_matches_no_route_answers_404_in_the_error_shape(world):
    # A run id with a line break in it once fell past the /api/ catch-all to Django's HTML 404.
    for path in ("/api/owner/studies/s1/benchmarks/a%0Ab/", "/api/owner/jobs/1%0A/", "/api/owner/nothing/"):
        response = client_for("owner").get(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", path
        assert error_code(response) == "not_found"


def test_an_undocumented_method_is_405_before_credentials(world):
    response = APIClient().put("/api/owner/studies/", {}, format="json")
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"


# --- reading ----------------------------------------------------------------------------


def test_study_detail_has_settings_and_counts(world):
    body = client_for("owner").get("/api/owner/studies/s1/").json()
    assert body["slug"] == "s1" and body["mos_source"] == "elo"
    assert body["settings"]["elo_k"] == 16.0 and "trials_per_rater" in body["settings"]
    assert body["counts"] == {"references": 2, "distortion_types": 2, "images": 8, "raters": 2, "judgments": 10}


def test_references_types_and_images_with_provenance(world):
    client = client_for("owner")
    assert [row["name"] for row in client.get("/api/owner/studies/s1/references/").json()] == ["R0001", "R0002"]
    assert [row["code"] for row in client.get("/api/owner/studies/s1/distortion-types/").json()] == ["01", "02"]
    images = client.get("/api/owner/studies/s1/images/").json()
    assert len(images) == 8
    first = images[0]
    stored = DistortedImage.objects.get(study=world["s1"], name=first["name"])
    assert first["sha256"] == stored.sha256 and first["reference"] == "R0001"
    assert first["source"] == "imported" and first["generator"] == "" and first["provenance"] == {}
    table = read_csv(client.get("/api/owner/studies/s1/images/?format=csv"))
    assert len(table) == 8 and {"name", "sha256", "level", "provenance"} <= set(table.columns)


def test_judgments_come_in_cursor_pages_oldest_first(world):
    client = client_for("owner")
    ids, url, pages = [], "/api/owner/studies/s1/judgments/?page_size=3", 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        body = response.json()
        ids += [row["id"] for row in body["results"]]
        if body["next"]:
            assert 'rel="next"' in response["Link"]
        url, pages = body["next"], pages + 1
    assert pages == 4
    assert ids == list(Judgment.objects.filter(study=world["s1"]).order_by("id").values_list("id", flat=True))


def test_judgments_filter_by_rater_and_time(world):
    client = client_for("owner")
    second = world["second"]
    rows = client.get(f"/api/owner/studies/s1/judgments/?rater={second.pk}").json()["results"]
    assert len(rows) == 4 and {row["rater_external_id"] for row in rows} == {"r-two"}
    latest = Judgment.objects.filter(study=world["s1"]).order_by("id").last()
    Judgment.objects.filter(pk=latest.pk).update(created_at=timezone.now() + timedelta(days=2))
    later = (timezone.now() + timedelta(days=1)).isoformat()
    since = client.get("/api/owner/studies/s1/judgments/", {"since": later}).json()["results"]
    until = client.get("/api/owner/studies/s1/judgments/", {"until": later}).json()["results"]
    assert [row["id"] for row in since] == [latest.pk] and len(until) == 9
    nobody = read_csv(client.get("/api/owner/studies/s1/judgments/?rater=999999&format=csv"))
    assert nobody.empty and {"id", "image_a", "winner"} <= set(nobody.columns)
    response = client.get("/api/owner/studies/s1/judgments/?since=yesterday")
    assert response.status_code == 400 and "since" in response.json()["error"]["fields"]


def test_judgments_as_csv_read_by_pandas(world):
    response = client_for("owner").get("/api/owner/studies/s1/judgments/", HTTP_ACCEPT="text/csv")
    table = read_csv(response)
    assert len(table) == 10 and {"image_a", "image_b", "winner", "elo_a_after", "rater"} <= set(table.columns)


def test_mos_has_spread_raters_bradley_terry_and_the_fit_state(world):
    client = client_for("owner")
    body = client.get("/api/owner/studies/s1/mos/").json()
    assert body["metadata"]["judgments"] == 10 and body["metadata"]["bt_fitted_at"] is None
    rows = {row["image"]: row for row in body["results"]}
    assert len(rows) == 8
    judged = [row for row in rows.values() if row["judgments"]]
    assert judged and all(row["raters"] >= 1 for row in judged)
    assert {"mos", "mos_sd", "mos_bt", "ci_low", "ci_high", "elo"} <= set(judged[0])
    call_command("fit_bradley_terry", "s1", stdout=io.StringIO())
    assert client.get("/api/owner/studies/s1/mos/").json()["metadata"]["bt_stale"] is False
    vote(world["s1"], world["first"], 1)
    fitted = client.get("/api/owner/studies/s1/mos/").json()
    assert fitted["metadata"]["bt_stale"] is True
    table = read_csv(client.get("/api/owner/studies/s1/mos/?format=csv"))
    assert len(table) == 8 and {"mos", "mos_sd", "raters", "mos_bt", "ci_low", "ci_high"} <= set(table.columns)
    judged_rows = table[table["judgments"] > 0]
    assert len(judged_rows) and judged_rows["mos_bt"].notna().all() and (judged_rows["raters"] >= 1).all()


def test_scores_and_benchmark_runs_with_their_tables(world):
    call_command("compute_scores", "s1", "--metrics", "psnr", "--device", "cpu", stdout=io.StringIO())
    call_command(
        "run_benchmark", "s1", "--metrics", "psnr", "--resamples", "20", "--min-images", "3", stdout=io.StringIO()
    )
    client = client_for("owner")
    scores = client.get("/api/owner/studies/s1/scores/").json()
    assert len(scores) == 8 and {row["metric"] for row in scores} == {"psnr"}
    assert read_csv(client.get("/api/owner/studies/s1/scores/?metric=psnr&format=csv"))["value"].notna().all()
    assert client.get("/api/owner/studies/s1/scores/?metric=nope").status_code == 404
    run = BenchmarkRun.objects.get(study=world["s1"])
    runs = client.get("/api/owner/studies/s1/benchmarks/").json()
    assert [row["id"] for row in runs] == [run.pk] and "benchmark" in runs[0]["tables"]
    detail = client.get(f"/api/owner/studies/s1/benchmarks/{run.pk}/").json()
    assert detail["summary"] == run.summary and detail["images"] == run.images
    rows = client.get(f"/api/owner/studies/s1/benchmarks/{run.pk}/tables/benchmark/").json()
    assert any(row["group"] == "All" and row["metric"] == "psnr" for row in rows)
    table = read_csv(client.get(f"/api/owner/studies/s1/benchmarks/{run.pk}/tables/benchmark/?format=csv"))
    assert "srcc" in table.columns and (table["group"] == "All").any()
    missing = client.get(f"/api/owner/studies/s1/benchmarks/{run.pk}/tables/nothing/")
    assert missing.status_code == 404 and "its tables: benchmark" in missing.json()["error"]["message"]
    assert client_for("other").get(f"/api/owner/studies/s1/benchmarks/{run.pk}/").status_code == 404


# --- writing ----------------------------------------------------------------------------


def test_creating_a_study_makes_the_tokens_user_its_owner(world, django_user_model):
    client = client_for("owner")
    response = client.post("/api/owner/studies/", {"slug": "new-one", "name": "New", "elo_k": 24.0}, format="json")
    assert response.status_code == 201, response.content
    study = Study.objects.get(slug="new-one")
    assert study.elo_k == 24.0 and list(study.owners.values_list("username", flat=True)) == ["owner"]
    again = client.post("/api/owner/studies/", {"slug": "new-one"}, format="json")
    assert again.status_code == 409 and error_code(again) == "conflict"
    bad = client.post("/api/owner/studies/", {"slug": "no spaces"}, format="json")
    assert bad.status_code == 400 and "slug" in bad.json()["error"]["fields"]
    negative = client.post("/api/owner/studies/", {"slug": "neg", "elo_k": -1.0}, format="json")
    assert negative.status_code == 400 and "Elo K must be positive" in negative.json()["error"]["message"]


def test_adding_a_reference_by_upload(world):
    client = client_for("owner")
    upload = io.BytesIO(png_bytes(99))
    upload.name = "forest.png"
    response = client.post("/api/owner/studies/s3/references/", {"name": "F0001", "file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    reference = world["s3"].references.get()
    assert reference.name == "F0001" and reference.original_filename == "forest.png" and reference.width == 32
    junk = io.BytesIO(b"not an image")
    junk.name = "junk.png"
    refused = client.post("/api/owner/studies/s3/references/", {"name": "F0002", "file": junk}, format="multipart")
    assert refused.status_code == 400 and "file" in refused.json()["error"]["fields"]
    bad_name = io.BytesIO(png_bytes(98))
    bad_name.name = "x.png"
    named = client.post("/api/owner/studies/s3/references/", {"name": "F_1", "file": bad_name}, format="multipart")
    assert named.status_code == 400 and "'_'" in named.json()["error"]["message"]


def test_the_upload_route_takes_an_image_far_over_the_api_body_limit(world, settings):
    # The API's JSON limit is 16 KiB; the reference upload route takes one image (the admin's limit).
    from PIL import Image

    client = client_for("owner")
    pixels = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    assert buffer.tell() > 4 * settings.PIPAL_MAX_API_BODY_BYTES  # noise does not compress: about 77 KB
    buffer.seek(0)
    buffer.name = "noise.png"
    response = client.post("/api/owner/studies/s3/references/", {"name": "N0001", "file": buffer}, format="multipart")
    assert response.status_code == 201, response.content
    assert world["s3"].references.get(name="N0001").width == 160
    # A JSON body of the same size elsewhere in the API is refused before anything reads it.
    padded = client.post("/api/owner/studies/", {"slug": "x" * (5 * settings.PIPAL_MAX_API_BODY_BYTES)},
                         format="json")
    assert padded.status_code == 413 and error_code(padded) == "too_large"
    # An image over the image limit is refused naming the file; a body over the image and form limits
    # together is refused before anything reads it; both in the API's error shape, nothing stored.
    settings.PIPAL_MAX_IMAGE_BYTES = 1024
    buffer.seek(0)
    over = client.post("/api/owner/studies/s3/references/", {"name": "N0002", "file": buffer}, format="multipart")
    assert over.status_code == 400 and "file" in over.json()["error"]["fields"], over.content[:300]
    settings.PIPAL_MAX_FORM_BODY_BYTES = 1024
    buffer.seek(0)
    body = client.post("/api/owner/studies/s3/references/", {"name": "N0003", "file": buffer}, format="multipart")
    assert body.status_code == 413 and error_code(body) == "too_large"
    assert not world["s3"].references.filter(name__in=["N0002", "N0003"]).exists()


def test_adding_distortion_types_from_the_catalogue_and_by_hand(world):
    client = client_for("owner")
    response = client.post("/api/owner/studies/s1/distortion-types/", {"catalogue": ["03", "12"]}, format="json")
    assert response.status_code == 201, response.content
    assert [row["code"] for row in response.json()] == ["03", "12"] and response.json()[0]["generator"] == "jpeg"
    unknown = client.post("/api/owner/studies/s1/distortion-types/", {"catalogue": ["zz"]}, format="json")
    assert unknown.status_code == 400 and "zz" in unknown.json()["error"]["message"]
    made = client.post(
        "/api/owner/studies/s1/distortion-types/",
        {"code": "90", "name": "Strong blur", "generator": "gaussian_blur", "levels": {"1": {"sigma": 4.0}}},
        format="json",
    )
    assert made.status_code == 201 and made.json()[0]["levels"] == {"1": {"sigma": 4.0}}
    wrong = client.post(
        "/api/owner/studies/s1/distortion-types/",
        {"code": "91", "name": "Blur", "generator": "gaussian_blur", "levels": {"1": {"radius": 4.0}}},
        format="json",
    )
    assert wrong.status_code == 400 and "radius" in wrong.json()["error"]["fields"]["levels"][0]
    taken = client.post("/api/owner/studies/s1/distortion-types/", {"code": "90", "name": "Again"}, format="json")
    assert taken.status_code == 409
    assert client.post("/api/owner/studies/s1/distortion-types/", {"name": "x"}, format="json").status_code == 400


# --- jobs -------------------------------------------------------------------------------


def test_a_generation_job_runs_and_is_polled_to_done(world, django_capture_on_commit_callbacks):
    client = client_for("owner")
    client.post(
        "/api/owner/studies/s1/distortion-types/",
        {
            "code": "90",
            "name": "Blur",
            "generator": "gaussian_blur",
            "levels": {"1": {"sigma": 1.0}, "2": {"sigma": 2.0}},
        },
        format="json",
    )
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post("/api/owner/studies/s1/jobs/generate/", {"types": ["90"]}, format="json")
    assert started.status_code == 202, started.content
    assert started.json()["kind"] == "generate" and started.json()["status"] == "queued"
    job = client.get(f"/api/owner/jobs/{started.json()['id']}/").json()
    assert job["status"] == "done" and job["done"] == job["total"] == 4, job
    assert DistortedImage.objects.filter(study=world["s1"], distortion_type__code="90").count() == 4
    images = client.get("/api/owner/studies/s1/images/").json()
    generated = [row for row in images if row["distortion_type"] == "90"]
    assert {row["source"] for row in generated} == {"generated"} and generated[0]["provenance"]["generator"]
    refused = client.post("/api/owner/studies/s1/jobs/generate/", {"types": ["77"]}, format="json")
    assert refused.status_code == 400 and "77" in refused.json()["error"]["message"]
    assert client_for("other").get(f"/api/owner/jobs/{job['id']}/").status_code == 404


def test_scoring_and_benchmark_jobs_run_and_are_polled_to_done(world, django_capture_on_commit_callbacks):
    client = client_for("owner")
    with django_capture_on_commit_callbacks(execute=True):
        scoring = client.post("/api/owner/studies/s1/jobs/score/", {"metrics": "psnr", "device": "cpu"}, format="json")
    assert scoring.status_code == 202, scoring.content
    job = client.get(f"/api/owner/jobs/{scoring.json()['id']}/").json()
    assert job["status"] == "done" and job["done"] == job["total"] == 8, job
    assert MetricScore.objects.filter(metric="psnr").count() == 8
    with django_capture_on_commit_callbacks(execute=True):
        bench = client.post(
            "/api/owner/studies/s1/jobs/benchmark/",
            {"metrics": "psnr", "resamples": 20, "min_images": 3},
            format="json",
        )
    assert bench.status_code == 202, bench.content
    job = client.get(f"/api/owner/jobs/{bench.json()['id']}/").json()
    assert job["status"] == "done" and job["done"] == job["total"] == 1, job
    assert job["result"]["benchmark_run"] == BenchmarkRun.objects.get(study=world["s1"]).pk
    unknown = client.post("/api/owner/studies/s1/jobs/score/", {"metrics": "psnr,nosuchmetric"}, format="json")
    assert unknown.status_code == 400 and "nosuchmetric" in unknown.json()["error"]["message"]


def test_a_job_that_fails_says_why(world, django_capture_on_commit_callbacks):
    client = client_for("owner")
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post("/api/owner/studies/s3/jobs/benchmark/", {"metrics": "psnr"}, format="json")
    job = client.get(f"/api/owner/jobs/{started.json()['id']}/").json()
    assert job["status"] == "failed" and "no image" in job["error"]
    assert OwnerJob.objects.get(pk=job["id"]).finished_at is not None


# --- the command ------------------------------------------------------------------------


def test_the_owner_token_command_creates_lists_and_revokes(world):
    out = io.StringIO()
    call_command("owner_token", "create", "--user", "owner", "--study", "s1", "--name", "nightly", stdout=out)
    secret = next(line.split(": ", 1)[1] for line in out.getvalue().splitlines() if line.startswith("secret"))
    token = OwnerToken.objects.get(name="nightly")
    assert list(token.studies.values_list("slug", flat=True)) == ["s1"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert client.get("/api/owner/studies/s1/").status_code == 200
    listed = io.StringIO()
    call_command("owner_token", "list", stdout=listed)
    assert f"{token.pk}\towner\tnightly\tscope=s1\tactive" in listed.getvalue()
    call_command("owner_token", "revoke", str(token.pk), stdout=io.StringIO())
    assert client.get("/api/owner/studies/s1/").status_code == 401
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="already revoked"):
        call_command("owner_token", "revoke", str(token.pk), stdout=io.StringIO())
    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("owner_token", "create", "--user", "ghost", stdout=io.StringIO())
