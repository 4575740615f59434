"""Running an owner job (the Celery task's body) and reading its progress back.

Generation and scoring fan out to the platform's own Celery tasks (one per few images, each
inside its time limit, as the commands do): the job plans, enqueues and records where its
progress started; its progress is then counted from the database whenever it is read, and it
is done when every planned image exists or has its score. A generation job whose missing
images are all recorded as failed (annotation's GenerationFailure), or a scoring job whose
unscored images all are (iqa's ScoringFailure), is failed, with why. A
benchmark runs inside the job's task and counts metrics. Without a broker every task runs
in-process, so the job is done when it returns.
"""

from __future__ import annotations

import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.db.models import F
from django.utils import timezone

from annotation import generation
from annotation.models import DistortedImage
from core.errors import ApplicationError
from dashboard.models import OwnerJob
from iqa import benchmark_tables, scoring, scoring_job
from iqa.metrics import UnknownMetric, parse_metric_list
from iqa.scoring_job import ScoringError
from iqa.selectors import score_coverage
from iqa.services.benchmark_runs import benchmark_run

logger = logging.getLogger(__name__)


def metric_names(text: str) -> list[str]:
    """The metrics named in ``text`` ("table3": PIPAL Table 3's), unknown names refused together."""
    if text.strip() == "table3":
        text = ",".join(benchmark_tables.table3_metrics())
    try:
        return [info.name for info in parse_metric_list(text)]
    except UnknownMetric as error:
        raise ScoringError(str(error)) from None


def _save(job: OwnerJob, **fields) -> None:
    for key, value in fields.items():
        setattr(job, key, value)
    OwnerJob.objects.filter(pk=job.pk).update(**fields)


def _generated_count(job: OwnerJob, type_ids: list[int]) -> int:
    return DistortedImage.objects.filter(study=job.study, distortion_type_id__in=type_ids).count()


def _run_generate(job: OwnerJob) -> None:
    plan = generation.generation_plan(study=job.study, type_codes=job.params.get("types") or None)
    type_ids = sorted({type_id for _, type_id, _ in plan})
    before = _generated_count(job, type_ids)
    _save(job, total=len(plan), result={"type_ids": type_ids, "before": before, "images": len(plan)})
    if plan:
        generation.generation_enqueue(plan)


def _scored(job: OwnerJob) -> dict[str, int]:
    versions = {row["metric"]: row["version"] for row in job.result["metrics"]}
    return {
        row["metric"]: row["scored"]
        for row in score_coverage(job.study)
        if row["metric"] in versions and row["version"] == versions[row["metric"]]
    }


def _run_score(job: OwnerJob) -> None:
    images = job.study.images.count()
    planned, loaded = [], []
    for name in metric_names(job.params["metrics"]):
        metric = scoring_job.metric_load(name, job.params.get("device"))
        batch = job.params.get("batch") or (scoring.DEFAULT_BATCH if metric.device == "cuda" else 1)
        jobs = scoring.scoring_plan(study=job.study, metric=metric, batch=batch)
        todo = sum(len(part.image_ids) for part in jobs)
        planned.append({"metric": name, "version": metric.version, "device": metric.device, "before": images - todo})
        loaded.append(jobs)
    _save(job, total=sum(images - row["before"] for row in planned), result={"metrics": planned})
    for jobs in loaded:
        scoring.scoring_enqueue(jobs)


def _run_benchmark(job: OwnerJob) -> None:
    names = metric_names(job.params["metrics"])
    _save(job, total=len(names))

    def metric_done(name: str) -> None:
        OwnerJob.objects.filter(pk=job.pk).update(done=F("done") + 1)

    options = {
        key: job.params[key] for key in ("min_images", "min_judgments", "resamples", "seed") if key in job.params
    }
    run = benchmark_run(study=job.study, metric_names=",".join(names), progress=metric_done, **options)
    _save(
        job,
        status=OwnerJob.Status.DONE,
        done=len(names),
        finished_at=timezone.now(),
        result={"benchmark_run": run.pk, "images": run.images, "summary": run.summary},
    )


RUNNERS = {
    OwnerJob.Kind.GENERATE: _run_generate,
    OwnerJob.Kind.SCORE: _run_score,
    OwnerJob.Kind.BENCHMARK: _run_benchmark,
}


def job_run(*, job_id: int) -> None:
    """Plan and start (or, for a benchmark, do) the job's work; a refusal or a failure is
    recorded on the job, never raised: the caller is a task nobody waits on."""
    job = OwnerJob.objects.select_related("study").get(pk=job_id)
    if job.status != OwnerJob.Status.QUEUED:  # redelivered after it started: its work is under way or over
        return
    _save(job, status=OwnerJob.Status.RUNNING, started_at=timezone.now())
    try:
        RUNNERS[job.kind](job)
    except ApplicationError as error:
        _save(job, status=OwnerJob.Status.FAILED, error=error.message, finished_at=timezone.now())
        return
    except SoftTimeLimitExceeded:
        _save(
            job,
            status=OwnerJob.Status.FAILED,
            error="the job ran past its time limit; run the matching management command on the server instead",
            finished_at=timezone.now(),
        )
        return
    except Exception as error:
        logger.exception("owner job %s failed", job_id)
        _save(job, status=OwnerJob.Status.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now())
        return
    job_refresh(job)


def job_refresh(job: OwnerJob) -> OwnerJob:
    """Count a running generation or scoring job's progress from the database; mark it done
    when every planned image is there. Other jobs are returned as they are."""
    if job.status != OwnerJob.Status.RUNNING or job.kind == OwnerJob.Kind.BENCHMARK or not job.result:
        return job
    failures, summaries = [], []
    if job.kind == OwnerJob.Kind.GENERATE:
        done = _generated_count(job, job.result["type_ids"]) - job.result["before"]
        failures = list(generation.generation_failures(job.study, type_ids=job.result["type_ids"]))
        summaries = [generation.failures_summary(failures)] if failures else []
    else:
        scored = _scored(job)
        done = sum(scored.get(row["metric"], row["before"]) - row["before"] for row in job.result["metrics"])
        for row in job.result["metrics"]:
            failed = list(scoring_job.scoring_failures(study=job.study, metric=row["metric"], version=row["version"]))
            failures += failed
            summaries += [scoring_job.failures_summary(failed)] if failed else []
    done = max(0, min(done, job.total))
    if failures and done + len(failures) >= job.total:
        # Only images that failed are missing: none of them is coming, so the job is over.
        _save(job, done=done, status=OwnerJob.Status.FAILED, error=" ".join(summaries), finished_at=timezone.now())
    elif done >= job.total:
        _save(job, done=job.total, status=OwnerJob.Status.DONE, finished_at=timezone.now())
    elif done != job.done:
        _save(job, done=done)
    return job
