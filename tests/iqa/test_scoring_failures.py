"""An image that cannot be scored (its file gone, a metric that fails on it) is recorded with why:
compute_scores stops waiting for it, an owner API scoring job ends failed with it, and the score
written later (after the fix) forgets the failure."""

from __future__ import annotations

import contextlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from core.tasks import RecordedFailure
from dashboard.owner_api.tokens import token_create
from iqa import scoring, scoring_job, tasks
from iqa.models import MetricScore, ScoringFailure
from tests.factories import import_folder, make_pipal_folder, plain_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(tmp_path):
    study = plain_study("scored")
    import_folder(study, make_pipal_folder(tmp_path / "pipal"))  # 2 references x 2 types x 2 levels
    return study


def _lose(image) -> tuple[str, bytes]:
    with default_storage.open(image.file.name, "rb") as handle:
        data = handle.read()
    default_storage.delete(image.file.name)
    return image.file.name, data


def _run_plan(study, name: str = "psnr"):
    metric = scoring_job.metric_load(name, "cpu")
    for job in scoring.scoring_plan(study=study, metric=metric, batch=1):
        with contextlib.suppress(RecordedFailure):  # recorded, then raised so Celery marks the task failed
            tasks.compute_scores(*job.as_task_args())
    return metric


def test_an_image_that_cannot_be_scored_is_recorded_and_forgotten_once_scored(study):
    lost = study.images.order_by("name").first()
    name, data = _lose(lost)
    metric = _run_plan(study)
    failures = list(scoring_job.scoring_failures(study=study, metric="psnr", version=metric.version))
    assert lost in [failure.image for failure in failures]
    assert all("scoring task stopped: FileNotFoundError" in failure.error for failure in failures)
    # Its reference's other images after it were not tried; the other reference's are scored.
    assert MetricScore.objects.filter(metric="psnr").count() == 8 - len(failures) >= 4
    default_storage.save(name, ContentFile(data))
    _run_plan(study)
    assert MetricScore.objects.filter(metric="psnr").count() == 8 and not ScoringFailure.objects.exists()


def test_compute_scores_stops_waiting_when_only_failed_images_are_unscored(study):
    from iqa.management.commands.compute_scores import Command

    _lose(study.images.order_by("name").first())
    metric = _run_plan(study)  # what the workers would have done
    with pytest.raises(CommandError, match=r"psnr: \d image\(s\) could not be scored: .*FileNotFoundError"):
        Command()._wait(study, metric, todo=8, timeout=3600)


def test_an_owner_scoring_job_with_an_image_that_cannot_be_scored_ends_failed(
    study, django_user_model, django_capture_on_commit_callbacks
):
    owner = django_user_model.objects.create_user("owner", password="pw-owner-1")
    study.owners.add(owner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(username='owner').secret}")
    lost = study.images.order_by("name").first()
    _lose(lost)
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/api/owner/studies/{study.slug}/jobs/score/", {"metrics": "psnr", "device": "cpu"},
                              format="json")
    assert started.status_code == 202, started.content
    job = client.get(f"/api/owner/jobs/{started.json()['id']}/").json()
    assert job["status"] == "failed" and 4 <= job["done"] < job["total"] == 8, job
    assert "could not be scored" in job["error"] and lost.name in job["error"]


def test_a_scoring_task_that_fails_for_good_records_its_unscored_images(study):
    metric = scoring_job.metric_load("psnr", "cpu")
    job = scoring.scoring_plan(study=study, metric=metric, batch=1)[0]
    tasks.compute_scores.on_failure(TimeoutError("database away"), "task-id", job.as_task_args(), {}, None)
    failures = ScoringFailure.objects.all()
    assert failures.count() == len(job.image_ids)
    assert all(failure.error == "the scoring task failed: TimeoutError: database away" for failure in failures)
