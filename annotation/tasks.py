"""Celery tasks: take ids, call one service."""

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError

from annotation import generation_job
from annotation.analysis import bt_fit
from annotation.analysis.replay import study_recompute_mos
from annotation.models import Study
from core.errors import failure_text
from core.tasks import RecordedFailure, time_limits

logger = logging.getLogger(__name__)

# Worth retrying the whole (idempotent) task: the database or broker was away a moment.
TRANSIENT = (OperationalError, ConnectionError, TimeoutError)


class GenerationTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """The task failed for good (retries spent on a transient error, or its time limit): every slot
        of the chunk still without its image is recorded with why, so nobody waits for it."""
        if isinstance(exc, RecordedFailure):
            return
        for reference_id, type_id, level in args[0] if args else kwargs.get("jobs", ()):
            generation_job.slot_failure_record(
                reference_id=reference_id,
                distortion_type_id=type_id,
                level=level,
                error=f"the generation task failed: {failure_text(exc)}",
            )


@shared_task(
    acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5, **time_limits("recompute_mos")
)
def recompute_mos(study_id: int) -> dict:
    """Rebuild a study's ratings from its judgment log (idempotent)."""
    report = study_recompute_mos(study=Study.objects.get(pk=study_id))
    return {"images": report.images, "judgments": report.judgments, "differences": len(report.differences)}


@shared_task(
    base=GenerationTask,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=5,
    **time_limits("generate_distortions"),
)
def generate_distortions(jobs: list[list[int]]) -> int:
    """Make the (reference id, type id, level) images that do not exist yet; returns how many exist now.
    Idempotent: a job redelivered after a lost worker finds its image made. A slot that cannot be made
    (a reference file gone, weights removed since the plan) is recorded with why, and the chunk's other
    slots are still made; then the task fails (RecordedFailure) so Celery shows it."""
    made, failed = 0, []
    for reference_id, type_id, level in jobs:
        try:
            generation_job.distortion_generate(reference_id=reference_id, distortion_type_id=type_id, level=level)
        except (*TRANSIENT, SoftTimeLimitExceeded):
            raise
        except Exception as error:
            logger.warning("generation of slot %s/%s/%s failed", reference_id, type_id, level, exc_info=True)
            generation_job.slot_failure_record(
                reference_id=reference_id,
                distortion_type_id=type_id,
                level=level,
                error=failure_text(error),
            )
            failed.append(f"{reference_id}/{type_id}/{level}: {failure_text(error)}")
        else:
            made += 1
    if failed:
        raise RecordedFailure(f"{len(failed)} of {len(jobs)} slot(s) could not be made: {'; '.join(failed)}")
    return made


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
