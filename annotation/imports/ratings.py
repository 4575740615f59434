"""Importing published per-rater ratings into a study, so a dataset collected elsewhere can be
re-analysed (``import_ratings``):

* ``scores``: a CSV ``rater,image,score`` for an acr or dcr study: one row per rating, the image
  named by its file name in the study, the score on the study's scale;
* ``rankings``: a CSV ``rater,order`` for a rank-k study: one row per ranking, ``order`` the image
  names best first joined by ``>`` (``A_01.png>A_03.png>A_02.png``), all versions of one source.

Columns other than these are refused (a column read past silently is a wrong import). All or
nothing: every problem is listed with its line, and the log is untouched unless the whole file
is good. Imported rows carry ``source=import``, no rater account and the file's rater id in
``external_rater``; the study's scores are then recomputed from the whole log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from annotation.analysis.protocol_results import study_refresh_scores
from annotation.imports.folders import ImportFailed
from annotation.imports.label_files import csv_rows, parse_float
from annotation.models import DistortedImage, Ranking, Rating, Study
from core.errors import ApplicationError

SCORES = "scores"
RANKINGS = "rankings"
FORMATS = (SCORES, RANKINGS)
SCORE_COLUMNS = ("rater", "image", "score")
RANKING_COLUMNS = ("rater", "order")
ORDER_SEPARATOR = ">"
# A ranking orders 2 to 6 versions of one source: the bounds of Study.rank_k (RankSRGAN's user
# study ranked 4). A published log may rank a different number than the study shows live.
MIN_RANKED, MAX_RANKED = 2, 6
# The format each protocol's log takes; pairwise studies take judgment logs (replay_judgments).
FORMAT_OF_PROTOCOL = {
    Study.Protocol.ACR: SCORES,
    Study.Protocol.DCR: SCORES,
    Study.Protocol.RANK_K: RANKINGS,
}
BATCH_SIZE = 5000


@dataclass(frozen=True)
class ScoreRow:
    line: int
    rater: str
    image: str
    score: float


@dataclass(frozen=True)
class RankingRow:
    line: int
    rater: str
    order: tuple[str, ...]  # image names, best first


@dataclass(frozen=True)
class RatingsImportReport:
    study: Study
    format: str
    rows: int
    raters: int
    images: int


def import_format(study: Study, format: str | None) -> str:
    """The file format the study's protocol takes; ``format`` when given must be that one."""
    expected = FORMAT_OF_PROTOCOL.get(study.protocol)
    if expected is None:
        raise ApplicationError(
            f"study {study.slug} runs the {study.protocol} protocol: import_ratings takes acr/dcr scores and rank-k "
            "rankings; a pairwise study's judgments are replayed with replay_judgments"
        )
    if format is not None and format != expected:
        columns = ",".join(SCORE_COLUMNS if expected == SCORES else RANKING_COLUMNS)
        raise ApplicationError(
            f"study {study.slug} runs the {study.protocol} protocol, which takes {expected} ({columns}), not {format}"
        )
    return expected


def read_scores(path: Path, study: Study) -> list[ScoreRow]:
    """The file's score rows, each checked against the study's images and scale; every problem
    in ``ImportFailed``, naming its line."""
    errors: list[str] = []
    _, rows = csv_rows(path, path.name, errors, SCORE_COLUMNS)
    scale = study.rating_scale
    names = set(DistortedImage.objects.filter(study=study).values_list("name", flat=True))
    read: list[ScoreRow] = []
    first_line: dict[tuple[str, str], int] = {}
    for line, row in rows:
        where = f"{path.name} line {line}"
        rater, image, text = row["rater"], row["image"], row["score"]
        problems = []
        if not rater:
            problems.append("rater must not be empty")
        if not image:
            problems.append("image must not be empty")
        elif image not in names:
            problems.append(f"image {image!r} is not an image of study {study.slug}")
        score = parse_float(text)
        if score is None:
            problems.append(f"score {text!r} is not a number")
        elif not scale.accepts(score):
            problems.append(f"score {score:g} is outside the scale: {scale.describe()}")
        if rater and image:
            key = (rater, image)
            if key in first_line:
                problems.append(f"rater {rater!r} rated image {image!r} twice (lines {first_line[key]} and {line})")
            else:
                first_line[key] = line
        if problems:
            errors.append(f"{where}: {'; '.join(problems)}")
        else:
            read.append(ScoreRow(line=line, rater=rater, image=image, score=score))
    if not errors and not read:
        errors.append(f"{path.name}: no ratings in the file")
    if errors:
        raise ImportFailed(errors)
    return read


