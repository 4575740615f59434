"""Trials of the single-stimulus and ranking protocols (acr, dcr, rank-k): issuing and answering,
one transaction each, with the lock order of the pairwise path (the rater's row first).

Scheduling (issue 19):

* acr/dcr: balanced presentation counts: the next image is drawn at random among the
  ``CANDIDATES`` least-rated images the rater has not rated and no other rater holds open;
* rank-k: balanced k-subsets of one source: the reference of a least-shown image, and its k
  least-shown versions (random among equals), a set the rater has not ranked before;
* display order random per trial; a rater never meets an image (acr/dcr) or a set (rank-k)
  twice (a unique constraint on the trial's ``subset_key``).

Quotas, practice trials with feedback, hidden checks every ``gold_every`` trials, the timing
floor and the vote interval work as in the pairwise protocols. The hidden checks have a known
answer that nothing on the page gives away:

* acr/dcr: a trapping picture (ITU-T P.808 §6.3.8's "trapping questions"): one of the study's
  images degraded far past any level (the gold pairs' decoy), whose score must fall in the
  scale's lower half;
* rank-k: an obviously ordered set: the reference and k-1 ever stronger degradations of it
  (controls.ladder_picture), which must come out in order (one swap of neighbours allowed
  when k > 3, since the middle steps of a ladder can look alike on a poor screen).

A failed check voids the rater's session, as a failed gold pair does.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotation.db import atomic_with_retry
from annotation.models import (
    Assignment,
    ControlPicture,
    DistortedImage,
    Ranking,
    Rater,
    Rating,
    ReferenceImage,
    StimulusTrial,
    Study,
    ViewingReport,
)
from annotation.raters import rater_set_excluded
from annotation.rating import control_trials, stimuli
from annotation.rating.issued import Candidate, gold_slot, opaque_id
from annotation.rating.scales import Scale
from annotation.rating.votes import Seen, TooFast
from annotation.studies import study_require_judgments
from core.errors import ApplicationError, Conflict, Forbidden, Gone, NotFound

# Random choice among this many least-rated images: balanced counts, yet raters do not all
# walk the images in the same order.
CANDIDATES = 16
SINGLE_STIMULUS = (Study.Protocol.ACR, Study.Protocol.DCR)
STIMULUS_PROTOCOLS = (*SINGLE_STIMULUS, Study.Protocol.RANK_K)


class WrongProtocol(ApplicationError):
    """A vote whose shape does not fit the study's protocol (400, naming the field)."""

    code = "wrong_protocol"


@dataclass(frozen=True)
class IssuedStimulusTrial:
    """One acr/dcr/rank-k trial as the rater sees it (a check looks like a rated trial)."""

    token: str
    protocol: str
    phase: str  # "training" or "rating"
    reference: Candidate | None  # dcr only: the reference shown beside the image
    items: tuple[Candidate, ...]  # acr/dcr: one; rank-k: k, in display order
    scale: Scale | None
    expires_at: object
    done: int
    quota: int
    trial: StimulusTrial  # internal: the row (simulation reads its images)


@dataclass(frozen=True)
class StimulusOutcome:
    entry: Rating | Ranking | None  # None for a practice trial or a check
    feedback: dict | None
    done: int
    quota: int
    next: IssuedStimulusTrial | None = None


def _expiry(now):
    return now + timedelta(seconds=settings.PIPAL_ASSIGNMENT_TTL_SECONDS)


def _lock_rater(rater: Rater) -> Rater:
    return Rater.objects.select_for_update(no_key=True).get(pk=rater.pk)


def _check_study(study: Study, rater: Rater) -> None:
    if rater.study_id != study.id:
        raise Forbidden("this rater belongs to another study")
    study_require_judgments(study)
    if study.protocol not in STIMULUS_PROTOCOLS:
        raise WrongProtocol(f"study {study.slug!r} is {study.protocol}: it issues pairs")


def _display_name(item: ReferenceImage | DistortedImage) -> str:
    """The stored display copy of an image or reference, made and recorded on first use."""
    if item.display:
        return item.display.name
    name = stimuli.ensure_display(item, item.study.slug)
    type(item).objects.filter(pk=item.pk, display="").update(display=name)  # a concurrent request's copy stays
    return name


