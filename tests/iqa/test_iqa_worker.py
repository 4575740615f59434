"""compute_scores through a real Celery worker on a real Redis broker."""

from __future__ import annotations

import pytest
from django.conf import settings

from iqa import scoring, scoring_job
from iqa.models import MetricScore, ScoringFailure
from tests.factories import celery_worker, graded_study

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def scoring_worker(redis_url, tmp_path):
    """A worker that sees the test's media folder and weights folder too."""
    media = {
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PIPAL_WEIGHTS_DIR": str(tmp_path / "weights"),
        "PIPAL_TORCH_THREADS": "1",  # what a deployment with a worker per core sets
    }
    with celery_worker(redis_url, tmp_path, **media) as running:
        yield running


def test_a_worker_scores_each_reference_once_and_a_redelivery_adds_nothing(scoring_worker, tmp_path):
    client, queue = scoring_worker
    study = graded_study(tmp_path, references=2)
    metric = scoring_job.metric_load("ssim", "cpu")
    jobs = scoring.scoring_plan(study=study, metric=metric, batch=4)
    assert len(jobs) == 2 and sum(len(job.image_ids) for job in jobs) == 20  # one job per reference

    results = [client.send_task("iqa.tasks.compute_scores", args=job.as_task_args(), queue=queue) for job in jobs]
    assert sorted(result.get(timeout=180) for result in results) == [10, 10]
    assert scoring.scoring_progress(study=study, metric=metric) == (20, 20)
    from_worker = {row.image_sha256: row.value for row in MetricScore.objects.filter(metric="ssim")}

    # The same job again (a redelivered message): nothing new is stored.
    client.send_task("iqa.tasks.compute_scores", args=jobs[0].as_task_args(), queue=queue).get(timeout=180)
    assert MetricScore.objects.filter(metric="ssim").count() == 20

    # The worker's values are the in-process ones.
    MetricScore.objects.all().delete()
    for job in jobs:
        scoring_job.reference_score(job=job)
    in_process = {row.image_sha256: row.value for row in MetricScore.objects.filter(metric="ssim")}
    assert in_process == pytest.approx(from_worker, rel=1e-6)
    assert set(MetricScore.objects.values_list("device", flat=True)) == {"cpu"}


def test_a_job_planned_with_other_weights_is_refused_by_the_worker(scoring_worker, tmp_path):
    client, queue = scoring_worker
    study = graded_study(tmp_path, references=1)
    job = scoring.scoring_plan(study=study, metric=scoring_job.metric_load("psnr", "cpu"))[0]
    args = job.as_task_args()
    args[1] = "pyiqa-0.0.0+deadbeef0000"
    with pytest.raises(Exception, match="weights differ between machines"):
        client.send_task("iqa.tasks.compute_scores", args=args, queue=queue).get(timeout=180)
    assert not MetricScore.objects.exists()
    # Recorded where compute_scores and the owner API's jobs look, so nobody waits for these scores.
    failures = ScoringFailure.objects.filter(metric="psnr", version=args[1])
    assert failures.count() == len(job.image_ids) and "weights differ between machines" in failures[0].error
