"""Synthetic raters: how many judgments does a study need?

Each image gets a hidden true score; a synthetic rater shown (A, B) prefers A
with PIPAL Eq. 1's probability P(A>B) of the true scores. Pairs come from the
real scheduler and votes go through the real vote service, so the simulation
measures the platform as raters use it. "N judgments per image" means
N x (number of images) judgments in total, as in PIPAL (1.13M judgments /
29k images ~ 39): each image then takes part in about 2N comparisons.
"""

from __future__ import annotations

import enum
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db.models import Q

from iqa.correlation import RankAgreement, rank_agreement

from . import elo, services
from .exceptions import ApplicationError
from .models import DistortedImage, Judgment, Rater, Study

DEFAULT_SPREAD = 150.0  # SD of true scores on the Elo scale; 200 points ~ 76% preference


def metric_truth(study: Study, metric: str, *, spread: float) -> dict[int, float]:
    """Hidden scores that follow an IQA metric: within each reference, the metric's values
    (signed so better is higher) standardised and put on the Elo scale (center + spread x z).

    Synthetic raters then prefer what the metric prefers, so a study's judgments carry a
    known, learnable signal (the learned metrics are checked against it); scores come from
    compute_scores."""
    from iqa.metrics import UnknownMetric, metric_info
    from iqa.selectors import study_score_frame

    try:
        info = metric_info(metric)
    except UnknownMetric as error:
        raise ApplicationError(str(error)) from None
    frame, _ = study_score_frame(study, [info], min_judgments=0)
    missing = frame.loc[frame[metric].isna(), "image"].tolist()
    if frame.empty or missing:
        raise ApplicationError(
            f"{len(missing) or 'no'} image(s) of study {study.slug!r} have no {metric} score"
            f"{' (' + ', '.join(missing[:3]) + ')' if missing else ''}: "
            f"run python manage.py compute_scores {study.slug} --metrics {metric}"
        )
    ids = dict(DistortedImage.objects.filter(study=study).values_list("name", "id"))
    signed = frame[metric] if info.higher_is_better else -frame[metric]
    truth = {}
    for _, group in signed.groupby(frame["reference"]):
        spread_within = float(group.std(ddof=0))
        z = (group - group.mean()) / spread_within if spread_within > 0 else group * 0.0
        for index, value in z.items():
            truth[ids[frame.at[index, "image"]]] = study.elo_initial + spread * float(value)
    return truth


def true_score(seed: int, image_name: str, *, center: float, spread: float) -> float:
    """A hidden score fixed by (seed, image name), so images added later to a
    study get theirs without changing the others'."""
    digest = hashlib.sha256(f"{seed}:{image_name}".encode()).digest()
    return center + spread * float(np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal())


class Behaviour(enum.StrEnum):
    """How a synthetic rater chooses."""

    GOOD = "good"  # PIPAL Eq. 1 on the true scores
    RANDOM = "random"  # a coin flip
    ONE_SIDE = "one_side"  # always the left image


GOOD, RANDOM, ONE_SIDE = Behaviour.GOOD, Behaviour.RANDOM, Behaviour.ONE_SIDE
# A good rater answers an obvious control pair right this often (attention lapses).
GOOD_CONTROL_ACCURACY = 0.995


@dataclass(frozen=True)
class RaterMix:
    """Shares of bad raters among new synthetic raters (the rest are good)."""

    random: float = 0.0
    one_side: float = 0.0

    def draw(self, rng: random.Random) -> Behaviour:
        x = rng.random()
        return RANDOM if x < self.random else ONE_SIDE if x < self.random + self.one_side else GOOD


@dataclass(frozen=True)
class SimulationReport:
    judgments_added: int
    judgments_total: int
    images: int
    raters: int
    agreement: RankAgreement
    by_type: dict[str, RankAgreement]
    behaviours: dict[int, Behaviour]
    truth: dict[int, float]


def _choose(behaviour: Behaviour, trial: services.IssuedTrial, truth, m: float, rng: random.Random) -> str:
    if behaviour == ONE_SIDE:
        return "left"
    if behaviour == RANDOM:
        return rng.choice(["left", "right"])
    if trial.control is not None:
        wrong = "right" if trial.control.correct_side == "left" else "left"
        return trial.control.correct_side if rng.random() < GOOD_CONTROL_ACCURACY else wrong
    p_left = elo.win_probability(truth[trial.left.image_id], truth[trial.right.image_id], m)
    return "left" if rng.random() < p_left else "right"


def _response_ms(behaviour: Behaviour, rng: random.Random) -> int:
    # Careless raters click quickly; attentive ones look for a few seconds.
    low, high = (1000, 4000) if behaviour == GOOD else (250, 1500)
    return rng.randint(low, high)