def _issued(study: Study, trial: StimulusTrial, rater: Rater) -> IssuedStimulusTrial:
    reference = None
    if study.protocol == Study.Protocol.DCR:
        reference = Candidate(opaque_id(trial.token, "reference"), _display_name(trial.reference))
    items = tuple(Candidate(opaque_id(trial.token, f"item{index}"), name) for index, name in enumerate(trial.files))
    return IssuedStimulusTrial(
        token=trial.token,
        protocol=study.protocol,
        phase="training" if trial.kind == StimulusTrial.Kind.TRAINING else "rating",
        reference=reference,
        items=items,
        scale=study.rating_scale,
        expires_at=trial.expires_at,
        done=rater.trials_done,
        quota=study.trials_per_rater,
        trial=trial,
    )


@atomic_with_retry
def stimulus_next(*, study: Study, rater: Rater, rng: random.Random | None = None) -> IssuedStimulusTrial | None:
    """The rater's open trial again while it is open, else a new one (practice, then rated trials
    with a hidden check in every ``gold_every``); None when they are done, which marks them finished."""
    _check_study(study, rater)
    rng = rng or random.Random()
    rater = _lock_rater(rater)
    if rater.excluded:
        return None
    now = timezone.now()
    current = StimulusTrial.objects.filter(rater=rater, status=Assignment.Status.OPEN, expires_at__gt=now).first()
    if current is not None:
        return _issued(study, current, rater)
    StimulusTrial.objects.filter(rater=rater, status=Assignment.Status.OPEN).update(status="retired")
    trial = None
    if rater.trials_done < study.trials_per_rater:
        if rater.practice_done < study.training_trials:
            trial = _control_trial(study, rater, StimulusTrial.Kind.TRAINING, rng, now)
        elif study.gold_every and rater.trials_done % study.gold_every == gold_slot(rater, study.gold_every):
            trial = _control_trial(study, rater, StimulusTrial.Kind.GOLD, rng, now)
        trial = trial or _rated_trial(study, rater, rng, now)
    if trial is None:
        if rater.finished_at is None:
            Rater.objects.filter(pk=rater.pk).update(finished_at=now)
        return None
    return _issued(study, trial, rater)


# --- choosing what to show -------------------------------------------------------------------


def _seen_keys(rater: Rater) -> set[str]:
    return set(
        StimulusTrial.objects.filter(rater=rater, kind=StimulusTrial.Kind.RATING).values_list("subset_key", flat=True)
    )


def _held_open(study: Study, now) -> set[int]:
    """Images other raters hold in open rated trials: shown to nobody else meanwhile, so the
    counts stay balanced when many raters work at once."""
    held: set[int] = set()
    for images in StimulusTrial.objects.filter(
        study=study, kind=StimulusTrial.Kind.RATING, status=Assignment.Status.OPEN, expires_at__gt=now
    ).values_list("images", flat=True):
        held.update(images)
    return held


def _subset_key(ids) -> str:
    return "-".join(str(image_id) for image_id in sorted(ids))


def _least_shown(study: Study, exclude: set[int], limit: int, reference_id: int | None = None) -> list[DistortedImage]:
    images = DistortedImage.objects.filter(study=study)
    if reference_id is not None:
        images = images.filter(reference_id=reference_id)
    # The few ids a rater has seen or others hold stay a small NOT IN list (a rater sees at most
    # trials_per_rater images); the order comes from the (study, judgment_count, shuffle_key) index.
    if exclude:
        images = images.exclude(id__in=exclude)
    return list(images.order_by("judgment_count", "shuffle_key")[:limit])


def _single_stimulus_choice(study: Study, rater: Rater, rng: random.Random, now) -> list[DistortedImage] | None:
    seen = {int(key) for key in _seen_keys(rater)}
    candidates = _least_shown(study, seen | _held_open(study, now), CANDIDATES)
    if not candidates:  # everything left is held by others: share rather than stop
        candidates = _least_shown(study, seen, CANDIDATES)
    if not candidates:
        return None
    fewest = candidates[0].judgment_count
    tied = [image for image in candidates if image.judgment_count == fewest]
    return [tied[rng.randrange(len(tied))]]


def _ranking_choice(study: Study, rater: Rater, rng: random.Random, now) -> list[DistortedImage] | None:
    k = study.rank_k
    seen = _seen_keys(rater)
    held = _held_open(study, now)
    seeds = _least_shown(study, held, CANDIDATES * 4) or _least_shown(study, set(), CANDIDATES * 4)
    rng.shuffle(seeds)
    seeds.sort(key=lambda image: image.judgment_count)
    tried: set[int] = set()
    for seed in seeds:
        if seed.reference_id in tried:
            continue
        tried.add(seed.reference_id)
        versions = list(DistortedImage.objects.filter(reference_id=seed.reference_id).order_by("judgment_count"))
        if len(versions) < k:
            continue
        for attempt in range(8):
            # The k least-shown versions (random among equals); when the rater has ranked that set
            # before, draw k from a pool that widens by one version per attempt.
            rng.shuffle(versions)
            versions.sort(key=lambda image: (image.id in held, image.judgment_count))
            chosen = rng.sample(versions[: min(len(versions), k + attempt)], k)
            if _subset_key(image.id for image in chosen) not in seen:
                return chosen
    return None


