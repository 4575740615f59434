"""Importing labelled datasets: a study whose MOS comes from the labels.

Three formats (``import_labels --format``):

* ``pipal``: PIPAL's layout — references in ``Ref/`` (also ``Train_Ref/``,
  ``Reference_train/``), distorted images in ``Dis/`` (also ``Train_Dis/``,
  ``Distortion/`` and ``Distortion_1/``… of the real download, searched
  recursively), labels in ``Train_Label/<ref>.txt`` (also
  ``MOS_Scores_train/``) with lines ``<image>,<elo mos>``, or one pyiqa CSV
  ``hq_name,dist_name,elo_score`` given as ``labels``.
* ``mos-csv``: ``reference,image,mos[,std][,distortion_type]`` (TID2013,
  KADID-10k, LIVE…); the score's direction is required and a range optional.
  The MOS is stored higher = better: a lower-is-better score (DMOS) ``x``
  becomes ``low + high - x`` with a range, ``-x`` without one; the value as
  written is kept in ``label_value``.
* ``2afc``: BAPPS triplets — ``ref/``, ``p0/``, ``p1/``, ``judge/`` folders
  with same-named files (``judge/*.npy``: the share of raters who preferred
  p1), or a folder of such subsets, or a CSV ``reference,p0,p1,judge[,votes]``.
  Each triplet becomes ``votes`` judgments replayed through the Elo engine
  (the study stays an Elo study); the others mark the study ``labels``.

Reading (``labels_read``) touches no database and reports every problem with
its file and line; checking the images (``labels_check_images``) reuses the
image import's checks; ``labels_import`` writes everything in one
transaction into a new or empty study, or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.validators import validate_slug
from django.db import transaction

from annotation.analysis.replay import judgments_replay
from annotation.imports import labels_2afc, labels_mos_csv, labels_pipal
from annotation.imports.folders import (
    ImportFailed,
    ImportPlan,
    plan_listed_import,
    write_plan,
)
from annotation.imports.label_files import LabelOptions, LabelPlan, check_options
from annotation.models import LabelImport, ReferenceImage, Study
from annotation.studies import study_create
from core.errors import ApplicationError, Conflict

READERS = {"pipal": labels_pipal.read_pipal, "mos-csv": labels_mos_csv.read_mos_csv, "2afc": labels_2afc.read_2afc}

# --- options and the target study ------------------------------------------------


def study_for_labels(slug: str) -> Study | None:
    """The study labels go into: an existing empty one, or None when the slug is new.

    Labels fill a new or empty study only: re-running an import (or importing
    into a study that holds images or raters) is refused and changes nothing.
    """
    study = Study.objects.filter(slug=slug).first()
    if study is None:
        try:
            validate_slug(slug)
        except ValidationError:
            raise ApplicationError(f"{slug!r} is not a valid study slug (letters, digits, '-' and '_' only)") from None
        return None
    _require_empty(study)
    return study


def _require_empty(study: Study) -> None:
    previous = study.label_imports.order_by("-id").first()
    images, references, raters = study.images.count(), study.references.count(), study.raters.count()
    if previous is None and not (images or references or raters):
        return
    held = f"{images} image(s), {references} reference(s) and {raters} rater(s)"
    if previous is not None:
        held += f", imported from {previous.source} ({previous.format}) on {previous.created_at:%Y-%m-%d %H:%M}"
    raise Conflict(
        f"study {study.slug!r} already holds {held}: import_labels fills a new or empty study only, so nothing "
        "was changed; choose a new slug (the study is created) or delete this one first",
        code="study_not_empty",
    )


# --- reading: pure, every problem with its file and line ---------------------------


def labels_read(source: Path, options: LabelOptions) -> LabelPlan:
    """Read and check the label files; raise ImportFailed listing every problem."""
    check_options(options)
    source = Path(source)
    if not source.exists():
        raise ImportFailed([f"{source}: no such file or folder"])
    reader = READERS[options.format]
    errors: list[str] = []
    plan = reader(source, options, errors)
    if errors:
        raise ImportFailed(errors)
    if not plan.distorted:
        raise ImportFailed([f"{source}: no labelled image found"])
    return plan


# --- checking the images and writing ------------------------------------------------


def labels_check_images(
    study: Study | None, plan: LabelPlan, *, progress: Callable[[int], object] | None = None
) -> ImportPlan:
    """Open, hash and decode every image file the labels name (the image import's
    checks: formats, limits, corrupt files, sizes); raise ImportFailed listing every problem."""
    return plan_listed_import(
        study, references=plan.references, distorted=plan.distorted, types=plan.types, progress=progress
    )


@dataclass(frozen=True)
class LabelReport:
    study: Study
    record: LabelImport
    references: int
    images: int
    judgments: int
    left_out: int


def labels_import(
    *,
    slug: str,
    plan: LabelPlan,
    images: ImportPlan,
    name: str = "",
    progress: Callable[[int], object] | None = None,
) -> LabelReport:
    """Write a checked label import in one transaction: the study (created when
    the slug is new), its images with their labels, the 2AFC judgments and the
    record of the import. On any error nothing is kept, files included."""
    written: list[str] = []
    try:
        with transaction.atomic():
            study = Study.objects.select_for_update().filter(slug=slug).first()
            if study is None:
                study = study_create(slug=slug, name=name)
            else:
                _require_empty(study)
            study.mos_source = plan.mos_source
            study.save(update_fields=["mos_source"])
            report = write_plan(study, images, written, image_fields=plan.labels, progress=progress)
            judgments = judgments_replay(study=study, rows=plan.judgments) if plan.judgments else 0
            record = LabelImport.objects.create(
                study=study,
                format=plan.format,
                source=str(plan.source)[:500],
                label_files=plan.label_files,
                options=plan.options,
                references=ReferenceImage.objects.filter(study=study).count(),
                images=report.distorted,
                judgments=judgments,
                left_out=plan.left_out,
            )
    except BaseException:
        for path in written:
            default_storage.delete(path)
        raise
    return LabelReport(
        study=study,
        record=record,
        references=record.references,
        images=record.images,
        judgments=judgments,
        left_out=plan.left_out,
    )
