"""Reading scores back: per study, per metric version, as tables."""

from __future__ import annotations

import pandas as pd
from django.db.models import Exists, OuterRef

from annotation.models import Study
from iqa.metrics import MetricInfo, metric_info
from iqa.models import MetricScore


def _study_images(study: Study):
    return study.images.select_related("reference", "distortion_type").order_by("name")


def latest_version(study: Study, metric: str) -> str | None:
    """The version of the newest score of this metric among the study's images (a join on the
    scores' (metric, image) index, not a list of every image's hash)."""
    row = (
        MetricScore.objects.filter(metric=metric, image_sha256__in=study.images.values("sha256"))
        .order_by("-computed_at", "-id")
        .values_list("version", flat=True)
        .first()
    )
    return row


def _values(study: Study, info: MetricInfo, version: str) -> dict[tuple[str, str], float]:
    shas = study.images.values_list("sha256", flat=True)
    rows = MetricScore.objects.filter(metric=info.name, version=version, image_sha256__in=shas)
    return {(row.image_sha256, row.reference_sha256): row.value for row in rows}


def study_scores(study: Study, metrics: list[MetricInfo] | None = None) -> list[dict]:
    """One row per (image, metric) with a score at the metric's latest version."""
    if metrics is None:
        names = MetricScore.objects.filter(image_sha256__in=study.images.values_list("sha256", flat=True))
        metrics = [metric_info(name) for name in sorted(set(names.values_list("metric", flat=True)))]
    images = list(_study_images(study))
    rows = []
    for info in metrics:
        version = latest_version(study, info.name)
        if version is None:
            continue
        values = _values(study, info, version)
        for image in images:
            key = (image.sha256, image.reference.sha256 if info.full_reference else "")
            if key in values:
                rows.append(
                    {
                        "image": image.name,
                        "reference": image.reference.name,
                        "metric": info.name,
                        "value": values[key],
                        "version": version,
                    }
                )
    return rows


def study_score_frame(
    study: Study, metrics: list[MetricInfo], *, min_judgments: int = 1
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per image with a MOS from at least ``min_judgments`` judgments: the
    image's labels, its MOS and one column per metric (NaN where not scored)."""
    images = [image for image in _study_images(study) if image.judgment_count >= min_judgments]
    frame = pd.DataFrame(
        [
            {
                "image": image.name,
                "reference": image.reference.name,
                "type_code": image.distortion_type.code,
                "type_name": image.distortion_type.name,
                "category": image.distortion_type.category,
                "subtype": image.distortion_type.subtype,
                "level": image.level,
                "judgments": image.judgment_count,
                "mos": image.mos,
            }
            for image in images
        ],
        columns=["image", "reference", "type_code", "type_name", "category", "subtype", "level", "judgments", "mos"],
    )
    versions = {}
    for info in metrics:
        version = latest_version(study, info.name)
        values = _values(study, info, version) if version else {}
        versions[info.name] = version
        frame[info.name] = [
            values.get((image.sha256, image.reference.sha256 if info.full_reference else ""), float("nan"))
            for image in images
        ]
    return frame, versions


def score_coverage(study: Study) -> list[dict]:
    """Per metric scored on the study: its latest version and how many of the study's
    images have a score at that version (the admin's progress for compute_scores). Counted by
    the database, one aggregate per metric: the page costs the same at any number of images."""
    total = study.images.count()
    names = sorted(
        set(
            MetricScore.objects.filter(image_sha256__in=study.images.values("sha256"))
            .values_list("metric", flat=True)
            .distinct()
        )
    )
    rows = []
    for name in names:
        try:
            info = metric_info(name)
        except KeyError:  # a project metric not registered in this process
            continue
        version = latest_version(study, name)
        scored = MetricScore.objects.filter(metric=name, version=version)
        if info.full_reference:
            pairs = study.images.filter(
                sha256=OuterRef("image_sha256"), reference__sha256=OuterRef("reference_sha256")
            )
        else:
            pairs = study.images.filter(sha256=OuterRef("image_sha256"))
            scored = scored.filter(reference_sha256="")
        count = scored.filter(Exists(pairs)).count()
        rows.append(
            {
                "metric": name,
                "arrow": info.arrow,
                "version": version,
                "scored": count,
                "total": total,
                "percent": round(100 * count / total) if total else 0,
            }
        )
    return rows
