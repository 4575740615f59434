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

import hashlib
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from . import elo, scheduler
from .controls import control_pictures
from .db import atomic_with_retry
from .exceptions import ApplicationError, Conflict, Forbidden, Gone, LabelsStudy, NotFound
from .models import Assignment, ControlTrial, DistortedImage, Judgment, Rater, ReferenceImage, Study


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


def rater_create(
    *, study: Study, external_id: str, synthetic: bool = False, consented: bool = False
) -> tuple[Rater, str]:
    """A new rater and their API token (returned once; only its hash is kept)."""
    study_require_judgments(study)
    external_id = external_id.strip()
    if not external_id:
        raise ApplicationError("external_id must not be empty", fields={"external_id": ["must not be empty"]})
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            rater = Rater.objects.create(
                study=study,
                external_id=external_id,
                token_hash=hash_token(token),
                synthetic=synthetic,
                consented_at=timezone.now() if consented else None,
                completion_code=study.completion_code or secrets.token_hex(4).upper(),
            )
    except IntegrityError:
        raise Conflict(
            f"rater {external_id!r} has already joined study {study.slug!r}", fields={"external_id": ["already joined"]}
        ) from None
    return rater, token


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
    from .tasks import recompute_mos  # tasks import services

    transaction.on_commit(lambda: recompute_mos.delay(study_id))


# --- trials: what a rater sees next ------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    file: object  # a FieldFile; the API turns it into a URL
    image_id: int | None  # None for a control trial's pictures


@dataclass(frozen=True)
class IssuedTrial:
    """One trial as the rater sees it: a real pair or a control pair look alike
    (only training is announced, since it gives feedback)."""

    token: str
    phase: str  # "training" or "rating"
    reference_id: int
    reference_file: object
    left: Candidate
    right: Candidate
    expires_at: object
    done: int
    quota: int
    assignment: Assignment | None = None  # internal: the real pair
    control: ControlTrial | None = None  # internal: the control pair


@dataclass(frozen=True)
class RaterProgress:
    training_issued: int
    rating_issued: int
    rated: int
    open_rating: int


def rater_progress(rater: Rater) -> RaterProgress:
    """Trials issued and answered so far, in two aggregate queries; retired
    (never answerable) trials don't count. A rated trial is a voted assignment
    or a voted gold pair."""
    live, voted, open_ = ~Q(status="retired"), Q(status="voted"), Q(status="open")
    pairs = Assignment.objects.filter(rater=rater).aggregate(
        issued=Count("id", filter=live), voted=Count("id", filter=voted), open=Count("id", filter=open_)
    )
    training, gold = Q(kind=ControlTrial.Kind.TRAINING), Q(kind=ControlTrial.Kind.GOLD)
    controls = ControlTrial.objects.filter(rater=rater).aggregate(
        training=Count("id", filter=training & live),
        gold=Count("id", filter=gold & live),
        gold_voted=Count("id", filter=gold & voted),
        gold_open=Count("id", filter=gold & open_),
    )
    return RaterProgress(
        training_issued=controls["training"],
        rating_issued=pairs["issued"] + controls["gold"],
        rated=pairs["voted"] + controls["gold_voted"],
        open_rating=pairs["open"] + controls["gold_open"],
    )


def _gold_slot(rater: Rater, every: int) -> int:
    """Where in each block of ``every`` trials this rater's gold pair sits:
    fixed per rater, never the first trial, unpredictable across raters."""
    if every <= 1:
        return 0
    return 1 + int(hashlib.sha256(f"gold:{rater.pk}".encode()).hexdigest(), 16) % (every - 1)


def _retire_surplus_open(rater: Rater, now) -> None:
    keep = max(settings.PIPAL_MAX_OPEN_ASSIGNMENTS - 1, 0)
    open_items = sorted(
        [
            *(
                (at, pk, Assignment)
                for pk, at in Assignment.objects.filter(
                    rater=rater, status=Assignment.Status.OPEN, expires_at__gt=now
                ).values_list("id", "issued_at")
            ),
            *(
                (at, pk, ControlTrial)
                for pk, at in ControlTrial.objects.filter(
                    rater=rater, status=Assignment.Status.OPEN, expires_at__gt=now
                ).values_list("id", "issued_at")
            ),
        ],
        key=lambda item: (item[0], item[1]),
        reverse=True,
    )
    for _, pk, model in open_items[keep:]:
        model.objects.filter(pk=pk).update(status=Assignment.Status.RETIRED)


