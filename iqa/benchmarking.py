"""run_benchmark as a service: scores + MOS -> tables, plots and a stored report."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from annotation.models import Study

from . import benchmark, report
from .metrics import UnknownMetric, parse_metric_list
from .models import BenchmarkRun
from .scoring import ScoringError
from .selectors import study_score_frame


def benchmark_run(
    *,
    study: Study,
    metric_names: str,
    out_dir: Path | None = None,
    min_images: int = benchmark.stats.MIN_IMAGES,
    min_judgments: int = 1,
    resamples: int = 1000,
    seed: int = 0,
    logistic: int = 5,
    progress=None,
) -> BenchmarkRun:
    """Correlate stored scores with the MOS over the study's judged images and write the
    report (CSV, Markdown, HTML, PNG) under MEDIA_ROOT (and to ``out_dir`` when given)."""
    try:
        infos = parse_metric_list(metric_names)
    except UnknownMetric as error:
        raise ScoringError(str(error)) from error
    frame, versions = study_score_frame(study, infos, min_judgments=min_judgments)
    if frame.empty:
        raise ScoringError(f"{study.slug} has no image with at least {min_judgments} judgment(s): no MOS to compare")
    unscored = {name: int(frame[name].isna().sum()) for name in versions if frame[name].isna().any()}
    if unscored:
        listed = ", ".join(f"{name} ({count} image(s))" for name, count in unscored.items())
        raise ScoringError(
            f"scores missing for {listed}; run: python manage.py compute_scores {study.slug} "
            f"--metrics {','.join(unscored)}"
        )
    try:
        result = benchmark.run(
            frame, infos, min_images=min_images, resamples=resamples, seed=seed, logistic=logistic, progress=progress
        )
    except ValueError as error:
        raise ScoringError(str(error)) from error
    created = timezone.now()
    relative = Path("benchmarks") / study.slug / created.strftime("%Y%m%d-%H%M%S-%f")
    folder = Path(settings.MEDIA_ROOT) / relative
    title = f"IQA benchmark: {study.name} ({study.slug})"
    files = report.write(frame, result, folder, title)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(folder / name, out_dir / name)
    summary = {
        info.name: (result.overall[info.name].agreement.srcc if result.overall[info.name].agreement else None)
        for info in infos
    }
    return BenchmarkRun.objects.create(
        study=study, metrics=versions, images=result.images, folder=str(relative), files=files, summary=summary
    )
