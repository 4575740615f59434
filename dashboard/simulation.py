"""Synthetic raters: how many judgments does a study need?

Each image gets a hidden true score; a synthetic rater shown (A, B) prefers A
with PIPAL Eq. 1's probability P(A>B) of the true scores. Pairs come from the
real scheduler and votes go through the real vote service, so the simulation
measures the platform as raters use it. "N judgments per image" means
N x (number of images) judgments in total, as in PIPAL (1.13M judgments /
29k images ~ 39): each image then takes part in about 2N comparisons.

Good raters can be imperfect (``RaterMix.noise``, ``RaterMix.bias``): each
perceives the true scores through per-trial Gaussian noise of their own size
and may favour one side. ``apply_qc`` then excludes the raters that quality
control flags, as an admin would, and ``compare_policies`` runs the balanced
and the active pair policy on scratch copies of a study to compare how many
judgments each needs for the same ranking accuracy, with the Elo MOS and with
a Bradley–Terry fit of the same judgments.
"""

from __future__ import annotations

import enum
import hashlib
import math
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q

from annotation import selectors
from annotation.analysis import bradley_terry, bt_fit, elo
from annotation.analysis.replay import replayed_states, study_recompute_mos
from annotation.models import (
    Assignment,
    BradleyTerryFit,
    ControlPicture,
    ControlTrial,
    DistortedImage,
    DistortionType,
    Judgment,
    Rater,
    ReferenceImage,
    Study,
)
from annotation.raters import rater_create, raters_set_excluded
from annotation.rating.issued import IssuedTrial
from annotation.rating.trials import pair_next
from annotation.rating.votes import vote_submit
from core.errors import ApplicationError
from iqa.correlation import RankAgreement, rank_agreement

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
# Good raters' noise levels spread log-normally around RaterMix.noise: SD of the log.
NOISE_LOG_SD = 0.5


@dataclass(frozen=True)
class RaterProfile:
    """One synthetic rater: how they choose and, when good, how well they see.

    A good rater perceives each image of a pair as its true score plus fresh
    Gaussian noise of SD ``noise`` (Elo points; the difference of the pair then
    has SD noise x sqrt 2), the left image also plus ``bias``, and prefers one
    with PIPAL Eq. 1's probability of the perceived scores."""

    behaviour: Behaviour
    noise: float = 0.0
    bias: float = 0.0


@dataclass(frozen=True)
class RaterMix:
    """Shares of bad raters among new synthetic raters (the rest are good), and
    how imperfect the good ones are: each good rater draws a noise SD of
    ``noise`` x exp(N(0, 0.5)) and a side bias from N(0, ``bias``) (Elo points)."""

    random: float = 0.0
    one_side: float = 0.0
    noise: float = 0.0
    bias: float = 0.0

    def __post_init__(self) -> None:
        if min(self.random, self.one_side) < 0 or self.random + self.one_side > 1:
            raise ApplicationError("rater shares must lie between 0 and 1 and sum to at most 1")
        if min(self.noise, self.bias) < 0:
            raise ApplicationError("rater noise and bias are SDs in Elo points: they cannot be negative")

    def draw(self, rng: random.Random) -> Behaviour:
        x = rng.random()
        return RANDOM if x < self.random else ONE_SIDE if x < self.random + self.one_side else GOOD

    def draw_profile(self, rng: random.Random, perception: random.Random | None = None) -> RaterProfile:
        """A new rater: the behaviour from ``rng``, a good rater's noise SD and
        bias from ``perception`` (``rng`` when not given). The perception draws
        happen only when noise or bias are asked for."""
        behaviour = self.draw(rng)
        if behaviour != GOOD:
            return RaterProfile(behaviour)
        perception = perception if perception is not None else rng
        noise = self.noise * math.exp(perception.normalvariate(0.0, NOISE_LOG_SD)) if self.noise > 0 else 0.0
        bias = perception.normalvariate(0.0, self.bias) if self.bias > 0 else 0.0
        return RaterProfile(behaviour, noise=noise, bias=bias)


@dataclass(frozen=True)
class SimulationReport:
    judgments_added: int
    judgments_total: int
    images: int
    raters: int
    agreement: RankAgreement  # the Elo MOS against the truth
    agreement_bt: RankAgreement  # a Bradley–Terry fit of the counted judgments against the truth
    by_type: dict[str, RankAgreement]
    behaviours: dict[int, Behaviour]
    truth: dict[int, float]
    profiles: dict[int, RaterProfile] = field(default_factory=dict)


