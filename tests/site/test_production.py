"""Production closed by default (issue 15): each finding of the hostile test of the
production set-up, reproduced, then the rules that close it.

1. private files never under a public URL; settings derived from the final DEBUG;
4. API bodies bounded and typed (JSON only, 413/415 in the error shape);
6. the schema matches the API (JSON 404s, strict types, documented statuses);
7. mail configured from EMAIL_URL, the broker's visibility timeout from the tasks' limits.
(2 and 3, imports confined and sizes before reads: tests/annotation/test_import_confinement.py;
5, the atomic open-pair limit: tests/annotation/test_concurrency.py.)
"""

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.test import Client

from annotation.models import Rater
from iqa.models import BenchmarkRun
from tests.factories import PRODUCTION_ENV, ROOT, graded_study, join

SETTINGS_VARIABLES = (
    "SECRET_KEY",
    "DATABASE_URL",
    "ALLOWED_HOSTS",
    "EMAIL_URL",
    "DEBUG",
    "SERVE_MEDIA",
    "MEDIA_ROOT",
    "PIPAL_PRIVATE_ROOT",
    "PIPAL_VAR_DIR",
    "STATIC_ROOT",
    "CELERY_VISIBILITY_TIMEOUT",
)


def python(code: str, env: dict) -> subprocess.CompletedProcess:
    """Run ``code`` after django.setup() under ``env`` (the test's own settings variables removed)."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    script = "import django; django.setup()\nfrom django.conf import settings\n" + code
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def manage(*args, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


# --- 1. private files ------------------------------------------------------------------


def test_production_settings_derive_media_serving_from_its_own_debug(tmp_path):
    # Finding 1: base.py derived SERVE_MEDIA from its DEBUG (True) before production turned DEBUG off.
    result = python(
        "print(settings.DEBUG, settings.SERVE_MEDIA, settings.WHITENOISE_USE_FINDERS)",
        {**PRODUCTION_ENV, "PIPAL_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False"]
    local = python(
        "print(settings.DEBUG, settings.SERVE_MEDIA, settings.WHITENOISE_USE_FINDERS)",
        {"DJANGO_SETTINGS_MODULE": "pipal_site.settings.local", "PIPAL_VAR_DIR": str(tmp_path)},
    )
    assert local.stdout.split() == ["True", "True", "True"], local.stderr


@pytest.fixture
def benchmarked(tmp_path, db):
    study = graded_study(tmp_path, references=1)
    call_command("compute_scores", study.slug, "--metrics", "psnr", "--device", "cpu", stdout=io.StringIO())
    call_command(
        "run_benchmark", study.slug, "--metrics", "psnr", "--resamples", "50", "--min-images", "3", stdout=io.StringIO()
    )
    return study, BenchmarkRun.objects.get(study=study)


def test_a_benchmark_report_is_never_under_the_public_media_url(benchmarked, client):
    # Finding 1: GET /media/benchmarks/<slug>/<time>/sr_methods.csv answered 200 to anyone.
    study, run = benchmarked
    assert settings.SERVE_MEDIA  # the test settings serve stimuli, as the embedded default does
    for name in ("sr_methods.csv", "benchmark.csv", "index.html"):
        assert client.get(f"/media/{run.folder}/{name}").status_code == 404, name
        assert not (Path(settings.MEDIA_ROOT) / run.folder / name).exists()
        assert (Path(settings.PIPAL_PRIVATE_ROOT) / run.folder / name).is_file()
    # The stimuli stay public (raters fetch them without a login)...
    image = study.images.first()
    assert client.get(image.file.url).status_code == 200
    # ... and the report is reached only through the view that checks permission.
    assert client.get(f"/study/{study.slug}/benchmark/sr_methods.csv").status_code == 302


def test_private_files_go_through_the_web_servers_internal_redirect(benchmarked, admin_client, settings):
    study, run = benchmarked
    settings.PIPAL_PRIVATE_MEDIA_SERVER = "nginx"
    response = admin_client.get(f"/study/{study.slug}/benchmark/benchmark.csv")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/_private/{run.folder}/benchmark.csv"
    assert response.content == b"" and response["Content-Type"].startswith("text/plain")
    settings.PIPAL_PRIVATE_MEDIA_SERVER = "apache"
    response = admin_client.get(f"/study/{study.slug}/benchmark/benchmark.csv")
    assert response["X-Sendfile"] == str(Path(settings.PIPAL_PRIVATE_ROOT) / run.folder / "benchmark.csv")
    settings.PIPAL_PRIVATE_MEDIA_SERVER = "django"
    response = admin_client.get(f"/study/{study.slug}/benchmark/benchmark.csv")
    assert b"srcc" in b"".join(response.streaming_content) and "X-Accel-Redirect" not in response


def test_production_refuses_to_start_with_private_files_under_a_public_folder(tmp_path):
    env = {**PRODUCTION_ENV, "PIPAL_VAR_DIR": str(tmp_path), "MEDIA_ROOT": str(tmp_path / "media")}
    result = manage("check", env={**env, "PIPAL_PRIVATE_ROOT": str(tmp_path / "media" / "private")})
    assert result.returncode != 0 and "PIPAL_PRIVATE_ROOT" in result.stderr and "public" in result.stderr
    result = manage("check", env={**env, "STATIC_ROOT": str(tmp_path / "private" / "static")})
    assert result.returncode != 0 and "STATIC_ROOT" in result.stderr


def test_the_deploy_check_flags_private_files_left_in_the_public_folder(tmp_path):
    # A report written before the split (MEDIA_ROOT/benchmarks/...) is still public: the check says so.
    (tmp_path / "media" / "benchmarks" / "s1").mkdir(parents=True)
    (tmp_path / "media" / "benchmarks" / "s1" / "benchmark.csv").write_text("metric,srcc\n")
    env = {**PRODUCTION_ENV, "PIPAL_VAR_DIR": str(tmp_path)}
    result = manage("check", "--deploy", env=env)
    assert result.returncode != 0
    assert "pipal.E002" in result.stderr and "benchmarks" in result.stderr
    # The embedded default's plain check says it too (not only --deploy).
    local = manage("check", env={"DJANGO_SETTINGS_MODULE": "pipal_site.settings.local", "PIPAL_VAR_DIR": str(tmp_path)})
    assert local.returncode != 0 and "pipal.E002" in local.stderr


def test_the_migration_moves_old_reports_out_of_the_public_folder(tmp_path):
    from iqa.private_move import move_reports_out_of_media

    media, private = tmp_path / "media", tmp_path / "private"
    (media / "benchmarks" / "s1" / "20260101").mkdir(parents=True)
    (media / "benchmarks" / "s1" / "20260101" / "benchmark.csv").write_text("x")
    (media / "studies" / "s1").mkdir(parents=True)
    (media / "studies" / "s1" / "a.png").write_bytes(b"png")
    assert move_reports_out_of_media(media, private) == 1
    assert (private / "benchmarks" / "s1" / "20260101" / "benchmark.csv").read_text() == "x"
    assert not (media / "benchmarks").exists() and (media / "studies" / "s1" / "a.png").exists()
    assert move_reports_out_of_media(media, private) == 0  # idempotent


# --- 4. bounded, typed requests ----------------------------------------------------------


def assert_error_shape(response, status: int, code: str | None = None):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.mark.django_db
def test_a_multipart_join_with_a_file_is_refused_unread(small_study, caplog):
    # Finding 4: an anonymous multipart POST with a 100 MB file part got 201.
    client = Client()
    upload = io.BytesIO(b"\0" * 1024)
    upload.name = "small.bin"
    response = client.post("/api/studies/s1/raters/", {"external_id": "x", "file": upload})
    assert_error_shape(response, 415, "unsupported_media_type")
    upload = io.BytesIO(b"\0" * (200 * 1024))
    upload.name = "big.bin"
    response = client.post("/api/studies/s1/raters/", {"external_id": "x", "file": upload})
    assert_error_shape(response, 413, "too_large")
    assert not Rater.objects.exists()


@pytest.mark.django_db
def test_votes_are_json_only(small_study, api):
    rater = join(api, "s1", "r1")
    pair = rater.get("/api/studies/s1/pairs/next/").json()
    body = {"assignment": pair["assignment"], "choice": "left", "response_ms": 900}
    for form in ("multipart", None):
        response = (
            rater.post("/api/studies/s1/votes/", body, format=form)
            if form
            else rater.post(
                "/api/studies/s1/votes/", "assignment=x&choice=left", content_type="application/x-www-form-urlencoded"
            )
        )
        assert_error_shape(response, 415, "unsupported_media_type")
    assert rater.post("/api/studies/s1/votes/", body, format="json").status_code == 201


@pytest.mark.django_db
def test_an_oversized_json_body_gets_413_in_the_error_shape_without_a_traceback(small_study, caplog):
    # Finding 4: a 3 MB JSON body got Django's HTML 400 page and an ERROR traceback in the log.
    client = Client()
    body = json.dumps({"external_id": "x" * (3 * 1024 * 1024)})
    with caplog.at_level(logging.WARNING):
        response = client.post("/api/studies/s1/raters/", body, content_type="application/json")
    error = assert_error_shape(response, 413, "too_large")
    assert str(settings.PIPAL_MAX_API_BODY_BYTES) in error["message"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not Rater.objects.exists()


@pytest.mark.django_db
def test_page_forms_are_bounded_and_uploads_only_where_a_feature_needs_them(small_study, admin_client, rf):
    client = Client()
    big = "x" * (settings.PIPAL_MAX_FORM_BODY_BYTES + 1)
    assert client.post("/study/s1/", {"external_id": big, "consent": "on"}).status_code == 413
    assert not Rater.objects.exists()
    # A file part sent to a page that takes none is skipped unread; the upload pages keep theirs.
    upload = io.BytesIO(b"\0" * 1024)
    upload.name = "x.png"
    join_form = rf.post("/study/s1/", {"external_id": "r", "f": upload})
    assert dict(join_form.FILES) == {} and join_form.POST["external_id"] == "r"
    upload.seek(0)
    admin_upload = rf.post("/admin/annotation/referenceimage/add/", {"name": "R9", "upload": upload})
    assert admin_upload.FILES["upload"].size == 1024
    # The admin's image upload takes a file up to the image limit (plus the form), no more.
    oversized = io.BytesIO(b"\0" * (settings.PIPAL_MAX_IMAGE_BYTES + settings.PIPAL_MAX_FORM_BODY_BYTES + 1))
    oversized.name = "huge.png"
    response = admin_client.post(
        "/admin/annotation/referenceimage/add/", {"study": small_study.pk, "name": "R9", "upload": oversized}
    )
    assert response.status_code == 413


@pytest.mark.django_db
def test_an_unexpected_failure_answers_500_in_the_error_shape_and_is_logged(small_study, api, monkeypatch, caplog):
    from annotation.rating import apis

    rater = join(api, "s1", "r1")

    def broken(**kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(apis, "pair_next", broken)
    client = Client(raise_request_exception=False)
    client.defaults["HTTP_AUTHORIZATION"] = rater._credentials["HTTP_AUTHORIZATION"]
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/studies/s1/pairs/next/")
    error = assert_error_shape(response, 500, "server_error")
    assert "disk" not in error["message"]  # no internals to the client...
    assert any("the disk is on fire" in str(record.exc_info) for record in caplog.records)  # ...all of it in the log


@pytest.mark.django_db
def test_too_many_joins_answer_429_in_the_error_shape(small_study, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    cache.clear()
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"rater_join": "2/hour"})
    client = Client()
    for index in range(2):
        body = {"external_id": f"r{index}"}
        assert client.post("/api/studies/s1/raters/", body, content_type="application/json").status_code == 201
    response = client.post("/api/studies/s1/raters/", {"external_id": "r9"}, content_type="application/json")
    assert_error_shape(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    cache.clear()


# --- 6. the schema matches the API --------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/studies/bad%20slug!/pairs/next/", "/api/studies/s1/nothing/", "/api/nowhere", "/api/studies/%F0%9F/"]
)
def test_unknown_api_paths_answer_404_in_the_error_shape(small_study, path):
    # Finding 6: HTML 404s on API paths with non-slug characters.
    assert_error_shape(Client().get(path), 404, "not_found")


@pytest.mark.django_db
def test_a_wrong_method_answers_405_in_the_error_shape(small_study):
    assert_error_shape(Client().delete("/api/studies/s1/raters/"), 405, "method_not_allowed")


@pytest.mark.django_db
@pytest.mark.parametrize("value", [0, 12.5, True, None, ["a"], {"a": 1}, "", "   "])
def test_join_takes_only_a_non_blank_string(small_study, value):
    # Finding 6: {"external_id": 0} was accepted though the schema says string.
    response = Client().post("/api/studies/s1/raters/", {"external_id": value}, content_type="application/json")
    error = assert_error_shape(response, 400, "invalid")
    assert "external_id" in error["fields"]
    assert not Rater.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field,value",
    [
        ("response_ms", "900"),
        ("response_ms", 900.5),
        ("response_ms", True),
        ("choice", 1),
        ("assignment", 5),
        ("assignment", ""),
    ],
)
def test_votes_take_only_the_documented_types(small_study, api, field, value):
    rater = join(api, "s1", "r1")
    pair = rater.get("/api/studies/s1/pairs/next/").json()
    body = {"assignment": pair["assignment"], "choice": "left", "response_ms": 900, field: value}
    error = assert_error_shape(rater.post("/api/studies/s1/votes/", body, format="json"), 400, "invalid")
    assert field in error["fields"]


@pytest.mark.django_db
def test_the_schema_documents_every_status_and_length_the_api_uses():
    schema = Client().get("/api/schema/?format=json").json()
    join_op = schema["paths"]["/api/studies/{slug}/raters/"]["post"]
    vote_op = schema["paths"]["/api/studies/{slug}/votes/"]["post"]
    next_op = schema["paths"]["/api/studies/{slug}/pairs/next/"]["get"]
    assert {"201", "400", "404", "405", "409", "413", "415", "429", "500"} <= set(join_op["responses"])
    assert {"201", "400", "401", "403", "404", "405", "409", "410", "413", "415", "429", "500"} <= set(
        vote_op["responses"]
    )
    assert {"200", "204", "401", "403", "404", "405", "500"} <= set(next_op["responses"])
    schemas = schema["components"]["schemas"]
    external_id = schemas["RaterJoinInput"]["properties"]["external_id"]
    assert external_id["minLength"] == 1 and external_id["maxLength"] == 200
    assert all(
        schemas[shape]["properties"]["assignment"]["minLength"] == 1 for shape in ("PairVote", "ScoreVote", "OrderVote")
    )
    slug = join_op["parameters"][0]
    assert slug["name"] == "slug" and re.fullmatch(r"\^.*\$", slug["schema"]["pattern"])


# --- 7. mail and workers ---------------------------------------------------------------------


def test_mail_comes_from_email_url(tmp_path):
    code = "print(settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS)"
    local = python(code, {"DJANGO_SETTINGS_MODULE": "pipal_site.settings.local", "PIPAL_VAR_DIR": str(tmp_path)})
    assert local.stdout.split()[0] == "django.core.mail.backends.console.EmailBackend", local.stderr
    production = python(code, {**PRODUCTION_ENV, "PIPAL_VAR_DIR": str(tmp_path)})
    assert production.stdout.split() == [
        "django.core.mail.backends.smtp.EmailBackend",
        "mail.example.org",
        "587",
        "True",
    ], production.stderr
    without = {key: value for key, value in PRODUCTION_ENV.items() if key != "EMAIL_URL"}
    refused = manage("check", env={**without, "PIPAL_VAR_DIR": str(tmp_path)})
    assert refused.returncode != 0 and "EMAIL_URL" in refused.stderr


@pytest.mark.django_db
def test_password_reset_sends_a_link_that_sets_a_new_password(django_user_model):
    user = django_user_model.objects.create_user("owner", email="owner@example.org", password="old-password-1")
    client = Client()
    assert client.post("/accounts/password_reset/", {"email": "owner@example.org"}).status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["owner@example.org"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "n3w-Passw0rd-x", "new_password2": "n3w-Passw0rd-x"}
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("n3w-Passw0rd-x")


def test_the_visibility_timeout_outlasts_the_longest_task():
    from annotation import tasks as annotation_tasks  # noqa: F401  (registers the tasks)
    from iqa import tasks as iqa_tasks  # noqa: F401
    from pipal_site.celery import app

    limits = settings.PIPAL_TASK_TIME_LIMITS
    names = [
        "annotation.tasks.recompute_mos",
        "annotation.tasks.generate_distortions",
        "annotation.tasks.fit_bradley_terry",
        "iqa.tasks.compute_scores",
    ]
    for name in names:
        task = app.tasks[name]
        short = name.rsplit(".", 1)[1]
        assert task.time_limit == limits[short], short
        assert task.soft_time_limit < task.time_limit
    assert set(limits) == {name.rsplit(".", 1)[1] for name in names}
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert timeout == max(limits.values()) + settings.PIPAL_VISIBILITY_MARGIN_SECONDS
    assert timeout < 900  # shorter than the 15 minutes a job on a dead worker used to wait


def test_a_visibility_timeout_shorter_than_a_task_is_refused(tmp_path):
    env = {"DJANGO_SETTINGS_MODULE": "pipal_site.settings.local", "PIPAL_VAR_DIR": str(tmp_path)}
    result = manage("check", env={**env, "CELERY_VISIBILITY_TIMEOUT": "60"})
    assert result.returncode != 0 and "CELERY_VISIBILITY_TIMEOUT" in result.stderr
