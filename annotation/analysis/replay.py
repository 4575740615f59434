"""Replaying a judgment log and recomputing a study's MOS from its log (the log is the truth;
the ratings on the image rows are its running sum)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from annotation.analysis import elo, protocol_results, rater_counts
from annotation.db import atomic_with_retry
from annotation.models import ControlTrial, DistortedImage, Judgment, Rater, Study, hash_token
from annotation.studies import study_require_judgments
from core.errors import ApplicationError


def _lock_study_images(study: Study) -> list[DistortedImage]:
    """All of a study's images, locked in id order (the order votes lock in)."""
    return list(DistortedImage.objects.select_for_update(no_key=True).filter(study=study).order_by("id"))


@dataclass(frozen=True)
class ReplayRow:
    line: int
    image_a: str
    image_b: str
    a_wins: bool
    rater: str | None = None
    tie: bool = False

    @property
    def a_score(self) -> float:
        return 0.5 if self.tie else float(self.a_wins)


@atomic_with_retry
def judgments_replay(*, study: Study, rows: Sequence[ReplayRow]) -> int:
    """Apply a judgment file in order through the Elo engine, all or nothing.

    Every row is checked before anything is written; errors name the line.
    Holds all of the study's image rows locked (in id order, as votes do) so
    live votes wait rather than interleave.
    """
    study_require_judgments(study, action="replay")
    images = {image.name: image for image in _lock_study_images(study)}
    errors = []
    for row in rows:
        for column, name in (("image_a", row.image_a), ("image_b", row.image_b)):
            if name not in images:
                errors.append(f"line {row.line}: {column} {name!r} is not an image of study {study.slug!r}")
        if row.image_a in images and row.image_b in images:
            if row.image_a == row.image_b:
                errors.append(f"line {row.line}: image_a and image_b are the same image {row.image_a!r}")
            elif images[row.image_a].reference_id != images[row.image_b].reference_id:
                errors.append(f"line {row.line}: {row.image_a} and {row.image_b} have different references")
    if errors:
        raise ApplicationError("; ".join(errors[:20]) + (f"; and {len(errors) - 20} more" if len(errors) > 20 else ""))

    raters = {}
    for external_id in sorted({row.rater for row in rows if row.rater}):
        raters[external_id], _ = Rater.objects.get_or_create(
            study=study, external_id=external_id, defaults={"token_hash": hash_token(secrets.token_urlsafe(32))}
        )

    params = study.elo_params
    by_id = {image.id: image for image in images.values()}
    states = {
        image.id: elo.RatingState(image.elo, image.judgment_count, list(image.recent_elo)) for image in by_id.values()
    }
    judged = [(images[row.image_a].id, images[row.image_b].id, row.a_score) for row in rows]
    log = [
        Judgment(
            study=study,
            rater=raters.get(row.rater) if row.rater else None,
            image_a_id=step.image_a,
            image_b_id=step.image_b,
            winner_id=None if step.a_score == 0.5 else step.image_a if step.a_score else step.image_b,
            tie=step.a_score == 0.5,
            elo_a_before=step.a_before,
            elo_a_after=step.a_after,
            elo_b_before=step.b_before,
            elo_b_after=step.b_after,
            source=Judgment.Source.REPLAY,
        )
        for row, step in zip(rows, elo.apply(states, judged, params), strict=True)
    ]
    Judgment.objects.bulk_create(log, batch_size=2000)
    _store_states(by_id, states, params)
    raters_recount(raters=list(raters.values()))
    return len(log)


def _store_states(images: dict[int, DistortedImage], states: dict[int, elo.RatingState], params: elo.EloParams) -> int:
    changed = []
    for image_id, state in states.items():
        image = images[image_id]
        new = (state.elo, state.judgments, state.recent, state.mos(params.initial))
        if (image.elo, image.judgment_count, image.recent_elo, image.mos) != new:
            image.elo, image.judgment_count, image.recent_elo, image.mos = new
            changed.append(image)
    DistortedImage.objects.bulk_update(changed, ["elo", "judgment_count", "recent_elo", "mos"], batch_size=2000)
    return len(changed)


@dataclass(frozen=True)
class ImageDifference:
    image: str
    live_elo: float
    replayed_elo: float
    live_judgments: int
    replayed_judgments: int


@dataclass(frozen=True)
class RecomputeReport:
    images: int
    judgments: int
    differences: list[ImageDifference]
    written: bool

    @property
    def max_abs_difference(self) -> float:
        return max((abs(d.live_elo - d.replayed_elo) for d in self.differences), default=0.0)


def replayed_states(
    study: Study, images: Iterable[DistortedImage], *, include_excluded: bool = False
) -> tuple[dict[int, elo.RatingState], int]:
    """Ratings rebuilt from the judgment log from scratch, without excluded
    raters' votes (unless ``include_excluded``: what the MOS would be with them)."""
    log = Judgment.objects.filter(study=study)
    if not include_excluded:
        log = log.exclude(rater__excluded=True)
    log = log.order_by("id").values_list("image_a_id", "image_b_id", "winner_id", "tie")
    count = 0

    def judgments():
        nonlocal count
        for a, b, winner, tie in log.iterator(chunk_size=10_000):
            count += 1
            yield a, b, 0.5 if tie else float(winner == a)

    states = elo.replay(judgments(), [image.id for image in images], study.elo_params)
    return states, count


@atomic_with_retry
def study_recompute_mos(*, study: Study, write: bool = True) -> RecomputeReport:
    """Rebuild every image's Elo and MOS by replaying the log; report where the
    live values differ. Locks the study's images so no vote interleaves."""
    study_require_judgments(study, action="recompute")
    if not study.is_pairwise:
        # acr/dcr/rank-k: the scores are the log's means and fits, recomputed whole (no Elo to replay).
        if write:
            protocol_results.study_refresh_scores(study)
        log = study.ratings if study.rating_scale else study.rankings
        return RecomputeReport(
            images=study.images.count(),
            judgments=log.exclude(rater__excluded=True).count(),
            differences=[],
            written=write,
        )
    images = {image.id: image for image in _lock_study_images(study)}
    states, count = replayed_states(study, images.values())
    differences = [
        ImageDifference(image.name, image.elo, states[image.id].elo, image.judgment_count, states[image.id].judgments)
        for image in images.values()
        if image.elo != states[image.id].elo
        or image.judgment_count != states[image.id].judgments
        or image.recent_elo != states[image.id].recent
    ]
    if write:
        _store_states(images, states, study.elo_params)
    return RecomputeReport(images=len(images), judgments=count, differences=differences, written=write)


def raters_recount(*, raters: Sequence[Rater]) -> None:
    """Rebuild the counters on the raters' rows from the judgment log and their control trials
    (inside the caller's transaction): after a replay, or when what counts as fast or as a
    clear pair changed."""
    by_study: dict[int, list[int]] = {}
    for rater_id, study_id in Rater.objects.filter(pk__in=[rater.pk for rater in raters]).values_list("pk", "study_id"):
        by_study.setdefault(study_id, []).append(rater_id)
    for study in Study.objects.filter(pk__in=by_study):
        rater_counts.recount(
            rater_model=Rater,
            judgment_model=Judgment,
            control_model=ControlTrial,
            rater_ids=by_study[study.pk],
            fast_below_ms=study.min_response_ms,
            clear_gap=study.agreement_min_gap,
        )