@atomic_with_retry
def pair_next(*, study: Study, rater: Rater, rng: random.Random | None = None) -> IssuedTrial | None:
    """Issue the rater's next trial, or None when they are done (quota reached,
    every pair seen, or excluded).

    Order: ``training_trials`` training pairs with feedback, then real pairs
    from the scheduler with one gold pair in every ``gold_every`` trials.
    """
    if rater.study_id != study.id:
        raise Forbidden("this rater belongs to another study")
    study_require_judgments(study)
    # The rater's row is the lock every issue and vote of this rater takes first: the
    # open-pair limit and the quota are counted and changed by one request at a time.
    rater = _lock_rater(rater)
    if rater.excluded:
        return None
    rng = rng or random.Random()
    now = timezone.now()
    _retire_surplus_open(rater, now)
    progress = rater_progress(rater)
    if progress.rated + progress.open_rating >= study.trials_per_rater:
        return None
    if progress.training_issued < study.training_trials:
        return _issue_control(study, rater, ControlTrial.Kind.TRAINING, rng, now, progress)
    if study.gold_every and progress.rating_issued % study.gold_every == _gold_slot(rater, study.gold_every):
        return _issue_control(study, rater, ControlTrial.Kind.GOLD, rng, now, progress)
    return _issue_pair(study, rater, rng, now, progress)


def _lock_rater(rater: Rater) -> Rater:
    return Rater.objects.select_for_update(no_key=True).get(pk=rater.pk)


def _expiry(now):
    return now + timedelta(seconds=settings.PIPAL_ASSIGNMENT_TTL_SECONDS)


def _issue_pair(study, rater, rng, now, progress) -> IssuedTrial | None:
    for _ in range(3):  # a concurrent request of the same rater may take the same pair first
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
        return IssuedTrial(
            token=assignment.token,
            phase="rating",
            reference_id=assignment.reference_id,
            reference_file=assignment.reference.file,
            left=Candidate(assignment.left.file, assignment.left_id),
            right=Candidate(assignment.right.file, assignment.right_id),
            expires_at=assignment.expires_at,
            done=progress.rated,
            quota=study.trials_per_rater,
            assignment=assignment,
        )
    raise Conflict("could not reserve a pair; please retry")


def _issue_control(study, rater, kind, rng, now, progress) -> IssuedTrial | None:
    references = ReferenceImage.objects.filter(study=study).order_by("id")
    count = references.count()
    if count == 0:
        return None
    reference = reference_control_pictures(reference=references[rng.randrange(count)])
    correct = rng.choice(["left", "right"])
    control = ControlTrial.objects.create(
        study=study,
        rater=rater,
        kind=kind,
        token=secrets.token_urlsafe(24),
        reference=reference,
        correct_side=correct,
        issued_at=now,
        expires_at=_expiry(now),
    )
    copy, decoy = Candidate(reference.control_copy, None), Candidate(reference.control_decoy, None)
    return IssuedTrial(
        token=control.token,
        phase="training" if kind == ControlTrial.Kind.TRAINING else "rating",
        reference_id=reference.id,
        reference_file=reference.file,
        left=copy if correct == "left" else decoy,
        right=decoy if correct == "left" else copy,
        expires_at=control.expires_at,
        done=progress.rated,
        quota=study.trials_per_rater,
        control=control,
    )


def reference_control_pictures(*, reference: ReferenceImage) -> ReferenceImage:
    """Make (once) the copy and decoy pictures of a reference's control pairs."""
    if reference.control_copy and reference.control_decoy:
        return reference
    with reference.file.open("rb") as handle:
        copy, decoy = control_pictures(handle.read())
    slug = reference.study.slug
    reference.control_copy = default_storage.save(f"studies/{slug}/{secrets.token_hex(32)}.png", ContentFile(copy))
    reference.control_decoy = default_storage.save(f"studies/{slug}/{secrets.token_hex(32)}.png", ContentFile(decoy))
    reference.save(update_fields=["control_copy", "control_decoy"])
    return reference


