"""run_benchmark as a service: scores + MOS -> tables, plots and a stored report."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.utils import timezone

from annotation.models import Study
from core.private_media import private_root
from iqa import benchmark_tables, report
from iqa.metrics import UnknownMetric, parse_metric_list
from iqa.models import BenchmarkRun
from iqa.scoring_job import ScoringError
from iqa.selectors import study_score_frame


def benchmark_run(
    *,
    study: Study,
    metric_names: str,
    out_dir: Path | None = None,
    min_images: int = benchmark_tables.stats.MIN_IMAGES,
    min_judgments: int = 1,
    resamples: int = 1000,
    seed: int = 0,
    logistic: int = 5,
    progress=None,
    type_pair: tuple[str, str] | None = None,
    type_pair_metric: str | None = None,
) -> BenchmarkRun:
    """Correlate stored scores with the MOS over the study's judged images and write the
    report (CSV, Markdown, HTML, PNG) under PIPAL_PRIVATE_ROOT, where only the study's owners
    and staff reach it (and to ``out_dir`` when given).

    ``metric_names`` "table3" means every PIPAL Table 3 method the platform computes.
    ``type_pair``: two distortion type codes for a Fig. 5-style plot against ``type_pair_metric``
    (default: the first metric)."""
    if metric_names.strip() == "table3":
        metric_names = ",".join(benchmark_tables.table3_metrics())
    try:
        infos = parse_metric_list(metric_names)
    except UnknownMetric as error:
        raise ScoringError(str(error)) from error
    pair = None
    if type_pair is not None:
        chosen = type_pair_metric or infos[0].name
        matching = [info for info in infos if info.name == chosen]
        if not matching:
            raise ScoringError(f"--type-pair-metric {chosen} is not one of the benchmarked metrics")
        known = set(study.distortion_types.values_list("code", flat=True))
        unknown = [code for code in type_pair if code not in known]
        if unknown or len(type_pair) != 2 or type_pair[0] == type_pair[1]:
            raise ScoringError(
                f"--type-pair needs two different distortion type codes of {study.slug}"
                + (f" (unknown: {', '.join(unknown)}; known: {', '.join(sorted(known))})" if unknown else "")
            )
        pair = (matching[0], tuple(type_pair))
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
        result = benchmark_tables.run(
            frame, infos, min_images=min_images, resamples=resamples, seed=seed, logistic=logistic, progress=progress
        )
    except ValueError as error:
        raise ScoringError(str(error)) from error
    created = timezone.now()
    relative = Path("benchmarks") / study.slug / created.strftime("%Y%m%d-%H%M%S-%f")
    folder = private_root() / relative
    title = f"IQA benchmark: {study.name} ({study.slug})"
    try:
        files = report.write(frame, result, folder, title, type_pair=pair)
    except ValueError as error:
        raise ScoringError(str(error)) from error
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
