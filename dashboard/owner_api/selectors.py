"""What the owner API reads: a study's settings and counts, its rows, a benchmark run's tables."""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd
from django.db.models import QuerySet

from annotation.analysis import protocol_results
from annotation.analysis.exports import mos_export_metadata, mos_records, protocol_export_metadata
from annotation.models import DistortedImage, Judgment, Study
from annotation.studies import STUDY_OPTIONS
from core.errors import NotFound
from core.private_media import private_path
from iqa.metrics import metric_info
from iqa.models import BenchmarkRun
from iqa.selectors import study_scores

ELO_SETTINGS = ("elo_m", "elo_k", "elo_initial", "mos_window")


def study_overview(study: Study) -> dict:
    """The study as the API shows it: its settings and how much it holds."""
    return {
        "slug": study.slug,
        "name": study.name,
        "description": study.description,
        "created_at": study.created_at,
        "mos_source": study.mos_source,
        "settings": {key: getattr(study, key) for key in (*ELO_SETTINGS, *STUDY_OPTIONS)},
        "counts": {
            "references": study.references.count(),
            "distortion_types": study.distortion_types.count(),
            "images": study.images.count(),
            "raters": study.raters.count(),
            "judgments": study.judgments.count(),
        },
    }


def study_images(study: Study) -> QuerySet[DistortedImage]:
    return study.images.select_related("reference", "distortion_type").order_by("name")


def study_judgments(
    study: Study, *, since: datetime | None = None, until: datetime | None = None, rater: int | None = None
) -> QuerySet[Judgment]:
    """The study's judgment log, made at or after ``since`` and before ``until``, by ``rater``."""
    judgments = Judgment.objects.filter(study=study).select_related("rater", "image_a__reference", "image_b", "winner")
    if since is not None:
        judgments = judgments.filter(created_at__gte=since)
    if until is not None:
        judgments = judgments.filter(created_at__lt=until)
    if rater is not None:
        judgments = judgments.filter(rater_id=rater)
    return judgments


def study_mos(study: Study) -> dict:
    """Per image Elo MOS and spread, raters, Bradley–Terry MOS and CI; and what shaped them. For an
    acr, dcr or rank-k study, the export_mos columns of its protocol (protocol_results)."""
    if not study.is_pairwise:
        # Without sureal's subject model: minutes to an hour at scale, too long for a request
        # (export_mos computes it).
        frame = protocol_results.protocol_results(study, subject_model=False)
        columns = [*protocol_results.IMAGE_COLUMNS, *protocol_results.result_columns(study)]
        rows = [
            {
                key: None if isinstance(value, float) and not math.isfinite(value) else value
                for key, value in row.items()
            }
            for row in frame[columns].to_dict("records")
        ]
        metadata = {**protocol_export_metadata(study), "subject_model": "not computed by the API: export_mos does"}
        return {"metadata": metadata, "results": rows}
    return {"metadata": mos_export_metadata(study), "results": mos_records(study)}


def study_metric_scores(study: Study, *, metric: str | None = None) -> list[dict]:
    """Stored scores of the study's images at each metric's latest version (one metric's only
    when named; an unknown name is refused with the known ones)."""
    if metric is None:
        return study_scores(study)
    try:
        info = metric_info(metric)
    except KeyError as error:
        raise NotFound(str(error.args[0] if error.args else error)) from None
    return study_scores(study, [info])


def benchmark_tables(run: BenchmarkRun) -> list[str]:
    """The run's tables by name: its CSV files without the extension."""
    return [name.removesuffix(".csv") for name in run.files if name.endswith(".csv")]


def benchmark_run_overview(run: BenchmarkRun) -> dict:
    return {
        "id": run.pk,
        "created_at": run.created_at,
        "metrics": run.metrics,
        "images": run.images,
        "summary": run.summary,
        "tables": benchmark_tables(run),
    }


def study_benchmark_run(study: Study, run_id: int) -> BenchmarkRun:
    run = BenchmarkRun.objects.filter(study=study, pk=run_id).first()
    if run is None:
        raise NotFound(f"no benchmark run {run_id} of study {study.slug}")
    return run


def benchmark_table(study: Study, run_id: int, name: str) -> list[dict]:
    """One table the run wrote (``benchmark``: every cell of the summary, Table 3 and per-type
    tables, one row each; ``sr_methods`` when the study has SR methods) as rows."""
    run = study_benchmark_run(study, run_id)
    if name not in benchmark_tables(run):
        known = ", ".join(benchmark_tables(run)) or "none"
        raise NotFound(f"benchmark run {run_id} has no table {name!r} (its tables: {known})")
    frame = pd.read_csv(private_path(f"{run.folder}/{name}.csv"))
    return [
        {key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]
