"""The Bradley–Terry MOS beside Elo: fit a study's judgment log, store the
scores with their bootstrap 95% CIs and the study's convergence.

Elo (PIPAL) stays the study's MOS and its PIPAL export; this is a second,
order-free estimate with uncertainty (``bradley_terry`` holds the math).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import Sum

from annotation.analysis import bradley_terry
from annotation.models import BradleyTerryFit, DistortedImage, Judgment, Study
from core.errors import ApplicationError


@dataclass(frozen=True)
class JudgmentLog:
    """The counted judgments (no excluded raters) as index arrays over ``image_ids``."""

    image_ids: np.ndarray
    reference_ids: np.ndarray
    winners: np.ndarray
    losers: np.ndarray
    ties: np.ndarray  # bool: a tie, half a win each (winners/losers are then just image a and b)
    last_judgment_id: int
    cross_reference: int  # judgments whose images belong to different references


def counted_judgments(study: Study):
    """The judgments the MOS is built from: excluded raters' votes left out."""
    return Judgment.objects.filter(study=study).exclude(rater__excluded=True)


def judgment_log(study: Study) -> JudgmentLog:
    images = DistortedImage.objects.filter(study=study).order_by("id")
    pairs = np.array(list(images.values_list("id", "reference_id")), dtype=np.int64).reshape(-1, 2)
    image_ids, reference_ids = pairs[:, 0], pairs[:, 1]
    rows = counted_judgments(study).values_list("id", "image_a_id", "image_b_id", "winner_id", "tie")
    log = np.array(
        [(i, a, b, -1 if winner is None else winner, tie) for i, a, b, winner, tie in rows.iterator(chunk_size=50_000)],
        dtype=np.int64,
    ).reshape(-1, 5)
    # image_ids is sorted: a binary search turns ids into indices for the whole log at once.
    a, b = np.searchsorted(image_ids, log[:, 1]), np.searchsorted(image_ids, log[:, 2])
    a_wins = log[:, 3] == log[:, 1]
    return JudgmentLog(
        image_ids=image_ids,
        reference_ids=reference_ids,
        winners=np.where(a_wins, a, b),
        losers=np.where(a_wins, b, a),
        ties=log[:, 4].astype(bool),
        last_judgment_id=int(log[:, 0].max()) if len(log) else 0,
        cross_reference=int(np.sum(reference_ids[a] != reference_ids[b])),
    )


def fit_is_current(study: Study, fit: BradleyTerryFit | None = None, *, exact: bool = True) -> bool:
    """Whether the latest fit saw exactly the judgments counted now: the same newest judgment and
    the same number. ``exact=False`` (pages) takes the number from the images' counters (each
    counted judgment counts once on both its images: one row per image, not the million-row
    log), which lags an exclusion only until the MOS recompute that follows it."""
    fit = fit or study.bt_fits.first()
    if fit is None:
        return False
    last = counted_judgments(study).order_by("-id").values_list("id", flat=True).first()
    if fit.last_judgment_id != (last or 0):
        return False
    if exact:
        return fit.log_judgments == counted_judgments(study).count()
    counts = study.images.aggregate(n=Sum("judgment_count"))["n"] or 0
    return fit.log_judgments == counts // 2


def study_fit_bradley_terry(
    *, study: Study, rounds: int | None = None, seed: int = 0, progress: Callable[[int], None] | None = None
) -> BradleyTerryFit:
    """Fit the study's counted judgments, bootstrap the 95% CIs and store them
    with the convergence figures (the writes in one transaction)."""
    rounds = study.bt_rounds if rounds is None else rounds
    if rounds < 100:
        raise ApplicationError(f"a Bradley–Terry fit needs at least 100 bootstrap rounds, got {rounds}")
    started = time.perf_counter()
    log = judgment_log(study)
    winners, losers, ties = log.winners, log.losers, log.ties
    per_reference = study.bt_scope == Study.BtScope.REFERENCE
    if per_reference and log.cross_reference:
        # Per reference, a pair across references says nothing: leave it out (the scheduler never issues one).
        keep = log.reference_ids[winners] == log.reference_ids[losers]
        winners, losers, ties = winners[keep], losers[keep], ties[keep]
    if winners.size == 0:
        raise ApplicationError(
            f"study {study.slug!r} has no judgments to fit"
            + (" (its MOS comes from imported labels)" if study.mos_from_labels else "")
        )
    table = bradley_terry.PairTable.from_judgments(winners, losers, log.image_ids.size, ties)
    result = bradley_terry.bootstrap(
        table, rounds=rounds, seed=seed, m=study.elo_m, center=study.elo_initial, progress=progress
    )
    low, high = result.interval
    judged = np.bincount(np.concatenate([winners, losers]), minlength=log.image_ids.size) > 0
    groups = log.reference_ids if per_reference else np.zeros_like(log.reference_ids)
    kendall = bradley_terry.kendall_distance(result.replicates[:, judged], groups[judged], seed=seed)
    # An unjudged image sits at the prior's mean with a zero-width interval: it counts as not yet measured.
    width = np.where(judged, high - low, np.inf)
    status = bradley_terry.convergence(
        width, kendall, target_ci_width=study.target_ci_width, target_kendall=study.target_kendall
    )
    return _store_fit(
        study=study,
        log=log,
        judged=judged,
        scores=result.scores,
        low=low,
        high=high,
        status=status,
        judgments=int(winners.size),
        rounds=rounds,
        seed=seed,
        seconds=time.perf_counter() - started,
    )


@transaction.atomic
def _store_fit(*, study, log, judged, scores, low, high, status, judgments, rounds, seed, seconds) -> BradleyTerryFit:
    images = DistortedImage.objects.in_bulk(log.image_ids.tolist())
    for index, image_id in enumerate(log.image_ids.tolist()):
        image = images[image_id]
        if judged[index]:
            image.mos_bt = float(scores[index])
            image.bt_ci_low, image.bt_ci_high = float(low[index]), float(high[index])
        else:
            image.mos_bt = image.bt_ci_low = image.bt_ci_high = None
    DistortedImage.objects.bulk_update(images.values(), ["mos_bt", "bt_ci_low", "bt_ci_high"], batch_size=2000)
    width = (high - low)[judged]
    return BradleyTerryFit.objects.create(
        study=study,
        scope=study.bt_scope,
        judgments=judgments,
        log_judgments=int(log.winners.size),
        last_judgment_id=log.last_judgment_id,
        images=int(judged.sum()),
        rounds=rounds,
        seed=seed,
        widest_ci=float(width.max()) if width.size else 0.0,
        median_ci=status.median_ci,
        images_too_wide=status.images_too_wide,
        kendall=status.kendall,
        target_ci_width=status.target_ci_width,
        target_kendall=status.target_kendall,
        done=status.done,
        seconds=seconds,
    )
