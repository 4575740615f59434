"""Celery tasks of the owners' layer: take ids, call one service."""

from celery import shared_task
from django.conf import settings

from dashboard.owner_api.job_runner import job_run

# The job's own task plans and enqueues (generation, scoring) or runs a benchmark: bounded by
# the longest configured task limit, which the broker's visibility timeout already outlasts.
_LONGEST = max(settings.PIPAL_TASK_TIME_LIMITS.values())


@shared_task(acks_late=True, time_limit=_LONGEST, soft_time_limit=int(_LONGEST * 0.9))
def run_owner_job(job_id: int) -> None:
    """Run an owner API job (generation, scoring or a benchmark); its outcome is on the job."""
    job_run(job_id=job_id)