def _choose(
    profile: RaterProfile,
    trial: IssuedTrial,
    truth,
    m: float,
    rng: random.Random,
    perception: random.Random | None = None,
) -> str:
    """The rater's choice; a good rater's perception noise comes from ``perception``
    (``rng`` when not given)."""
    behaviour = profile.behaviour
    if behaviour == ONE_SIDE:
        return "left"
    if behaviour == RANDOM:
        return rng.choice(["left", "right"])
    if trial.control is not None:
        wrong = "right" if trial.control.correct_side == "left" else "left"
        return trial.control.correct_side if rng.random() < GOOD_CONTROL_ACCURACY else wrong
    left, right = truth[trial.assignment.left_id], truth[trial.assignment.right_id]
    if profile.noise > 0:
        perception = perception if perception is not None else rng
        left += perception.normalvariate(0.0, profile.noise)
        right += perception.normalvariate(0.0, profile.noise)
    if profile.bias:
        left += profile.bias
    p_left = elo.win_probability(left, right, m)
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
    Elo MOS and a plain Bradley–Terry fit of the counted judgments with the
    hidden truth. Raters work through the real trial flow: training, gold
    pairs, their quota; a new rater joins when one is done.

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
    # Raters' noise and bias draw from a stream of their own, so the main stream (raters'
    # behaviours, pairs, the uniform draw behind each choice) is the same with or without
    # them: on one seed a noisy run is paired with the clean one, vote for vote (common
    # random numbers), and noise and bias of 0 reproduce the clean choices exactly.
    perception = random.Random(f"{seed}:{target - todo}:perception")
    profiles: dict[int, RaterProfile] = {}
    rater = None
    added = 0
    while added < todo:
        trial = pair_next(study=study, rater=rater, rng=rng) if rater else None
        if trial is None:  # this rater is done (quota, excluded, or every pair seen): the next one joins
            number = Rater.objects.filter(study=study, synthetic=True).count()
            rater, _ = rater_create(
                study=study, external_id=f"sim-{seed}-{number}", synthetic=True, consented=True
            )
            profiles[rater.id] = mix.draw_profile(rng, perception)
            if number > todo + 10:
                raise ApplicationError("synthetic raters get no pairs: does every reference have two images?")
            continue
        profile = profiles[rater.id]
        outcome = vote_submit(
            study=study,
            rater=rater,
            assignment_token=trial.token,
            choice=_choose(profile, trial, truth, study.elo_m, rng, perception),
            response_ms=_response_ms(profile.behaviour, rng),
            enforce_rate_limit=False,  # synthetic raters vote as fast as the machine allows
            with_next=False,  # the loop asks for the next trial itself
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
        agreement_bt=bt_agreement(study, truth),
        by_type=_agreement_by_type(study, truth),
        behaviours={rater_id: profile.behaviour for rater_id, profile in profiles.items()},
        truth=truth,
        profiles=profiles,
    )


def mos_agreement(study: Study, truth: dict[int, float], mos: dict[int, float] | None = None) -> RankAgreement:
    """SRCC/KRCC of the study's MOS (or the given one) against the truth."""
    images = list(DistortedImage.objects.filter(study=study).order_by("id"))
    mos = mos or {image.id: image.mos for image in images}
    return rank_agreement([truth[i.id] for i in images], [mos[i.id] for i in images], [i.reference_id for i in images])


def bt_scores(study: Study) -> dict[int, float]:
    """A plain Bradley–Terry fit (MAP, no bootstrap, nothing stored) of the study's counted
    judgments on the Elo scale; images never judged sit at the prior's center, elo_initial."""
    log = bt_fit.judgment_log(study)
    if log.winners.size == 0:
        return {image_id: study.elo_initial for image_id in log.image_ids.tolist()}
    table = bradley_terry.PairTable.from_judgments(log.winners, log.losers, log.image_ids.size, log.ties)
    scores = bradley_terry.fit(table, m=study.elo_m, center=study.elo_initial)
    return dict(zip(log.image_ids.tolist(), scores.tolist(), strict=True))


def bt_agreement(study: Study, truth: dict[int, float]) -> RankAgreement:
    """SRCC/KRCC of a plain Bradley–Terry fit of the counted judgments against the truth."""
    return mos_agreement(study, truth, bt_scores(study))


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


# --- quality control after a simulation ---------------------------------------------


