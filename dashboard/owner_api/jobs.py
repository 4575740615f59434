"""Starting owner jobs and reading them back.

A job is created in its own transaction and handed to Celery once that commits (a worker
never looks for a job that is not there yet). Without a broker the job runs in-process: in a
thread of the web process when PIPAL_GENERATE_IN_THREAD (as admin-started generation does,
so the request returns at once), else before the request answers.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.db import connections, transaction

from annotation import generation
from annotation.models import Study
from core.errors import NotFound
from dashboard import tasks
from dashboard.models import OwnerJob, OwnerToken
from dashboard.owner_api.job_runner import job_refresh, job_run, metric_names
from dashboard.owner_api.tokens import token_studies


def _launch(job_id: int) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER and settings.PIPAL_GENERATE_IN_THREAD:
        threading.Thread(target=_run_in_thread, args=(job_id,), daemon=True).start()
    else:
        tasks.run_owner_job.delay(job_id)


def _run_in_thread(job_id: int) -> None:
    try:
        job_run(job_id=job_id)
    finally:
        connections.close_all()


def _start(*, token: OwnerToken, study: Study, kind: str, params: dict) -> OwnerJob:
    with transaction.atomic():
        job = OwnerJob.objects.create(kind=kind, study=study, token=token, params=params)
        transaction.on_commit(lambda: _launch(job.pk))
    job.refresh_from_db()  # without a broker it may have run already
    return job


def job_generate_start(*, token: OwnerToken, study: Study, types: list[str] | None = None) -> OwnerJob:
    """Make every missing image of the study's generated types (or of ``types``). Types named
    must exist and be ready to run here: refused at once (400) with the reason otherwise."""
    generation.generation_plan(study=study, type_codes=types or None)
    return _start(token=token, study=study, kind=OwnerJob.Kind.GENERATE, params={"types": types or []})


def job_score_start(
    *, token: OwnerToken, study: Study, metrics: str, device: str | None = None, batch: int | None = None
) -> OwnerJob:
    """Score every image of the study that lacks a score with each metric (compute_scores)."""
    params = {"metrics": ",".join(metric_names(metrics)), "device": device, "batch": batch}
    return _start(token=token, study=study, kind=OwnerJob.Kind.SCORE, params=params)


def job_benchmark_start(*, token: OwnerToken, study: Study, metrics: str, **options) -> OwnerJob:
    """A benchmark run of stored scores against the MOS (run_benchmark); ``options``:
    min_images, min_judgments, resamples, seed."""
    metric_names(metrics)  # unknown names refused now, not in the job
    params = {"metrics": metrics, **{key: value for key, value in options.items() if value is not None}}
    return _start(token=token, study=study, kind=OwnerJob.Kind.BENCHMARK, params=params)


def job_get(*, token: OwnerToken, job_id: int) -> OwnerJob:
    """A job of a study the token reaches, its progress counted now; 404 otherwise."""
    job = OwnerJob.objects.select_related("study").filter(pk=job_id, study__in=token_studies(token)).first()
    if job is None:
        raise NotFound(f"no job {job_id} among this token's studies")
    return job_refresh(job)