def _rated_trial(study: Study, rater: Rater, rng: random.Random, now) -> StimulusTrial | None:
    for _ in range(3):  # a concurrent request of the same rater may take the same set first
        if study.protocol == Study.Protocol.RANK_K:
            chosen = _ranking_choice(study, rater, rng, now)
        else:
            chosen = _single_stimulus_choice(study, rater, rng, now)
        if not chosen:
            return None
        rng.shuffle(chosen)
        for image in sorted(chosen, key=lambda image: image.pk):  # display copies stored in id order, as votes lock
            _display_name(image)
        try:
            with transaction.atomic():
                return StimulusTrial.objects.create(
                    study=study,
                    rater=rater,
                    kind=StimulusTrial.Kind.RATING,
                    token=secrets.token_urlsafe(24),
                    reference_id=chosen[0].reference_id,
                    images=[image.id for image in chosen],
                    subset_key=_subset_key(image.id for image in chosen),
                    files=[image.display.name for image in chosen],
                    issued_at=now,
                    expires_at=_expiry(now),
                )
        except IntegrityError:
            continue
    raise Conflict("could not reserve a trial; please retry")


def _lower_half(scale: Scale) -> dict:
    return {"low": scale.low, "high": scale.low + (scale.high - scale.low) / 2}


def _upper_half(scale: Scale) -> dict:
    return {"low": scale.high - (scale.high - scale.low) / 2, "high": scale.high}


def _control_trial(study: Study, rater: Rater, kind: str, rng: random.Random, now) -> StimulusTrial | None:
    references = list(ReferenceImage.objects.filter(study=study, distorted__isnull=False).distinct().order_by("id"))
    if not references:
        return None
    reference = references[rng.randrange(len(references))]
    if study.protocol == Study.Protocol.RANK_K:
        steps = list(range(study.rank_k))  # 0: the reference itself, then ever stronger
        files = [control_trials.ladder_picture(reference, step) for step in steps]
        shown = steps[:]
        rng.shuffle(shown)
        construction, expected = "ladder", {"order": sorted(range(len(shown)), key=lambda index: shown[index])}
        files = [files[step] for step in shown]
    else:
        scale = study.rating_scale
        practice_number = rater.practice_done if kind == StimulusTrial.Kind.TRAINING else None
        if practice_number == 0:
            # The pristine source: the top half of the scale (for dcr: the reference beside itself).
            construction, files, expected = "reference", [_display_name(reference)], _upper_half(scale)
        else:
            images = list(DistortedImage.objects.filter(reference=reference).order_by("id"))
            image = images[rng.randrange(len(images))]
            decoy = control_trials.picture(reference, ControlPicture.Kind.DECOY, image)
            construction, files, expected = "decoy", [decoy], _lower_half(scale)
    return StimulusTrial.objects.create(
        study=study,
        rater=rater,
        kind=kind,
        token=secrets.token_urlsafe(24),
        reference=reference,
        files=files,
        construction=construction,
        expected=expected,
        issued_at=now,
        expires_at=_expiry(now),
    )


# --- answering ------------------------------------------------------------------------------


def _check_score(study: Study, score) -> float:
    scale = study.rating_scale
    if score is None:
        raise WrongProtocol(
            f"this {study.protocol} study takes a score on its scale ({scale.describe()})",
            fields={"score": ["required"]},
        )
    if not scale.accepts(score):
        message = f"score {score!r} is outside the scale: {scale.describe()}"
        raise ApplicationError(message, code="outside_scale", fields={"score": [message]})
    return float(score)


def _check_order(trial: StimulusTrial, ids: tuple[str, ...], order) -> list[int]:
    """The ranking as indexes into the trial's items, best first: a permutation of the ids shown."""
    if order is None:
        raise WrongProtocol("this rank-k study takes an order: the item ids best first", fields={"order": ["required"]})
    if len(order) != len(ids) or set(order) != set(ids) or len(set(order)) != len(order):
        message = f"order must list each of the {len(ids)} items shown exactly once (best first)"
        raise ApplicationError(message, code="not_a_permutation", fields={"order": [message]})
    return [ids.index(item) for item in order]