@dataclass(frozen=True)
class QcRecovery:
    """What excluding the raters QC flags recovers: agreement with the truth of
    the Elo MOS and of a Bradley–Terry fit before and after, and who was excluded.

    Bad and good are the behaviours of the simulation's raters; raters of an
    earlier run (a top-up) have no known behaviour and count as ``unknown``."""

    elo_before: RankAgreement
    bt_before: RankAgreement
    elo_after: RankAgreement
    bt_after: RankAgreement
    flagged: int  # raters QC flagged that were not excluded yet
    excluded_bad: int
    excluded_good: int
    excluded_unknown: int
    bad_raters: int  # bad raters of the simulation (random or one-side clickers)
    good_raters: int
    already_excluded_bad: int  # excluded before QC ran (a failed gold pair)
    already_excluded_good: int


QC_REASON = "flagged by quality control (simulate_study --apply-qc)"


def apply_qc(*, study: Study, report: SimulationReport) -> QcRecovery:
    """Exclude every synthetic rater that quality control flags (as an admin
    would, in one action), rebuild the Elo MOS from the log without them and
    measure both estimators against the report's truth before and after.

    "Before" is the MOS of the judgments counted before QC (votes of raters a
    failed gold pair already excluded are left out, as the recompute task does)."""
    truth, behaviours = report.truth, report.behaviours
    images = list(DistortedImage.objects.filter(study=study))
    counted, _ = replayed_states(study, images)
    elo_before = mos_agreement(study, truth, {i: state.mos(study.elo_initial) for i, state in counted.items()})
    bt_before = bt_agreement(study, truth)

    raters = list(Rater.objects.filter(study=study, synthetic=True))
    already = [rater for rater in raters if rater.excluded]
    qualities = selectors.rater_qualities(study, [rater for rater in raters if not rater.excluded])
    flagged = [rater for rater in raters if rater.id in qualities and qualities[rater.id].flagged]
    raters_set_excluded(raters=flagged, excluded=True, reason=QC_REASON)
    study_recompute_mos(study=study)  # the recompute task's work, done now (it is idempotent)

    def count(group, wanted) -> int:
        return sum(1 for rater in group if rater.id in behaviours and (behaviours[rater.id] == GOOD) == wanted)

    return QcRecovery(
        elo_before=elo_before,
        bt_before=bt_before,
        elo_after=mos_agreement(study, truth),
        bt_after=bt_agreement(study, truth),
        flagged=len(flagged),
        excluded_bad=count(flagged, False),
        excluded_good=count(flagged, True),
        excluded_unknown=sum(1 for rater in flagged if rater.id not in behaviours),
        bad_raters=sum(1 for behaviour in behaviours.values() if behaviour != GOOD),
        good_raters=sum(1 for behaviour in behaviours.values() if behaviour == GOOD),
        already_excluded_bad=count(already, False),
        already_excluded_good=count(already, True),
    )


# --- pair policies compared on scratch copies -----------------------------------------


POLICIES = (Study.PairPolicy.BALANCED, Study.PairPolicy.ACTIVE)
# The copied study settings: everything but identity, pairing and where the MOS comes from.
_NOT_COPIED = {"id", "slug", "name", "description", "created_at", "pair_policy", "mos_source"}
_REFERENCE_FILES = ("file", "thumbnail", "display")


@dataclass(frozen=True)
class PolicyPoint:
    """One policy's agreement with the truth at one checkpoint."""

    policy: str
    judgments_per_image: float
    judgments: int
    elo: RankAgreement
    bt: RankAgreement


@dataclass(frozen=True)
class Reach:
    """Where an estimator's curve first reaches the target (per-reference mean SRCC)."""

    label: str
    judgments_per_image: float | None  # linearly interpolated between checkpoints; None: not reached
    at_first_checkpoint: bool  # reached already at the first checkpoint: an upper bound
    ratio: float | None  # judgments_per_image / the largest checkpoint


