"""Celery tasks: take plain arguments, call one service."""

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError

from core.errors import failure_text
from core.tasks import RecordedFailure, time_limits
from iqa import scoring_job

logger = logging.getLogger(__name__)

# Worth retrying the whole (idempotent) task: the database or broker was away a moment.
TRANSIENT = (OperationalError, ConnectionError, TimeoutError)


def _job(args, kwargs) -> scoring_job.ScoreJob:
    fields = ("metric", "version", "device", "batch", "reference_id", "image_ids")
    values = dict(zip(fields, args, strict=False)) | kwargs
    return scoring_job.ScoreJob(**{**values, "image_ids": tuple(values["image_ids"])})


class ScoringTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """The task failed for good (retries spent on a transient error, or its time limit): its images
        still without a score are recorded with why, so nobody waits for them."""
        if isinstance(exc, RecordedFailure):
            return
        error = f"the scoring task failed: {failure_text(exc)}"
        scoring_job.job_failure_record(job=_job(args, kwargs), error=error)


@shared_task(
    base=ScoringTask,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=5,
    **time_limits("compute_scores"),
)
def compute_scores(metric: str, version: str, device: str, batch: int, reference_id: int, image_ids: list[int]) -> int:
    """Score one reference's images with one metric. Idempotent: scores are unique per
    content and version, so a redelivered job rewrites nothing. Images that cannot be scored
    (a file gone, a metric that fails on them) are recorded with why, then the task fails (RecordedFailure)
    so Celery shows it; returns the scores written."""
    job = scoring_job.ScoreJob(metric, version, device, batch, reference_id, tuple(image_ids))
    try:
        return scoring_job.reference_score(job=job)
    except (*TRANSIENT, SoftTimeLimitExceeded):
        raise
    except Exception as error:
        logger.warning("scoring %s of reference %s failed", metric, reference_id, exc_info=True)
        # The images after the failing one were not tried: the message says where the task stopped.
        scoring_job.job_failure_record(job=job, error=f"its reference's scoring task stopped: {failure_text(error)}")
        raise RecordedFailure(f"{metric} on reference {reference_id}: {failure_text(error)}") from error