def _discordant_pairs(order: list[int], expected: list[int]) -> int:
    position = {item: index for index, item in enumerate(order)}
    return sum(
        1
        for a in range(len(expected))
        for b in range(a + 1, len(expected))
        if position[expected[a]] > position[expected[b]]
    )


def answer_passed(trial: StimulusTrial, answer) -> bool:
    """Whether a control trial's answer is its expected one (see the module docstring)."""
    if "order" in trial.expected:
        allowed = 1 if len(answer) > 3 else 0
        return _discordant_pairs(answer, trial.expected["order"]) <= allowed
    return trial.expected["low"] <= answer <= trial.expected["high"]


def failed_checks(study: Study, raters) -> dict[int, int]:
    """Per rater, the hidden checks answered wrongly (the rater-quality figures' "failed gold")."""
    failed: dict[int, int] = {}
    checks = StimulusTrial.objects.filter(
        study=study, rater__in=raters, kind=StimulusTrial.Kind.GOLD, status=Assignment.Status.VOTED
    )
    for trial in checks.only("rater_id", "expected", "answer"):
        if not answer_passed(trial, trial.answer):
            failed[trial.rater_id] = failed.get(trial.rater_id, 0) + 1
    return failed


def _feedback(study: Study, trial: StimulusTrial, answer, passed: bool) -> dict:
    if "order" in trial.expected:
        message = (
            "Correct: the sharpest, cleanest image first and the most degraded last."
            if passed
            else "Not quite: these versions were degraded step by step; the cleanest comes first and the most "
            "degraded last."
        )
        return {"correct": passed, "message": message, "expected_order": trial.expected["order"]}
    scale = study.rating_scale
    low, high = trial.expected["low"], trial.expected["high"]
    fitting = [category.label for category in scale.categories if low <= category.value <= high]
    what = "the reference itself, undegraded" if trial.construction == "reference" else "a heavily degraded image"
    message = f"{'Correct' if passed else 'Not quite'}: this was {what}; a fitting answer is {' or '.join(fitting)}."
    return {"correct": passed, "message": message, "expected_scores": [trial.expected["low"], trial.expected["high"]]}


def stimulus_submit(
    *,
    study: Study,
    rater: Rater,
    token: str,
    score: float | None = None,
    order: list[str] | None = None,
    response_ms: int,
    seen=None,
    enforce_rate_limit: bool = True,
    with_next: bool = True,
    rng: random.Random | None = None,
) -> StimulusOutcome:
    """Record a score (acr/dcr) or an order (rank-k: the trial's item ids, best first) on an issued
    trial; each trial counts once. With ``with_next``, the answer carries the rater's next trial."""
    entry, feedback = _submit_locked(
        study=study,
        rater=rater,
        token=token,
        score=score,
        order=order,
        response_ms=response_ms,
        seen=seen,
        enforce_rate_limit=enforce_rate_limit,
    )
    following = stimulus_next(study=study, rater=rater, rng=rng) if with_next else None
    rater.refresh_from_db(fields=["trials_done", "practice_done"])
    return StimulusOutcome(
        entry=entry, feedback=feedback, done=rater.trials_done, quota=study.trials_per_rater, next=following
    )


