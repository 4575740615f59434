"""Scoring a study's images with metrics: plan, compute (one job per reference), progress.

A score is cached by (metric, version, image SHA-256, reference SHA-256), so a
re-run, a redelivered Celery job or a second study with the same images
computes nothing twice. A job holds the images of one reference: the
reference is read once, kept on the device and shared by every batch.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from annotation.exceptions import ApplicationError
from annotation.models import DistortedImage, ReferenceImage, Study
from iqa import metrics
from iqa.models import MetricScore
from iqa.weights import WeightsMissing

DEFAULT_BATCH = 8


class ScoringError(ApplicationError):
    code = "scoring_failed"


@dataclass(frozen=True)
class ScoreJob:
    metric: str
    version: str
    device: str
    batch: int
    reference_id: int
    image_ids: tuple[int, ...]

    def as_task_args(self) -> list:
        return [self.metric, self.version, self.device, self.batch, self.reference_id, list(self.image_ids)]


_loaded: dict[tuple[str, str], tuple[tuple, metrics.LoadedMetric]] = {}
_loading = threading.Lock()


def metric_load(name: str, device: str | None = None) -> metrics.LoadedMetric:
    """A metric built once per process and device (workers keep theirs between jobs); a trained
    metric whose model.pt was rewritten since is built again."""
    try:
        device = metrics.check_device(device)
        with _loading:
            stamp = metrics.weights_stamp(name)  # a retrained learned metric is loaded again
            cached = _loaded.get((name, device))
            if cached is None or cached[0] != stamp:
                loaded = metrics.load_metric(name, device=device, weights_dir=settings.PIPAL_WEIGHTS_DIR)
                _loaded[(name, device)] = cached = (stamp, loaded)
            return cached[1]
    except (metrics.UnknownMetric, WeightsMissing, ValueError) as error:
        raise ScoringError(f"{name}: {error}") from error


def _reference_key(metric: metrics.LoadedMetric, image: DistortedImage) -> str:
    return image.reference.sha256 if metric.info.full_reference else ""


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
        if (image.sha256, _reference_key(metric, image)) not in done:
            missing[image.reference_id].append(image.id)
    size = settings.PIPAL_SCORE_JOB_IMAGES
    return [
        ScoreJob(metric.info.name, metric.version, metric.device, batch, reference_id, tuple(ids[start : start + size]))
        for reference_id, ids in missing.items()
        for start in range(0, len(ids), size)
    ]


def reference_score(*, job: ScoreJob, on_batch: Callable[[int], None] | None = None) -> int:
    """Compute one job's scores, committing each batch (a crash loses at most one batch).
    Returns how many scores were written."""
    metric = metric_load(job.metric, job.device)
    if metric.version != job.version:
        raise ScoringError(
            f"{job.metric}: this worker loads version {metric.version}, the job was planned for {job.version}; "
            "the weights differ between machines"
        )
    reference = ReferenceImage.objects.get(pk=job.reference_id)
    images = list(DistortedImage.objects.filter(pk__in=job.image_ids).select_related("reference").order_by("id"))
    reference_tensor = metrics.read_image(reference.file.path)[None] if metric.info.full_reference else None
    written = 0
    for chunk in _same_size_batches(images, job.batch):
        if reference_tensor is not None:
            _check_sizes(chunk, reference)
        tensors = metrics.stack([metrics.read_image(image.file.path) for image in chunk])
        try:
            values = metric.score(tensors, reference_tensor)
        except (RuntimeError, AssertionError, ValueError) as error:
            names = ", ".join(image.name for image in chunk)
            raise ScoringError(f"{job.metric} failed on {names}: {error}") from error
        rows = [
            MetricScore(
                metric=job.metric,
                version=job.version,
                image_sha256=image.sha256,
                reference_sha256=_reference_key(metric, image),
                value=value,
                device=metric.device,
            )
            for image, value in zip(chunk, values, strict=True)
        ]
        with transaction.atomic():
            MetricScore.objects.bulk_create(rows, ignore_conflicts=True)
        written += len(rows)
        if on_batch:
            on_batch(len(rows))
    return written


def _same_size_batches(images: Sequence[DistortedImage], size: int) -> list[list[DistortedImage]]:
    by_shape: dict[tuple[int, int], list[DistortedImage]] = defaultdict(list)
    for image in images:
        by_shape[(image.width, image.height)].append(image)
    return [group[i : i + size] for group in by_shape.values() for i in range(0, len(group), max(1, size))]


def _check_sizes(images: Sequence[DistortedImage], reference: ReferenceImage) -> None:
    wrong = [i.name for i in images if (i.width, i.height) != (reference.width, reference.height)]
    if wrong:
        raise ScoringError(
            f"full-reference metrics need images the size of their reference {reference.name} "
            f"({reference.width}x{reference.height}): {', '.join(wrong)} differ"
        )


def scoring_enqueue(jobs: Sequence[ScoreJob]) -> int:
    from iqa.tasks import compute_scores

    for job in jobs:
        compute_scores.delay(*job.as_task_args())
    return len(jobs)


def scoring_progress(*, study: Study, metric: metrics.LoadedMetric) -> tuple[int, int]:
    """(images of the study with a score for this metric version, images of the study)."""
    total = study.images.count()
    missing = sum(len(job.image_ids) for job in scoring_plan(study=study, metric=metric))
    return total - missing, total