def read_rankings(path: Path, study: Study) -> list[RankingRow]:
    """The file's ranking rows, each a permutation of 2-6 distinct images of one reference of
    the study; every problem in ``ImportFailed``, naming its line."""
    errors: list[str] = []
    _, rows = csv_rows(path, path.name, errors, RANKING_COLUMNS)
    reference_of = dict(DistortedImage.objects.filter(study=study).values_list("name", "reference__name"))
    read: list[RankingRow] = []
    first_line: dict[tuple[str, frozenset], int] = {}
    for line, row in rows:
        where = f"{path.name} line {line}"
        rater = row["rater"]
        order = tuple(name.strip() for name in row["order"].split(ORDER_SEPARATOR))
        problems = [] if rater else ["rater must not be empty"]
        unknown = [name for name in order if name and name not in reference_of]
        repeated = sorted(name for name, count in Counter(order).items() if count > 1)
        if not MIN_RANKED <= len(order) <= MAX_RANKED:
            problems.append(
                f"order ranks {len(order)} image(s): a ranking orders {MIN_RANKED} to {MAX_RANKED}, joined by "
                f"{ORDER_SEPARATOR!r} best first"
            )
        if "" in order:
            problems.append(f"order has an empty name (two {ORDER_SEPARATOR!r} in a row, or one at an end)")
        if unknown:
            problems.append(f"not images of study {study.slug}: {', '.join(repr(name) for name in unknown)}")
        if repeated:
            problems.append(f"not a permutation: {', '.join(repr(name) for name in repeated)} ranked twice")
        references = sorted({reference_of[name] for name in order if name in reference_of})
        if len(references) > 1:
            problems.append(f"the images belong to several references ({', '.join(references)}): rank one source")
        if rater and not problems:
            key = (rater, frozenset(order))
            if key in first_line:
                problems.append(f"rater {rater!r} ranked these images twice (lines {first_line[key]} and {line})")
            else:
                first_line[key] = line
        if problems:
            errors.append(f"{where}: {'; '.join(problems)}")
        else:
            read.append(RankingRow(line=line, rater=rater, order=order))
    if not errors and not read:
        errors.append(f"{path.name}: no rankings in the file")
    if errors:
        raise ImportFailed(errors)
    return read


def _already_stored_scores(study: Study, rows: list[ScoreRow], path: Path) -> list[str]:
    """A rater id of the file that already rated the image in the log (an earlier import, or a
    live rater of that id): the same rating twice would count twice."""
    stored = {
        (external_rater or external_id, image)
        for external_rater, external_id, image in Rating.objects.filter(study=study).values_list(
            "external_rater", "rater__external_id", "image__name"
        )
    }
    return [
        f"{path.name} line {row.line}: rater {row.rater!r} already has a rating of image {row.image!r} in the study"
        for row in rows
        if (row.rater, row.image) in stored
    ]


def _already_stored_rankings(study: Study, rows: list[RankingRow], path: Path) -> list[str]:
    names = dict(DistortedImage.objects.filter(study=study).values_list("id", "name"))
    stored = {
        (external_rater or external_id, frozenset(names[i] for i in order))
        for external_rater, external_id, order in Ranking.objects.filter(study=study).values_list(
            "external_rater", "rater__external_id", "order"
        )
    }
    return [
        f"{path.name} line {row.line}: rater {row.rater!r} already has a ranking of these images in the study"
        for row in rows
        if (row.rater, frozenset(row.order)) in stored
    ]


def ratings_import(*, study: Study, path: Path, format: str | None = None) -> RatingsImportReport:
    """Read ``path`` (the format the study's protocol takes), check every row, and store them all
    with the study's recomputed scores in one transaction; ``ImportFailed`` lists every problem
    and stores nothing."""
    format = import_format(study, format)
    path = Path(path)
    rows = read_scores(path, study) if format == SCORES else read_rankings(path, study)
    with transaction.atomic():
        # One import at a time per study: the check against the stored log holds until the commit.
        study = Study.objects.select_for_update().get(pk=study.pk)
        image_ids = dict(DistortedImage.objects.filter(study=study).values_list("name", "id"))
        if format == SCORES:
            errors = _already_stored_scores(study, rows, path)
            stored = [
                Rating(
                    study=study,
                    external_rater=row.rater,
                    image_id=image_ids[row.image],
                    score=row.score,
                    source=Rating.Source.IMPORT,
                )
                for row in rows
            ]
            images = {row.image for row in rows}
        else:
            errors = _already_stored_rankings(study, rows, path)
            reference_ids = dict(DistortedImage.objects.filter(study=study).values_list("id", "reference_id"))
            stored = [
                Ranking(
                    study=study,
                    external_rater=row.rater,
                    reference_id=reference_ids[image_ids[row.order[0]]],
                    order=[image_ids[name] for name in row.order],
                    source=Rating.Source.IMPORT,
                )
                for row in rows
            ]
            images = {name for row in rows for name in row.order}
        if errors:
            raise ImportFailed(errors)
        (Rating if format == SCORES else Ranking).objects.bulk_create(stored, batch_size=BATCH_SIZE)
        study_refresh_scores(study)
    return RatingsImportReport(
        study=study, format=format, rows=len(rows), raters=len({row.rater for row in rows}), images=len(images)
    )