@dataclass(frozen=True)
class PolicyComparison:
    """Balanced and active pairing on scratch copies of one study, with the
    same hidden truth, seed and raters' mix, measured at each checkpoint with
    the Elo MOS and a Bradley–Terry fit. The headline's target is what random
    (balanced) pairing with the Elo MOS reaches at the largest checkpoint,
    as the mean SRCC within references (MOS is identified only within one)."""

    study: str
    seed: int
    images: int
    references: int
    checkpoints: tuple[float, ...]
    points: tuple[PolicyPoint, ...]
    target: float
    reaches: tuple[Reach, ...]

    def point(self, policy: str, judgments_per_image: float) -> PolicyPoint:
        return next(p for p in self.points if p.policy == policy and p.judgments_per_image == judgments_per_image)

    def headlines(self) -> list[str]:
        n_max = _format_n(self.checkpoints[-1])
        lines = []
        for reach in self.reaches:
            if reach.judgments_per_image is None:
                tail = f"does not reach it by N={n_max} (not reached)"
            elif reach.at_first_checkpoint:
                tail = (
                    f"already reaches it at the first checkpoint N={_format_n(reach.judgments_per_image)}, "
                    f"i.e. at most {reach.ratio:.2f}x the judgments"
                )
            else:
                tail = f"first reaches it at N={reach.judgments_per_image:.1f}, i.e. {reach.ratio:.2f}x the judgments"
            lines.append(
                f"random pairing (balanced, Elo MOS) reaches SRCC {self.target:.4f} at N={n_max}; {reach.label} {tail}"
            )
        return lines


def _format_n(n: float) -> str:
    return f"{n:g}"


def judgments_to_reach(curve: Sequence[tuple[float, float]], target: float) -> tuple[float | None, bool]:
    """The first N at which a curve of (N, SRCC) points reaches ``target``,
    linearly interpolated between the checkpoints around the crossing; (None,
    False) when it never does and (first N, True) when the first point already does."""
    previous = None
    for n, value in curve:
        if math.isnan(value):
            continue
        if value >= target:
            if previous is None:
                return n, True
            n0, v0 = previous
            return n0 + (target - v0) / (value - v0) * (n - n0), False
        previous = (n, value)
    return None, False


def _parse_checkpoints(checkpoints: Sequence[float]) -> tuple[float, ...]:
    values = tuple(sorted({float(n) for n in checkpoints}))
    if not values or values[0] <= 0:
        raise ApplicationError("checkpoints are judgments per image: give at least one, all positive")
    return values


def compare_policies(
    *,
    study: Study,
    checkpoints: Sequence[float],
    seed: int = 0,
    spread: float = DEFAULT_SPREAD,
    mix: RaterMix = RaterMix(),
    policies: Sequence[str] = POLICIES,
    progress: Callable[[int], None] | None = None,
) -> PolicyComparison:
    """Simulate each pair policy on a scratch copy of ``study`` (its settings,
    references, distortion types and images, the image rows pointing at the
    same files, fresh Elo state), topping up to each checkpoint in turn, and
    measure the Elo MOS and a Bradley–Terry fit against the same hidden truth
    (``true_score`` of the seed and the image names, which the copies share).
    The study itself is only read; the copies are deleted afterwards, their
    rows only (the files stay: they are the study's)."""
    checkpoints = _parse_checkpoints(checkpoints)
    if Study.PairPolicy.BALANCED not in policies:
        raise ApplicationError("the comparison's baseline is the balanced policy: include it")
    if not DistortedImage.objects.filter(study=study).exists():
        raise ApplicationError(f"study {study.slug!r} has no images to simulate on")
    points = []
    for policy in policies:
        scratch = _scratch_copy(study, policy)
        try:
            for n in checkpoints:
                report = simulate_study(
                    study=scratch, judgments_per_image=n, seed=seed, spread=spread, mix=mix, progress=progress
                )
                points.append(PolicyPoint(policy, n, report.judgments_total, report.agreement, report.agreement_bt))
        finally:
            _scratch_delete(scratch, study)

    def curve(policy, estimator):
        return [(p.judgments_per_image, getattr(p, estimator).srcc_per_group) for p in points if p.policy == policy]

    target = curve(Study.PairPolicy.BALANCED, "elo")[-1][1]
    labels = {
        (Study.PairPolicy.ACTIVE, "bt"): "active + BT",
        (Study.PairPolicy.BALANCED, "bt"): "balanced + BT (the baseline)",
        (Study.PairPolicy.ACTIVE, "elo"): "active + Elo MOS",
    }
    reaches = []
    for (policy, estimator), label in labels.items():
        if policy not in policies:
            continue
        n, first = judgments_to_reach(curve(policy, estimator), target) if not math.isnan(target) else (None, False)
        reaches.append(Reach(label, n, first, None if n is None else n / checkpoints[-1]))
    images = DistortedImage.objects.filter(study=study)
    return PolicyComparison(
        study=study.slug,
        seed=seed,
        images=images.count(),
        references=images.values("reference_id").distinct().count(),
        checkpoints=checkpoints,
        points=tuple(points),
        target=target,
        reaches=tuple(reaches),
    )


