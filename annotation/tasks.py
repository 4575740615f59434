"""Celery tasks: take ids, call one service."""

from celery import shared_task
from django.db import OperationalError

from annotation import generation_job
from annotation.analysis import bt_fit
from annotation.analysis.replay import study_recompute_mos
from annotation.models import Study
from core.tasks import time_limits


@shared_task(
    acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5, **time_limits("recompute_mos")
)
def recompute_mos(study_id: int) -> dict:
    """Rebuild a study's ratings from its judgment log (idempotent)."""
    report = study_recompute_mos(study=Study.objects.get(pk=study_id))
    return {"images": report.images, "judgments": report.judgments, "differences": len(report.differences)}


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
    **time_limits("generate_distortions"),
)
def generate_distortions(jobs: list[list[int]]) -> int:
    """Make the (reference id, type id, level) images that do not exist yet.
    Idempotent: a job redelivered after a lost worker finds its image made."""
    for reference_id, type_id, level in jobs:
        generation_job.distortion_generate(reference_id=reference_id, distortion_type_id=type_id, level=level)
    return len(jobs)


@shared_task(
    acks_late=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=5,
    **time_limits("fit_bradley_terry"),
)
def fit_bradley_terry(study_id: int, seed: int = 0) -> dict:
    """Fit Bradley–Terry with bootstrap CIs and store it (a re-run stores a new fit of the same log)."""
    fit = bt_fit.study_fit_bradley_terry(study=Study.objects.get(pk=study_id), seed=seed)
    return {"fit": fit.pk, "judgments": fit.judgments, "done": fit.done}
