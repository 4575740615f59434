"""Computing one scoring job: one reference's images with one metric, committed batch by batch
(the job a Celery worker runs; scoring.py plans and queues them). Loaded metrics are kept per
process and device between jobs."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import DistortedImage, ReferenceImage
from core.errors import ApplicationError
from core.weights import WeightsError
from iqa import metrics
from iqa.models import MetricScore, ScoringFailure


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


def metric_cache_clear() -> None:
    """Forget the metrics this process has built (the next job builds them again)."""
    with _loading:
        _loaded.clear()


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
    except (metrics.UnknownMetric, WeightsError, ValueError) as error:
        raise ScoringError(f"{name}: {error}") from error


def reference_key(metric: metrics.LoadedMetric, image: DistortedImage) -> str:
    return image.reference.sha256 if metric.info.full_reference else ""


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
                reference_sha256=reference_key(metric, image),
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
    # Every image of the job is scored now: failures recorded for them before are over (one query a job).
    ScoringFailure.objects.filter(image_id__in=job.image_ids, metric=job.metric, version=job.version).delete()
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


def job_failure_record(*, job: ScoreJob, error: str) -> int:
    """Record why the job's images that still lack a score could not be scored (a repeat counts one
    more attempt); returns how many were recorded."""
    images = DistortedImage.objects.filter(pk__in=job.image_ids).select_related("reference")
    scored = set(
        MetricScore.objects.filter(
            metric=job.metric, version=job.version, image_sha256__in=[image.sha256 for image in images]
        ).values_list("image_sha256", "reference_sha256")
    )
    now, error = timezone.now(), error[:2000]
    recorded = 0
    for image in images:
        # A full-reference score is keyed by the reference too, a no-reference one by "".
        if (image.sha256, image.reference.sha256) in scored or (image.sha256, "") in scored:
            continue
        failure = {"image": image, "metric": job.metric, "version": job.version}
        updated = ScoringFailure.objects.filter(**failure).update(
            error=error, failed_at=now, attempts=F("attempts") + 1
        )
        if not updated:
            ScoringFailure.objects.get_or_create(**failure, defaults={"error": error, "failed_at": now})
        recorded += 1
    return recorded


def scoring_failures(*, study, metric: str, version: str):
    """The study's images that could not be scored with this metric version, with why."""
    return ScoringFailure.objects.filter(image__study=study, metric=metric, version=version).select_related("image")


def failures_summary(failures: Sequence[ScoringFailure], *, shown: int = 3) -> str:
    """"<metric>: <n> image(s) could not be scored: A0001_05_02.png: why; …" for people."""
    named = [f"{failure.image.name}: {failure.error}" for failure in failures[:shown]]
    more = f"; and {len(failures) - shown} more" if len(failures) > shown else ""
    return f"{failures[0].metric}: {len(failures)} image(s) could not be scored: {'; '.join(named)}{more}"