def simulate_study(
    *,
    study: Study,
    judgments_per_image: float,
    seed: int = 0,
    spread: float = DEFAULT_SPREAD,
    mix: RaterMix = RaterMix(),
    progress: Callable[[int], None] | None = None,
    truth_metric: str | None = None,
) -> SimulationReport:
    """Add synthetic judgments until the study holds ``judgments_per_image`` x
    images of them (counting votes of excluded raters too), then compare the
    MOS with the hidden truth. Raters work through the real trial flow:
    training, gold pairs, their quota; a new rater joins when one is done.

    The hidden scores are random per image (``true_score``) unless ``truth_metric`` names a
    metric scored on the study (``metric_truth``)."""
    if Judgment.objects.filter(study=study).filter(Q(rater__isnull=True) | Q(rater__synthetic=False)).exists():
        raise ApplicationError(
            f"study {study.slug!r} holds judgments from real raters; simulate on a study of its own "
            "(create_study + import_images) so they are not mixed"
        )
    images = list(DistortedImage.objects.filter(study=study))
    if not images:
        raise ApplicationError(f"study {study.slug!r} has no images to simulate on")
    if truth_metric:
        truth = metric_truth(study, truth_metric, spread=spread)
    else:
        truth = {image.id: true_score(seed, image.name, center=study.elo_initial, spread=spread) for image in images}
    target = round(judgments_per_image * len(images))
    todo = max(0, target - Judgment.objects.filter(study=study).count())

    # Topping up a study continues with fresh draws rather than replaying the first run's.
    rng = random.Random(f"{seed}:{target - todo}")
    behaviours: dict[int, Behaviour] = {}
    rater = None
    added = 0
    while added < todo:
        trial = services.pair_next(study=study, rater=rater, rng=rng) if rater else None
        if trial is None:  # this rater is done (quota, excluded, or every pair seen): the next one joins
            number = Rater.objects.filter(study=study, synthetic=True).count()
            rater, _ = services.rater_create(
                study=study, external_id=f"sim-{seed}-{number}", synthetic=True, consented=True
            )
            behaviours[rater.id] = mix.draw(rng)
            if number > todo + 10:
                raise ApplicationError("synthetic raters get no pairs: does every reference have two images?")
            continue
        behaviour = behaviours[rater.id]
        outcome = services.vote_submit(
            study=study,
            rater=rater,
            assignment_token=trial.token,
            choice=_choose(behaviour, trial, truth, study.elo_m, rng),
            response_ms=_response_ms(behaviour, rng),
            enforce_rate_limit=False,  # synthetic raters vote as fast as the machine allows
        )
        if outcome.judgment is not None:
            added += 1
            if progress:
                progress(1)
        rater.refresh_from_db(fields=["excluded"])

    return SimulationReport(
        judgments_added=added,
        judgments_total=Judgment.objects.filter(study=study).count(),
        images=len(images),
        raters=Rater.objects.filter(study=study, synthetic=True).count(),
        agreement=mos_agreement(study, truth),
        by_type=_agreement_by_type(study, truth),
        behaviours=behaviours,
        truth=truth,
    )


def mos_agreement(study: Study, truth: dict[int, float], mos: dict[int, float] | None = None) -> RankAgreement:
    """SRCC/KRCC of the study's MOS (or the given one) against the truth."""
    images = list(DistortedImage.objects.filter(study=study).order_by("id"))
    mos = mos or {image.id: image.mos for image in images}
    return rank_agreement([truth[i.id] for i in images], [mos[i.id] for i in images], [i.reference_id for i in images])


def _agreement_by_type(study: Study, truth: dict[int, float]) -> dict[str, RankAgreement]:
    images = list(DistortedImage.objects.filter(study=study).select_related("distortion_type").order_by("id"))
    offsets = _reference_offsets(images, truth)
    by_type = {}
    for code in sorted({image.distortion_type.code for image in images}):
        group = [image for image in images if image.distortion_type.code == code]
        if len({image.reference_id for image in group}) >= 3:
            # Within one type, compare across references after removing each
            # reference's mean: MOS is identified only within a reference.
            by_type[code] = rank_agreement(
                [truth[i.id] - offsets[i.reference_id] for i in group], [i.mos for i in group], [0] * len(group)
            )
    return by_type


def _reference_offsets(images: list[DistortedImage], truth: dict[int, float]) -> dict[int, float]:
    sums: dict[int, list[float]] = {}
    for image in images:
        sums.setdefault(image.reference_id, []).append(truth[image.id])
    return {reference: float(np.mean(values)) for reference, values in sums.items()}
