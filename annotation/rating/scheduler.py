"""Which pair a rater sees next. The flow is described in scheduler.md.

Each step is a small function over indexed queries, so picking a pair costs
the same at 30 images and at PIPAL scale (250 references x 116 images): the
first image comes from the head of the (study, judgment_count, shuffle_key)
index, its partner from the head of (reference, judgment_count, shuffle_key),
and a rater's history is read only for the chosen image.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.db.models import Q
from django.utils import timezone

from annotation.models import Assignment, DistortedImage, Judgment, Study
from annotation.rating import active

# How many of the least-judged images to draw the first image from. Drawing at
# random from a small head of the queue (rather than always its first row)
# spreads concurrent raters over different images.
FIRST_POOL = 16
# How many of the partner's least-judged candidates to look at.
PARTNER_POOL = 8


@dataclass(frozen=True)
class PairChoice:
    reference_id: int
    first_id: int
    second_id: int


def open_counts(study_id: int, image_ids: list[int]) -> Counter:
    """How many unexpired, unanswered assignments each image is in right now.

    Counting them keeps concurrent raters apart: the second rater asking for a
    pair sees the first one's images as already one judgment further. Reads the
    study's open assignments from their partial index: at most one per rater.
    """
    rows = Assignment.objects.filter(
        study_id=study_id, status=Assignment.Status.OPEN, expires_at__gt=timezone.now()
    ).values_list("left_id", "right_id")
    wanted = set(image_ids)
    return Counter(image for pair in rows for image in pair if image in wanted)


def least_judged(study_id: int, *, offset: int, limit: int) -> list[tuple[int, int, int]]:
    """(image id, reference id, judgment count) from the head of the queue."""
    rows = (
        DistortedImage.objects.filter(study_id=study_id)
        .order_by("judgment_count", "shuffle_key")
        .values_list("id", "reference_id", "judgment_count")
    )
    return list(rows[offset : offset + limit])


def partners_seen(rater_id: int, image_id: int) -> set[int]:
    """Images already paired with ``image_id`` for this rater (any status)."""
    rows = Assignment.objects.filter(Q(image_low_id=image_id) | Q(image_high_id=image_id), rater_id=rater_id)
    return {high if low == image_id else low for low, high in rows.values_list("image_low_id", "image_high_id")}


def least_judged_partner(
    study_id: int, reference_id: int, image_id: int, exclude: set[int], rng: random.Random
) -> int | None:
    """A least-judged image of the same reference not in ``exclude``."""
    rows = list(
        DistortedImage.objects.filter(reference_id=reference_id)
        .exclude(id__in=exclude | {image_id})
        .order_by("judgment_count", "shuffle_key")
        .values_list("id", "judgment_count")[:PARTNER_POOL]
    )
    if not rows:
        return None
    pending = open_counts(study_id, [image for image, _ in rows])
    effective = [(count + pending[image], image) for image, count in rows]
    fewest = min(count for count, _ in effective)
    return rng.choice([image for count, image in effective if count == fewest])


def informative_partner(study: Study, reference_id: int, image_id: int, exclude: set[int], rng: random.Random):
    """The active policy's partner for ``image_id``: drawn from its reference's
    images in proportion to the squared expected information gain of the comparison
    under the Bradley–Terry posterior of the reference's counted judgments
    (``active``). Reads one reference's images and judgments: its cost does not
    grow with the study (bench/next_pair.py)."""
    image_ids = list(
        DistortedImage.objects.filter(reference_id=reference_id).order_by("id").values_list("id", flat=True)
    )
    position = {image: index for index, image in enumerate(image_ids)}
    rows = (
        Judgment.objects.filter(image_a__reference_id=reference_id, image_b__reference_id=reference_id)
        .exclude(rater__excluded=True)
        .values_list("image_a_id", "image_b_id", "winner_id", "tie")
    )
    log = np.array(
        [(position[a], position[b], winner == a, tie) for a, b, winner, tie in rows], dtype=np.int64
    ).reshape(-1, 4)
    a_wins = log[:, 2].astype(bool)
    mean, covariance = active.reference_posterior(
        np.where(a_wins, log[:, 0], log[:, 1]),
        np.where(a_wins, log[:, 1], log[:, 0]),
        len(image_ids),
        m=study.elo_m,
        center=study.elo_initial,
        ties=log[:, 3].astype(bool),
    )
    first = position[image_id]
    allowed = np.array([image not in exclude and image != image_id for image in image_ids])
    partner = active.draw_partner(active.information_gain(mean, covariance, first, m=study.elo_m), allowed, rng)
    return None if partner is None else image_ids[partner]


def choose_pair(study: Study, rater_id: int, rng: random.Random) -> PairChoice | None:
    """A pair of one reference that this rater has not had, or None when the
    rater has had every pair of the study. The first image is the least-judged
    one; its partner is the least-judged of its reference (the balanced
    policy) or the most informative one, drawn by expected information gain
    (the active policy)."""
    offset = 0
    while head := least_judged(study.id, offset=offset, limit=FIRST_POOL):
        pending = open_counts(study.id, [row[0] for row in head])
        # Least-judged first, counting pairs issued but not yet answered; ties in random order.
        for image_id, reference_id, _ in sorted(head, key=lambda row: (row[2] + pending[row[0]], rng.random())):
            seen = partners_seen(rater_id, image_id)
            if study.pair_policy == Study.PairPolicy.ACTIVE:
                partner = informative_partner(study, reference_id, image_id, seen, rng)
            else:
                partner = least_judged_partner(study.id, reference_id, image_id, seen, rng)
            if partner is not None:
                return PairChoice(reference_id=reference_id, first_id=image_id, second_id=partner)
        offset += FIRST_POOL
    return None