def _scratch_slug(study: Study, policy: str) -> str:
    max_length = Study._meta.get_field("slug").max_length
    for _ in range(10):
        suffix = f"-cmp-{policy}-{secrets.token_hex(4)}"
        slug = study.slug[: max_length - len(suffix)].rstrip("-") + suffix
        if not Study.objects.filter(slug=slug).exists():
            return slug
    raise ApplicationError("could not find a free slug for a scratch study")


@transaction.atomic
def _scratch_copy(study: Study, policy: str) -> Study:
    """A new study with ``study``'s settings and images (rows only, pointing at
    the same files), no judgments, every image at elo_initial."""
    settings = {f.name: getattr(study, f.name) for f in Study._meta.concrete_fields if f.name not in _NOT_COPIED}
    slug = _scratch_slug(study, policy)
    scratch = Study.objects.create(
        slug=slug,
        name=f"Scratch copy of {study.slug} ({policy} pairing)",
        description=f"Made by simulate_study --compare-policies from study {study.slug!r}; deleted when it ends "
        "(safe to delete if left over). Its images are the original study's files.",
        pair_policy=policy,
        mos_source=Study.MosSource.ELO,
        **settings,
    )
    references = {}
    for reference in ReferenceImage.objects.filter(study=study).order_by("id"):
        references[reference.id] = ReferenceImage.objects.create(
            study=scratch,
            name=reference.name,
            original_filename=reference.original_filename,
            sha256=reference.sha256,
            width=reference.width,
            height=reference.height,
            # File fields by name: the copy points at the study's files, nothing is written.
            **{name: getattr(reference, name).name for name in _REFERENCE_FILES},
        )
    types = {}
    for distortion_type in DistortionType.objects.filter(study=study).order_by("id"):
        types[distortion_type.id] = DistortionType.objects.create(
            study=scratch,
            **{
                name: getattr(distortion_type, name)
                for name in ("code", "name", "category", "subtype", "generator", "levels")
            },
        )
    DistortedImage.objects.bulk_create(
        [
            DistortedImage(
                study=scratch,
                reference=references[image.reference_id],
                distortion_type=types[image.distortion_type_id],
                level=image.level,
                name=image.name,
                file=image.file.name,
                display=image.display.name,
                sha256=image.sha256,
                width=image.width,
                height=image.height,
                elo=study.elo_initial,
                judgment_count=0,
                recent_elo=[],
                mos=study.elo_initial,
                provenance=image.provenance,
                # The same scheduler tie-breaks in every copy: the policies differ only in their pairing.
                shuffle_key=image.shuffle_key,
            )
            for image in DistortedImage.objects.filter(study=study).order_by("id")
        ],
        batch_size=2000,
    )
    return scratch


def _scratch_delete(scratch: Study, original: Study) -> None:
    """Delete a scratch copy's rows (in the order their PROTECT foreign keys
    need). Files stay, except the pictures the copy made itself (its control
    pictures and display copies, stored under its own slug)."""
    shared = set(DistortedImage.objects.filter(study=original).values_list("display", flat=True))
    shared |= set(ReferenceImage.objects.filter(study=original).values_list("display", flat=True))
    own_files = set(ControlPicture.objects.filter(study=scratch).values_list("file", flat=True))
    own_files |= set(DistortedImage.objects.filter(study=scratch).values_list("display", flat=True))
    own_files |= set(ReferenceImage.objects.filter(study=scratch).values_list("display", flat=True))
    own_files = {name for name in own_files - shared if name}
    with transaction.atomic():
        Judgment.objects.filter(study=scratch).delete()
        Assignment.objects.filter(study=scratch).delete()
        ControlTrial.objects.filter(study=scratch).delete()
        ControlPicture.objects.filter(study=scratch).delete()
        BradleyTerryFit.objects.filter(study=scratch).delete()
        Rater.objects.filter(study=scratch).delete()
        DistortedImage.objects.filter(study=scratch).delete()
        ReferenceImage.objects.filter(study=scratch).delete()
        DistortionType.objects.filter(study=scratch).delete()
        scratch.delete()
    for name in sorted(own_files):
        default_storage.delete(name)
