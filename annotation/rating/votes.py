"""Recording votes: one transaction each, with the next trial (see trials.py for the lock order)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from annotation.analysis import elo, rater_counts
from annotation.db import atomic_with_retry
from annotation.models import (
    Assignment,
    ControlTrial,
    DistortedImage,
    Judgment,
    Rater,
    Study,
    ViewingReport,
)
from annotation.raters import rater_set_excluded
from annotation.rating import hot_path
from annotation.rating.issued import IssuedTrial
from annotation.rating.trials import lock_rater, pair_next
from annotation.studies import study_require_judgments
from core.errors import ApplicationError, Conflict, Forbidden, Gone, NotFound


def _apply_judgment(
    *,
    study: Study,
    image_a_id: int,
    image_b_id: int,
    a_score: float,
    rater: Rater | None = None,
    assignment: Assignment | None = None,
    response_ms: int | None = None,
    seen: Seen | None = None,
    source: str = Judgment.Source.LIVE,
) -> Judgment:
    """Apply one judgment inside the caller's transaction: lock both image rows in id
    order, run the Elo step (``a_score`` is S_A: 1, 0, or 0.5 for a tie), append to the log."""
    if image_a_id == image_b_id:
        raise ApplicationError("an image cannot be compared with itself")
    locked = {
        image.id: image
        for image in DistortedImage.objects.select_for_update(no_key=True)
        .filter(id__in=(image_a_id, image_b_id))
        .order_by("id")
    }
    if len(locked) != 2:
        raise NotFound("image not found")
    a, b = locked[image_a_id], locked[image_b_id]
    if a.study_id != study.id or b.study_id != study.id:
        raise ApplicationError("both images must belong to this study")
    if a.reference_id != b.reference_id:
        raise ApplicationError(f"{a.name} and {b.name} have different references; pairs never cross references")

    params = study.elo_params
    states = {image.id: elo.RatingState(image.elo, image.judgment_count, list(image.recent_elo)) for image in (a, b)}
    (step,) = elo.apply(states, [(a.id, b.id, a_score)], params)
    for image in (a, b):
        state = states[image.id]
        image.elo, image.judgment_count, image.recent_elo = state.elo, state.judgments, state.recent
        image.mos = state.mos(params.initial)
        image.save(update_fields=["elo", "judgment_count", "recent_elo", "mos"])
    seen = seen or Seen()
    if rater is not None:
        increments = rater_counts.vote_increments(
            choice="tie" if a_score == 0.5 else "left" if a_score else "right",
            response_ms=response_ms,
            native=seen.native,
            elo_a=step.a_before,
            elo_b=step.b_before,
            fast_below_ms=study.min_response_ms,
            clear_gap=study.agreement_min_gap,
        )
        Rater.objects.filter(pk=rater.pk).update(**{name: F(name) + value for name, value in increments.items()})
    return Judgment.objects.create(
        study=study,
        rater=rater,
        assignment=assignment,
        image_a=a,
        image_b=b,
        winner=None if a_score == 0.5 else a if a_score else b,
        tie=a_score == 0.5,
        elo_a_before=step.a_before,
        elo_a_after=step.a_after,
        elo_b_before=step.b_before,
        elo_b_after=step.b_after,
        response_ms=response_ms,
        visible_ms=seen.visible_ms,
        native=seen.native,
        viewing_id=seen.viewing_id,
        source=source,
        issued_at=assignment.issued_at if assignment else None,
    )


class TooFast(ApplicationError):
    status_code = 429
    code = "too_fast"


@dataclass(frozen=True)
class Seen:
    """How the rater saw the pair, as the rating page reports it with the vote."""

    visible_ms: int | None = None  # time fully visible at native size before the vote
    native: bool | None = None  # every image one image pixel per device pixel
    viewing_id: int | None = None  # the rater's ViewingReport in force


@dataclass(frozen=True)
class VoteOutcome:
    judgment: Judgment | None  # None for a control trial
    feedback: dict | None  # practice pairs only
    done: int
    quota: int
    next: IssuedTrial | None = None  # the rater's next trial (None: finished or excluded)


CHOICES = ("left", "right", "tie")
# What practice feedback says about each construction (control_trials.py).
PRACTICE_LESSONS = {
    "sharp": "The other image looks crisper, but its fine detail is not the reference's: judge closeness to the "
    "reference, not sharpness.",
    "levels": "The other image is the same distortion, stronger.",
    "mos_gap": "Most raters so far chose it too.",
    "decoy": "The other image is blurred and noisy.",
}


def vote_submit(
    *,
    study: Study,
    rater: Rater,
    assignment_token: str,
    choice: str,
    response_ms: int,
    seen: Seen | None = None,
    enforce_rate_limit: bool = True,
    with_next: bool = True,
) -> VoteOutcome:
    """Record a rater's choice (left, right, or tie where the study allows it) on an issued
    trial; each assignment counts once. Then, with ``with_next``, issue the rater's next
    trial so the answer carries it (one request per trial).

    The vote is one transaction; the next trial is issued after it commits, so the image
    rows are not held locked meanwhile.
    """
    seen = seen or Seen()
    if enforce_rate_limit:
        # The common case in a few SQL statements (hot_path): the vote and the next real pair in
        # one transaction. Everything else (control trials, refusals) goes the ORM way below.
        try:
            fast = _fast_vote(study, rater, assignment_token, choice, response_ms, seen, with_next)
        except hot_path.Fallback:  # rolled back: the ORM path below says why it refuses, or records it
            fast = hot_path.SLOW
        if fast is not hot_path.SLOW:
            judgment, done, following = fast
            if with_next and following is None:
                following = pair_next(study=study, rater=rater)
            return VoteOutcome(
                judgment=judgment, feedback=None, done=done, quota=study.trials_per_rater, next=following
            )
    judgment, feedback = _vote_locked(
        study=study,
        rater=rater,
        assignment_token=assignment_token,
        choice=choice,
        response_ms=response_ms,
        seen=seen,
        enforce_rate_limit=enforce_rate_limit,
    )
    following = pair_next(study=study, rater=rater) if with_next else None
    rater.refresh_from_db(fields=["trials_done", "practice_done"])
    return VoteOutcome(
        judgment=judgment, feedback=feedback, done=rater.trials_done, quota=study.trials_per_rater, next=following
    )


@atomic_with_retry
def _fast_vote(study, rater, token, choice, response_ms, seen, with_next):
    return hot_path.vote(
        study=study,
        rater=rater,
        token=token,
        choice=choice,
        response_ms=response_ms,
        seen=seen,
        rng=random.Random(),
        issue_next=with_next,
    )


def _check_choice(study: Study, choice: str) -> None:
    """A valid choice (the API's own validation) that the study may still not offer: a tie where
    the study is forced choice conflicts with its settings (409, like a vote on a closed study)."""
    if choice not in CHOICES:
        raise ApplicationError(f"choice must be one of {', '.join(CHOICES)}", fields={"choice": ["invalid"]})
    if choice == "tie" and not study.allow_ties:
        message = "this study is forced choice: 'tie' (can't tell) is not offered; choose 'left' or 'right'"
        raise Conflict(message, code="ties_not_allowed", fields={"choice": [message]})


@atomic_with_retry
def _vote_locked(
    *,
    study: Study,
    rater: Rater,
    assignment_token: str,
    choice: str,
    response_ms: int,
    seen: Seen,
    enforce_rate_limit: bool,
) -> tuple[Judgment | None, dict | None]:
    """Locks, in this order: the rater (rate limit; the order pair_next locks in too),
    the assignment (or control trial), then both images in id order."""
    study_require_judgments(study)
    rater = lock_rater(rater)
    if seen.viewing_id is not None and not ViewingReport.objects.filter(pk=seen.viewing_id, rater=rater).exists():
        raise NotFound("viewing: not one of this rater's viewing reports", fields={"viewing": ["unknown"]})
    item = (
        Assignment.objects.select_for_update(no_key=True).filter(token=assignment_token, study=study).first()
        or ControlTrial.objects.select_for_update(no_key=True).filter(token=assignment_token, study=study).first()
    )
    if item is None:
        raise NotFound("unknown assignment for this study", fields={"assignment": ["unknown"]})
    if item.rater_id != rater.id:
        raise Forbidden("this assignment was issued to another rater", fields={"assignment": ["not yours"]})
    if item.status == Assignment.Status.VOTED:
        raise Conflict("this assignment has already been voted on; a pair counts once", code="already_voted")
    now = timezone.now()
    if item.status == Assignment.Status.RETIRED or item.expires_at <= now:
        raise Gone("this assignment has expired; fetch a new pair", fields={"assignment": ["expired"]})
    _check_choice(study, choice)

    interval = timedelta(milliseconds=study.min_vote_interval_ms)
    if enforce_rate_limit and rater.last_vote_at and now - rater.last_vote_at < interval:
        raise TooFast(f"votes are limited to one per {study.min_vote_interval_ms} ms; please slow down")
    rater.last_vote_at = now
    rater.save(update_fields=["last_vote_at"])

    judgment = feedback = None
    if isinstance(item, Assignment):
        judgment = _apply_judgment(
            study=study,
            image_a_id=item.left_id,
            image_b_id=item.right_id,
            a_score={"left": 1.0, "right": 0.0, "tie": 0.5}[choice],
            rater=rater,
            assignment=item,
            response_ms=response_ms,
            seen=seen,
        )
        item.status = Assignment.Status.VOTED
        item.save(update_fields=["status"])
    else:
        item.choice, item.response_ms, item.answered_at = choice, response_ms, now
        item.visible_ms, item.native = seen.visible_ms, seen.native
        item.status = Assignment.Status.VOTED
        item.save(update_fields=["choice", "response_ms", "answered_at", "visible_ms", "native", "status"])
        counter = "practice_done" if item.kind == ControlTrial.Kind.TRAINING else "trials_done"
        Rater.objects.filter(pk=rater.pk).update(**{counter: F(counter) + 1})
        if item.kind == ControlTrial.Kind.TRAINING:
            lesson = PRACTICE_LESSONS.get(item.construction, "")
            better = (
                "more natural and realistic"
                if study.protocol == Study.Protocol.PAIRWISE_NR
                else "closer to the reference"
            )
            feedback = {
                "correct": item.passed,
                "correct_side": item.correct_side,
                "message": (
                    f"Correct: the {item.correct_side} image is {better}. {lesson}"
                    if item.passed
                    else f"Not quite: the {item.correct_side} image is {better}. {lesson}"
                ).strip(),
            }
        elif not item.passed:
            # P.808: a session with a failed gold question is not used (a tie on an obvious pair fails too).
            rater_set_excluded(rater=rater, excluded=True, reason="failed a gold pair")
    return judgment, feedback


@atomic_with_retry
def judgment_record(
    *, study: Study, image_a_id: int, image_b_id: int, a_wins: bool, rater: Rater | None = None, tie: bool = False
) -> Judgment:
    """Apply one judgment on two images directly (no assignment): the engine
    under live votes, used by tools and the concurrency tests."""
    study_require_judgments(study, action="replay")
    score = 0.5 if tie else float(a_wins)
    return _apply_judgment(study=study, image_a_id=image_a_id, image_b_id=image_b_id, a_score=score, rater=rater)
