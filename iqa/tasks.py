"""Celery tasks: take plain arguments, call one service."""

from celery import shared_task
from django.db import OperationalError

from core.tasks import time_limits
from iqa import scoring_job


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
    **time_limits("compute_scores"),
)
def compute_scores(metric: str, version: str, device: str, batch: int, reference_id: int, image_ids: list[int]) -> int:
    """Score one reference's images with one metric. Idempotent: scores are unique per
    content and version, so a redelivered job rewrites nothing."""
    job = scoring_job.ScoreJob(metric, version, device, batch, reference_id, tuple(image_ids))
    return scoring_job.reference_score(job=job)
