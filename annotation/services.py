"""Business actions of the study: each a function, each one transaction.

Views, commands and tasks call these and nothing else writes to the study's
tables. Concurrency: a vote locks its rater, its assignment, then both image
rows in id order; issuing a pair locks the rater first too, so the open-pair
limit and the quota hold under simultaneous requests (everyone locks in that
order, so no deadlock); on SQLite the IMMEDIATE transaction serialises writers
and ``atomic_with_retry`` absorbs lock time-outs.

Row locks are ``FOR NO KEY UPDATE`` (``no_key=True``): votes change no key
column, and this lock does not conflict with the ``FOR KEY SHARE`` locks that
PostgreSQL takes on images when an assignment or judgment referencing them is
inserted (a plain ``FOR UPDATE`` deadlocks against those, since an assignment
references its left image before its right one, not in id order).
"""

from __future__ import annotations

import base64
import hashlib
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotation import control_trials, elo, hot_path, rater_counts, scheduler, stimuli
from annotation.db import atomic_with_retry
from annotation.exceptions import ApplicationError, Conflict, Forbidden, Gone, LabelsStudy, NotFound
from annotation.models import (
    Assignment,
    ControlTrial,
    DistortedImage,
    Judgment,
    Rater,
    ReferenceImage,
    Study,
    ViewingReport,
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- studies -------------------------------------------------------------------


STUDY_OPTIONS = (
    "trials_per_rater",
    "training_trials",
    "gold_every",
    "min_response_ms",
    "min_vote_interval_ms",
    "completion_code",
    "completion_url",
    "screen_out_code",
    "screen_out_url",
    "allow_resume",
    "allow_ties",
    "narrow_layout",
    "screen_calibration",
    "max_non_native_share",
    "min_px_per_degree",
    "instructions",
    "pair_policy",
    "bt_scope",
    "bt_rounds",
    "target_ci_width",
    "target_kendall",
)


def study_create(
    *,
    slug: str,
    name: str = "",
    elo_m: float = elo.DEFAULT_M,
    elo_k: float = elo.DEFAULT_K,
    elo_initial: float = elo.DEFAULT_INITIAL,
    mos_window: int = elo.DEFAULT_MOS_WINDOW,
    **options,
) -> Study:
    """A new study; ``options`` may set any of STUDY_OPTIONS (defaults otherwise)."""
    if Study.objects.filter(slug=slug).exists():
        raise Conflict(f"a study with slug {slug!r} already exists")
    unknown = set(options) - set(STUDY_OPTIONS)
    if unknown:
        raise ApplicationError(f"unknown study option(s): {', '.join(sorted(unknown))}")
    elo.EloParams(m=elo_m, k=elo_k, initial=elo_initial, mos_window=mos_window)  # validates
    study = Study(
        slug=slug,
        name=name or slug,
        elo_m=elo_m,
        elo_k=elo_k,
        elo_initial=elo_initial,
        mos_window=mos_window,
        **{key: value for key, value in options.items() if value is not None},
    )
    study.full_clean()
    study.save()
    return study


LABELS_REFUSALS = {
    "vote": "takes no votes: its MOS comes from imported labels (import_labels), not from judgments; "
    "collect votes in a study of its own",
    "replay": "takes no judgments: its MOS comes from imported labels (import_labels), which a replay would overwrite",
    "recompute": "has no judgment log to recompute: its MOS comes from imported labels (import_labels), which "
    "a replay would overwrite",
}


def study_require_judgments(study: Study, *, action: str = "vote") -> None:
    """Refuse to vote on, replay into or recompute a study whose MOS comes from
    imported labels (``action``: vote, replay or recompute)."""
    if study.mos_source == Study.MosSource.LABELS:
        raise LabelsStudy(f"study {study.slug!r} {LABELS_REFUSALS[action]}")


# --- raters --------------------------------------------------------------------


# Crockford's base32 (no I, L, O, U): codes people copy by hand without misreading.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12  # 60 bits: unguessable, and checkable against the rater list


def new_completion_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def rater_create(
    *, study: Study, external_id: str, synthetic: bool = False, consented: bool = False
) -> tuple[Rater, str]:
    """A new rater and their API token (returned once; only its hash is kept). Without a
    study-wide completion code the rater gets a unique code of their own, shown when they finish."""
    study_require_judgments(study)
    external_id = external_id.strip()
    if not external_id:
        raise ApplicationError("external_id must not be empty", fields={"external_id": ["must not be empty"]})
    token = secrets.token_urlsafe(32)
    for _ in range(3):  # a code clash (1 in 2^60 per pair) or a concurrent join of the same id
        try:
            with transaction.atomic():
                rater = Rater.objects.create(
                    study=study,
                    external_id=external_id,
                    token_hash=hash_token(token),
                    synthetic=synthetic,
                    consented_at=timezone.now() if consented else None,
                    completion_code="" if study.completion_code else new_completion_code(),
                )
            return rater, token
        except IntegrityError:
            if Rater.objects.filter(study=study, external_id=external_id).exists():
                break
    raise Conflict(
        f"rater {external_id!r} has already joined study {study.slug!r}", fields={"external_id": ["already joined"]}
    )


@dataclass(frozen=True)
class Joined:
    rater: Rater
    token: str
    resumed: bool


@atomic_with_retry
def rater_join(*, study: Study, external_id: str, consented: bool = False) -> Joined:
    """Join a study, or — the same external id again, from a new browser or after cleared
    cookies — resume that rater where they stopped (progress, quota, pairs seen) with a new
    token, unless the study turns resume off. The old token stops working."""
    study_require_judgments(study)
    existing = Rater.objects.select_for_update(no_key=True).filter(study=study, external_id=external_id.strip()).first()
    if existing is None:
        rater, token = rater_create(study=study, external_id=external_id, consented=consented)
        return Joined(rater, token, resumed=False)
    if not study.allow_resume:
        raise Conflict(
            f"{existing.external_id!r} has already taken part in this study, which allows one session per id",
            code="already_joined",
            fields={"external_id": ["already taken part"]},
        )
    token = secrets.token_urlsafe(32)
    existing.token_hash = hash_token(token)
    existing.consented_at = existing.consented_at or (timezone.now() if consented else None)
    existing.save(update_fields=["token_hash", "consented_at"])
    return Joined(existing, token, resumed=True)


def rater_code(rater: Rater, study: Study) -> str:
    """The code a finished rater gets: the study's own, or theirs."""
    return study.completion_code or rater.completion_code


@atomic_with_retry
def raters_set_excluded(*, raters: Iterable[Rater], excluded: bool, reason: str = "") -> int:
    """Exclude raters' votes from the MOS (or bring them back), all or none.
    The MOS is then rebuilt from the judgment log by the recompute task, once
    per study, after this commits. Returns how many raters changed."""
    changed = list(
        Rater.objects.select_for_update(no_key=True)
        .filter(pk__in=[rater.pk for rater in raters])
        .exclude(excluded=excluded)
        .order_by("pk")
    )
    for rater in changed:
        rater.excluded, rater.exclusion_reason = excluded, reason if excluded else ""
        rater.save(update_fields=["excluded", "exclusion_reason"])
    voted = Judgment.objects.filter(rater__in=changed).values_list("study_id", flat=True).distinct()
    for study_id in sorted(set(voted)):
        _recompute_after_commit(study_id)
    return len(changed)


def rater_set_excluded(*, rater: Rater, excluded: bool, reason: str = "") -> bool:
    """One rater: see raters_set_excluded. Returns whether anything changed."""
    return raters_set_excluded(raters=[rater], excluded=excluded, reason=reason) == 1


def _recompute_after_commit(study_id: int) -> None:
    from annotation.tasks import recompute_mos  # tasks import services

    transaction.on_commit(lambda: recompute_mos.delay(study_id))


# --- trials: what a rater sees next ------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    id: str  # opaque, per assignment and side: nothing links it to an image or tells a check
    file: str  # the stored name of the picture shown (a stimulus; stimuli.py)


@dataclass(frozen=True)
class IssuedTrial:
    """One trial as the rater sees it: a real pair and a gold pair have the same fields,
    shapes and kinds of value (only practice is announced, since it gives feedback)."""

    token: str
    phase: str  # "training" or "rating"
    reference: Candidate
    left: Candidate
    right: Candidate
    expires_at: object
    done: int
    quota: int
    allow_tie: bool = False
    assignment: Assignment | None = None  # internal: the real pair
    control: ControlTrial | None = None  # internal: the control pair


@dataclass(frozen=True)
class RaterProgress:
    training_done: int  # practice pairs answered
    rated: int  # rated trials: real pairs and gold pairs voted


def rater_progress(rater: Rater) -> RaterProgress:
    """Progress from the counters on the rater's row (kept by the vote paths; one trial is open
    at a time, so what was answered is what counts). The caller passes a fresh row."""
    return RaterProgress(training_done=rater.practice_done, rated=rater.trials_done)


def _gold_slot(rater: Rater, every: int) -> int:
    """Where in each block of ``every`` trials this rater's gold pair sits:
    fixed per rater, never the first trial, unpredictable across raters."""
    if every <= 1:
        return 0
    return 1 + int(hashlib.sha256(f"gold:{rater.pk}".encode()).hexdigest(), 16) % (every - 1)


def opaque_id(token: str, part: str) -> str:
    """A per-assignment id for one picture of a trial (22 url-safe characters, like any other)."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"{token}:{part}".encode()).digest())[:22].decode()


def _open_trial(rater: Rater, now) -> Assignment | ControlTrial | None:
    """The rater's open, unexpired trial (at most one exists: a trial leaves by a vote or by expiry)."""
    live = {"rater": rater, "status": Assignment.Status.OPEN, "expires_at__gt": now}
    return (
        Assignment.objects.select_related("reference", "left", "right").filter(**live).first()
        or ControlTrial.objects.select_related("reference").filter(**live).first()
    )


def _retire_expired(rater: Rater, now) -> None:
    expired = {"rater": rater, "status": Assignment.Status.OPEN, "expires_at__lte": now}
    Assignment.objects.filter(**expired).update(status=Assignment.Status.RETIRED)
    ControlTrial.objects.filter(**expired).update(status=Assignment.Status.RETIRED)


def _finish(rater: Rater, now) -> None:
    if rater.finished_at is None and not rater.excluded:
        rater.finished_at = now
        rater.save(update_fields=["finished_at"])


@atomic_with_retry
def pair_next(*, study: Study, rater: Rater, rng: random.Random | None = None) -> IssuedTrial | None:
    """The rater's trial: the open one again while it is open (a reload, a second tab or a
    repeated call cannot skip a pair), else a new one; None when they are done (quota
    reached, every pair seen, or excluded), which marks a rater who finished.

    Order: ``training_trials`` practice pairs with feedback, then real pairs from the
    scheduler with one gold pair in every ``gold_every`` trials.
    """
    if rater.study_id != study.id:
        raise Forbidden("this rater belongs to another study")
    study_require_judgments(study)
    rng = rng or random.Random()
    # The common case in a few SQL statements (hot_path); the rest here, through the ORM.
    fast = hot_path.issue(study=study, rater=rater, rng=rng)
    if fast is not hot_path.SLOW:
        return fast
    # The rater's row is the lock every issue and vote of this rater takes first: one trial
    # open at a time and the quota hold under simultaneous requests.
    rater = _lock_rater(rater)
    if rater.excluded:
        return None
    now = timezone.now()
    progress = rater_progress(rater)
    current = _open_trial(rater, now)
    if current is not None:
        return _trial_of(study, current, progress)
    _retire_expired(rater, now)
    trial = None
    if progress.rated < study.trials_per_rater:
        if progress.training_done < study.training_trials:
            trial = _issue_control(study, rater, ControlTrial.Kind.TRAINING, rng, now, progress)
        elif study.gold_every and progress.rated % study.gold_every == _gold_slot(rater, study.gold_every):
            trial = _issue_control(study, rater, ControlTrial.Kind.GOLD, rng, now, progress)
        trial = trial or _issue_pair(study, rater, rng, now, progress)
    if trial is None:
        _finish(rater, now)
    return trial


def _lock_rater(rater: Rater) -> Rater:
    return Rater.objects.select_for_update(no_key=True).get(pk=rater.pk)


def _expiry(now):
    return now + timedelta(seconds=settings.PIPAL_ASSIGNMENT_TTL_SECONDS)


def _trial_of(study: Study, item: Assignment | ControlTrial, progress: RaterProgress) -> IssuedTrial:
    token = item.token
    if isinstance(item, Assignment):
        slug = study.slug
        names = {
            "reference": stimuli.ensure_display(item.reference, slug),
            "left": stimuli.ensure_display(item.left, slug),
            "right": stimuli.ensure_display(item.right, slug),
        }
        _save_new_displays([item.reference], [item.left, item.right])
        phase = "rating"
    else:
        names = {
            "reference": stimuli.ensure_display(item.reference, study.slug),
            "left": item.left_file,
            "right": item.right_file,
        }
        _save_new_displays([item.reference], [])
        phase = "training" if item.kind == ControlTrial.Kind.TRAINING else "rating"
    return IssuedTrial(
        token=token,
        phase=phase,
        reference=Candidate(opaque_id(token, "reference"), names["reference"]),
        left=Candidate(opaque_id(token, "left"), names["left"]),
        right=Candidate(opaque_id(token, "right"), names["right"]),
        expires_at=item.expires_at,
        done=progress.rated,
        quota=study.trials_per_rater,
        allow_tie=study.allow_ties and phase == "rating",
        assignment=item if isinstance(item, Assignment) else None,
        control=item if isinstance(item, ControlTrial) else None,
    )


def _save_new_displays(references: list[ReferenceImage], images: list[DistortedImage]) -> None:
    """Store display copies made just now (older studies, or rows made without one), in id
    order as votes lock images, so no deadlock."""
    for model, items in ((ReferenceImage, references), (DistortedImage, images)):
        for item in sorted(items, key=lambda item: item.pk):
            if item.display and model.objects.filter(pk=item.pk, display="").exists():
                model.objects.filter(pk=item.pk).update(display=item.display.name)


def _issue_pair(study, rater, rng, now, progress) -> IssuedTrial | None:
    for _ in range(3):  # a concurrent request may take the same pair first
        choice = scheduler.choose_pair(study, rater.id, rng)
        if choice is None:
            return None
        left, right = (choice.first_id, choice.second_id)
        if rng.random() < 0.5:
            left, right = right, left
        try:
            with transaction.atomic():
                assignment = Assignment.objects.create(
                    study=study,
                    rater=rater,
                    token=secrets.token_urlsafe(24),
                    reference_id=choice.reference_id,
                    left_id=left,
                    right_id=right,
                    image_low_id=min(left, right),
                    image_high_id=max(left, right),
                    issued_at=now,
                    expires_at=_expiry(now),
                )
        except IntegrityError:
            continue
        assignment = Assignment.objects.select_related("reference", "left", "right").get(pk=assignment.pk)
        return _trial_of(study, assignment, progress)
    raise Conflict("could not reserve a pair; please retry")


def _issue_control(study, rater, kind, rng, now, progress) -> IssuedTrial | None:
    number = progress.training_done if kind == ControlTrial.Kind.TRAINING else None
    pair = control_trials.build(study=study, kind=kind, practice_number=number, rng=rng)
    if pair is None:
        return None
    correct = rng.choice(["left", "right"])
    left, right = (pair.correct, pair.other) if correct == "left" else (pair.other, pair.correct)
    control = ControlTrial.objects.create(
        study=study,
        rater=rater,
        kind=kind,
        token=secrets.token_urlsafe(24),
        reference=pair.reference,
        construction=pair.construction,
        left_file=left,
        right_file=right,
        correct_side=correct,
        issued_at=now,
        expires_at=_expiry(now),
    )
    return _trial_of(study, control, progress)


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
    rater = _lock_rater(rater)
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
            feedback = {
                "correct": item.passed,
                "correct_side": item.correct_side,
                "message": (
                    f"Correct: the {item.correct_side} image is the closer one to the reference. {lesson}"
                    if item.passed
                    else f"Not quite: the {item.correct_side} image is closer to the reference. {lesson}"
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


# --- replaying and recomputing -----------------------------------------------------


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
