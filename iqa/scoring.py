"""Scoring a study's images with metrics: plan, queue (one job per reference; scoring_job.py
computes one), progress.

A score is cached by (metric, version, image SHA-256, reference SHA-256), so a
re-run, a redelivered Celery job or a second study with the same images
computes nothing twice. A job holds the images of one reference: the
reference is read once, kept on the device and shared by every batch.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Sequence

from django.conf import settings

from annotation.models import Study
from core.tasks import RecordedFailure
from iqa import metrics, scoring_job, tasks
from iqa.models import MetricScore
from iqa.scoring_job import ScoreJob

DEFAULT_BATCH = 8


def scoring_plan(*, study: Study, metric: metrics.LoadedMetric, batch: int = DEFAULT_BATCH) -> list[ScoreJob]:
    """The jobs that make every score the study lacks for this metric version: per reference, in
    jobs of at most PIPAL_SCORE_JOB_IMAGES images (so the slowest metric finishes inside the
    task's time limit)."""
    images = list(study.images.select_related("reference").order_by("reference_id", "id"))
    done = set(
        MetricScore.objects.filter(
            metric=metric.info.name, version=metric.version, image_sha256__in={i.sha256 for i in images}
        ).values_list("image_sha256", "reference_sha256")
    )
    missing: dict[int, list[int]] = defaultdict(list)
    for image in images:
        if (image.sha256, scoring_job.reference_key(metric, image)) not in done:
            missing[image.reference_id].append(image.id)
    size = settings.PIPAL_SCORE_JOB_IMAGES
    return [
        ScoreJob(metric.info.name, metric.version, metric.device, batch, reference_id, tuple(ids[start : start + size]))
        for reference_id, ids in missing.items()
        for start in range(0, len(ids), size)
    ]


def scoring_enqueue(jobs: Sequence[ScoreJob]) -> int:
    for job in jobs:
        # Run in-process (no broker), a job's failure is recorded and it raises: the other jobs still run.
        with contextlib.suppress(RecordedFailure):
            tasks.compute_scores.delay(*job.as_task_args())
    return len(jobs)


def scoring_progress(*, study: Study, metric: metrics.LoadedMetric) -> tuple[int, int]:
    """(images of the study with a score for this metric version, images of the study)."""
    total = study.images.count()
    missing = sum(len(job.image_ids) for job in scoring_plan(study=study, metric=metric))
    return total - missing, total