@atomic_with_retry
def _submit_locked(*, study, rater, token, score, order, response_ms, seen, enforce_rate_limit):
    _check_study(study, rater)
    seen = seen or Seen()
    rater = _lock_rater(rater)
    if seen.viewing_id is not None and not ViewingReport.objects.filter(pk=seen.viewing_id, rater=rater).exists():
        raise NotFound("viewing: not one of this rater's viewing reports", fields={"viewing": ["unknown"]})
    trial = StimulusTrial.objects.select_for_update(no_key=True).filter(token=token, study=study).first()
    if trial is None:
        raise NotFound("unknown assignment for this study", fields={"assignment": ["unknown"]})
    if trial.rater_id != rater.id:
        raise Forbidden("this assignment was issued to another rater", fields={"assignment": ["not yours"]})
    if trial.status == Assignment.Status.VOTED:
        raise Conflict("this assignment has already been answered; a trial counts once", code="already_voted")
    now = timezone.now()
    if trial.status == Assignment.Status.RETIRED or trial.expires_at <= now:
        raise Gone("this assignment has expired; fetch a new trial", fields={"assignment": ["expired"]})
    ids = tuple(opaque_id(trial.token, f"item{index}") for index in range(len(trial.files)))
    if study.protocol == Study.Protocol.RANK_K:
        if score is not None:
            raise WrongProtocol("this rank-k study takes an order, not a score", fields={"score": ["not accepted"]})
        answer = _check_order(trial, ids, order)
    else:
        if order is not None:
            message = f"this {study.protocol} study takes a score, not an order"
            raise WrongProtocol(message, fields={"order": ["not accepted"]})
        answer = _check_score(study, score)

    interval = timedelta(milliseconds=study.min_vote_interval_ms)
    if enforce_rate_limit and rater.last_vote_at and now - rater.last_vote_at < interval:
        raise TooFast(f"votes are limited to one per {study.min_vote_interval_ms} ms; please slow down")
    trial.status, trial.answered_at = Assignment.Status.VOTED, now
    trial.response_ms, trial.visible_ms, trial.native = response_ms, seen.visible_ms, seen.native
    if trial.kind != StimulusTrial.Kind.RATING:
        trial.answer = answer
        trial.save(update_fields=["status", "answered_at", "response_ms", "visible_ms", "native", "answer"])
        passed = answer_passed(trial, answer)
        counter = "practice_done" if trial.kind == StimulusTrial.Kind.TRAINING else "trials_done"
        Rater.objects.filter(pk=rater.pk).update(**{counter: F(counter) + 1, "last_vote_at": now})
        if trial.kind == StimulusTrial.Kind.TRAINING:
            return None, _feedback(study, trial, answer, passed)
        if not passed:
            # P.808: a session that fails a trapping question is not used.
            rater_set_excluded(rater=rater, excluded=True, reason="failed a hidden check")
        return None, None
    trial.save(update_fields=["status", "answered_at", "response_ms", "visible_ms", "native"])
    increments = {"trials_done": 1, "votes_cast": 1}
    if response_ms is not None:
        increments["votes_timed"] = 1
        increments["votes_fast"] = int(response_ms < study.min_response_ms)
    if seen.native is not None:
        increments["votes_native_known"] = 1
        increments["votes_native"] = int(seen.native)
    Rater.objects.filter(pk=rater.pk).update(
        last_vote_at=now, **{name: F(name) + value for name, value in increments.items()}
    )
    shown = {"response_ms": response_ms, "visible_ms": seen.visible_ms, "native": seen.native}
    if study.protocol == Study.Protocol.RANK_K:
        ordered = [trial.images[index] for index in answer]
        _update_borda(ordered)
        entry = Ranking.objects.create(
            study=study,
            rater=rater,
            trial=trial,
            reference_id=trial.reference_id,
            order=ordered,
            viewing_id=seen.viewing_id,
            **shown,
        )
    else:
        _update_mean(trial.images[0], answer)
        entry = Rating.objects.create(
            study=study,
            rater=rater,
            trial=trial,
            image_id=trial.images[0],
            score=answer,
            viewing_id=seen.viewing_id,
            **shown,
        )
    return entry, None


def _update_mean(image_id: int, score: float) -> None:
    """The image's MOS and SD over its ratings so far (Welford's update of the running mean and
    variance; the SD is kept as mos_std, the sum of squared deviations recovered from it)."""
    image = DistortedImage.objects.select_for_update(no_key=True).get(pk=image_id)
    n = image.judgment_count
    mean = image.mos if n else 0.0
    squares = (image.mos_std or 0.0) ** 2 * (n - 1) if n > 1 else 0.0
    n += 1
    delta = score - mean
    mean += delta / n
    squares += delta * (score - mean)
    image.judgment_count, image.mos = n, mean
    image.mos_std = (squares / (n - 1)) ** 0.5 if n > 1 else None
    image.save(update_fields=["judgment_count", "mos", "mos_std"])


def borda(position: int, k: int) -> float:
    """A ranked item's normalised Borda score: 1 for first, 0 for last of k."""
    return (k - 1 - position) / (k - 1)


def _update_borda(ordered: list[int]) -> None:
    """Each ranked image's MOS: its mean normalised Borda score (higher is better), so the
    benchmark's correlations keep their sign; the Plackett–Luce fit comes with the export."""
    k = len(ordered)
    position = {image_id: index for index, image_id in enumerate(ordered)}
    images = list(DistortedImage.objects.select_for_update(no_key=True).filter(id__in=ordered).order_by("id"))
    for image in images:
        n = image.judgment_count
        mean = image.mos if n else 0.0
        image.judgment_count = n + 1
        image.mos = mean + (borda(position[image.id], k) - mean) / (n + 1)
    DistortedImage.objects.bulk_update(images, ["judgment_count", "mos"])  # one statement for the k rows