def _apply_judgment(
    *,
    study: Study,
    image_a_id: int,
    image_b_id: int,
    a_wins: bool,
    rater: Rater | None = None,
    assignment: Assignment | None = None,
    response_ms: int | None = None,
    source: str = Judgment.Source.LIVE,
) -> Judgment:
    """Apply one judgment inside the caller's transaction: lock both image rows
    in id order, run the Elo step, append to the log."""
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
    (step,) = elo.apply(states, [(a.id, b.id, a_wins)], params)
    for image in (a, b):
        state = states[image.id]
        image.elo, image.judgment_count, image.recent_elo = state.elo, state.judgments, state.recent
        image.mos = state.mos(params.initial)
        image.save(update_fields=["elo", "judgment_count", "recent_elo", "mos"])
    return Judgment.objects.create(
        study=study,
        rater=rater,
        assignment=assignment,
        image_a=a,
        image_b=b,
        winner=a if a_wins else b,
        elo_a_before=step.a_before,
        elo_a_after=step.a_after,
        elo_b_before=step.b_before,
        elo_b_after=step.b_after,
        response_ms=response_ms,
        source=source,
        issued_at=assignment.issued_at if assignment else None,
    )


class TooFast(ApplicationError):
    status_code = 429
    code = "too_fast"


@dataclass(frozen=True)
class VoteOutcome:
    judgment: Judgment | None  # None for a control trial
    feedback: dict | None  # training pairs only
    done: int
    quota: int


def vote_submit(
    *,
    study: Study,
    rater: Rater,
    assignment_token: str,
    choice: str,
    response_ms: int,
    enforce_rate_limit: bool = True,
) -> VoteOutcome:
    """Record a rater's choice on an issued trial. Each assignment counts once.

    The vote is one transaction; the rater's progress is read after it
    commits, so the image rows are not held locked meanwhile.
    """
    judgment, feedback = _vote_locked(
        study=study,
        rater=rater,
        assignment_token=assignment_token,
        choice=choice,
        response_ms=response_ms,
        enforce_rate_limit=enforce_rate_limit,
    )
    progress = rater_progress(rater)
    return VoteOutcome(judgment=judgment, feedback=feedback, done=progress.rated, quota=study.trials_per_rater)


@atomic_with_retry
def _vote_locked(
    *, study: Study, rater: Rater, assignment_token: str, choice: str, response_ms: int, enforce_rate_limit: bool
) -> tuple[Judgment | None, dict | None]:
    """Locks, in this order: the rater (rate limit; the order pair_next locks in too),
    the assignment (or control trial), then both images in id order."""
    study_require_judgments(study)
    if choice not in ("left", "right"):
        raise ApplicationError("choice must be 'left' or 'right'", fields={"choice": ["must be 'left' or 'right'"]})
    rater = _lock_rater(rater)
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
            a_wins=choice == "left",
            rater=rater,
            assignment=item,
            response_ms=response_ms,
        )
        item.status = Assignment.Status.VOTED
        item.save(update_fields=["status"])
    else:
        item.choice, item.response_ms, item.answered_at = choice, response_ms, now
        item.status = Assignment.Status.VOTED
        item.save(update_fields=["choice", "response_ms", "answered_at", "status"])
        if item.kind == ControlTrial.Kind.TRAINING:
            feedback = {
                "correct": item.passed,
                "message": (
                    f"Correct: the {item.correct_side} image is the one closer to the reference."
                    if item.passed
                    else f"Not quite: the {item.correct_side} image is closer to the reference. Look for "
                    "blur, noise and lost detail."
                ),
            }
        elif not item.passed:
            # P.808: a session with a failed gold question is not used.
            rater_set_excluded(rater=rater, excluded=True, reason="failed a gold pair")
    return judgment, feedback


@atomic_with_retry
def judgment_record(
    *, study: Study, image_a_id: int, image_b_id: int, a_wins: bool, rater: Rater | None = None
) -> Judgment:
    """Apply one judgment on two images directly (no assignment): the engine
    under live votes, used by tools and the concurrency tests."""
    study_require_judgments(study, action="replay")
    return _apply_judgment(study=study, image_a_id=image_a_id, image_b_id=image_b_id, a_wins=a_wins, rater=rater)


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
    judged = [(images[row.image_a].id, images[row.image_b].id, row.a_wins) for row in rows]
    log = [
        Judgment(
            study=study,
            rater=raters.get(row.rater) if row.rater else None,
            image_a_id=step.image_a,
            image_b_id=step.image_b,
            winner_id=step.image_a if step.a_wins else step.image_b,
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
    log = log.order_by("id").values_list("image_a_id", "image_b_id", "winner_id")
    count = 0

    def judgments():
        nonlocal count
        for a, b, winner in log.iterator(chunk_size=10_000):
            count += 1
            yield a, b, winner == a

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
